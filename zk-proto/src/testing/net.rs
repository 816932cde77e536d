//! A simulated network and fake clock, [`SimNet`], that drives client
//! [`Session`]s against a [`SimCluster`].
//!
//! The net plays the adapter for every session, following the polling contract in
//! [`crate::session`] to the letter: after every input or command it drains
//! `poll_action`, `poll_transmit` and `poll_event` until all are empty, then reads
//! `poll_timeout`; it calls `handle_timeout` when that instant is reached. Time
//! only moves in [`SimNet::step`], to the earliest of every session's and the
//! cluster's `poll_timeout` and the next in-flight delivery.
//!
//! # Hosts
//!
//! A host named `mN` (any port) is member N of the cluster; see [`sim_hosts`]. Any
//! other name fails to connect (like a DNS failure).
//!
//! # The wire
//!
//! Each connection is a pair of FIFO byte pipes with a per-direction latency
//! (plus optional seeded jitter, never reordering a pipe). A connect takes one
//! trip to the server (accepted or refused there) and one back. Optionally, every
//! delivery is split into seeded random chunks. All randomness comes from the seed.
//!
//! # Faults
//!
//! * [`SimNet::cut`]: from now on deliver only the next `k` bytes in one direction,
//!   then close both sides (the client sees `handle_disconnected`, the server
//!   `handle_closed`). `SimNet::reset` does it at once.
//! * [`SimNet::partition`]: connects to the member hang (neither connected nor
//!   refused: the client's connect timeout decides); established connections are
//!   black-holed: nothing delivered either way, nothing closed. A black-holed
//!   connection stays dead after [`SimNet::heal`]; new connections work again.
//! * [`SimNet::stop_member`] / [`SimNet::start_member`]: a server restart; its
//!   connections close (FIN), connects are refused while it is down.
//!
//! # Checks
//!
//! Contract breaches seen while driving (a `poll_timeout` in the past after a
//! drain, bytes written on a connection that is not open, a reused `ConnId`, no
//! progress at one instant) are recorded in [`SimNet::violations`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{Config, HostAddr};
use crate::error::{UsageError, ZkError};
use crate::frame::FrameDecoder;
use crate::hosts::Rng;
use crate::jute::{Decode, Reader};
use crate::ops::{Request, Response};
use crate::records::ConnectRequest;
use crate::session::{
    Action, ConnId, Event, RequestId, Session, SessionState, Submitted, WatchedEvent,
};
use crate::testing::server::{SimCluster, SimConnId};
use crate::time::later;
use crate::types::OpCode;
use crate::watches::WatcherId;

/// Steps allowed at one instant before the net reports a livelock.
const SAME_INSTANT_LIMIT: u32 = 10_000;

/// Host addresses `m{i}:2181` for the given members.
pub fn sim_hosts(members: &[usize]) -> Vec<HostAddr> {
    members
        .iter()
        .map(|m| HostAddr {
            host: format!("m{m}"),
            port: 2181,
        })
        .collect()
}

/// The member a host name designates (`m3` → 3).
pub fn member_of(host: &HostAddr) -> Option<usize> {
    host.host.strip_prefix('m')?.parse().ok()
}

/// A direction on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
}

/// What a client wrote, frame by frame (see [`SimNet::client_frames`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// The handshake.
    Connect(ConnectRequest),
    /// A request: header fields and the raw body.
    Request {
        /// The xid.
        xid: i32,
        /// The opcode.
        op: OpCode,
        /// The body after the header.
        body: Bytes,
    },
    /// A four-letter word on a fresh connection.
    FourLetter(String),
    /// Bytes that do not frame (a truncated tail).
    Garbage(Bytes),
}

