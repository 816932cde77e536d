//! zk-proto's simulated ensemble on plain threads, for zk-smol and zk-blocking
//! (and any other runtime): no JVM, no tokio. Each connection is a Unix socket
//! pair, an in-memory kernel pipe with a bounded buffer, so a server that stops
//! reading really does block the client's writes; its server side is pumped by
//! two threads, and one more thread runs the ensemble's timers.
//!
//! Unlike [`SimNet`](crate::simnet::SimNet), which runs on tokio's paused clock,
//! this one runs on real time: a session timeout of 2 s takes 2 s. Unix only.
//!
//! Hosts are named `m0:1`, `m1:1`, ... for members 0, 1, ...
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_testkit::simstd::SimEnsemble;
//!
//! let net = SimEnsemble::new(3);
//! let b = zk_client::ClientBuilder::new(&net.connect_string("/app"));
//! let zk = zk_blocking::connect_with(&b, net.blocking_connector(),
//!     std::sync::Arc::new(zk_client::SystemClock)).unwrap();
//! zk.ensure_path("/config").unwrap();
//! net.cut_all(); // every connection closed by the servers: the session carries on
//! assert!(zk.exists("/config").unwrap().is_some());
//! ```

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::testing::server::SimCluster;
use zk_proto::HostAddr;

use crate::simcore::{Conn, Core};

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

struct Pipe {
    member: usize,
    /// The server side of the socket pair (shut down to close the connection).
    sock: UnixStream,
    tx: mpsc::Sender<Bytes>,
    /// The server side stops reading this connection.
    stall: Arc<Gate>,
}

/// A flag a reader thread waits on while it is set.
#[derive(Default)]
struct Gate {
    stalled: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn set(&self, on: bool) {
        *self.stalled.lock().unwrap_or_else(|p| p.into_inner()) = on;
        self.cond.notify_all();
    }
    fn wait_open(&self) {
        let mut g = self.stalled.lock().unwrap_or_else(|p| p.into_inner());
        while *g {
            g = self.cond.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Conn for Pipe {
    fn member(&self) -> usize {
        self.member
    }
    fn deliver(&self, bytes: Bytes) {
        let _ = self.tx.send(bytes);
    }
    fn close(self) {
        // The reader's read returns; the writer ends with its channel.
        let _ = self.sock.shutdown(Shutdown::Both);
        self.stall.set(false);
    }
}

struct State {
    core: Core<Pipe>,
    /// Set when the last handle drops: the timer thread ends.
    done: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the timer thread: the next deadline may have moved.
    timer: Condvar,
}

/// A simulated ensemble reachable through [`SimEnsemble::blocking_connector`]
/// and [`SimEnsemble::smol_connector`]. Cloning shares it; the servers' threads
/// end when the last clone drops.
pub struct SimEnsemble {
    inner: Arc<Inner>,
    /// Counts the user's handles (the threads hold `inner` only).
    _owner: Arc<Owner>,
}

impl Clone for SimEnsemble {
    fn clone(&self) -> Self {
        SimEnsemble {
            inner: self.inner.clone(),
            _owner: self._owner.clone(),
        }
    }
}

struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        let mut g = lock(&self.0);
        g.done = true;
        for (_, p) in g.core.conns.drain() {
            p.close();
        }
        drop(g);
        self.0.timer.notify_all();
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    inner.state.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimEnsemble {
    /// An ensemble of `members` servers, all up.
    pub fn new(members: usize) -> SimEnsemble {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                core: Core::new(members, now()),
                done: false,
            }),
            timer: Condvar::new(),
        });
        let t = inner.clone();
        thread::Builder::new()
            .name("zk-sim-timer".into())
            .spawn(move || timer_loop(&t))
            .expect("spawn the simulator's timer thread");
        SimEnsemble {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
        }
    }

    /// The connect string for all members (`/chroot` appended if given).
    pub fn connect_string(&self, chroot: &str) -> String {
        lock(&self.inner).core.connect_string(chroot)
    }

    /// The transport for `zk_blocking::connect_with`.
    pub fn blocking_connector(&self) -> Arc<dyn zk_blocking::Connector> {
        Arc::new(BlockingSim {
            inner: self.inner.clone(),
        })
    }

    /// The transport for `zk_smol::connect_with`.
    pub fn smol_connector(&self) -> Arc<dyn zk_smol::Connector> {
        Arc::new(SmolSim {
            inner: self.inner.clone(),
        })
    }

    /// Runs `f` on the simulated cluster (inspect it, or inject a fault: stop a
    /// member, expire a session, write as another client), then delivers whatever
    /// it made the servers send.
    pub fn with<R>(&self, f: impl FnOnce(&mut SimCluster) -> R) -> R {
        let mut g = lock(&self.inner);
        let now = now();
        let r = f(&mut g.core.cluster);
        g.core.cluster.handle_timeout(now);
        g.core.flush();
        drop(g);
        self.inner.timer.notify_all();
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
        let conns = lock(&self.inner).core.conns_of(m);
        for c in &conns {
            self.with(|s| s.close_connection(*c));
        }
        conns.len()
    }

    /// Makes the server side stop (or resume) reading every connection to member
    /// `m`: the client's writes fill the socket buffer and then block.
    pub fn stall_member(&self, m: usize, stalled: bool) {
        for p in lock(&self.inner)
            .core
            .conns
            .values()
            .filter(|p| p.member == m)
        {
            p.stall.set(stalled);
        }
    }

    /// Refuse (or accept again) new connections to member `m`.
    pub fn refuse(&self, m: usize, on: bool) {
        lock(&self.inner).core.set_refuse(m, on);
    }

    /// Connections open on the server side now.
    pub fn open_connections(&self) -> usize {
        lock(&self.inner).core.open()
    }

    /// Connection attempts refused so far (member down or refusing).
    pub fn refused(&self) -> usize {
        lock(&self.inner).core.refused()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        lock(&self.inner).core.accepted()
    }
}

