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
use std::task::Poll;
use zk_proto::ConnId;

pub use zk_client::*;
/// Watch recipes (DataWatch, ChildrenWatch, TreeCache): see `zk_recipes`.
pub use zk_recipes as recipes;

/// A byte stream to a server: plain TCP, or TLS from a connector of your own.
pub trait Stream:
    futures_lite::AsyncRead + futures_lite::AsyncWrite + Send + Unpin + 'static
{
    /// For the adapter: whether this is a plain `TcpStream` (which it drives
    /// without a hand-off per request or reply).
    fn as_any(&self) -> &dyn std::any::Any;
    /// For the adapter: the stream as `Any`, to take a plain `TcpStream` back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}
impl<T: futures_lite::AsyncRead + futures_lite::AsyncWrite + Send + Unpin + 'static> Stream for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// The future a [`Connector`] returns.
pub type ConnectFuture =
    std::pin::Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Stream>>> + Send>>;

/// Opens the transport to one server. The default is plain TCP ([`TcpConnector`]);
/// TLS (e.g. futures-rustls over a `TcpStream`) or an in-memory pipe slots in here
/// without touching the protocol, which starts after this returns.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `host` (every address it resolves to, in turn).
    fn connect(&self, host: HostAddr) -> ConnectFuture;
}

/// Plain TCP with Nagle off.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, host: HostAddr) -> ConnectFuture {
        Box::pin(async move {
            let s = TcpStream::connect((host.host.as_str(), host.port)).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s) as Box<dyn Stream>)
        })
    }
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
    let rt = Arc::new(SmolRuntime {
        connector: connector.clone(),
    });
    let (client, shared) = builder.build_for_adapter(clock, Arc::new(connector.clone()), rt)?;
    let rt = SmolDriver {
        shared: shared.clone(),
        connector,
        timer: Timer::never(),
    };
    smol::spawn(driver::drive(shared, rt)).detach();
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

/// TLS connectors (the `tls` feature): futures-rustls over an async-io `TcpStream`.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls {
    use std::sync::Arc;

    use smol::net::TcpStream;
    pub use zk_tls::{TlsConfig, TlsError, TlsHosts, TlsOptions};

    use crate::{ConnectFuture, Connector, HostAddr, Stream};

    /// Dials each host over TCP, then runs the TLS handshake (futures-rustls); the table
    /// and constructors are `zk_tls`'s, the handshake this crate's. The driver bounds
    /// the whole attempt by the per-attempt connect timeout.
    pub type TlsConnector = zk_tls::TlsConnector<dyn Connector>;

    impl Connector for TlsConnector {
        fn connect(&self, host: HostAddr) -> ConnectFuture {
            let Some(tls) = self.for_host(&host.host, host.port).cloned() else {
                return crate::TcpConnector.connect(host);
            };
            Box::pin(async move {
                let name = tls.server_name_for(&host.host)?;
                let tcp = TcpStream::connect((host.host.as_str(), host.port)).await?;
                tcp.set_nodelay(true)?;
                let stream = futures_rustls::TlsConnector::from(tls.client_config())
                    .connect(name, tcp)
                    .await
                    .map_err(TlsError::handshake_failed)?;
                Ok(Box::new(stream) as Box<dyn Stream>)
            })
        }
    }

    /// What makes `TlsConnector::into()` an `Arc<dyn Connector>`.
    impl zk_tls::SharedConnector for dyn Connector {
        fn share(c: TlsConnector) -> Arc<dyn Connector> {
            Arc::new(c)
        }
    }
}

/// Runs a four-letter word (`ruok`, `srvr`, `mntr`, ...) against one server over
/// plain TCP; returns its text.
///
/// ```no_run
/// # async fn demo() -> zk_smol::Result<()> {
/// use std::time::Duration;
/// use zk_smol::{fourlw, HostAddr};
/// let host = HostAddr { host: "127.0.0.1".into(), port: 2181 };
/// let ok = zk_smol::four_letter_word(&host, "ruok", Duration::from_secs(2)).await?;
/// assert!(fourlw::parse_ruok(&ok));
/// let stats = fourlw::parse_stat(&zk_smol::four_letter_word(&host, "srvr", Duration::from_secs(2)).await?);
/// println!("{} in mode {}", stats.version, stats.mode);
/// # Ok(()) }
/// ```
pub async fn four_letter_word(host: &HostAddr, cmd: &str, timeout: Duration) -> Result<String> {
    four_letter_word_with(&TcpConnector, host, cmd, timeout).await
}

/// [`four_letter_word`] over a connector of your own (TLS: ZooKeeper answers
/// four-letter words on its secure port too).
pub async fn four_letter_word_with(
    connector: &dyn Connector,
    host: &HostAddr,
    cmd: &str,
    timeout: Duration,
) -> Result<String> {
    fourlw::check_command(cmd)?;
    let io = async {
        let mut s = Fio(connector.connect(host.clone()).await?);
        driver::four_letter_word(&mut s, cmd).await
    };
    future::or(
        async { io.await.map_err(|e| Error::Io(format!("{host}: {e}"))) },
        async {
            Timer::after(timeout).await;
            Err(Error::Timeout)
        },
    )
    .await
}

/// An I/O error as the last-connect-error text: a TLS error named as `zk_tls` does.
fn describe_io(e: &std::io::Error) -> String {
    #[cfg(feature = "tls")]
    return zk_tls::describe_io(e);
    #[cfg(not(feature = "tls"))]
    e.to_string()
}

