//! ZooKeeper client with blocking calls, on std threads and no async runtime.
//!
//! Every client of the process shares one I/O thread (timers, reads, writes of
//! plain TCP connections; see `io_thread/`), so an idle client costs no thread
//! of its own. The calls are `zk-client`'s, run to completion on the calling
//! thread, each bounded by the client's call timeout.
//!
//! ```no_run
//! use zk_blocking::{ClientBuilder, CreateMode};
//! let zk = zk_blocking::connect(&ClientBuilder::new("127.0.0.1:2181")).unwrap();
//! zk.create("/greeting", "hello", CreateMode::Ephemeral).unwrap();
//! let (data, stat, watch) = zk.get_data_watch("/greeting").unwrap();
//! zk.set_data("/greeting", "bye", Some(stat.version)).unwrap();
//! println!("{:?} then {:?}", data, watch.wait_timeout(None));
//! ```
//!
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("../GUIDE.md")]
#![warn(missing_docs)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::blocking::block_on;

mod io_thread;
mod pending;
mod read_bufs;
mod runtime;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
mod weak;

pub use pending::{Pending, Transaction};
pub use weak::WeakClient;
pub use zk_client::{
    acl, fourlw, make_acl, make_digest_acl, make_digest_acl_credential, retry, Acl, AddWatchMode,
    Bytes, ClientBuilder, ClientInfo, Clock, CoarseState, ConnectionEvent, CreateMode,
    CreateOptions, Data, Diagnostics, Error, ErrorCode, EventType, ExpiryPolicy, HostAddr, Id,
    IntoData, ListenerId, LiveCounts, ManualClock, OneshotWatch, Op, OpResult, Perms, QueuePolicy,
    ReadOp, ReadResult, Result, SaslConfig, SessionInfo, SessionState, Stat, StateStream,
    SystemClock, WatchStream, WatchedEvent, WatcherType,
};
/// Watch recipes (DataWatch, ChildrenWatch, TreeCache), blocking through their
/// `recv_timeout` forms; pass `client.as_async()` to their constructors.
pub use zk_recipes as recipes;

/// SASL GSSAPI (Kerberos) options for `ClientBuilder::sasl_gssapi` (the `gssapi` feature).
#[cfg(feature = "gssapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "gssapi")))]
pub use zk_client::gssapi;

/// A blocking ZooKeeper client. Cheap to clone; the session closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    inner: zk_client::Client,
    timeout: Option<Duration>,
}

/// A byte stream to a server, as the blocking driver uses it: a reader thread
/// and a writer thread each hold one handle, and the driver may shut it down.
pub trait Transport: Read + Write + Send + 'static {
    /// A second handle on the same stream (for the writer thread).
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Transport>>;
    /// Ends the stream in both directions; blocked reads and writes return.
    fn shutdown(&self);
    /// The plain TCP socket underneath, if this is one (the shared I/O thread
    /// drives those; anything else gets a reader and a writer thread).
    fn as_tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl Transport for TcpStream {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Transport>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown(&self) {
        let _ = TcpStream::shutdown(self, Shutdown::Both);
    }
    fn as_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

/// Opens the transport to one server. The default is plain TCP ([`TcpConnector`]);
/// TLS or an in-memory pipe slots in here without touching the protocol.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `host` within `timeout` (the session's per-attempt connect timeout).
    fn connect(&self, host: &HostAddr, timeout: Duration) -> std::io::Result<Box<dyn Transport>>;
}

/// Plain TCP with Nagle off, trying every address the host name resolves to.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, host: &HostAddr, timeout: Duration) -> std::io::Result<Box<dyn Transport>> {
        Ok(Box::new(tcp_connect(host, timeout)?))
    }
}

/// A TCP connection to `host` (every address it resolves to, in turn) within
/// `timeout`, Nagle off.
pub(crate) fn tcp_connect(host: &HostAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (host.host.as_str(), host.port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::other(format!(
            "{host} resolved to no address"
        )));
    }
    let s = connect_any(&addrs, timeout)?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Tries each address in turn until one connects, all within `timeout` overall
