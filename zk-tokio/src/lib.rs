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
#![warn(missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zk_proto::{Action, ConnId};

pub use zk_client::*;

/// A byte stream to a server: plain TCP, or TLS from a connector of your own.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

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

/// Connects and waits (up to the builder's connect deadline) for a session.
/// Must be called within a tokio runtime; the I/O runs on a spawned task.
pub async fn connect(builder: &ClientBuilder) -> Result<Client> {
    connect_with(builder, Arc::new(TcpConnector)).await
}

/// [`connect`] over a transport of your own (TLS, a proxy, an in-memory pipe).
pub async fn connect_with(
    builder: &ClientBuilder,
    connector: Arc<dyn Connector>,
) -> Result<Client> {
    let (client, shared) = builder.build()?;
    tokio::spawn(drive(shared, connector));
    match tokio::time::timeout(builder.connect_deadline, client.wait_connected()).await {
        Ok(r) => r.map(|()| client),
        Err(_) => Err(Error::Timeout),
    }
}

/// Runs a four-letter word (`ruok`, `srvr`, `mntr`, ...) against one server; returns its text.
pub async fn four_letter_word(host: &HostAddr, cmd: &str, timeout: Duration) -> Result<String> {
    if !fourlw::valid_command(cmd) {
        return Err(Error::InvalidArgument(format!(
            "not a four-letter word: {cmd:?}"
        )));
    }
    let io = async {
        let mut s = TcpStream::connect((host.host.as_str(), host.port)).await?;
        s.write_all(cmd.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(timeout, io).await {
        Ok(r) => r.map_err(|e| Error::Io(e.to_string())),
        Err(_) => Err(Error::Timeout),
    }
}

/// The version of the server the client is on (from `srvr`).
pub async fn server_version(client: &Client) -> Result<(u32, u32, u32)> {
    let host = client.current_host().ok_or(Error::NotConnected)?;
    let text = four_letter_word(&host, "srvr", Duration::from_secs(5)).await?;
    fourlw::version_of_srvr(text)
}

/// Runs `op` under a retry policy, sleeping with tokio's timer.
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

enum ConnEvent {
    Up(ConnId, Box<dyn Stream>),
    Failed(ConnId),
}

struct Conn {
    writer: WriteHalf<Box<dyn Stream>>,
    reader: JoinHandle<()>,
}

async fn drive(shared: Arc<Shared>, connector: Arc<dyn Connector>) {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut pending: HashMap<ConnId, JoinHandle<()>> = HashMap::new();
    let mut io = Vec::new();
    loop {
        let deadline = shared.take_io(&mut io, None);
        for item in io.drain(..) {
            match item {
                Io::Connect(Action::Connect { conn, host }) => {
                    let tx = ev_tx.clone();
                    let connecting = connector.connect(host);
                    pending.insert(
                        conn,
                        tokio::spawn(async move {
                            let ev = match connecting.await {
                                Ok(s) => ConnEvent::Up(conn, s),
                                Err(_) => ConnEvent::Failed(conn),
                            };
                            let _ = tx.send(ev);
                        }),
                    );
                }
                Io::Connect(_) => {}
                Io::Disconnect(conn) => {
                    if let Some(t) = pending.remove(&conn) {
                        t.abort();
                    }
                    if let Some(c) = conns.remove(&conn) {
                        c.reader.abort();
                    }
                }
                Io::Write(t) => {
                    if let Some(c) = conns.get_mut(&t.conn) {
                        if c.writer.write_all(&t.data).await.is_err() {
                            if let Some(c) = conns.remove(&t.conn) {
                                c.reader.abort();
                            }
                            shared.disconnected(t.conn);
                        }
                    }
                }
            }
        }
        if shared.finished() {
            break;
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.io_ready(&mut io) => {}
            _ = sleep => shared.timeout(),
            Some(ev) = ev_rx.recv() => match ev {
                ConnEvent::Up(conn, stream) => {
                    pending.remove(&conn);
                    let (mut rd, writer) = tokio::io::split(stream);
                    let sh = shared.clone();
                    let reader = tokio::spawn(async move {
                        let mut buf = ReadBuf::default();
                        loop {
                            match rd.read(buf.space()).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    sh.input(conn, &buf.space()[..n]);
                                    buf.after_read(n);
                                }
                            }
                        }
                        sh.disconnected(conn);
                    });
                    conns.insert(conn, Conn { writer, reader });
                    shared.connected(conn);
                }
                ConnEvent::Failed(conn) => {
                    pending.remove(&conn);
                    shared.connect_failed(conn);
                }
            },
        }
    }
    for (_, c) in conns {
        c.reader.abort();
    }
}
