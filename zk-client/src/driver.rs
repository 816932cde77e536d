//! The async adapters' I/O loops, written once: the driver over
//! [`Shared::poll_driver`], the end of one connection attempt, the reader and
//! writer of a transport that is not plain TCP, and a four-letter word's
//! exchange. zk-tokio and zk-smol differ only in their runtime's types (a task, a
//! timer, the traits their streams read and write through), so those come in as
//! the small traits below ([`DriverRuntime`], [`PollRead`], [`PollWrite`]) and
//! everything else is here. zk-blocking runs threads, not futures, and keeps its
//! own loop.
//!
//! Nothing here owns a socket or a timer, or blocks: every wait is on a future
//! or poll function the adapter hands in.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use zk_proto::{ConnId, HostAddr};

use crate::{ConnReader, DriverPoll, Io, LentRead, ReadBuf, Shared, TryWrite};

/// A connection's task on the adapter's runtime. Dropping it cancels the
/// connection (and drops its socket).
pub trait ConnTask: Send + 'static {
    /// Whether the task has ended on its own.
    fn is_finished(&self) -> bool;
}

/// What [`drive`] needs of a runtime: a task per connection and one timer.
pub trait DriverRuntime {
    /// A running connection.
    type Task: ConnTask;
    /// Starts the task that opens connection `conn` to `host` (within `timeout`)
    /// and runs it until it ends or the task is dropped.
    fn spawn(&mut self, conn: ConnId, host: HostAddr, timeout: Duration) -> Self::Task;
    /// Sets the timer to fire at `deadline` (called only when the deadline moves).
    fn set_timer(&mut self, deadline: Instant);
    /// Polls the timer set last: ready once its deadline has passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// The driver: opens and closes transports as the core says and keeps the
/// session's timer, until the client is finished. It never touches a socket
/// itself, so nothing it waits on can stall the clock (see the driver contract
/// in [`Shared`]). A virtual clock ([`Clock::wake_at`](crate::Clock::wake_at))
/// wakes it itself; a real one through `rt`'s timer.
pub async fn drive<R: DriverRuntime>(shared: Arc<Shared>, mut rt: R) {
    let _running = shared.driver_guard();
    let mut conns: HashMap<ConnId, R::Task> = HashMap::new();
    let mut io = Vec::new();
    // The deadline the timer is set to, so it is re-armed only when it moves.
    let mut armed: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        for _ in 0..32 {
            let poll = shared.poll_driver(&mut io, cx.waker());
            for item in std::mem::take(&mut io) {
                match item {
                    Io::Connect {
                        conn,
                        host,
                        timeout,
                    } => {
                        conns.insert(conn, rt.spawn(conn, host, timeout));
                    }
                    Io::Disconnect(conn) => {
                        conns.remove(&conn);
                    }
                }
            }
            conns.retain(|_, t| !t.is_finished());
            let deadline = match poll {
                DriverPoll::Finished => return Poll::Ready(()),
                DriverPoll::Run { deadline: None } => return Poll::Pending,
                DriverPoll::Run { deadline: Some(d) } => d,
            };
            if shared.clock().wake_at(deadline, cx.waker()) {
                return Poll::Pending;
            }
            if armed != Some(deadline) {
                rt.set_timer(deadline);
                armed = Some(deadline);
            }
            if rt.poll_timer(cx).is_pending() {
                return Poll::Pending;
            }
            // The deadline passed: loop, and poll_driver handles it.
            armed = None;
        }
        // A deadline that keeps firing without moving: yield rather than spin.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
    // `conns` drops here: every connection's task is cancelled.
}

/// The end of one connection attempt to `host`: the transport, or `None` after
/// the failure is kept as the client's last connect error and the core is told.
/// `attempt` is `None` when `timeout` ran out first, else the connector's
/// result with its error already named (`Err(cause)`).
pub fn opened<S>(
    shared: &Shared,
    conn: ConnId,
    host: &HostAddr,
    timeout: Duration,
    attempt: Option<Result<S, String>>,
) -> Option<S> {
    let cause = match attempt {
        Some(Ok(s)) => return Some(s),
        Some(Err(cause)) => cause,
        None => format!(
            "no connection within the connect timeout of {timeout:?} \
             (TCP connect, plus the TLS handshake for a TLS connector)"
        ),
    };
    shared.report_connect_error(conn, format!("{host}: {cause}"));
    shared.connect_failed(conn);
    None
}

/// Lends a plain TCP socket to the core, which writes a lone request and reads
/// replies through it from the callers' tasks, and reports the connection open.
/// The reader returned is the connection task's: the reader of last resort.
pub fn lend_tcp<S: TryWrite + LentRead + 'static>(
    shared: &Arc<Shared>,
    conn: ConnId,
    sock: Arc<S>,
) -> Arc<ConnReader> {
    shared.lend_socket(conn, sock.clone());
    let reader = shared.lend_reader(conn, sock);
    shared.connected(conn);
    reader
}