/// (a host name often resolves to an IPv6 and an IPv4 address, and only one may
/// have a server behind it).
#[allow(clippy::disallowed_methods)]
fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> std::io::Result<TcpStream> {
    let deadline = Instant::now().checked_add(timeout);
    let mut last = std::io::Error::other("no address to connect to");
    for addr in addrs {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => return Err(std::io::ErrorKind::TimedOut.into()),
            },
            // No representable deadline: the session's own timer bounds the attempt.
            None => Duration::from_secs(3600),
        };
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects and waits (up to the builder's connect deadline) for a session.
///
/// ```no_run
/// use zk_blocking::{ClientBuilder, Error};
/// match zk_blocking::connect(&ClientBuilder::new("127.0.0.1:2181/app")) {
///     Ok(zk) => println!("session {:#x}", zk.session().unwrap().id),
///     Err(Error::ConnectFailed(cause)) => eprintln!("no session: {cause}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
pub fn connect(builder: &ClientBuilder) -> Result<Client> {
    connect_with(builder, Arc::new(TcpConnector), Arc::new(SystemClock))
}

/// [`connect`] over a transport of your own, on a clock of your own (the system
/// clock normally; a [`ManualClock`] runs the driver's timers on virtual time).
/// The client keeps `connector`: [`Client::command`] (four-letter words) goes
/// over it too. When the deadline passes without a session the error is
/// [`Error::ConnectFailed`] naming the last attempt's cause (or
/// [`Error::Timeout`] if no attempt had failed yet).
pub fn connect_with(
    builder: &ClientBuilder,
    connector: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
) -> Result<Client> {
    let hooks = Arc::new(runtime::BlockingRuntime {
        connector: connector.clone(),
    });
    let (inner, shared) = builder.build_for_adapter(clock, Arc::new(connector.clone()), hooks)?;
    io_thread::start(shared, connector).map_err(|e| Error::Io(e.to_string()))?;
    // On the client's clock: virtual under a ManualClock, like the session's timers.
    match block_on(inner.wait_connected_within(builder.connect_deadline), None) {
        Some(Ok(false)) => Ok(Client {
            inner,
            timeout: Some(Duration::from_secs(30)),
        }),
        Some(Err(e)) => Err(e),
        Some(Ok(true)) | None => Err(inner.connect_deadline_error()),
    }
}

/// [`connect`] over TLS (rustls's blocking connection over std sockets): every
/// host is dialled with `tls`, its certificate checked as the options say (see
/// `zk_tls`). Bad options (an unreadable PEM, no roots) are
/// `Error::InvalidArgument` naming the cause.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub fn connect_tls(builder: &ClientBuilder, tls: tls::TlsOptions) -> Result<Client> {
    let connector =
        tls::TlsConnector::new(&tls).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    connect_with(builder, Arc::new(connector), Arc::new(SystemClock))
}

/// [`four_letter_word`] over a connector of your own (TLS: ZooKeeper answers
/// four-letter words on its secure port too). `timeout` bounds the whole
/// exchange: a watchdog thread shuts the transport down when it passes.
pub fn four_letter_word_with(
    connector: &dyn Connector,
    host: &HostAddr,
    cmd: &str,
    timeout: Duration,
) -> Result<String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    fourlw::check_command(cmd)?;
    let io_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(format!("{host}: {e}")),
    };
    let mut t = connector.connect(host, timeout).map_err(io_err)?;
    let killer = t.try_clone_box().map_err(io_err)?;
    let fired = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let flag = fired.clone();
    let watchdog = std::thread::Builder::new()
        .name("zk-4lw-timeout".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                killer.shutdown();
            }
        })
        .map_err(|e| Error::Io(e.to_string()))?;
    let exchange = (|| -> std::io::Result<Vec<u8>> {
        t.write_all(cmd.as_bytes())?;
        t.flush()?;
        let mut out = Vec::new();
        match t.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            // A TLS peer that closes without close_notify, after its answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(out),
            Err(e) => Err(e),
        }
    })();
    drop(stop);
    let _ = watchdog.join();
    if fired.load(Ordering::SeqCst) {
        return Err(Error::Timeout);
    }
    exchange
        .map(|out| String::from_utf8_lossy(&out).into_owned())
        .map_err(io_err)
}

