//! zk-proto's simulated ensemble behind an in-memory transport for zk-tokio, so
//! a test runs the whole client stack (core, driver, reader and writer tasks)
//! against it on tokio's paused clock: an idle hour or a thousand reconnects take
//! milliseconds, and a stalled peer is a flag, not a slow real socket.
//!
//! Hosts are named `m0:1`, `m1:1`, ... for members 0, 1, ... Each connection is a
//! `tokio::io::duplex` pipe with a small buffer, so a server that stops reading
//! really does block the client's writes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use zk_proto::testing::server::SimCluster;

use crate::simcore::{Conn, Core};
use zk_tokio::{ConnectFuture, Connector, HostAddr, Stream};

/// Bytes each pipe buffers per direction: small, so a stalled reader is felt soon.
const PIPE: usize = 16 * 1024;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

struct Pipe {
    member: usize,
    tx: mpsc::UnboundedSender<Bytes>,
    reader: JoinHandle<()>,
    /// The server side stops reading this connection (the client's writes back up).
    stalled: Arc<Notify>,
    stall: Arc<std::sync::atomic::AtomicBool>,
}

impl Conn for Pipe {
    fn member(&self) -> usize {
        self.member
    }
    fn deliver(&self, bytes: Bytes) {
        let _ = self.tx.send(bytes);
    }
    fn close(self) {
        self.reader.abort();
        // Dropping the sender ends the writer task, which drops the pipe's write side.
    }
}

type State = Core<Pipe>;

/// A simulated ensemble reachable through [`SimNet::connector`].
///
/// It needs no ZooKeeper installed, so this example runs (on tokio's paused clock: the hour
/// below passes at once):
///
/// ```
/// use std::time::Duration;
/// use zk_testkit::simnet::SimNet;
/// use zk_tokio::{ClientBuilder, CreateMode, SessionState};
///
/// #[tokio::main(flavor = "current_thread", start_paused = true)]
/// async fn main() {
///     let net = SimNet::new(3);
///     let builder = ClientBuilder::new(&net.connect_string("/app"))
///         .session_timeout(Duration::from_secs(10));
///     let zk = zk_tokio::connect_with(&builder, net.connector()).await.unwrap();
///     let id = zk.session().unwrap().id;
///     zk.ensure_path("/").await.unwrap(); // the chroot /app
///     zk.create("/me", "", CreateMode::Ephemeral).await.unwrap();
///
///     // An idle hour: pings keep the session.
///     tokio::time::sleep(Duration::from_secs(3600)).await;
///     assert_eq!(zk.state(), SessionState::Connected);
///
///     // Every connection cut: the client reconnects on the same session.
///     let mut states = zk.state_stream();
///     net.cut_all();
///     states.wait_for(|s| s == SessionState::Suspended).await;
///     states.wait_for(|s| s.is_connected()).await;
///     assert_eq!(zk.session().unwrap().id, id);
///     assert!(zk.exists("/me").await.unwrap().is_some());
///     zk.close().await.unwrap();
/// }
/// ```
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<State>>,
    timer: Arc<Notify>,
}

impl SimNet {
    /// An ensemble of `members` servers, all up. Must be called inside a tokio runtime.
    pub fn new(members: usize) -> SimNet {
        let net = SimNet {
            state: Arc::new(Mutex::new(Core::new(members, now()))),
            timer: Arc::new(Notify::new()),
        };
        let n = net.clone();
        tokio::spawn(async move {
            loop {
                let deadline = n.lock().cluster.poll_timeout();
                match deadline {
                    Some(d) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(d.into()) => {}
                            _ = n.timer.notified() => continue,
                        }
                    }
                    None => {
                        n.timer.notified().await;
                        continue;
                    }
                }
                let mut g = n.lock();
                g.cluster.handle_timeout(now());
                g.flush();
            }
        });
        net
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connect string for all members (`/chroot` appended if given).
    pub fn connect_string(&self, chroot: &str) -> String {
        self.lock().connect_string(chroot)
    }

    /// The transport for `zk_tokio::connect_with`.
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(SimConnector { net: self.clone() })
    }

    /// Runs `f` on the simulated cluster (inspect it, or inject a fault), then
    /// delivers whatever it made the servers send.
    pub fn with<R>(&self, f: impl FnOnce(&mut SimCluster) -> R) -> R {
        let mut g = self.lock();
        let now = now();
        let r = f(&mut g.cluster);
        g.cluster.handle_timeout(now);
        g.flush();
        drop(g);
        self.timer.notify_one();
        r
    }

    /// Closes every connection of member `m` from the server side; returns how many.
    pub fn cut_member(&self, m: usize) -> usize {
        self.cut(Some(m))
    }

    /// Closes every connection; returns how many.
    pub fn cut_all(&self) -> usize {
        self.cut(None)
    }

    fn cut(&self, m: Option<usize>) -> usize {
        let conns = self.lock().conns_of(m);
        for c in &conns {
            self.with(|s| s.close_connection(*c));
        }
        conns.len()
    }

    /// Makes the server side stop (or resume) reading every connection to member
    /// `m`: the client's writes fill the pipe and then block.
    pub fn stall_member(&self, m: usize, stalled: bool) {
        for p in self.lock().conns.values().filter(|p| p.member == m) {
            p.stall.store(stalled, std::sync::atomic::Ordering::SeqCst);
            if !stalled {
                p.stalled.notify_one();
            }
        }
    }

    /// Refuse (or accept again) new connections to member `m`.
    pub fn refuse(&self, m: usize, on: bool) {
        self.lock().set_refuse(m, on);
    }

    /// Connections open on the server side now.
    pub fn open_connections(&self) -> usize {
        self.lock().open()
    }

    /// Connection attempts refused so far (member down or refusing).
    pub fn refused(&self) -> usize {
        self.lock().refused()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.lock().accepted()
    }
}

struct SimConnector {
    net: SimNet,
}

impl Connector for SimConnector {
    fn connect(&self, host: HostAddr) -> ConnectFuture {
        let net = self.net.clone();
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(PIPE);
            let (mut rd, mut wr) = tokio::io::split(server);
            let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
            let stall = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stalled = Arc::new(Notify::new());
            let mut g = net.lock();
            let (conn, member) = g.admit(&host, now())?;
            tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                let _ = wr.shutdown().await;
            });
            let n2 = net.clone();
            let (stall2, stalled2) = (stall.clone(), stalled.clone());
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    while stall2.load(std::sync::atomic::Ordering::SeqCst) {
                        stalled2.notified().await;
                    }
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            let mut g = n2.lock();
                            g.cluster.handle_input(conn, &buf[..k], now());
                            g.flush();
                            drop(g);
                            n2.timer.notify_one();
                        }
                    }
                }
                let mut g = n2.lock();
                g.cluster.handle_closed(conn, now());
                g.conns.remove(&conn);
                g.flush();
            });
            g.insert(
                conn,
                Pipe {
                    member,
                    tx,
                    reader,
                    stalled,
                    stall,
                },
            );
            drop(g);
            Ok(Box::new(client) as Box<dyn Stream>)
        })
    }
}

/// The pipe type, for tests that want to name it.
pub type SimStream = DuplexStream;