/// The version of the server the client is on (from `srvr`).
pub async fn server_version(client: &Client) -> Result<fourlw::ServerVersion> {
    client.server_version().await
}

/// Runs `op` under a retry policy, sleeping with smol's timer.
///
/// ```no_run
/// # async fn demo(zk: zk_smol::Client) -> zk_smol::Result<()> {
/// use std::time::Duration;
/// use zk_smol::retry::{Idempotence, RetryPolicy};
/// let policy = RetryPolicy { deadline: Some(Duration::from_secs(30)), ..RetryPolicy::forever() };
/// let children = zk_smol::retry(&policy, Idempotence::Safe, || zk.get_children("/workers")).await?;
/// # let _ = children; Ok(()) }
/// ```
pub async fn retry<T, F, Fut>(
    policy: &retry::RetryPolicy,
    kind: retry::Idempotence,
    op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    policy
        .run(
            kind,
            |d| async move {
                Timer::after(d).await;
            },
            op,
        )
        .await
}

/// async-io's timer and the client's connector, for [`Client::retry`] and
/// [`Client::command`].
struct SmolRuntime {
    connector: Arc<dyn Connector>,
}

impl zk_client::runtime::Runtime for SmolRuntime {
    fn sleep(&self, d: Duration) -> zk_client::runtime::BoxFuture<()> {
        Box::pin(async move {
            Timer::after(d).await;
        })
    }

    fn four_letter_word(
        &self,
        host: HostAddr,
        cmd: String,
        timeout: Duration,
    ) -> zk_client::runtime::BoxFuture<Result<String>> {
        let connector = self.connector.clone();
        Box::pin(async move { four_letter_word_with(&*connector, &host, &cmd, timeout).await })
    }
}

/// smol's part of the driver ([`driver::drive`]): a task per connection and one
/// async-io `Timer`.
struct SmolDriver {
    shared: Arc<Shared>,
    connector: Arc<dyn Connector>,
    timer: Timer,
}

/// A connection's task; dropping it cancels the task (and drops its socket).
struct SmolTask(Task<()>);

impl driver::ConnTask for SmolTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl driver::DriverRuntime for SmolDriver {
    type Task = SmolTask;

    fn spawn(&mut self, conn: ConnId, host: HostAddr, timeout: Duration) -> SmolTask {
        let task = run_conn(
            self.shared.clone(),
            self.connector.clone(),
            conn,
            host,
            timeout,
        );
        SmolTask(smol::spawn(task))
    }

    fn set_timer(&mut self, deadline: std::time::Instant) {
        self.timer.set_at(deadline);
    }

    fn poll_timer(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        std::pin::Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

/// One transport: connect, then read and write concurrently until either side
/// ends or the core closes it. A write that blocks stalls only this task.
async fn run_conn(
    shared: Arc<Shared>,
    connector: Arc<dyn Connector>,
    conn: ConnId,
    host: HostAddr,
    timeout: Duration,
) {
    let connecting = async { Some(connector.connect(host.clone()).await) };
    let timed_out = async {
        match std::time::Instant::now().checked_add(timeout) {
            Some(at) => {
                Timer::at(at).await;
            }
            None => future::pending::<()>().await,
        }
        None
    };
    let attempt = future::or(connecting, timed_out).await;
    let attempt = attempt.map(|r| r.map_err(|e| describe_io(&e)));
    let Some(stream) = driver::opened(&shared, conn, &host, timeout, attempt) else {
        return;
    };
    let _open = shared.transport_guard();
    // `(*stream)`: the box itself is a `Stream` too, and would name itself.
    if (*stream).as_any().is::<TcpStream>() {
        if let Ok(tcp) = stream.into_any().downcast::<TcpStream>() {
            run_tcp(&shared, conn, (*tcp).into()).await;
        }
    } else {
        // A transport other than plain TCP, in a box of its own: the task of a
        // plain TCP connection (the usual case) stays small.
        let (rd, wr) = futures_lite::io::split(stream);
        let (rd, wr) = (Fio(rd), Fio(wr));
        Box::pin(driver::run_stream(
            &shared,
            conn,
            &host,
            rd,
            wr,
            describe_io,
        ))
        .await;
    }
    shared.disconnected(conn);
}

/// A futures-io stream (or half of one) in the terms of zk-client's shared loops.
struct Fio<T>(T);

impl<T: futures_lite::AsyncRead + Unpin> driver::PollRead for Fio<T> {
    fn poll_read_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        futures_lite::AsyncRead::poll_read(std::pin::Pin::new(&mut self.0), cx, buf)
    }
}

impl<T: futures_lite::AsyncWrite + Unpin> driver::PollWrite for Fio<T> {
    fn poll_write_from(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        futures_lite::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush_out(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        futures_lite::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.0), cx)
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
    fn poll_read(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            if let Err(e) = std::task::ready!(self.0.poll_readable(cx)) {
                return Poll::Ready(Err(e));
            }
            match std::io::Read::read(&mut self.0.get_ref(), buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

/// A plain TCP connection: callers read and write it themselves while they wait
/// (no hand-off through this task); this task reads what they leave and writes
/// what the socket did not take at once.
async fn run_tcp(
    shared: &Arc<Shared>,
    conn: ConnId,
    sock: Arc<async_io::Async<std::net::TcpStream>>,
) {
    let lent = Arc::new(SmolSocket(sock.clone()));
    shared.lend_socket(conn, lent.clone());
    let reader = shared.lend_reader(conn, lent);
    shared.connected(conn);
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