/// One client session and everything it reported.
#[derive(Debug)]
pub struct SimClient {
    /// The state machine under test.
    pub session: Session,
    /// Every event it emitted, with the time it was polled.
    pub events: Vec<(Instant, Event)>,
    /// Every transmit it made: time, connection, bytes.
    pub sent: Vec<(Instant, ConnId, Bytes)>,
    /// Every connection it asked for: time, connection, host.
    pub connects: Vec<(Instant, ConnId, HostAddr)>,
}

impl SimClient {
    /// The outcome of a request, if it completed.
    pub fn completion(&self, id: RequestId) -> Option<&Result<Response, ZkError>> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::Completed { id: i, result } if *i == id => Some(result),
            _ => None,
        })
    }

    /// How many times a request completed.
    pub fn completions(&self, id: RequestId) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Completed { id: i, .. } if *i == id))
            .count()
    }

    /// The states entered, in order.
    pub fn states(&self) -> Vec<SessionState> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StateChanged { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    }

    /// When the session first entered `state`.
    pub fn entered(&self, state: SessionState) -> Option<Instant> {
        self.events.iter().find_map(|(t, e)| match e {
            Event::StateChanged { to, .. } if *to == state => Some(*t),
            _ => None,
        })
    }

    /// The events delivered to one watch registration.
    pub fn watch_events(&self, watcher: WatcherId) -> Vec<WatchedEvent> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Watch { watcher: w, event } if *w == watcher => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the registration ended with [`Event::WatcherRemoved`].
    pub fn watcher_removed(&self, watcher: WatcherId) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::WatcherRemoved { watcher: w, .. } if *w == watcher))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Waiting for the SYN to reach the server, or the answer to reach the client.
    Connecting,
    /// The client was told it is connected.
    Open,
    /// Over (refused, closed by both sides, or reset).
    Dead,
}

#[derive(Debug)]
struct NetLink {
    member: Option<usize>,
    sim: SimConnId,
    state: LinkState,
    /// The client has not closed it (no `Disconnect`, no close reported to it).
    client_open: bool,
    /// The server side exists (accepted and not closed by either side).
    server_open: bool,
    blackholed: bool,
    /// Bytes still allowed per direction before the link is reset.
    cut: [Option<usize>; 2],
    /// The last scheduled delivery per direction (keeps each pipe FIFO under jitter).
    last: [Instant; 2],
}

type Key = (usize, ConnId);

#[derive(Debug)]
enum Delivery {
    /// The SYN reaches the server.
    Accept(Key),
    /// The connect succeeded; the client hears of it.
    Connected(Key),
    /// The connect was refused; the client hears of it.
    Refused(Key),
    ToServer(Key, Bytes),
    ToClient(Key, Bytes),
    /// The server's close reaches the client.
    ServerFin(Key),
    /// The client's close reaches the server.
    ClientFin(Key),
}

