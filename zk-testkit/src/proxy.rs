//! A fault-injecting TCP proxy for tests, on std threads: put it between a client and a server
//! and cut every connection at once ([`Proxy::cut_all`]), stop forwarding without closing
//! ([`Proxy::black_hole`]), or cut a connection after a number of server→client bytes
//! ([`Proxy::cut_after`]), or do that and then forward nothing more, a partition that starts in
//! the middle of the server's replies ([`Proxy::partition_after`]), or delay what the server
//! sends ([`Proxy::set_latency`]).
//!
//! For ZooKeeper's leader election port, [`Proxy::rewrite_election_address`] makes the
//! proxy rewrite the address a member advertises in its connection handshake, so the member
//! on the other side connects back through a proxy too.
//!
//! Each accepted connection gets its own upstream connection and two pump threads, one per
//! direction. A pump that read bytes while the proxy is black-holed holds them (reading nothing
//! more) until the black hole ends or the connection is cut. Dropping the proxy cuts everything
//! and joins every thread.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the accept loop and a held pump look at the flags.
const POLL: Duration = Duration::from_millis(5);
/// Timeout of the upstream connect for a new connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One proxied connection.
struct Conn {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    cut: AtomicBool,
}

impl Conn {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

struct State {
    upstream: SocketAddr,
    shutdown: AtomicBool,
    black_hole: AtomicBool,
    /// Server→client bytes left before the connection forwarding them is cut; `None`: unarmed.
    cut_budget: Mutex<Option<usize>>,
    /// The armed cut turns the black hole on as it happens.
    partition_on_cut: AtomicBool,
    conns: Mutex<Vec<Arc<Conn>>>,
    /// Server→client delay for connections opened from now on, in microseconds.
    latency_us: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// Election handshake rewrite: (advertised address, replacement).
    rewrite: Mutex<Option<(String, String)>>,
}

impl State {
    fn remove(&self, id: u64) {
        lock(&self.conns).retain(|c| c.id != id);
    }

