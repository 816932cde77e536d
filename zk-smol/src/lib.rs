//! ZooKeeper client on smol (async-io sockets and timers, tasks on smol's executor).
//!
//! The API is `zk-client`'s, the same as `zk-tokio`'s; this crate only owns the
//! sockets and timers. No tokio anywhere in its dependency tree.
//!
//! ```no_run
//! # fn main() -> zk_smol::Result<()> { smol::block_on(async {
//! use zk_smol::{ClientBuilder, CreateMode};
//! let zk = zk_smol::connect(&ClientBuilder::new("127.0.0.1:2181")).await?;
//! zk.create("/greeting", "hello", CreateMode::Ephemeral).await?;
//! zk.close().await
//! # }) }
//! ```
//!
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("../GUIDE.md")]
#![warn(missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use smol::net::TcpStream;
use smol::Task;
use std::task::{Context, Poll};
use zk_proto::ConnId;

pub use zk_client::*;
/// Watch recipes (DataWatch, ChildrenWatch, TreeCache): see `zk_recipes`.
pub use zk_recipes as recipes;

/// async-io's timer, as a future of `()`.
async fn sleep(d: Duration) {
    Timer::after(d).await;
}

/// `f`'s output, or `None` once `d` has passed (a duration past the end of time
/// never passes).
async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    future::or(async { Some(f.await) }, async {
        Timer::after(d).await;
        None
    })
    .await
}

fn poll_timer(timer: &mut Timer, cx: &mut Context<'_>) -> Poll<()> {
    std::pin::Pin::new(timer).poll(cx).map(|_| ())
}

/// Connects and waits (up to the builder's connect deadline) for a session.
/// The I/O runs on tasks spawned on smol's global executor.
pub async fn connect(builder: &ClientBuilder) -> Result<Client> {
    connect_with(builder, Arc::new(TcpConnector), Arc::new(SystemClock)).await
}

/// [`connect`] over a transport of your own, on a clock of your own (the system
/// clock normally; a [`ManualClock`] runs the whole client on virtual time).
/// The client keeps `connector`: [`ClientExt::command`] (four-letter words) goes
/// over it too. When the deadline passes without a session the error is
/// [`Error::ConnectFailed`] naming the last attempt's cause (or
/// [`Error::Timeout`] if no attempt had failed yet).
pub async fn connect_with(
    builder: &ClientBuilder,
    connector: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
) -> Result<Client> {
    let client = start(builder, connector, clock)?;
    // On the client's clock: virtual under a ManualClock, like the session's timers.
    if client
        .wait_connected_within(builder.connect_deadline)
        .await?
    {
        return Err(client.connect_deadline_error());
    }
    Ok(client)
}

/// [`connect`] over TLS (futures-rustls), on the system clock: every host is
/// dialled with `tls`, its certificate checked as the options say (see
/// `zk_tls`). Bad options (an unreadable PEM, no roots) are
/// `Error::InvalidArgument` naming the cause.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub async fn connect_tls(builder: &ClientBuilder, tls: tls::TlsOptions) -> Result<Client> {
    let connector =
        tls::TlsConnector::new(&tls).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    connect_with(builder, Arc::new(connector), Arc::new(SystemClock)).await
}

// The public surface zk-tokio declares too (`Stream`, `Connector`, `TcpConnector`,
// `tls`, `four_letter_word(_with)`, `server_version`, `retry`) and the glue from a
// connection's task to zk-client's driver, over smol's and async-io's types.
zk_client::async_adapter! {
    krate: zk_smol, runtime: "smol",
    tls_name: "futures-rustls", tls: futures_rustls,
    read: futures_lite::AsyncRead, write: futures_lite::AsyncWrite, tcp: TcpStream,
    poll_read: futures_lite::AsyncRead::poll_read, split: futures_lite::io::split,
    sleep: sleep, timeout: timeout, spawn: spawn_conn, task: SmolTask, detach: detach,
    timer: Timer, new_timer: Timer::never, set_timer: Timer::set_at, poll_timer: poll_timer,
    run_tcp: run_tcp,
}

/// A connection's task; dropping it cancels the task (and drops its socket).
struct SmolTask(Task<()>);

/// Starts a connection's task on smol's global executor.
fn spawn_conn(task: impl Future<Output = ()> + Send + 'static) -> SmolTask {
    SmolTask(smol::spawn(task))
}

/// Starts the driver's task; it ends when the client is finished.
fn detach(driver: impl Future<Output = ()> + Send + 'static) {
    smol::spawn(driver).detach();
}

impl driver::ConnTask for SmolTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// A plain TCP socket lent to the core: callers write their requests and read
/// their replies through it themselves (see `zk_client::ConnReader`).
struct SmolSocket(Arc<async_io::Async<std::net::TcpStream>>);

impl TryWrite for SmolSocket {
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut self.0.get_ref(), buf)
    }
}

impl LentRead for SmolSocket {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        driver::poll_ready_read(
            cx,
            |cx| self.0.poll_readable(cx),
            || std::io::Read::read(&mut self.0.get_ref(), buf),
        )
    }
}

/// A plain TCP connection: callers read and write it themselves while they wait
/// (no hand-off through this task); this task reads what they leave and writes
/// what the socket did not take at once.
async fn run_tcp(shared: &Arc<Shared>, conn: ConnId, sock: TcpStream) {
    let sock: Arc<async_io::Async<std::net::TcpStream>> = sock.into();
    let reader = driver::lend_tcp(shared, conn, Arc::new(SmolSocket(sock.clone())));
    let read = async {
        let _ = future::poll_fn(|cx| reader.poll_conn(shared, cx)).await;
    };
    let write = async {
        while let Some(bytes) = future::poll_fn(|cx| shared.poll_write(conn, cx)).await {
            let mut off = 0;
            while off < bytes.len() {
                match sock
                    .write_with(|s| std::io::Write::write(&mut &*s, &bytes[off..]))
                    .await
                {
                    Ok(n) => off += n,
                    Err(_) => return,
                }
            }
        }
    };
    future::or(read, write).await;
}
