//! A sans-IO simulated ZooKeeper ensemble, [`SimCluster`].
//!
//! One in-memory data tree is shared by N members (servers). Clients talk to a
//! member over a connection identified by a [`SimConnId`] the caller chooses;
//! bytes and time go in, bytes and closes come out. The server side follows
//! `/work/shared/protocol.md` (3.8 behaviour, with the documented exceptions
//! below), so the client state machine can be tested against it byte for byte.
//!
//! # Driving it
//!
//! * [`SimCluster::accept`] a connection on a member, then feed the client's bytes
//!   with [`SimCluster::handle_input`] in any chunking.
//! * Drain [`SimCluster::poll_output`] (one whole frame per item, in the order the
//!   server wrote them), then [`SimCluster::poll_close`]: a connection the server
//!   closes is reported only once none of its output is left in the queue, so
//!   "deliver the bytes, then the close" falls out of draining output first.
//! * Tell it when the client closes with [`SimCluster::handle_closed`].
//! * A fresh connection whose first 4 bytes are a four-letter word (`isro`,
//!   `ruok`, `srvr`; the others answer "not in the whitelist") gets the plain-text
//!   answer and is closed, as on a real server with `readonlymode.enabled`.
//! * Session expiry is the only timer: call [`SimCluster::handle_timeout`] at
//!   [`SimCluster::poll_timeout`].
//!
//! # Model and deliberate simplifications
//!
//! * **Members share one tree and one zxid counter** (a perfectly replicated
//!   ensemble). [`SimCluster::set_lagging`] freezes the zxid one member reports, to
//!   exercise "client is ahead of this server" (closed without a response).
//! * **Quorum:** sessions expire only while at least one member is up and not
//!   read-only. When such a member comes back after none was, every session's
//!   expiry clock restarts, like a newly elected leader does.
//! * **Expiry** is exact: a session dies when nothing (request or ping) arrived
//!   for its negotiated timeout, whether or not a connection is attached. Real
//!   servers round up to tick buckets.
//! * **Read-only members** behave as with `localSessionsEnabled=true`: a client
//!   with the read-only flag and session id 0 gets a new *local* session (valid on
//!   that member only, no ephemerals: EPHEMERALONLOCALSESSION); a non-RO client or
//!   a reconnect with a global session id is closed without a response. Switching
//!   a member's mode closes its connections and drops its local sessions.
//! * **Watches** are per connection, one notification per connection per watch
//!   table per change (zxid -1, state SyncConnected). A connection may hold a
//!   standard and a persistent watch on the same path independently (3.9
//!   behaviour; 3.8 overwrote the mode, ZOOKEEPER-4466).
//!   removeWatches/checkWatches: Children (1) and Data (2) address the one-shot
//!   child / data(+exist) watches, Persistent (4) and PersistentRecursive (5) the
//!   persistent ones, Any (3) all four.
//! * **Failed writes consume a zxid** (the server logs an error txn), as do
//!   createSession and closeSession.
//! * **TTL nodes** are accepted (as with `extendedTypesEnabled=true`) but never
//!   expire; containers are never reaped. ACLs are stored and validated but not
//!   enforced. SASL (102) is answered with AUTHFAILED and a close. reconfig gets
//!   RECONFIGDISABLED. A stand-alone check (13) hangs the connection (no reply to
//!   it or anything after it), as 3.8 does.
//! * [`SimCluster::set_hold`] holds a member's request pipeline: requests are
//!   received (and keep their session alive) but answered only on release, in
//!   order. Auth is answered immediately regardless, so it can overtake.
//!
//! # Where each part lives
//!
//! * `mod.rs` (here): [`SimCluster`] itself, its constructor and the zxid counter.
//! * `conns.rs`: the network side: connections accepted, bytes in (frames or a
//!   four-letter word), frames out, closes.
//! * `sessions.rs`: the handshake (new, resumed, refused sessions), expiry and the
//!   session clock; `members.rs`: the members' faults (stopped, read-only, lagging,
//!   held) and the quorum.
//! * `ops.rs`: one request answered (reads, auth, watches set by reads);
//!   `writes.rs`: writes and multi, applied to the tree as one transaction;
//!   `tree.rs`: the data tree and its rules (paths, versions, ACLs, sequence numbers).
//! * `watches.rs`: each connection's watch tables, notifications, SetWatches.
//! * `inspect.rs`: what a test reads directly (nodes, sessions, connections, the
//!   request log).

mod conns;
mod inspect;
mod members;
mod ops;
mod sessions;
#[cfg(test)]
mod test_wire;
mod tree;
mod watches;
mod writes;

pub use watches::SimWatches;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::types::OpCode;