fn timer_loop(inner: &Inner) {
    let mut g = lock(inner);
    while !g.done {
        let now = now();
        g.core.cluster.handle_timeout(now);
        g.core.flush();
        // Sleep until the next deadline, or until a handle moves it.
        let wait = g
            .core
            .cluster
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(now)
            });
        g = inner
            .timer
            .wait_timeout(g, wait.max(Duration::from_millis(1)))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Accepts a connection to `host` and starts its server-side threads; returns
/// the client's end of the socket pair.
fn open(inner: &Arc<Inner>, host: &HostAddr) -> std::io::Result<UnixStream> {
    let (client, server) = UnixStream::pair()?;
    let mut g = lock(inner);
    if g.done {
        return Err(std::io::ErrorKind::ConnectionRefused.into());
    }
    let (conn, member) = g.core.admit(host, now())?;
    let (tx, rx) = mpsc::channel::<Bytes>();
    let stall = Arc::new(Gate::default());
    let mut wr = server.try_clone()?;
    let mut rd = server.try_clone()?;
    thread::Builder::new()
        .name("zk-sim-write".into())
        .spawn(move || {
            for b in rx {
                if wr.write_all(&b).is_err() {
                    break;
                }
            }
            let _ = wr.shutdown(Shutdown::Write);
        })?;
    let (i2, gate) = (inner.clone(), stall.clone());
    thread::Builder::new()
        .name("zk-sim-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                gate.wait_open();
                match rd.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        let mut g = lock(&i2);
                        if !g.core.conns.contains_key(&conn) {
                            return;
                        }
                        g.core.cluster.handle_input(conn, &buf[..k], now());
                        g.core.flush();
                        drop(g);
                        i2.timer.notify_all();
                    }
                }
            }
            let mut g = lock(&i2);
            // Closed by the client (the server's own closes removed the pipe first).
            if g.core.conns.remove(&conn).is_some() {
                g.core.cluster.handle_closed(conn, now());
                g.core.flush();
            }
        })?;
    g.core.insert(
        conn,
        Pipe {
            member,
            sock: server,
            tx,
            stall,
        },
    );
    Ok(client)
}

struct BlockingSim {
    inner: Arc<Inner>,
}

impl zk_blocking::Connector for BlockingSim {
    fn connect(
        &self,
        host: &HostAddr,
        _timeout: Duration,
    ) -> std::io::Result<Box<dyn zk_blocking::Transport>> {
        Ok(Box::new(SimSocket(open(&self.inner, host)?)))
    }
}

/// The client's end, as zk-blocking's transport.
struct SimSocket(UnixStream);

impl Read for SimSocket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for SimSocket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl zk_blocking::Transport for SimSocket {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn zk_blocking::Transport>> {
        Ok(Box::new(SimSocket(self.0.try_clone()?)))
    }
    fn shutdown(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

struct SmolSim {
    inner: Arc<Inner>,
}

impl zk_smol::Connector for SmolSim {
    fn connect(&self, host: HostAddr) -> zk_smol::ConnectFuture {
        let r = open(&self.inner, &host).and_then(async_io::Async::new);
        Box::pin(async move { r.map(|s| Box::new(s) as Box<dyn zk_smol::Stream>) })
    }
}