/// A read on a socket driven by readiness: waits until `ready`, then `read`s,
/// and waits again while the read would block (readiness can be stale).
pub fn poll_ready_read(
    cx: &mut Context<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
    mut read: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        std::task::ready!(ready(cx))?;
        match read() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
    }
}

/// The read half of a transport, in the adapter runtime's own terms.
pub trait PollRead: Unpin {
    /// Reads into `buf`: the count read, 0 at the end of the stream.
    fn poll_read_into(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
}

/// The write half of a transport, in the adapter runtime's own terms.
pub trait PollWrite: Unpin {
    /// Writes from `buf`: the count taken.
    fn poll_write_from(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Flushes what was written.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// Reads into `buf` once.
pub async fn read<R: PollRead>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    std::future::poll_fn(|cx| r.poll_read_into(cx, buf)).await
}

/// Writes all of `buf`, then flushes.
pub async fn write_all<W: PollWrite>(w: &mut W, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match std::future::poll_fn(|cx| w.poll_write_from(cx, buf)).await? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    std::future::poll_fn(|cx| w.poll_flush_out(cx)).await
}

/// Runs `a` and `b` together until either ends (the other is dropped).
pub async fn either(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    std::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A transport other than plain TCP (TLS, a pipe): read and write it
/// concurrently until either side ends or the core closes it. A write that
/// blocks stalls only this connection. A read error is kept, named by
/// `describe`, as the last connect error (it counts only while the session
/// handshake is not done: a TLS alert after the handshake, a reset).
pub async fn run_stream(
    shared: &Shared,
    conn: ConnId,
    host: &HostAddr,
    mut rd: impl PollRead,
    mut wr: impl PollWrite,
    describe: fn(&io::Error) -> String,
) {
    shared.connected(conn);
    let reader = async {
        let mut buf = ReadBuf::default();
        loop {
            match read(&mut rd, buf.space()).await {
                Ok(0) => break,
                Err(e) => {
                    shared.report_connect_error(conn, format!("{host}: {}", describe(&e)));
                    break;
                }
                Ok(n) => {
                    shared.input(conn, &buf.space()[..n]);
                    buf.after_read(n);
                }
            }
        }
    };
    let writer = async {
        while let Some(bytes) = std::future::poll_fn(|cx| shared.poll_write(conn, cx)).await {
            if write_all(&mut wr, &bytes).await.is_err() {
                return;
            }
        }
    };
    either(reader, writer).await
}

/// A four-letter word's exchange on an open transport: sends `cmd`, reads to
/// the end, and returns the answer's text.
pub async fn four_letter_word<S: PollRead + PollWrite>(s: &mut S, cmd: &str) -> io::Result<String> {
    write_all(s, cmd.as_bytes()).await?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match read(s, &mut chunk).await {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            // A TLS peer that closes without close_notify, after its answer.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !out.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
