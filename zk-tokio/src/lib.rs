//! ZooKeeper client on tokio.
//!
//! Everything ZooKeeper-specific lives in `zk-proto` (the protocol) and
//! `zk-client` (the API); this crate only owns tokio sockets and timers.
//!
//! ```no_run
//! # async fn demo() -> zk_tokio::Result<()> {
//! use zk_tokio::{ClientBuilder, CreateMode};
//! let zk = zk_tokio::connect(&ClientBuilder::new("127.0.0.1:2181/app")).await?;
//! zk.ensure_path("/config").await?;
//! zk.create("/config/a", "hello", CreateMode::Ephemeral).await?;
//! let (data, _stat, watch) = zk.get_data_watch("/config/a").await?;
//! assert_eq!(&data[..], b"hello");
//! zk.set_data("/config/a", "bye", None).await?;
//! println!("{:?}", watch.await?);
//! zk.close().await
//! # }
//! ```
//!
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("../GUIDE.md")]
#![warn(missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;

use std::task::Poll;

use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use zk_proto::ConnId;

pub use zk_client::*;
/// Watch recipes (DataWatch, ChildrenWatch, TreeCache): see `zk_recipes`.
pub use zk_recipes as recipes;

/// A plain TCP socket lent to the core for writes from the caller's thread.
struct TcpSocket(Arc<TcpStream>);

impl TryWrite for TcpSocket {
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.try_write(buf)
    }
}

impl LentRead for TcpSocket {
    fn poll_read(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        // Outside tokio's cooperative budget: with the budget spent, tokio would
        // return Pending and wake the reader at once, and a caller polled by an
        // executor of its own (a window of futures inside one task) would be woken
        // and polled again in a loop that never gives the budget back.
        let mut read =
            tokio::task::unconstrained(std::future::poll_fn(|cx| self.poll_read_now(cx, buf)));
        Pin::new(&mut read).poll(cx)
    }
}

impl TcpSocket {
    fn poll_read_now(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        // A short read means the socket is empty: tokio is told so (as its own
        // `poll_read` does), which saves the read that would return WouldBlock.
        let read = || {
            let mut got = 0;
            let r = self.0.try_io(tokio::io::Interest::READABLE, || {
                let n = self.0.try_read(buf)?;
                got = n;
                if n > 0 && n < buf.len() {
                    Err(std::io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(n)
                }
            });
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && got > 0 => Ok(got),
                r => r,
            }
        };
        driver::poll_ready_read(cx, |cx| self.0.poll_read_ready(cx), read)
    }
}

/// tokio's clock. Under a paused runtime (`tokio::time::pause`, or
/// `#[tokio::test(start_paused = true)]`) it is virtual, and so is the whole
/// client: session timers, pings and the driver's sleeps all follow it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// Connects and waits (up to the builder's connect deadline) for a session.
/// Must be called within a tokio runtime; the I/O runs on spawned tasks.
pub async fn connect(builder: &ClientBuilder) -> Result<Client> {
    connect_with(builder, Arc::new(TcpConnector)).await
}

/// [`connect`] over a transport of your own (TLS, a proxy, an in-memory pipe).
/// The client keeps `connector`: [`ClientExt::command`] (four-letter words) goes
/// over it too. When the deadline passes without a session the error is
/// [`Error::ConnectFailed`] naming the last attempt's cause (or
/// [`Error::Timeout`] if no attempt had failed yet).
pub async fn connect_with(
    builder: &ClientBuilder,
    connector: Arc<dyn Connector>,
) -> Result<Client> {
    let client = start(builder, connector, Arc::new(TokioClock))?;
    match tokio::time::timeout(builder.connect_deadline, client.wait_connected()).await {
        Ok(r) => r.map(|()| client),
        Err(_) => Err(client.connect_deadline_error()),
    }
}

