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
//!
//! # Files
//!
//! One file per part of the net: [`SimNet`] itself and its knobs here; `clock`
//! (stepping time); `adapter` (commands on the client sessions, each drained per
//! the polling contract); `sim_client` ([`SimClient`], one session's record);
//! `frames` (what a client wrote, as frames); `wire` (links, what a client's
//! connects, closes and writes do to them, and the deliveries); `faults` (cuts,
//! resets, partitions); `cluster` (commands to the ensemble); `hosts` (the `mN`
//! host names).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::hosts::Rng;
use crate::session::Session;
use crate::testing::server::{SimCluster, SimConnId};

mod adapter;
mod clock;
mod cluster;
mod faults;
mod frames;
mod hosts;
mod sim_client;
mod wire;

pub use frames::ClientFrame;
pub use hosts::{member_of, sim_hosts};
pub use sim_client::SimClient;
pub use wire::Dir;

use wire::{Delivery, Key, NetLink};

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
}