    /// How many of `n` server→client bytes may be forwarded, and whether to cut afterwards.
    fn take_budget(&self, n: usize) -> (usize, bool) {
        let mut budget = lock(&self.cut_budget);
        match *budget {
            None => (n, false),
            Some(left) if n < left => {
                *budget = Some(left - n);
                (n, false)
            }
            Some(left) => {
                *budget = None;
                if self.partition_on_cut.swap(false, Ordering::SeqCst) {
                    // Before the cut, so that the reconnection finds the black hole.
                    self.black_hole.store(true, Ordering::SeqCst);
                }
                (left, true)
            }
        }
    }
}

/// A fault-injecting TCP proxy listening on `127.0.0.1` (see the module docs).
///
/// ```no_run
/// use std::time::Duration;
/// use zk_client::{ClientBuilder, SessionState};
/// use zk_testkit::{proxy::Proxy, shared_server};
///
/// let proxy = Proxy::start(shared_server().addr());
/// let zk = zk_blocking::connect(&ClientBuilder::new(&proxy.connect_string())).unwrap();
/// let mut states = zk.state_stream();
/// let mut next = || states.recv_timeout(Some(Duration::from_secs(10)));
/// assert_eq!(next(), Some(SessionState::Connected));
/// // A cut: the client sees the connection go and comes back on the same session.
/// proxy.cut_all();
/// assert_eq!(next(), Some(SessionState::Suspended));
/// assert_eq!(next(), Some(SessionState::Connected));
/// // A network partition: nothing moves, nothing is closed. Past the read timeout
/// // (2/3 of the session timeout without a reply) the client gives up on the connection.
/// proxy.black_hole(true);
/// assert_eq!(next(), Some(SessionState::Suspended));
/// proxy.black_hole(false);
/// ```
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("proxy: cannot bind 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("proxy: set_nonblocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: local_addr: {e}"));
        let state = Arc::new(State {
            upstream,
            shutdown: AtomicBool::new(false),
            black_hole: AtomicBool::new(false),
            cut_budget: Mutex::new(None),
            partition_on_cut: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            latency_us: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            rewrite: Mutex::new(None),
        });
        let st = state.clone();
        let accept = thread::Builder::new()
            .name("zk-proxy-accept".into())
            .spawn(move || accept_loop(listener, st))
            .unwrap_or_else(|e| panic!("proxy: spawn: {e}"));
        Proxy {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:port"`, for a connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Closes every current connection, both ways, at once. New connections are still accepted.
    pub fn cut_all(&self) {
        let conns: Vec<Arc<Conn>> = lock(&self.state.conns).drain(..).collect();
        for conn in conns {
            conn.cut();
        }
    }

    /// While on, nothing is forwarded in either direction and nothing is closed; new connections
    /// are accepted (and connected upstream) but nothing is forwarded on them either.
    pub fn black_hole(&self, on: bool) {
        self.state.black_hole.store(on, Ordering::SeqCst);
    }

    /// Whether the black hole is on (set by [`black_hole`](Proxy::black_hole), or by a
    /// [`partition_after`](Proxy::partition_after) that happened).
    pub fn is_black_holed(&self) -> bool {
        self.state.black_hole.load(Ordering::SeqCst)
    }

    /// Black hole off and [`cut_after`](Proxy::cut_after) disarmed.
    pub fn reset(&self) {
        self.black_hole(false);
        self.state.partition_on_cut.store(false, Ordering::SeqCst);
        *lock(&self.state.cut_budget) = None;
    }

    /// Arms a one-shot cut: once `bytes` more server→client bytes have been forwarded (counted
    /// over all connections), the connection that forwarded the last of them is cut right after
    /// them. `cut_after(0)` cuts the next connection that receives anything from the server.
    pub fn cut_after(&self, bytes: usize) {
        self.state.partition_on_cut.store(false, Ordering::SeqCst);
        *lock(&self.state.cut_budget) = Some(bytes);
    }

    /// Delays every server→client byte of the connections opened from now on by
    /// `latency` (each read from the server is forwarded `latency` after it was read,
    /// in order; bytes read meanwhile are not held back further): a server that far
    /// away, one way. `Duration::ZERO` forwards at once.
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.state.latency_us.store(us, Ordering::SeqCst);
    }

    /// [`cut_after`](Proxy::cut_after), and as the cut happens the
    /// [`black_hole`](Proxy::black_hole) goes on: a partition that starts in the middle of the
    /// server's replies (requests outstanding), during which reconnections find nothing that
    /// answers. `black_hole(false)` ends it.
    pub fn partition_after(&self, bytes: usize) {
        let mut budget = lock(&self.state.cut_budget);
        self.state.partition_on_cut.store(true, Ordering::SeqCst);
        *budget = Some(bytes);
    }

    /// For a proxy in front of a ZooKeeper member's election port: in the handshake that opens
    /// each connection (ZooKeeper's `InitialMessage`: protocol version, server id, then the
    /// connecting member's own election address), the address `from` is replaced by `to`.
    /// A member that receives a connection from a member with a lower id drops it and
    /// connects back to the address advertised there; rewritten to a proxy's, that
    /// connection goes through a proxy as well, so cutting the proxies cuts the election.
    /// Anything else passes unchanged.
    pub fn rewrite_election_address(&self, from: &str, to: &str) {
        *lock(&self.state.rewrite) = Some((from.to_string(), to.to_string()));
    }

    /// Number of open proxied connections.
    pub fn connections(&self) -> usize {
        lock(&self.state.conns).len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.cut_all();
        let threads: Vec<JoinHandle<()>> = lock(&self.state.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    while !state.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if let Err(e) = open(client, &state) {
                    eprintln!("proxy: connection not opened: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("proxy: accept: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

/// Connects upstream and starts both pumps; on failure the client connection is closed.
fn open(client: TcpStream, state: &Arc<State>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&state.upstream, UPSTREAM_CONNECT_TIMEOUT)?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let conn = Arc::new(Conn {
        id: state.next_id.fetch_add(1, Ordering::Relaxed),
        client: client.try_clone()?,
        server: server.try_clone()?,
        cut: AtomicBool::new(false),
    });
    let (c2s_from, c2s_to) = (client.try_clone()?, server.try_clone()?);
    let (s2c_from, s2c_to) = (server, client);
    lock(&state.conns).push(conn.clone());
    let mut threads = lock(&state.threads);
    threads.retain(|t| !t.is_finished());
    let latency = Duration::from_micros(state.latency_us.load(Ordering::SeqCst));
    for (from, to, to_client) in [(c2s_from, c2s_to, false), (s2c_from, s2c_to, true)] {
        let (st, c) = (state.clone(), conn.clone());
        let out = if to_client && !latency.is_zero() {
            let (tx, rx) = mpsc::channel();
            let (st, c) = (state.clone(), conn.clone());
            threads.push(
                thread::Builder::new()
                    .name("zk-proxy-delay".into())
                    .spawn(move || delayed_writer(rx, to, &st, &c))?,
            );
            Out::Delayed(tx, latency)
        } else {
            Out::Now(to)
        };
        threads.push(
            thread::Builder::new()
                .name("zk-proxy-pump".into())
                .spawn(move || pump(from, out, to_client, &st, &c))?,
        );
    }
    Ok(())
}

/// Where a pump's bytes go: straight out, or to a delaying writer.
enum Out {
    Now(TcpStream),
    /// Chunks with the instant they are due; `true` cuts after the chunk.
    Delayed(mpsc::Sender<(Instant, Vec<u8>, bool)>, Duration),
}

/// Writes each chunk when it is due, in order, until the pump ends or a write fails.
fn delayed_writer(
    rx: mpsc::Receiver<(Instant, Vec<u8>, bool)>,
    mut to: TcpStream,
    state: &State,
    conn: &Conn,
) {
    let stopped = || conn.cut.load(Ordering::SeqCst) || state.shutdown.load(Ordering::SeqCst);
    while let Ok((due, data, cut)) = rx.recv() {
        while !stopped() {
            let now = Instant::now();
            if now >= due {
                break;
            }
            thread::sleep((due - now).min(POLL));
        }
        if stopped() || to.write_all(&data).is_err() || cut {
            break;
        }
    }
    conn.cut();
    state.remove(conn.id);
}

/// Copies `from` to `to` until either end closes or the connection is cut; then cuts it.
fn pump(mut from: TcpStream, mut out: Out, to_client: bool, state: &State, conn: &Conn) {
    let mut buf = vec![0u8; 16 * 1024];
    let stopped = || conn.cut.load(Ordering::SeqCst) || state.shutdown.load(Ordering::SeqCst);
    let rewrite = if to_client {
        None
    } else {
        lock(&state.rewrite).clone()
    };
    if let Some((old, new)) = rewrite {
        match read_handshake(&mut from) {
            Some(head) => {
                let head = rewrite_handshake(&head, &old, &new).unwrap_or(head);
                while state.black_hole.load(Ordering::SeqCst) && !stopped() {
                    thread::sleep(POLL);
                }
                let sent = match &mut out {
                    Out::Now(to) => to.write_all(&head).is_ok(),
                    Out::Delayed(tx, latency) => {
                        tx.send((Instant::now() + *latency, head, false)).is_ok()
                    }
                };
                if stopped() || !sent {
                    conn.cut();
                    state.remove(conn.id);
                    return;
                }
            }
            None => {
                conn.cut();
                state.remove(conn.id);
                return;
            }
        }
    }
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        while state.black_hole.load(Ordering::SeqCst) && !stopped() {
            thread::sleep(POLL);
        }
        if stopped() {
            break;
        }
        let (n, cut) = if to_client {
            state.take_budget(n)
        } else {
            (n, false)
        };
        match &mut out {
            Out::Now(to) => {
                if to.write_all(&buf[..n]).is_err() || cut {
                    break;
                }
            }
            Out::Delayed(tx, latency) => {
                if tx
                    .send((Instant::now() + *latency, buf[..n].to_vec(), cut))
                    .is_err()
                    || cut
                {
                    // The delaying writer cuts once it has written what it holds.
                    return;
                }
            }
        }
    }
    if let Out::Delayed(..) = out {
        // The end of the stream goes out after the bytes still delayed.
        drop(out);
        return;
    }
    conn.cut();
    state.remove(conn.id);
}

/// ZooKeeper's election protocol versions that carry an address (`QuorumCnxManager`'s
/// `PROTOCOL_VERSION_V1` and `_V2`).
const ELECTION_PROTOCOLS: [i64; 2] = [-65536, -65535];
/// A handshake longer than this is not one.
const MAX_HANDSHAKE: usize = 4096;

/// Reads a connection's first bytes: a whole election handshake (version, id, length,
/// address) if it starts like one, else whatever the first read gave. `None` at EOF or error.
fn read_handshake(from: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let want = match handshake_len(&head) {
            Ok(Some(total)) => total,
            Ok(None) => 20,
            Err(()) => return Some(head),
        };
        if head.len() >= want {
            return Some(head);
        }
        match from.read(&mut buf) {
            Ok(0) => return (!head.is_empty()).then_some(head),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The length of the election handshake at the start of `head`: `Ok(None)` while its fixed
/// part is incomplete, `Err` if it is not one.
fn handshake_len(head: &[u8]) -> Result<Option<usize>, ()> {
    if head.len() < 20 {
        // Give up early on anything that cannot be a handshake.
        if head.len() >= 8 {
            let version = i64::from_be_bytes(head[..8].try_into().map_err(|_| ())?);
            if !ELECTION_PROTOCOLS.contains(&version) {
                return Err(());
            }
        }
        return Ok(None);
    }
    let version = i64::from_be_bytes(head[..8].try_into().map_err(|_| ())?);
    let len = i32::from_be_bytes(head[16..20].try_into().map_err(|_| ())?);
    if !ELECTION_PROTOCOLS.contains(&version) || len < 0 || len as usize > MAX_HANDSHAKE {
        return Err(());
    }
    Ok(Some(20 + len as usize))
}

/// `head` with the advertised address `old` replaced by `new` (the length field fixed), if
/// it is a handshake advertising `old`; any bytes after the handshake are kept.
fn rewrite_handshake(head: &[u8], old: &str, new: &str) -> Option<Vec<u8>> {
    let total = handshake_len(head).ok()??;
    let addr = std::str::from_utf8(head.get(20..total)?).ok()?;
    // V2 may list several addresses separated by `|`.
    let rewritten: Vec<&str> = addr
        .split('|')
        .map(|a| if a == old { new } else { a })
        .collect();
    let rewritten = rewritten.join("|");
    if rewritten == addr {
        return None;
    }
    let mut out = head[..16].to_vec();
    out.extend_from_slice(&(rewritten.len() as i32).to_be_bytes());
    out.extend_from_slice(rewritten.as_bytes());
    out.extend_from_slice(&head[total..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(addr: &str, tail: &[u8]) -> Vec<u8> {
        let mut v = (-65535i64).to_be_bytes().to_vec();
        v.extend_from_slice(&3i64.to_be_bytes());
        v.extend_from_slice(&(addr.len() as i32).to_be_bytes());
        v.extend_from_slice(addr.as_bytes());
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn the_advertised_election_address_is_rewritten() {
        let head = handshake("127.0.0.1:40001", b"rest");
        assert_eq!(handshake_len(&head), Ok(Some(20 + 15)));
        assert_eq!(handshake_len(&head[..10]), Ok(None));
        let out = rewrite_handshake(&head, "127.0.0.1:40001", "127.0.0.1:5001").unwrap();
        assert_eq!(out, handshake("127.0.0.1:5001", b"rest"));
        // Another address, or not a handshake at all: unchanged.
        assert_eq!(rewrite_handshake(&head, "127.0.0.1:40002", "x"), None);
        assert_eq!(handshake_len(b"GET / HTTP/1.1\r\n"), Err(()));
    }
}