/// [`connect`] over TLS (tokio-rustls): every host is dialled with `tls`, its
/// certificate checked as the options say (see `zk_tls`). Bad options (an
/// unreadable PEM, no roots) are `Error::InvalidArgument` naming the cause.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub async fn connect_tls(builder: &ClientBuilder, tls: tls::TlsOptions) -> Result<Client> {
    let connector =
        tls::TlsConnector::new(&tls).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    connect_with(builder, Arc::new(connector)).await
}

// The public surface zk-smol declares too (`Stream`, `Connector`, `TcpConnector`,
// `tls`, `four_letter_word(_with)`, `server_version`, `retry`) and the glue from a
// connection's task to zk-client's driver, over tokio's types.
zk_client::async_adapter! {
    krate: zk_tokio, runtime: "tokio", tls_name: "tokio-rustls", tls: tokio_rustls,
    read: tokio::io::AsyncRead, write: tokio::io::AsyncWrite, tcp: TcpStream,
    poll_read: poll_read, split: tokio::io::split, sleep: tokio::time::sleep, timeout: timeout,
    spawn: spawn_conn, task: TokioTask, detach: detach, timer: Pin<Box<tokio::time::Sleep>>,
    new_timer: new_timer, set_timer: set_timer, poll_timer: poll_timer, run_tcp: run_tcp,
}

/// A plain TCP connection: the socket is shared by the reader, the writer and the
/// core (which writes a lone request from the caller's thread when the writer is
/// idle), all through `&TcpStream`'s non-blocking calls.
async fn run_tcp(shared: &Arc<Shared>, conn: ConnId, sock: TcpStream) {
    let sock = Arc::new(sock);
    let reader = driver::lend_tcp(shared, conn, Arc::new(TcpSocket(sock.clone())));
    // Callers waiting for replies may read the socket themselves, but this task
    // is the reader of last resort: woken by every readiness of the socket, it
    // reads whatever is there, so no reply waits for a caller to be polled.
    let reader = std::future::poll_fn(|cx| reader.poll_conn(shared, cx));
    let writer = async {
        while let Some(bytes) = std::future::poll_fn(|cx| shared.poll_write(conn, cx)).await {
            let mut off = 0;
            while off < bytes.len() {
                if sock.writable().await.is_err() {
                    return;
                }
                match sock.try_write(&bytes[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}

/// A connection's task; dropping it aborts the task (and drops its socket).
struct TokioTask(JoinHandle<()>);

impl Drop for TokioTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl driver::ConnTask for TokioTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// Starts a connection's task, aborted when the returned handle is dropped.
fn spawn_conn(task: impl Future<Output = ()> + Send + 'static) -> TokioTask {
    TokioTask(tokio::spawn(task))
}

/// Starts the driver's task; it ends when the client is finished.
fn detach(driver: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(driver);
}

/// `f`'s output, or `None` once `d` has passed (tokio's timer: virtual under a
/// paused runtime).
async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    tokio::time::timeout(d, f).await.ok()
}

/// The driver's one `Sleep`, re-armed by `set_timer`.
fn new_timer() -> Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(Duration::ZERO))
}

fn set_timer(sleep: &mut Pin<Box<tokio::time::Sleep>>, deadline: std::time::Instant) {
    sleep.as_mut().reset(deadline.into());
}

fn poll_timer(
    sleep: &mut Pin<Box<tokio::time::Sleep>>,
    cx: &mut std::task::Context<'_>,
) -> Poll<()> {
    sleep.as_mut().poll(cx)
}

/// A read through tokio's `ReadBuf`, as a count of bytes read into `buf`.
fn poll_read<T: AsyncRead + Unpin>(
    r: Pin<&mut T>,
    cx: &mut std::task::Context<'_>,
    buf: &mut [u8],
) -> Poll<std::io::Result<usize>> {
    let mut rb = tokio::io::ReadBuf::new(buf);
    std::task::ready!(r.poll_read(cx, &mut rb))?;
    Poll::Ready(Ok(rb.filled().len()))
}
