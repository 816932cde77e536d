//! ZooKeeper client with blocking calls, on std threads and no async runtime.
//!
//! Each client has one driver thread (connects, writes, timers) and one reader
//! thread per open connection. The calls are `zk-client`'s, run to completion on
//! the calling thread, each bounded by the client's call timeout.
//!
//! ```no_run
//! use zk_blocking::{ClientBuilder, CreateMode};
//! let zk = zk_blocking::connect(&ClientBuilder::new("127.0.0.1:2181")).unwrap();
//! zk.create("/greeting", "hello", CreateMode::Ephemeral).unwrap();
//! let (data, stat, watch) = zk.get_data_watch("/greeting").unwrap();
//! zk.set_data("/greeting", "bye", Some(stat.version)).unwrap();
//! println!("{:?} then {:?}", data, watch.wait_timeout(None));
//! ```
#![warn(missing_docs)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::blocking::{block_on, thread_waker};
use zk_proto::{Action, ConnId};

pub use zk_client::{
    fourlw, retry, Acl, AddWatchMode, ClientBuilder, ClientInfo, CoarseState, CreateMode,
    CreateOptions, Error, ErrorCode, EventType, ExpiryPolicy, HostAddr, Id, ListenerId,
    OneshotWatch, Op, OpResult, Perms, QueuePolicy, ReadOp, ReadResult, Result, SessionInfo,
    SessionState, Stat, StateStream, WatchStream, WatchedEvent, WatcherType,
};

/// A blocking ZooKeeper client. Cheap to clone; the session closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    inner: zk_client::Client,
    timeout: Option<Duration>,
}

/// Connects and waits (up to the builder's connect deadline) for a session.
pub fn connect(builder: &ClientBuilder) -> Result<Client> {
    let (inner, shared) = builder.build()?;
    std::thread::Builder::new()
        .name("zk-driver".into())
        .spawn(move || drive(shared))
        .map_err(|e| Error::Io(e.to_string()))?;
    match block_on(inner.wait_connected(), Some(builder.connect_deadline)) {
        Some(Ok(())) => Ok(Client {
            inner,
            timeout: Some(Duration::from_secs(30)),
        }),
        Some(Err(e)) => Err(e),
        None => Err(Error::Timeout),
    }
}

/// Runs a four-letter word (`ruok`, `srvr`, `mntr`, ...) against one server; returns its text.
pub fn four_letter_word(host: &HostAddr, cmd: &str, timeout: Duration) -> Result<String> {
    if !fourlw::valid_command(cmd) {
        return Err(Error::InvalidArgument(format!(
            "not a four-letter word: {cmd:?}"
        )));
    }
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

    /// The same client with another per-call timeout (`None`: wait forever). Default 30 s.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Client {
        Client {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// The async client underneath (for code that mixes both styles).
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
    /// Starts a new session after the old one ended.
    pub fn restart(&self) {
        self.inner.restart()
    }
    /// The server the session is on.
    pub fn current_host(&self) -> Option<HostAddr> {
        self.inner.current_host()
    }
    /// The version of the server the client is on (from `srvr`).
    pub fn server_version(&self) -> Result<(u32, u32, u32)> {
        let host = self.current_host().ok_or(Error::NotConnected)?;
        let text = four_letter_word(&host, "srvr", Duration::from_secs(5))?;
        fourlw::version_of_srvr(text)
    }
    /// Runs `op` under a retry policy, sleeping this thread between attempts.
    pub fn retry<T>(
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

enum ConnEvent {
    Up(ConnId, TcpStream),
    Failed(ConnId),
    Closed(ConnId),
}

#[allow(clippy::disallowed_methods)]
fn drive(shared: Arc<zk_client::Shared>) {
    let me = std::thread::current();
    let waker = thread_waker(me.clone());
    let (ev_tx, ev_rx) = mpsc::channel::<ConnEvent>();
    let mut conns: HashMap<ConnId, TcpStream> = HashMap::new();
    let mut io = Vec::new();
    loop {
        let deadline = shared.take_io(&mut io, Some(&waker));
        // The waker is only registered by a take that found nothing: loop until one does.
        let mut busy = !io.is_empty();
        for item in io.drain(..) {
            match item {
                zk_client::Io::Connect(Action::Connect { conn, host }) => {
                    let (tx, wake) = (ev_tx.clone(), me.clone());
                    let sh = shared.clone();
                    std::thread::spawn(move || {
                        let addr = (host.host.as_str(), host.port)
                            .to_socket_addrs()
                            .ok()
                            .and_then(|mut a| a.next());
                        let ev = match addr
                            .map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(30)))
                        {
                            Some(Ok(s)) => match s.try_clone() {
                                Ok(mut rd) => {
                                    let _ = s.set_nodelay(true);
                                    let (tx2, wake2) = (tx.clone(), wake.clone());
                                    std::thread::spawn(move || {
                                        let mut buf = zk_client::ReadBuf::default();
                                        while let Ok(n @ 1..) = rd.read(buf.space()) {
                                            sh.input(conn, &buf.space()[..n]);
                                            buf.after_read(n);
                                        }
                                        let _ = tx2.send(ConnEvent::Closed(conn));
                                        wake2.unpark();
                                    });
                                    ConnEvent::Up(conn, s)
                                }
                                Err(_) => ConnEvent::Failed(conn),
                            },
                            _ => ConnEvent::Failed(conn),
                        };
                        let _ = tx.send(ev);
                        wake.unpark();
                    });
                }
                zk_client::Io::Connect(_) => {}
                zk_client::Io::Disconnect(conn) => {
                    if let Some(s) = conns.remove(&conn) {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
                zk_client::Io::Write(t) => {
                    if let Some(s) = conns.get_mut(&t.conn) {
                        if s.write_all(&t.data).is_err() {
                            let _ = s.shutdown(Shutdown::Both);
                            conns.remove(&t.conn);
                            shared.disconnected(t.conn);
                        }
                    }
                }
            }
        }
        while let Ok(ev) = ev_rx.try_recv() {
            busy = true;
            match ev {
                ConnEvent::Up(conn, s) => {
                    conns.insert(conn, s);
                    shared.connected(conn);
                }
                ConnEvent::Failed(conn) => shared.connect_failed(conn),
                ConnEvent::Closed(conn) => {
                    conns.remove(&conn);
                    shared.disconnected(conn);
                }
            }
        }
        if shared.finished() {
            break;
        }
        if busy {
            continue;
        }
        match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    shared.timeout();
                } else {
                    std::thread::park_timeout(d - now);
                }
            }
            None => std::thread::park(),
        }
    }
    for (_, s) in conns {
        let _ = s.shutdown(Shutdown::Both);
    }
}