/// The simulated network: clients, the cluster, the wire and the clock. See the module docs.
///
/// Why: to test code built on [`Session`] (or a protocol scenario) against a whole
/// ensemble, with faults and hours of simulated time, in milliseconds and
/// deterministically.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use zk_proto::testing::net::SimNet;
/// use zk_proto::types::CreateMode;
/// use zk_proto::{Acl, CreateRequest, Request, Response, SessionState};
///
/// let start = Instant::now(); // clock-exception: a doc example needs a start instant
/// let mut net = SimNet::new(3, 42, start);
/// let config = net.config(&[0, 1, 2]);
/// let ci = net.add_client(config);
/// assert!(net.run_until(|n| n.state(ci) == SessionState::Connected, Duration::from_secs(5)));
/// let first = net.session(ci).session_id().unwrap();
///
/// let worker = Request::Create(CreateRequest {
///     path: "/worker".into(),
///     data: None,
///     acl: Acl::open_unsafe(),
///     flags: CreateMode::Ephemeral.flags(),
/// });
/// let created = net.call(ci, worker, Duration::from_secs(5));
/// assert!(matches!(created, Some(Ok(Response::Create(_)))));
/// assert_eq!(net.cluster.ephemerals(first), ["/worker"]);
///
/// // An hour of idle time: pings keep the session alive.
/// net.advance(Duration::from_secs(3600));
/// assert_eq!(net.session(ci).session_id(), Some(first));
///
/// // The server expires it: the ephemeral goes, and the client starts a new session
/// // (ExpiryPolicy::NewSession, the default).
/// net.expire_session(first);
/// let renewed = |n: &SimNet| {
///     n.state(ci) == SessionState::Connected && n.session(ci).session_id() != Some(first)
/// };
/// assert!(net.run_until(renewed, Duration::from_secs(5)));
/// assert!(net.client(ci).states().contains(&SessionState::Expired));
/// assert!(net.cluster.get("/worker").is_none());
/// assert!(net.violations.is_empty());
/// ```
#[derive(Debug)]
pub struct SimNet {
    /// The ensemble.
    pub cluster: SimCluster,
    /// The clients, by index.
    pub clients: Vec<SimClient>,
    /// Contract breaches seen while driving; empty in a healthy run.
    pub violations: Vec<String>,
    /// Record transmits in [`SimClient::sent`] (on by default; off saves memory).
    pub record_wire: bool,
    start: Instant,
    now: Instant,
    rng: Rng,
    latency: [Duration; 2],
    jitter: Duration,
    chunking: bool,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    links: BTreeMap<Key, NetLink>,
    by_sim: BTreeMap<SimConnId, Key>,
    partitioned: BTreeSet<usize>,
    next_sim: u64,
    same_instant: u32,
}

impl SimNet {
    /// A net over a fresh cluster of `members`, the clock at `start`, 1 ms latency
    /// each way, no jitter, no chunking.
    pub fn new(members: usize, seed: u64, start: Instant) -> SimNet {
        SimNet {
            cluster: SimCluster::new(members, start),
            clients: Vec::new(),
            violations: Vec::new(),
            record_wire: true,
            start,
            now: start,
            rng: Rng::new(seed),
            latency: [Duration::from_millis(1); 2],
            jitter: Duration::ZERO,
            chunking: false,
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            by_sim: BTreeMap::new(),
            partitioned: BTreeSet::new(),
            next_sim: 1,
            same_instant: 0,
        }
    }

    /// Sets the one-way latencies.
    pub fn set_latency(&mut self, to_server: Duration, to_client: Duration) {
        self.latency = [to_server, to_client];
    }

    /// Adds up to `jitter` of seeded random delay to each delivery (pipes stay FIFO).
    pub fn set_jitter(&mut self, jitter: Duration) {
        self.jitter = jitter;
    }

    /// Splits every delivery into seeded random chunks.
    pub fn set_chunking(&mut self, on: bool) {
        self.chunking = on;
    }

    /// A config for these members with the net's next seed, otherwise defaults.
    pub fn config(&mut self, members: &[usize]) -> Config {
        let mut c = Config::new(sim_hosts(members));
        c.seed = self.rng.next_u64();
        c
    }

    /// Starts a client session; returns its index.
    pub fn add_client(&mut self, config: Config) -> usize {
        let session = Session::new(config, self.now);
        self.clients.push(SimClient {
            session,
            events: Vec::new(),
            sent: Vec::new(),
            connects: Vec::new(),
        });
        let ci = self.clients.len() - 1;
        self.drain_client(ci);
        ci
    }