use conns::Conn;
use members::Member;
use sessions::SimSession;
use tree::Tree;

/// The server's default `jute.maxbuffer`: the largest request frame it accepts.
/// (Replies are not bounded by it.)
pub const JUTE_MAXBUFFER: usize = 0xfffff;

/// The caller's name for one client connection. Unique over the cluster's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimConnId(pub u64);

/// Milliseconds since the Unix epoch that the cluster's creation instant maps to
/// (ctime/mtime are derived from the `Instant`s passed in, never from a clock).
pub const EPOCH_BASE_MS: i64 = 1_700_000_000_000;

/// An in-memory ZooKeeper ensemble of N members sharing one tree. See the module docs.
///
/// Why: a server to test a client, a proxy or a tool against, driven by bytes
/// and time like the client itself. The crate-level example drives a
/// [`Session`](crate::Session) against one; here the raw side:
///
/// ```
/// use std::time::Instant;
///
/// use zk_proto::testing::server::{SimCluster, SimConnId};
/// use zk_proto::{Acl, CreateRequest, Request};
///
/// let now = Instant::now(); // clock-exception: a doc example needs a start instant
/// let mut cluster = SimCluster::new(3, now);
///
/// // A four-letter word on a fresh connection: the answer, then the close.
/// let conn = SimConnId(1);
/// assert!(cluster.accept(0, conn, now));
/// cluster.handle_input(conn, b"ruok", now);
/// assert_eq!(cluster.poll_output(), Some((conn, "imok".into())));
/// assert_eq!(cluster.poll_close(), Some(conn));
///
/// // Set up the tree as another client would, then look at it directly.
/// let create = CreateRequest {
///     path: "/config".into(),
///     data: Some("x=1".into()),
///     acl: Acl::open_unsafe(),
///     flags: 0,
/// };
/// cluster.admin(Request::Create(create), now).unwrap();
/// let (data, stat) = cluster.get("/config").unwrap();
/// assert_eq!(data.as_deref(), Some(&b"x=1"[..]));
/// assert_eq!(stat.version, 0);
/// assert_eq!(cluster.children("/").unwrap(), ["config", "zookeeper"]);
///
/// // A stopped member refuses connections.
/// cluster.stop_member(2, now);
/// assert!(!cluster.accept(2, SimConnId(2), now));
/// ```
#[derive(Debug)]
pub struct SimCluster {
    start: Instant,
    members: Vec<Member>,
    tree: Tree,
    zxid: i64,
    sessions: BTreeMap<i64, SimSession>,
    conns: BTreeMap<SimConnId, Conn>,
    output: VecDeque<(SimConnId, Bytes)>,
    closes: VecDeque<SimConnId>,
    next_session: i64,
    min_timeout: i32,
    max_timeout: i32,
    quorum: bool,
    log: Vec<(SimConnId, i32, OpCode)>,
    /// Answers for the next SetWatches(2) requests (see [`SimCluster::answer_set_watches`]).
    set_watches_answers: VecDeque<ErrorCode>,
}

impl SimCluster {
    /// A cluster of `members` servers, all up, read-write, with an empty tree
    /// (plus `/zookeeper`, `/zookeeper/config`, `/zookeeper/quota`).
    /// Session timeouts are clamped to [4000, 40000] ms (tickTime 2000).
    pub fn new(members: usize, now: Instant) -> SimCluster {
        SimCluster {
            start: now,
            members: vec![
                Member {
                    up: true,
                    read_only: false,
                    hold: false,
                    lag_zxid: None,
                };
                members
            ],
            tree: Tree::new(),
            zxid: 0,
            sessions: BTreeMap::new(),
            conns: BTreeMap::new(),
            output: VecDeque::new(),
            closes: VecDeque::new(),
            next_session: 1,
            min_timeout: 4000,
            max_timeout: 40000,
            quorum: members > 0,
            log: Vec::new(),
            set_watches_answers: VecDeque::new(),
        }
    }

    /// Changes the negotiation bounds (min/maxSessionTimeout), ms.
    pub fn set_timeout_bounds(&mut self, min_ms: i32, max_ms: i32) {
        self.min_timeout = min_ms;
        self.max_timeout = max_ms.max(min_ms);
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    fn time_ms(&self, now: Instant) -> i64 {
        EPOCH_BASE_MS + now.saturating_duration_since(self.start).as_millis() as i64
    }

    fn next_zxid(&mut self) -> i64 {
        self.zxid += 1;
        self.zxid
    }

    fn visible_zxid(&self, member: usize) -> i64 {
        self.members
            .get(member)
            .and_then(|m| m.lag_zxid)
            .unwrap_or(self.zxid)
    }
}
