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

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use zk_proto::ConnId;

pub use zk_client::*;
/// Watch recipes (DataWatch, ChildrenWatch, TreeCache): see `zk_recipes`.
pub use zk_recipes as recipes;

/// A byte stream to a server: plain TCP, or TLS from a connector of your own.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// For the adapter: whether this is a plain `TcpStream` (which it drives
    /// without a hand-off per request).
    fn as_any(&self) -> &dyn std::any::Any;
    /// For the adapter: the stream as `Any`, to take a plain `TcpStream` back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

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
        loop {
            if let Err(e) = std::task::ready!(self.0.poll_read_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            // A short read means the socket is empty: tokio is told so (as its own
            // `poll_read` does), which saves the read that would return WouldBlock.
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
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if got > 0 {
                        return Poll::Ready(Ok(got));
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// The future a [`Connector`] returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Stream>>> + Send>>;

/// Opens the transport to one server. The default is plain TCP ([`TcpConnector`]);
/// a TLS connector (e.g. tokio-rustls over a `TcpStream`) slots in here without
/// touching the protocol, which starts after this returns.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `host` (the adapter resolves nothing itself).
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
    let rt = Arc::new(TokioRuntime {
        connector: connector.clone(),
    });
    let data = Arc::new(connector.clone());
    let (client, shared) = builder.build_for_adapter(Arc::new(TokioClock), data, rt)?;
    let sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
    tokio::spawn(driver::drive(
        shared.clone(),
        TokioDriver {
            shared,
            connector,
            sleep,
        },
    ));
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

/// TLS connectors (the `tls` feature): tokio-rustls over a `TcpStream`.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls {
    use std::sync::Arc;

    use tokio::net::TcpStream;
    pub use zk_tls::{TlsConfig, TlsError, TlsHosts, TlsOptions};

    use crate::{ConnectFuture, Connector, HostAddr, Stream};

    /// Dials each host over TCP, then runs the TLS handshake (tokio-rustls); the table
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
                let stream = tokio_rustls::TlsConnector::from(tls.client_config())
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
/// # async fn demo() -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// use zk_tokio::{fourlw, HostAddr};
/// let host = HostAddr { host: "127.0.0.1".into(), port: 2181 };
/// let ok = zk_tokio::four_letter_word(&host, "ruok", Duration::from_secs(2)).await?;
/// assert!(fourlw::parse_ruok(&ok));
/// let stats = fourlw::parse_stat(&zk_tokio::four_letter_word(&host, "srvr", Duration::from_secs(2)).await?);
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
        let mut s = Tio(connector.connect(host.clone()).await?);
        driver::four_letter_word(&mut s, cmd).await
    };
    match tokio::time::timeout(timeout, io).await {
        Ok(r) => r.map_err(|e| Error::Io(format!("{host}: {e}"))),
        Err(_) => Err(Error::Timeout),
    }
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

/// Runs `op` under a retry policy, sleeping with tokio's timer.
///
/// ```no_run
/// # async fn demo(zk: zk_tokio::Client) -> zk_tokio::Result<()> {
/// use std::time::Duration;
/// use zk_tokio::retry::{Idempotence, RetryPolicy};
/// let policy = RetryPolicy { deadline: Some(Duration::from_secs(30)), ..RetryPolicy::forever() };
/// let children = zk_tokio::retry(&policy, Idempotence::Safe, || zk.get_children("/workers")).await?;
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
    policy.run(kind, tokio::time::sleep, op).await
}

/// tokio's timer and the client's connector, for [`Client::retry`] and
/// [`Client::command`].
struct TokioRuntime {
    connector: Arc<dyn Connector>,
}

impl zk_client::runtime::Runtime for TokioRuntime {
    fn sleep(&self, d: Duration) -> zk_client::runtime::BoxFuture<()> {
        Box::pin(tokio::time::sleep(d))
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

/// A plain TCP connection: the socket is shared by the reader, the writer and the
/// core (which writes a lone request from the caller's thread when the writer is
/// idle), all through `&TcpStream`'s non-blocking calls.
async fn run_tcp(shared: &Arc<Shared>, conn: ConnId, sock: Arc<TcpStream>) {
    let lent = Arc::new(TcpSocket(sock.clone()));
    shared.lend_socket(conn, lent.clone());
    let reader = shared.lend_reader(conn, lent);
    shared.connected(conn);
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

/// tokio's part of the driver ([`driver::drive`]): a task per connection and one
/// `Sleep`.
struct TokioDriver {
    shared: Arc<Shared>,
    connector: Arc<dyn Connector>,
    sleep: Pin<Box<tokio::time::Sleep>>,
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

impl driver::DriverRuntime for TokioDriver {
    type Task = TokioTask;

    fn spawn(&mut self, conn: ConnId, host: HostAddr, timeout: Duration) -> TokioTask {
        let task = run_conn(
            self.shared.clone(),
            self.connector.clone(),
            conn,
            host,
            timeout,
        );
        TokioTask(tokio::spawn(task))
    }

    fn set_timer(&mut self, deadline: std::time::Instant) {
        self.sleep.as_mut().reset(deadline.into());
    }

    fn poll_timer(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
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
    let attempt = tokio::time::timeout(timeout, connector.connect(host.clone())).await;
    let attempt = attempt.ok().map(|r| r.map_err(|e| describe_io(&e)));
    let Some(stream) = driver::opened(&shared, conn, &host, timeout, attempt) else {
        return;
    };
    let _open = shared.transport_guard();
    // `(*stream)`: the box itself is a `Stream` too, and would name itself.
    if (*stream).as_any().is::<TcpStream>() {
        if let Ok(tcp) = stream.into_any().downcast::<TcpStream>() {
            run_tcp(&shared, conn, Arc::new(*tcp)).await;
        }
    } else {
        // A transport other than plain TCP, in a box of its own: the task of a
        // plain TCP connection (the usual case) stays small.
        let (rd, wr) = tokio::io::split(stream);
        let (rd, wr) = (Tio(rd), Tio(wr));
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

/// A tokio stream (or half of one) in the terms of zk-client's shared loops.
struct Tio<T>(T);

impl<T: AsyncRead + Unpin> driver::PollRead for Tio<T> {
    fn poll_read_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut rb = tokio::io::ReadBuf::new(buf);
        std::task::ready!(Pin::new(&mut self.0).poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(rb.filled().len()))
    }
}

impl<T: AsyncWrite + Unpin> driver::PollWrite for Tio<T> {
    fn poll_write_from(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush_out(&mut self, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
}