/// Runs a four-letter word (`ruok`, `srvr`, `mntr`, ...) against one server; returns its text.
pub fn four_letter_word(host: &HostAddr, cmd: &str, timeout: Duration) -> Result<String> {
    fourlw::check_command(cmd)?;
    let io = || -> std::io::Result<String> {
        let addr = (host.host.as_str(), host.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(cmd.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    io().map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(e.to_string()),
    })
}

/// Generates the blocking twin of each `zk_client::Client` call: same name, same
/// arguments, run on this thread within the call timeout.
macro_rules! blocking_calls {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Client {
            $(
                $(#[$m])*
                pub fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                    self.run(self.inner.$name($($arg),*))
                }
            )*
        }
    };
}

zk_client::for_each_call!(blocking_calls);

impl Client {
    fn run<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        block_on(f, self.timeout).unwrap_or(Err(Error::Timeout))
    }

    pub(crate) fn call_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// A transaction builder (kazoo's `transaction()`); `commit()` blocks.
    pub fn transaction(&self) -> Transaction {
        Transaction::new(self.inner.transaction(), self.timeout)
    }

    /// The same client with another per-call timeout (`None`: wait forever). Default 30 s.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) {
    /// use std::time::Duration;
    /// let quick = zk.with_timeout(Some(Duration::from_millis(500)));
    /// match quick.exists("/health") {
    ///     Err(zk_blocking::Error::Timeout) => println!("no answer within 500 ms"),
    ///     other => println!("{other:?}"),
    /// }
    /// # }
    /// ```
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Client {
        Client {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// Live-object counts that outlive the client (see `zk_client::Client::diagnostics`).
    pub fn diagnostics(&self) -> Diagnostics {
        self.inner.diagnostics()
    }

    /// Replaces the servers while the client runs (see `zk_client::Client::set_hosts`).
    pub fn set_hosts(&self, hosts: &str) -> Result<()> {
        self.inner.set_hosts(hosts)
    }

    /// The chroot from the connect string, if any.
    pub fn chroot(&self) -> Option<String> {
        self.inner.chroot()
    }

    /// The async client underneath (for code that mixes both styles, and for the
    /// recipes, which take a `zk_client::Client`).
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) -> zk_blocking::Result<()> {
    /// let lock = zk_blocking::recipes::Lock::new(zk.as_async(), "/app/lock", "worker-1")?;
    /// # let _ = lock; Ok(()) }
    /// ```
    pub fn as_async(&self) -> &zk_client::Client {
        &self.inner
    }

    /// The current session state.
    pub fn state(&self) -> SessionState {
        self.inner.state()
    }
    /// State changes, starting with the current state (`recv_timeout` blocks).
    pub fn state_stream(&self) -> StateStream {
        self.inner.state_stream()
    }
    /// Calls `f` on every state change.
    pub fn add_listener(&self, f: impl Fn(SessionState) + Send + Sync + 'static) -> ListenerId {
        self.inner.add_listener(f)
    }
    /// Calls `f` on coarse connection events (kazoo's CONNECTED / SUSPENDED / LOST,
    /// Curator's RECONNECTED and READ_ONLY), never twice in a row.
    pub fn add_connection_listener(
        &self,
        f: impl Fn(ConnectionEvent) + Send + Sync + 'static,
    ) -> ListenerId {
        self.inner.add_connection_listener(f)
    }
    /// Removes a listener.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }
    /// Session id, password, timeout and last zxid.
    pub fn session(&self) -> Option<SessionInfo> {
        self.inner.session()
    }
    /// Drops the connection without ending the session (see `zk_client::Client::abandon`).
    pub fn abandon(&self) {
        self.inner.abandon()
    }
    /// Starts a new session: a live one is closed first (kazoo's `restart()`),
    /// see `zk_client::Client::restart`.
    pub fn restart(&self) {
        self.inner.restart()
    }
    /// The server the session is on.
    pub fn current_host(&self) -> Option<HostAddr> {
        self.inner.current_host()
    }
    /// A four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) on the server the
    /// session is on (kazoo's `command()`), over the client's own connector (TLS
    /// when the client uses TLS); its text.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) -> zk_blocking::Result<()> {
    /// use zk_blocking::fourlw;
    /// assert!(fourlw::parse_ruok(&zk.command("ruok")?));
    /// let mntr = fourlw::parse_mntr(&zk.command("mntr")?);
    /// println!("{:?} znodes", mntr.get("zk_znode_count"));
    /// # Ok(()) }
    /// ```
    pub fn command(&self, cmd: &str) -> Result<String> {
        let host = self.current_host().ok_or(Error::NotConnected)?;
        let connector = self
            .inner
            .adapter_data()
            .and_then(|d| d.downcast_ref::<Arc<dyn Connector>>().cloned());
        match connector {
            Some(c) => four_letter_word_with(&*c, &host, cmd, Duration::from_secs(5)),
            None => four_letter_word(&host, cmd, Duration::from_secs(5)),
        }
    }
    /// Why the latest connection attempt failed (see
    /// `zk_client::Client::last_connect_error`).
    pub fn last_connect_error(&self) -> Option<String> {
        self.inner.last_connect_error()
    }
    /// The version of the server the client is on (numbers and full string, from `srvr`).
    pub fn server_version(&self) -> Result<fourlw::ServerVersion> {
        fourlw::version_of_srvr(self.command("srvr")?)
    }
    /// Runs `op` under the builder's command retry policy (kazoo's
    /// `client.retry(...)`), sleeping this thread between attempts. Reads and
    /// safe writes are repeated after connection errors; plain writes only after
    /// errors proving nothing was applied.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) -> zk_blocking::Result<()> {
    /// use zk_blocking::retry::Idempotence;
    /// use zk_blocking::CreateMode;
    /// let children = zk.retry(Idempotence::Safe, |zk| zk.get_children("/workers"))?;
    /// // A plain create is not repeated after ConnectionLoss (it may exist now):
    /// match zk.retry(Idempotence::Write, |zk| zk.create("/job", "", CreateMode::Persistent)) {
    ///     Err(e) if e.outcome_unknown() => println!("check whether /job exists: {e}"),
    ///     other => println!("{other:?}"),
    /// }
    /// # let _ = children; Ok(()) }
    /// ```
    pub fn retry<T>(
        &self,
        kind: retry::Idempotence,
        op: impl FnMut(&Client) -> Result<T>,
    ) -> Result<T> {
        let policy = self.inner.command_retry().clone();
        self.retry_with(&policy, kind, op)
    }
    /// [`retry`](Client::retry) under a policy of your own.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) -> zk_blocking::Result<()> {
    /// use std::time::Duration;
    /// use zk_blocking::retry::{Idempotence, RetryPolicy};
    /// let patient = RetryPolicy {
    ///     deadline: Some(Duration::from_secs(60)),
    ///     ..RetryPolicy::forever()
    /// };
    /// zk.retry_with(&patient, Idempotence::Safe, |zk| zk.sync("/"))?;
    /// # Ok(()) }
    /// ```
    pub fn retry_with<T>(
        &self,
        policy: &retry::RetryPolicy,
        kind: retry::Idempotence,
        mut op: impl FnMut(&Client) -> Result<T>,
    ) -> Result<T> {
        let sleep = |d| async move { std::thread::sleep(d) };
        block_on(
            policy.run(kind, sleep, || std::future::ready(op(self))),
            None,
        )
        .unwrap_or(Err(Error::Timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused first address does not stop the connect: the next one is tried.
    #[test]
    fn every_resolved_address_is_tried() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let live_addr = live.local_addr().unwrap();
        let s = connect_any(&[dead_addr, live_addr], Duration::from_secs(5)).unwrap();
        assert_eq!(s.peer_addr().unwrap(), live_addr);
        assert!(connect_any(&[dead_addr], Duration::from_secs(5)).is_err());
        assert!(connect_any(&[], Duration::from_secs(5)).is_err());
        // Duration::MAX is no deadline, not a panic.
        assert!(connect_any(&[live_addr], Duration::MAX).is_ok());
    }
}
