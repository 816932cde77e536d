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
#![warn(missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smol::Task;
use zk_proto::{Action, ConnId};

pub use zk_client::*;

/// Connects and waits (up to the builder's connect deadline) for a session.
/// The I/O runs on a task spawned on smol's global executor.
pub async fn connect(builder: &ClientBuilder) -> Result<Client> {
    let (client, shared) = builder.build()?;
    smol::spawn(drive(shared)).detach();
    let deadline = builder.connect_deadline;
    future::or(client.wait_connected(), async {
        Timer::after(deadline).await;
        Err(Error::Timeout)
    })
    .await
    .map(|()| client)
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
    future::or(
        async { io.await.map_err(|e| Error::Io(e.to_string())) },
        async {
            Timer::after(timeout).await;
            Err(Error::Timeout)
        },
    )
    .await
}

/// The version of the server the client is on (from `srvr`).
pub async fn server_version(client: &Client) -> Result<(u32, u32, u32)> {
    let host = client.current_host().ok_or(Error::NotConnected)?;
    let text = four_letter_word(&host, "srvr", Duration::from_secs(5)).await?;
    fourlw::version_of_srvr(text)
}

/// Runs `op` under a retry policy, sleeping with async-io's timer.
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

enum Wake {
    Io,
    Timer,
    Conn(ConnId, Option<TcpStream>),
}

struct Conn {
    stream: TcpStream,
    _reader: Task<()>,
}

async fn drive(shared: Arc<Shared>) {
    let (ev_tx, ev_rx) = smol::channel::unbounded();
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut pending: HashMap<ConnId, Task<()>> = HashMap::new();
    let mut io = Vec::new();
    // One timer, re-armed only when the deadline moves: a new timer per loop costs
    // reactor registrations on every request.
    let mut timer = Timer::never();
    let mut armed: Option<std::time::Instant> = None;
    loop {
        let deadline = shared.take_io(&mut io, None);
        for item in io.drain(..) {
            match item {
                Io::Connect(Action::Connect { conn, host }) => {
                    let tx = ev_tx.clone();
                    let task = smol::spawn(async move {
                        let s = TcpStream::connect((host.host.as_str(), host.port))
                            .await
                            .ok();
                        let _ = tx.send((conn, s)).await;
                    });
                    pending.insert(conn, task);
                }
                Io::Connect(_) => {}
                Io::Disconnect(conn) => {
                    pending.remove(&conn);
                    if let Some(c) = conns.remove(&conn) {
                        let _ = c.stream.shutdown(std::net::Shutdown::Both);
                    }
                }
                Io::Write(t) => {
                    if let Some(c) = conns.get_mut(&t.conn) {
                        if c.stream.write_all(&t.data).await.is_err() {
                            conns.remove(&t.conn);
                            shared.disconnected(t.conn);
                        }
                    }
                }
            }
        }
        if shared.finished() {
            break;
        }
        if deadline != armed {
            match deadline {
                Some(d) => timer.set_at(d),
                None => timer = Timer::never(),
            }
            armed = deadline;
        }
        let timer_fut = async {
            (&mut timer).await;
            Wake::Timer
        };
        let conn_ev = async {
            match ev_rx.recv().await {
                Ok((c, s)) => Wake::Conn(c, s),
                Err(_) => future::pending().await,
            }
        };
        let ready = async {
            shared.io_ready(&mut io).await;
            Wake::Io
        };
        match future::or(ready, future::or(timer_fut, conn_ev)).await {
            Wake::Io => {}
            Wake::Timer => {
                armed = None;
                shared.timeout()
            }
            Wake::Conn(conn, None) => {
                pending.remove(&conn);
                shared.connect_failed(conn);
            }
            Wake::Conn(conn, Some(stream)) => {
                pending.remove(&conn);
                let _ = stream.set_nodelay(true);
                let mut rd = stream.clone();
                let sh = shared.clone();
                let reader = smol::spawn(async move {
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
                conns.insert(
                    conn,
                    Conn {
                        stream,
                        _reader: reader,
                    },
                );
                shared.connected(conn);
            }
        }
    }
}