    // ------------------------------------------------------------- clock

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time since the net was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The earliest pending timer or delivery.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let mut t = self.queue.keys().next().map(|k| k.0);
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.cluster.poll_timeout());
        for c in &self.clients {
            at(c.session.poll_timeout());
        }
        t
    }

    /// Advances to the next wakeup and processes everything due then. False when
    /// nothing is pending at all (or no progress could be made at one instant).
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_wakeup() else {
            return false;
        };
        let t = t.max(self.now);
        if t == self.now {
            self.same_instant += 1;
            if self.same_instant > SAME_INSTANT_LIMIT {
                self.violations
                    .push(format!("no progress at {:?}", self.now - self.start));
                return false;
            }
        } else {
            self.same_instant = 0;
        }
        self.now = t;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let d = entry.remove();
            self.deliver(d);
        }
        if self.cluster.poll_timeout().is_some_and(|x| x <= self.now) {
            self.cluster.handle_timeout(self.now);
            self.pump_server();
        }
        for ci in 0..self.clients.len() {
            if self.clients[ci]
                .session
                .poll_timeout()
                .is_some_and(|x| x <= self.now)
            {
                self.clients[ci].session.handle_timeout(self.now);
                self.drain_client(ci);
            }
        }
        true
    }

    /// Runs every step due up to `now + d`, then sets the clock there.
    pub fn advance(&mut self, d: Duration) {
        let target = later(self.now, d);
        while self.next_wakeup().is_some_and(|t| t <= target) {
            if !self.step() {
                break;
            }
        }
        self.now = self.now.max(target);
    }

    /// Steps until `cond` holds (true) or `max` of simulated time passed (false).
    pub fn run_until(&mut self, mut cond: impl FnMut(&SimNet) -> bool, max: Duration) -> bool {
        let deadline = later(self.now, max);
        loop {
            if cond(self) {
                return true;
            }
            match self.next_wakeup() {
                Some(t) if t <= deadline => {
                    if !self.step() {
                        return cond(self);
                    }
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return cond(self);
                }
            }
        }
    }

    // ----------------------------------------------------- client commands

    /// The client.
    pub fn client(&self, ci: usize) -> &SimClient {
        &self.clients[ci]
    }

    /// The client's session.
    pub fn session(&self, ci: usize) -> &Session {
        &self.clients[ci].session
    }

    /// The client's state.
    pub fn state(&self, ci: usize) -> SessionState {
        self.clients[ci].session.state()
    }

    /// Submits a request now.
    pub fn submit(&mut self, ci: usize, req: Request) -> Result<Submitted, UsageError> {
        let r = self.clients[ci].session.submit(req, self.now);
        self.drain_client(ci);
        r
    }

    /// Adds credentials now.
    pub fn add_auth(
        &mut self,
        ci: usize,
        scheme: &str,
        auth: &[u8],
    ) -> Result<RequestId, UsageError> {
        let r = self.clients[ci]
            .session
            .add_auth(scheme, Bytes::copy_from_slice(auth), self.now);
        self.drain_client(ci);
        r
    }

    /// Removes a watch registration now.
    pub fn remove_watcher(&mut self, ci: usize, w: WatcherId) {
        self.clients[ci].session.remove_watcher(w, self.now);
        self.drain_client(ci);
    }

    /// Closes the session now.
    pub fn close(&mut self, ci: usize) {
        self.clients[ci].session.close(self.now);
        self.drain_client(ci);
    }

    /// Restarts a terminal session now.
    pub fn restart(&mut self, ci: usize) {
        self.clients[ci].session.restart(self.now);
        self.drain_client(ci);
    }

    /// Runs any command on the client's session now (with the current time), then
    /// drains its outputs like every other command.
    pub fn with_session<R>(&mut self, ci: usize, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        let r = f(&mut self.clients[ci].session, self.now);
        self.drain_client(ci);
        r
    }

    /// Submits and runs until the request completes (or `max` passes).
    pub fn call(
        &mut self,
        ci: usize,
        req: Request,
        max: Duration,
    ) -> Option<Result<Response, ZkError>> {
        let id = self.submit(ci, req).ok()?.id;
        self.run_until(|n| n.clients[ci].completion(id).is_some(), max);
        self.clients[ci].completion(id).cloned()
    }

    /// The member the client's session connection is on (or being opened to).
    pub fn client_member(&self, ci: usize) -> Option<usize> {
        self.clients[ci].session.current_host().and_then(member_of)
    }

    /// The server-side id of a client connection.
    pub fn server_conn(&self, ci: usize, conn: ConnId) -> Option<SimConnId> {
        self.links.get(&(ci, conn)).map(|l| l.sim)
    }

    /// The client's connections the net considers open (connected, not closed).
    pub fn open_conns(&self, ci: usize) -> Vec<ConnId> {
        self.links
            .iter()
            .filter(|((c, _), l)| *c == ci && l.state == LinkState::Open && l.client_open)
            .map(|((_, conn), _)| *conn)
            .collect()
    }

    /// Everything the client wrote, reassembled into frames per connection, in
    /// send order (needs [`SimNet::record_wire`]).
    pub fn client_frames(&self, ci: usize) -> Vec<(Instant, ConnId, ClientFrame)> {
        let mut decoders: BTreeMap<ConnId, (FrameDecoder, bool)> = BTreeMap::new();
        let mut out = Vec::new();
        for (t, conn, data) in &self.clients[ci].sent {
            let (dec, started) = decoders
                .entry(*conn)
                .or_insert_with(|| (FrameDecoder::new(usize::MAX >> 1), false));
            if !*started && data.len() == 4 && data.iter().all(u8::is_ascii_lowercase) {
                out.push((
                    *t,
                    *conn,
                    ClientFrame::FourLetter(String::from_utf8_lossy(data).into_owned()),
                ));
                continue;
            }
            dec.push(data);
            while let Ok(Some(f)) = dec.next_frame() {
                let frame = if !*started {
                    *started = true;
                    match ConnectRequest::decode(&mut Reader::new(f.clone())) {
                        Ok(c) => ClientFrame::Connect(c),
                        Err(_) => ClientFrame::Garbage(f),
                    }
                } else if f.len() >= 8 {
                    ClientFrame::Request {
                        xid: i32::from_be_bytes([f[0], f[1], f[2], f[3]]),
                        op: OpCode::from_i32(i32::from_be_bytes([f[4], f[5], f[6], f[7]])),
                        body: f.slice(8..),
                    }
                } else {
                    ClientFrame::Garbage(f)
                };
                out.push((*t, *conn, frame));
            }
        }
        out
    }

    // --------------------------------------------------------------- faults

    /// Lets only the next `k` bytes through in `dir` on the connection, then resets it
    /// (both sides see a close). `k == 0` resets now.
    pub fn cut(&mut self, ci: usize, conn: ConnId, dir: Dir, k: usize) {
        if k == 0 {
            self.reset((ci, conn));
            return;
        }
        if let Some(l) = self.links.get_mut(&(ci, conn)) {
            l.cut[dir.index()] = Some(k);
        }
    }

    /// Resets the client's session connection now (both sides see a close).
    pub fn reset_session_conn(&mut self, ci: usize) {
        if let Some(conn) = self.session_conn(ci) {
            self.reset((ci, conn));
        }
    }

    /// The client's open connection to the member it is on, if any.
    pub fn session_conn(&self, ci: usize) -> Option<ConnId> {
        let m = self.client_member(ci)?;
        self.links
            .iter()
            .filter(|((c, _), l)| *c == ci && l.member == Some(m) && l.client_open)
            .map(|((_, conn), _)| *conn)
            .next_back()
    }

    /// Puts raw bytes on the wire of a connection, as if the peer had written them
    /// (after whatever is already in flight in that direction).
    pub fn inject(&mut self, ci: usize, conn: ConnId, dir: Dir, data: &[u8]) {
        self.schedule_data((ci, conn), dir, Bytes::copy_from_slice(data));
    }

    /// Cuts the member off: connects hang, established connections are black-holed.
    pub fn partition(&mut self, member: usize) {
        self.partitioned.insert(member);
        for l in self.links.values_mut() {
            if l.member == Some(member) {
                l.blackholed = true;
            }
        }
    }

    /// Ends the member's partition for new connections.
    pub fn heal(&mut self, member: usize) {
        self.partitioned.remove(&member);
    }

    /// Crashes a member (its connections close; connects are refused).
    ///
    /// Why: to test that code on a session survives a server restart: the session
    /// is suspended, moves to another member and keeps its id.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::SessionState;
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(3, 7, start);
    /// let config = net.config(&[0, 1, 2]);
    /// let ci = net.add_client(config);
    /// net.run_until(|n| n.state(ci) == SessionState::Connected, Duration::from_secs(5));
    /// let (id, member) = (net.session(ci).session_id(), net.client_member(ci).unwrap());
    ///
    /// net.stop_member(member);
    /// let moved = |n: &SimNet| {
    ///     n.state(ci) == SessionState::Connected && n.client_member(ci) != Some(member)
    /// };
    /// assert!(net.run_until(moved, Duration::from_secs(10)));
    /// assert!(net.client(ci).states().contains(&SessionState::Suspended));
    /// assert_eq!(net.session(ci).session_id(), id);
    /// ```
    pub fn stop_member(&mut self, member: usize) {
        self.cluster.stop_member(member, self.now);
        self.pump_server();
    }

    /// Restarts a member.
    pub fn start_member(&mut self, member: usize) {
        self.cluster.start_member(member, self.now);
        self.pump_server();
    }

    /// Puts a member in or out of read-only mode (its connections close).
    pub fn set_read_only(&mut self, member: usize, ro: bool) {
        self.cluster.set_read_only(member, ro, self.now);
        self.pump_server();
    }

    /// Holds or releases a member's request pipeline (auth is never held).
    pub fn set_hold(&mut self, member: usize, hold: bool) {
        self.cluster.set_hold(member, hold, self.now);
        self.pump_server();
    }

    /// Expires a session on the cluster now.
    pub fn expire_session(&mut self, session_id: i64) {
        self.cluster.expire_session(session_id, self.now);
        self.pump_server();
    }

    /// Applies a write from outside any session (watches fire).
    pub fn admin(&mut self, req: Request) -> Result<Response, crate::error::ErrorCode> {
        let r = self.cluster.admin(req, self.now);
        self.pump_server();
        r
    }

    // ------------------------------------------------------------ internals

    fn schedule(&mut self, key: Key, dir: Option<Dir>, d: Delivery) {
        let base = match dir {
            Some(dir) => self.latency[dir.index()],
            None => Duration::ZERO,
        };
        let jitter = if self.jitter.is_zero() || dir.is_none() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.unit())
        };
        let mut at = later(later(self.now, base), jitter);
        if let (Some(dir), Some(l)) = (dir, self.links.get_mut(&key)) {
            at = at.max(l.last[dir.index()]);
            l.last[dir.index()] = at;
        }
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }

    fn schedule_data(&mut self, key: Key, dir: Dir, data: Bytes) {
        let make = |b: Bytes| match dir {
            Dir::ToServer => Delivery::ToServer(key, b),
            Dir::ToClient => Delivery::ToClient(key, b),
        };
        if !self.chunking || data.len() < 2 {
            self.schedule(key, Some(dir), make(data));
            return;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let n = 1 + self.rng.below(rest.len());
            let piece = rest.split_to(n);
            self.schedule(key, Some(dir), make(piece));
        }
    }

    /// Drains the session's outputs per the polling contract.
    fn drain_client(&mut self, ci: usize) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.clients[ci].session.poll_action() {
                progressed = true;
                self.on_action(ci, a);
            }
            while let Some(t) = self.clients[ci].session.poll_transmit(self.now) {
                progressed = true;
                self.on_transmit(ci, t.conn, t.data);
            }
            while let Some(e) = self.clients[ci].session.poll_event() {
                progressed = true;
                self.clients[ci].events.push((self.now, e));
            }
            if !progressed {
                break;
            }
        }
        if let Some(t) = self.clients[ci].session.poll_timeout() {
            if t < self.now {
                self.violations.push(format!(
                    "client {ci}: poll_timeout {:?} before now {:?} after a drain",
                    t - self.start,
                    self.now - self.start
                ));
            }
        }
    }

    fn on_action(&mut self, ci: usize, a: Action) {
        match a {
            Action::Connect { conn, host } => {
                let key = (ci, conn);
                if self.links.contains_key(&key) {
                    self.violations
                        .push(format!("client {ci}: connection {conn:?} reused"));
                    return;
                }
                self.clients[ci]
                    .connects
                    .push((self.now, conn, host.clone()));
                let member = member_of(&host).filter(|m| *m < self.cluster.member_count());
                let sim = SimConnId(self.next_sim);
                self.next_sim += 1;
                let blackholed = member.is_some_and(|m| self.partitioned.contains(&m));
                self.links.insert(
                    key,
                    NetLink {
                        member,
                        sim,
                        state: LinkState::Connecting,
                        client_open: true,
                        server_open: false,
                        blackholed,
                        cut: [None; 2],
                        last: [self.now; 2],
                    },
                );
                self.by_sim.insert(sim, key);
                match member {
                    None => self.schedule(key, None, Delivery::Refused(key)),
                    Some(_) if blackholed => {}
                    Some(_) => self.schedule(key, Some(Dir::ToServer), Delivery::Accept(key)),
                }
            }
            Action::Disconnect { conn } => {
                let key = (ci, conn);
                let Some(l) = self.links.get_mut(&key) else {
                    self.violations
                        .push(format!("client {ci}: disconnect of unknown {conn:?}"));
                    return;
                };
                if !l.client_open {
                    return;
                }
                l.client_open = false;
                if l.server_open {
                    self.schedule(key, Some(Dir::ToServer), Delivery::ClientFin(key));
                } else if l.state == LinkState::Connecting {
                    // The SYN may still be on its way; Accept sees client_open false.
                } else {
                    l.state = LinkState::Dead;
                }
            }
        }
    }

    fn on_transmit(&mut self, ci: usize, conn: ConnId, data: Bytes) {
        let key = (ci, conn);
        match self.links.get(&key) {
            Some(l) if l.client_open && l.state == LinkState::Open => {}
            Some(l) => {
                self.violations.push(format!(
                    "client {ci}: wrote on {conn:?} in state {:?} (client_open {})",
                    l.state, l.client_open
                ));
                return;
            }
            None => {
                self.violations
                    .push(format!("client {ci}: wrote on unknown {conn:?}"));
                return;
            }
        }
        if self.record_wire {
            self.clients[ci].sent.push((self.now, conn, data.clone()));
        }
        self.schedule_data(key, Dir::ToServer, data);
    }

    /// Moves the server's output and closes onto the wire.
    fn pump_server(&mut self) {
        while let Some((sim, data)) = self.cluster.poll_output() {
            if let Some(&key) = self.by_sim.get(&sim) {
                self.schedule_data(key, Dir::ToClient, data);
            }
        }
        while let Some(sim) = self.cluster.poll_close() {
            if let Some(&key) = self.by_sim.get(&sim) {
                if let Some(l) = self.links.get_mut(&key) {
                    l.server_open = false;
                }
                self.schedule(key, Some(Dir::ToClient), Delivery::ServerFin(key));
            }
        }
    }

    /// Both sides see the connection close, now; nothing more is delivered.
    fn reset(&mut self, key: Key) {
        let Some(l) = self.links.get_mut(&key) else {
            return;
        };
        let tell_client = l.client_open;
        let tell_server = l.server_open;
        let was_open = l.state == LinkState::Open;
        l.client_open = false;
        l.server_open = false;
        l.blackholed = true;
        l.state = LinkState::Dead;
        let sim = l.sim;
        if tell_server {
            self.cluster.handle_closed(sim, self.now);
            self.pump_server();
        }
        if tell_client {
            let (ci, conn) = key;
            if was_open {
                self.clients[ci].session.handle_disconnected(conn, self.now);
            } else {
                self.clients[ci]
                    .session
                    .handle_connect_failed(conn, self.now);
            }
            self.drain_client(ci);
        }
    }

    /// Applies a cut budget to bytes about to be delivered; returns the bytes to
    /// deliver and whether the link must be reset after them.
    fn apply_cut(&mut self, key: Key, dir: Dir, mut data: Bytes) -> (Bytes, bool) {
        let Some(l) = self.links.get_mut(&key) else {
            return (data, false);
        };
        let Some(left) = l.cut[dir.index()] else {
            return (data, false);
        };
        if data.len() < left {
            l.cut[dir.index()] = Some(left - data.len());
            return (data, false);
        }
        data.truncate(left);
        l.cut[dir.index()] = Some(0);
        (data, true)
    }

    fn deliver(&mut self, d: Delivery) {
        let key = match &d {
            Delivery::Accept(k)
            | Delivery::Connected(k)
            | Delivery::Refused(k)
            | Delivery::ToServer(k, _)
            | Delivery::ToClient(k, _)
            | Delivery::ServerFin(k)
            | Delivery::ClientFin(k) => *k,
        };
        let (ci, conn) = key;
        let Some(l) = self.links.get(&key) else {
            return;
        };
        if l.blackholed {
            return;
        }
        let (member, sim, client_open, server_open) =
            (l.member, l.sim, l.client_open, l.server_open);
        match d {
            Delivery::Accept(_) => {
                if !client_open {
                    if let Some(l) = self.links.get_mut(&key) {
                        l.state = LinkState::Dead;
                    }
                    return;
                }
                let ok = member.is_some_and(|m| self.cluster.accept(m, sim, self.now));
                if let Some(l) = self.links.get_mut(&key) {
                    l.server_open = ok;
                }
                let next = if ok {
                    Delivery::Connected(key)
                } else {
                    Delivery::Refused(key)
                };
                self.schedule(key, Some(Dir::ToClient), next);
            }
            Delivery::Connected(_) => {
                if !client_open {
                    // The client gave up meanwhile; its FIN follows the SYN.
                    if server_open {
                        self.schedule(key, Some(Dir::ToServer), Delivery::ClientFin(key));
                    }
                    return;
                }
                if let Some(l) = self.links.get_mut(&key) {
                    l.state = LinkState::Open;
                }
                self.clients[ci].session.handle_connected(conn, self.now);
                self.drain_client(ci);
            }
            Delivery::Refused(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.state = LinkState::Dead;
                    l.client_open = false;
                }
                if client_open {
                    self.clients[ci]
                        .session
                        .handle_connect_failed(conn, self.now);
                    self.drain_client(ci);
                }
            }
            Delivery::ToServer(_, data) => {
                if !server_open {
                    return;
                }
                let (data, reset) = self.apply_cut(key, Dir::ToServer, data);
                if !data.is_empty() {
                    self.cluster.handle_input(sim, &data, self.now);
                    self.pump_server();
                }
                if reset {
                    self.reset(key);
                }
            }
            Delivery::ToClient(_, data) => {
                if !client_open {
                    return;
                }
                let (data, reset) = self.apply_cut(key, Dir::ToClient, data);
                if !data.is_empty() {
                    self.clients[ci].session.handle_input(conn, &data, self.now);
                    self.drain_client(ci);
                }
                if reset {
                    self.reset(key);
                }
            }
            Delivery::ServerFin(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.client_open = false;
                    l.state = LinkState::Dead;
                }
                if client_open {
                    self.clients[ci].session.handle_disconnected(conn, self.now);
                    self.drain_client(ci);
                }
            }
            Delivery::ClientFin(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.server_open = false;
                    l.state = LinkState::Dead;
                }
                if server_open {
                    self.cluster.handle_closed(sim, self.now);
                    self.pump_server();
                }
            }
        }
    }
}
