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

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;

use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    let (client, shared) = builder.build_on(Arc::new(TokioClock))?;
    shared.set_adapter_data(Arc::new(connector.clone()));
    shared.set_runtime(Arc::new(TokioRuntime {
        connector: connector.clone(),
    }));
    tokio::spawn(drive(shared, connector));
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

    /// Dials each host over TCP, then runs the TLS handshake; a failed handshake is
    /// an `io::Error` wrapping the [`TlsError`] that names it. The driver bounds
    /// the whole attempt by the per-attempt connect timeout.
    #[derive(Debug, Clone)]
    pub struct TlsConnector {
        hosts: TlsHosts,
    }

    impl TlsConnector {
        /// Builds the rustls configuration from `opts` (reads its PEM files now).
        pub fn new(opts: &TlsOptions) -> Result<TlsConnector, TlsError> {
            Ok(TlsConnector {
                hosts: TlsHosts::new(opts)?,
            })
        }

        /// A connector from a configuration built already.
        pub fn from_config(tls: TlsConfig) -> TlsConnector {
            TlsConnector {
                hosts: TlsHosts::from_config(tls),
            }
        }

        /// Settings per host: TLS with its own options, or plain TCP, for the
        /// hosts `hosts` names (see [`TlsHosts::parse`] for `tls://` and
        /// `tcp://` in a connect string).
        pub fn per_host(hosts: TlsHosts) -> TlsConnector {
            TlsConnector { hosts }
        }
    }

    impl Connector for TlsConnector {
        fn connect(&self, host: HostAddr) -> ConnectFuture {
            let Some(tls) = self.hosts.for_host(&host.host, host.port).cloned() else {
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

    /// For `Arc<dyn Connector>` call sites.
    impl From<TlsConnector> for Arc<dyn Connector> {
        fn from(c: TlsConnector) -> Self {
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
    if !fourlw::valid_command(cmd) {
        return Err(Error::InvalidArgument(format!(
            "not a four-letter word: {cmd:?}"
        )));
    }
    let io = async {
        let mut s = connector.connect(host.clone()).await?;
        s.write_all(cmd.as_bytes()).await?;
        s.flush().await?;
        let mut out = Vec::new();
        match s.read_to_end(&mut out).await {
            Ok(_) => {}
            // A TLS peer that closes without close_notify, after its answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(timeout, io).await {
        Ok(r) => r.map_err(|e| Error::Io(format!("{host}: {e}"))),
        Err(_) => Err(Error::Timeout),
    }
}

/// An I/O error as the last-connect-error text: a TLS error named as `zk_tls` does.
fn describe_io(e: &std::io::Error) -> String {
    #[cfg(feature = "tls")]
    if e.get_ref()
        .is_some_and(|i| i.is::<zk_tls::rustls::Error>() || i.is::<zk_tls::TlsError>())
    {
        return zk_tls::TlsError::from_io(e).to_string();
    }
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

/// The calls that need the runtime, as a trait: kept for code written before they
/// became the client's own methods ([`Client::command`], [`Client::server_version`],
/// [`Client::retry`], which run on the runtime the client was connected with, and
/// which a method call finds first). New code needs no import.
pub trait ClientExt {
    /// A four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) on the server the
    /// session is on (kazoo's `command()`), over the client's own connector (TLS
    /// when the client uses TLS); its text.
    fn command(&self, cmd: &str) -> impl Future<Output = Result<String>> + Send;
    /// The version of the server the session is on (numbers and full string).
    fn server_version(&self) -> impl Future<Output = Result<fourlw::ServerVersion>> + Send;
    /// Runs `op` under the builder's command retry policy (kazoo's
    /// `client.retry(...)`): reads and safe writes are repeated after connection
    /// errors, plain writes only after errors proving nothing was applied.
    fn retry<T, F, Fut>(&self, kind: retry::Idempotence, op: F) -> impl Future<Output = Result<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>;
}

/// Delegates to the client's own methods ([`Client::command`],
/// [`Client::server_version`], [`Client::retry`]), which run on the runtime
/// the client was connected with; kept so `use zk_tokio::ClientExt` goes on
/// compiling.
impl ClientExt for Client {
    fn command(&self, cmd: &str) -> impl Future<Output = Result<String>> + Send {
        Client::command(self, cmd)
    }

    fn server_version(&self) -> impl Future<Output = Result<fourlw::ServerVersion>> + Send {
        Client::server_version(self)
    }

    fn retry<T, F, Fut>(&self, kind: retry::Idempotence, op: F) -> impl Future<Output = Result<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        Client::retry(self, kind, op)
    }
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

/// The prelude: the client, its builder and extension trait, and the types most
/// calls take or return.
pub mod prelude {
    pub use crate::ClientExt;
    pub use zk_client::{
        Acl, AddWatchMode, Bytes, Client, ClientBuilder, CreateMode, CreateOptions, Data, Error,
        Result, SessionState, Stat, WatchedEvent, WatcherType,
    };
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

/// The driver: opens and closes transports as the core says and keeps the
/// session's timer. It never touches a socket itself, so nothing it waits on can
/// stall the clock (see the driver contract in `zk_client::Shared`).
async fn drive(shared: Arc<Shared>, connector: Arc<dyn Connector>) {
    let _running = shared.driver_guard();
    let mut conns: HashMap<ConnId, JoinHandle<()>> = HashMap::new();
    let mut io = Vec::new();
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed: Option<std::time::Instant> = None;
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
                        let task = run_conn(shared.clone(), connector.clone(), conn, host, timeout);
                        conns.insert(conn, tokio::spawn(task));
                    }
                    Io::Disconnect(conn) => {
                        if let Some(t) = conns.remove(&conn) {
                            t.abort();
                        }
                    }
                }
            }
            conns.retain(|_, t| !t.is_finished());
            let deadline = match poll {
                DriverPoll::Finished => return Poll::Ready(()),
                DriverPoll::Run { deadline: None } => return Poll::Pending,
                DriverPoll::Run { deadline: Some(d) } => d,
            };
            if armed != Some(deadline) {
                sleep.as_mut().reset(deadline.into());
                armed = Some(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
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
    for (_, t) in conns {
        t.abort();
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
    let stream = match tokio::time::timeout(timeout, connector.connect(host.clone())).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            shared.report_connect_error(conn, format!("{host}: {}", describe_io(&e)));
            shared.connect_failed(conn);
            return;
        }
        Err(_) => {
            shared.report_connect_error(
                conn,
                format!(
                    "{host}: no connection within the connect timeout of {timeout:?} \
                     (TCP connect, plus the TLS handshake for a TLS connector)"
                ),
            );
            shared.connect_failed(conn);
            return;
        }
    };
    let _open = shared.transport_guard();
    // `(*stream)`: the box itself is a `Stream` too, and would name itself.
    if (*stream).as_any().is::<TcpStream>() {
        if let Ok(tcp) = stream.into_any().downcast::<TcpStream>() {
            run_tcp(&shared, conn, Arc::new(*tcp)).await;
        }
        shared.disconnected(conn);
        return;
    }
    // A transport other than plain TCP, in a box of its own: the task of a
    // plain TCP connection (the usual case) stays small.
    Box::pin(run_stream(shared.clone(), conn, host, stream)).await;
    shared.disconnected(conn);
}

/// A transport other than plain TCP: read and write it concurrently until either
/// side ends or the core closes it. A write that blocks stalls only this task.
async fn run_stream(shared: Arc<Shared>, conn: ConnId, host: HostAddr, stream: Box<dyn Stream>) {
    shared.connected(conn);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let sh = shared.clone();
    let reader = async move {
        let mut buf = ReadBuf::default();
        loop {
            match rd.read(buf.space()).await {
                Ok(0) => break,
                Err(e) => {
                    // Kept only while the session handshake is not done (a TLS alert
                    // after the handshake, a reset).
                    sh.report_connect_error(conn, format!("{host}: {}", describe_io(&e)));
                    break;
                }
                Ok(n) => {
                    sh.input(conn, &buf.space()[..n]);
                    buf.after_read(n);
                }
            }
        }
    };
    let sh = shared.clone();
    let writer = async move {
        while let Some(bytes) = std::future::poll_fn(|cx| sh.poll_write(conn, cx)).await {
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}
