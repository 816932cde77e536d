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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::error::ErrorCode;
use crate::frame::{write_frame, FrameDecoder};
use crate::jute::{Decode, Encode, Reader};
use crate::ops::{Request, Response};
use crate::path::validate_path;
use crate::records::*;
use crate::time::later;
use crate::types::{AddWatchMode, CreateMode, EventType, KeeperState, OpCode, WatcherType};

/// The server's default `jute.maxbuffer`: the largest request frame it accepts.
/// (Replies are not bounded by it.)
pub const JUTE_MAXBUFFER: usize = 0xfffff;

/// The caller's name for one client connection. Unique over the cluster's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimConnId(pub u64);

/// Milliseconds since the Unix epoch that the cluster's creation instant maps to
/// (ctime/mtime are derived from the `Instant`s passed in, never from a clock).
pub const EPOCH_BASE_MS: i64 = 1_700_000_000_000;

/// Largest TTL a server accepts, ms (2^40 - 1).
const MAX_TTL: i64 = (1 << 40) - 1;

/// One member's fault state.
#[derive(Debug, Clone)]
struct Member {
    up: bool,
    read_only: bool,
    hold: bool,
    lag_zxid: Option<i64>,
}

#[derive(Debug, Clone)]
struct SimSession {
    passwd: Bytes,
    timeout_ms: i32,
    conn: Option<SimConnId>,
    last_heard: Instant,
    /// `Some(member)` for a local session created by a read-only member.
    local_to: Option<usize>,
}

impl SimSession {
    fn deadline(&self) -> Instant {
        later(
            self.last_heard,
            Duration::from_millis(self.timeout_ms.max(0) as u64),
        )
    }
}

/// The watches one connection holds, by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimWatches {
    /// One-shot data watches (getData, exists on an existing or missing node).
    pub data: BTreeSet<String>,
    /// One-shot child watches.
    pub child: BTreeSet<String>,
    /// Persistent watches (addWatch mode 0).
    pub persistent: BTreeSet<String>,
    /// Persistent recursive watches (addWatch mode 1).
    pub recursive: BTreeSet<String>,
}

impl SimWatches {
    /// Total number of watch registrations.
    pub fn len(&self) -> usize {
        self.data.len() + self.child.len() + self.persistent.len() + self.recursive.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Data table: one-shot data watch, persistent watch on `path`, or a recursive
    /// watch on `path` or an ancestor. One-shot watches are consumed.
    fn fire_data(&mut self, path: &str) -> bool {
        let one_shot = self.data.remove(path);
        let persistent = self.persistent.contains(path);
        let recursive = ancestors_and_self(path).any(|p| self.recursive.contains(p));
        one_shot || persistent || recursive
    }

    /// Child table: one-shot child watch or persistent watch on exactly `path`.
    fn fire_child(&mut self, path: &str) -> bool {
        let one_shot = self.child.remove(path);
        one_shot || self.persistent.contains(path)
    }
}

#[derive(Debug)]
struct Conn {
    member: usize,
    decoder: FrameDecoder,
    /// Set once the ConnectResponse was sent.
    session: Option<i64>,
    /// The client sent the read-only byte in its ConnectRequest.
    ro_byte: bool,
    digest_users: Vec<(String, String)>,
    watches: SimWatches,
    held: VecDeque<(i32, OpCode, Bytes)>,
    hung: bool,
    closing: bool,
    /// The first bytes of a fresh connection, until 4 decide whether it is a
    /// four-letter word; `None` once decided.
    prefix: Option<Vec<u8>>,
}

/// A stored znode.
#[derive(Debug, Clone)]
struct Node {
    /// `None`: created or set with null data (the real server keeps null too).
    data: Option<Bytes>,
    acl: Vec<Acl>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    aversion: i32,
    /// Session id for ephemerals; 0 for persistent, container and TTL nodes.
    owner: i64,
    /// Children ever created (the server's stored cversion; the sequence counter).
    creates: i32,
    children: BTreeSet<String>,
}

impl Node {
    fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.creates.wrapping_mul(2).wrapping_sub(n),
            aversion: self.aversion,
            ephemeral_owner: self.owner,
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children: n,
            pzxid: self.pzxid,
        }
    }

    fn new(data: Option<Bytes>, acl: Vec<Acl>, zxid: i64, time: i64, owner: i64) -> Node {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            aversion: 0,
            owner,
            creates: 0,
            children: BTreeSet::new(),
        }
    }
}

/// A change that fires watches.
#[derive(Debug, Clone)]
enum Trigger {
    Created(String),
    Deleted(String),
    DataChanged(String),
}

/// Who is asking: what a create needs to know about the caller.
#[derive(Debug, Clone, Default)]
struct Ctx {
    session: i64,
    local: bool,
    /// `user:hash` digest ids of the connection.
    digest_ids: Vec<String>,
}

/// The replicated state: nodes and which session owns which ephemerals.
#[derive(Debug, Clone)]
struct Tree {
    nodes: BTreeMap<String, Node>,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `path`, then each ancestor up to `/`.
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = if cur == "/" {
            None
        } else {
            Some(parent_of(cur))
        };
        Some(cur)
    })
}

fn is_system(path: &str) -> bool {
    path == "/" || path == "/zookeeper" || path.starts_with("/zookeeper/")
}

fn check_path(path: &str) -> Result<(), ErrorCode> {
    validate_path(path, false).map_err(|_| ErrorCode::BadArguments)
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == actual {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

fn fix_acl(acl: &[Acl], ctx: &Ctx) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::new();
    for a in acl {
        match a.id.scheme.as_str() {
            "auth" => {
                if ctx.digest_ids.is_empty() {
                    return Err(ErrorCode::InvalidAcl);
                }
                for id in &ctx.digest_ids {
                    out.push(Acl::new(a.perms, "digest", id));
                }
            }
            "world" if a.id.id != "anyone" => return Err(ErrorCode::InvalidAcl),
            "digest" if !a.id.id.contains(':') => return Err(ErrorCode::InvalidAcl),
            "world" | "digest" | "ip" | "sasl" | "x509" | "super" => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

impl Tree {
    fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        let open = Acl::open_unsafe();
        let mut root = Node::new(Some(Bytes::new()), open.clone(), 0, EPOCH_BASE_MS, 0);
        root.children.insert("zookeeper".into());
        let mut zk = Node::new(Some(Bytes::new()), open.clone(), 0, EPOCH_BASE_MS, 0);
        zk.children.insert("config".into());
        zk.children.insert("quota".into());
        nodes.insert("/".to_owned(), root);
        nodes.insert("/zookeeper".to_owned(), zk);
        nodes.insert(
            "/zookeeper/config".to_owned(),
            Node::new(Some(Bytes::new()), Acl::read_unsafe(), 0, EPOCH_BASE_MS, 0),
        );
        nodes.insert(
            "/zookeeper/quota".to_owned(),
            Node::new(Some(Bytes::new()), open, 0, EPOCH_BASE_MS, 0),
        );
        Tree {
            nodes,
            ephemerals: BTreeMap::new(),
        }
    }

    fn node(&self, path: &str) -> Result<&Node, ErrorCode> {
        check_path(path)?;
        self.nodes.get(path).ok_or(ErrorCode::NoNode)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        ctx: &Ctx,
        op: OpCode,
        req: &CreateRequest,
        ttl: i64,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(String, Stat), ErrorCode> {
        let mode = CreateMode::from_flags(req.flags, ttl).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl().is_some() {
            if ttl <= 0 || ttl > MAX_TTL {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        let _ = op;
        let sequential = mode.is_sequential();
        validate_path(&req.path, sequential).map_err(|_| ErrorCode::BadArguments)?;
        let acl = fix_acl(&req.acl, ctx)?;
        if req.path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = parent_of(&req.path).to_owned();
        let parent = self.nodes.get(&parent_path).ok_or(ErrorCode::NoNode)?;
        let path = if sequential {
            format!("{}{:010}", req.path, parent.creates)
        } else {
            req.path.clone()
        };
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if parent.owner != 0 {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = if mode.is_ephemeral() {
            if ctx.local {
                return Err(ErrorCode::EphemeralOnLocalSession);
            }
            if ctx.session == 0 {
                return Err(ErrorCode::BadArguments);
            }
            ctx.session
        } else {
            0
        };
        let node = Node::new(req.data.clone(), acl, zxid, time, owner);
        let stat = node.stat();
        self.nodes.insert(path.clone(), node);
        let parent = self.nodes.get_mut(&parent_path).ok_or(ErrorCode::NoNode)?;
        parent.creates = parent.creates.wrapping_add(1);
        parent.pzxid = zxid;
        parent.children.insert(name_of(&path).to_owned());
        if owner != 0 {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(path.clone());
        }
        triggers.push(Trigger::Created(path.clone()));
        Ok((path, stat))
    }

    fn delete(
        &mut self,
        path: &str,
        version: i32,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), ErrorCode> {
        check_path(path)?;
        if is_system(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        check_version(version, node.version)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(path, zxid);
        triggers.push(Trigger::Deleted(path.to_owned()));
        Ok(())
    }

    /// Removes a childless node, keeping parent and ephemeral bookkeeping.
    fn remove(&mut self, path: &str, zxid: i64) {
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        if let Some(parent) = self.nodes.get_mut(parent_of(path)) {
            parent.children.remove(name_of(path));
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
        }
        if node.owner != 0 {
            if let Some(set) = self.ephemerals.get_mut(&node.owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&node.owner);
                }
            }
        }
    }

    fn set_data(
        &mut self,
        req: &SetDataRequest,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        check_path(&req.path)?;
        let node = self.nodes.get_mut(&req.path).ok_or(ErrorCode::NoNode)?;
        check_version(req.version, node.version)?;
        node.data = req.data.clone();
        node.version = node.version.wrapping_add(1);
        node.mzxid = zxid;
        node.mtime = time;
        triggers.push(Trigger::DataChanged(req.path.clone()));
        Ok(node.stat())
    }

    fn set_acl(&mut self, ctx: &Ctx, req: &SetAclRequest) -> Result<Stat, ErrorCode> {
        check_path(&req.path)?;
        let acl = fix_acl(&req.acl, ctx);
        let node = self.nodes.get_mut(&req.path).ok_or(ErrorCode::NoNode)?;
        check_version(req.version, node.aversion)?;
        node.acl = acl?;
        node.aversion = node.aversion.wrapping_add(1);
        Ok(node.stat())
    }

    fn check(&self, req: &CheckVersionRequest) -> Result<(), ErrorCode> {
        check_version(req.version, self.node(&req.path)?.version)
    }

    fn get_data(&self, path: &str) -> Result<GetDataResponse, ErrorCode> {
        let n = self.node(path)?;
        Ok(GetDataResponse {
            data: n.data.clone(),
            stat: n.stat(),
        })
    }

    fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ErrorCode> {
        let n = self.node(path)?;
        Ok((n.children.iter().cloned().collect(), n.stat()))
    }

    fn descendants(&self, path: &str) -> usize {
        let Some(n) = self.nodes.get(path) else {
            return 0;
        };
        n.children
            .iter()
            .map(|c| {
                let child = if path == "/" {
                    format!("/{c}")
                } else {
                    format!("{path}/{c}")
                };
                1 + self.descendants(&child)
            })
            .sum()
    }
}

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

/// Password bytes for a session id: deterministic, distinct per session.
fn password_for(id: i64) -> Bytes {
    let mut out = Vec::with_capacity(16);
    let mut x = id as u64 ^ 0x5a5a_1234_dead_beef;
    for _ in 0..2 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    Bytes::from(out)
}

fn is_write(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Sync
            | OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::Reconfig
            | OpCode::SetAcl
            | OpCode::Multi
            | OpCode::Check
    )
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

    // ------------------------------------------------------------------ I/O

    /// A client connected to `member`. Returns false (and remembers nothing) if
    /// the member is down or does not exist: the connect is refused.
    pub fn accept(&mut self, member: usize, conn: SimConnId, now: Instant) -> bool {
        let _ = now;
        match self.members.get(member) {
            Some(m) if m.up => {}
            _ => return false,
        }
        self.conns.insert(
            conn,
            Conn {
                member,
                decoder: FrameDecoder::new(JUTE_MAXBUFFER),
                session: None,
                ro_byte: false,
                digest_users: Vec::new(),
                watches: SimWatches::default(),
                held: VecDeque::new(),
                hung: false,
                closing: false,
                prefix: Some(Vec::new()),
            },
        );
        true
    }

    /// Bytes from the client, in any chunking. Ignored for unknown or closing connections.
    pub fn handle_input(&mut self, conn: SimConnId, data: &[u8], now: Instant) {
        let word = match self.conns.get_mut(&conn) {
            Some(c) if !c.closing => {
                c.decoder.push(data);
                match &mut c.prefix {
                    Some(p) => {
                        p.extend_from_slice(&data[..data.len().min(4 - p.len())]);
                        if p.len() < 4 {
                            return;
                        }
                        let word = std::mem::take(p);
                        c.prefix = None;
                        Some(word)
                    }
                    None => None,
                }
            }
            _ => return,
        };
        if let Some(word) = word {
            if let Some(answer) = self.four_letter_word(conn, &word) {
                self.output.push_back((conn, Bytes::from(answer)));
                self.close_conn(conn, true);
                return;
            }
        }
        loop {
            let frame = match self.conns.get_mut(&conn) {
                Some(c) if !c.closing => c.decoder.next_frame(),
                _ => return,
            };
            match frame {
                Ok(Some(f)) => self.on_frame(conn, f, now),
                Ok(None) => return,
                // Bad length prefix: closed without a reply.
                Err(_) => {
                    self.close_conn(conn, true);
                    return;
                }
            }
        }
    }

    /// The client closed (or the connection broke). Its queued output is dropped,
    /// its watches die; the session lives on until it expires or is resumed.
    pub fn handle_closed(&mut self, conn: SimConnId, now: Instant) {
        let _ = now;
        self.close_conn(conn, false);
        self.closes.retain(|c| *c != conn);
        self.conns.remove(&conn);
    }

    /// The next bytes the server wrote, and for which connection: one whole frame
    /// with its length prefix, or the plain-text answer to a four-letter word.
    pub fn poll_output(&mut self) -> Option<(SimConnId, Bytes)> {
        self.output.pop_front()
    }

    /// A connection the server closed, reported once none of its output is left in
    /// [`SimCluster::poll_output`]'s queue. The connection is then forgotten.
    pub fn poll_close(&mut self) -> Option<SimConnId> {
        let idx = self
            .closes
            .iter()
            .position(|c| !self.output.iter().any(|(o, _)| o == c))?;
        let conn = self.closes.remove(idx)?;
        self.conns.remove(&conn);
        Some(conn)
    }

    /// When the next session expires, if the ensemble has a quorum.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.quorum {
            return None;
        }
        self.sessions.values().map(SimSession::deadline).min()
    }

    /// Expires every session whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.quorum {
            return;
        }
        let due: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline() <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.expire_session(id, now);
        }
    }

    // ------------------------------------------------------------ faults

    /// Crashes a member: its connections close at once (unsent output is lost)
    /// and it refuses connections until started. Sessions survive.
    pub fn stop_member(&mut self, m: usize, now: Instant) {
        let Some(member) = self.members.get_mut(m) else {
            return;
        };
        member.up = false;
        member.hold = false;
        self.close_member_conns(m, false);
        self.drop_local_sessions(m);
        self.update_quorum(now);
    }

    /// Restarts a stopped member.
    pub fn start_member(&mut self, m: usize, now: Instant) {
        if let Some(member) = self.members.get_mut(m) {
            member.up = true;
        }
        self.update_quorum(now);
    }

    /// Whether the member is up.
    pub fn is_up(&self, m: usize) -> bool {
        self.members.get(m).is_some_and(|x| x.up)
    }

    /// Puts a member in or out of read-only mode. Its connections are closed
    /// (the server restarts in the new mode) and its local sessions dropped.
    pub fn set_read_only(&mut self, m: usize, ro: bool, now: Instant) {
        let Some(member) = self.members.get_mut(m) else {
            return;
        };
        if member.read_only == ro {
            return;
        }
        member.read_only = ro;
        self.close_member_conns(m, true);
        self.drop_local_sessions(m);
        self.update_quorum(now);
    }

    /// Freezes (true) or unfreezes the zxid the member reports: while frozen, a
    /// client whose lastZxidSeen is beyond it is closed without a response.
    pub fn set_lagging(&mut self, m: usize, lagging: bool) {
        let zxid = self.zxid;
        if let Some(member) = self.members.get_mut(m) {
            member.lag_zxid = if lagging { Some(zxid) } else { None };
        }
    }

    /// Holds (true) the member's request pipeline, or releases it (false), which
    /// answers every held request in order. Auth is never held.
    pub fn set_hold(&mut self, m: usize, hold: bool, now: Instant) {
        let Some(member) = self.members.get_mut(m) else {
            return;
        };
        member.hold = hold;
        if hold {
            return;
        }
        let conns: Vec<SimConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.member == m)
            .map(|(id, _)| *id)
            .collect();
        for id in conns {
            while let Some((xid, op, body)) =
                self.conns.get_mut(&id).and_then(|c| c.held.pop_front())
            {
                self.execute(id, xid, op, body, now);
            }
        }
    }

    /// Scripts the answers to the next SetWatches / SetWatches2 requests (from any
    /// connection), one code per request in arrival order: `Ok` processes the
    /// request normally, any other code is the reply's error and arms nothing.
    /// Once the codes run out, requests are processed normally again.
    pub fn answer_set_watches(&mut self, codes: impl IntoIterator<Item = ErrorCode>) {
        self.set_watches_answers.extend(codes);
    }

    /// The server drops one connection (after its queued output).
    pub fn close_connection(&mut self, conn: SimConnId) {
        self.close_conn(conn, true);
    }

    /// Expires a session now: ephemerals deleted (watches fire), its connection closed.
    pub fn expire_session(&mut self, session_id: i64, now: Instant) {
        if !self.sessions.contains_key(&session_id) {
            return;
        }
        let zxid = self.next_zxid();
        if let Some(conn) = self.kill_session(session_id, zxid, now) {
            self.close_conn(conn, true);
        }
    }

    // -------------------------------------------------------- inspection

    /// Data (`None`: null) and Stat of a node.
    pub fn get(&self, path: &str) -> Option<(Option<Bytes>, Stat)> {
        self.tree
            .nodes
            .get(path)
            .map(|n| (n.data.clone(), n.stat()))
    }

    /// Child names of a node, sorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.tree
            .nodes
            .get(path)
            .map(|n| n.children.iter().cloned().collect())
    }

    /// The stored ACL of a node.
    pub fn acl(&self, path: &str) -> Option<Vec<Acl>> {
        self.tree.nodes.get(path).map(|n| n.acl.clone())
    }

    /// Every node path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.tree.nodes.keys().cloned().collect()
    }

    /// Whether the session exists (not expired or closed).
    pub fn session_alive(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Ids of live sessions.
    pub fn sessions(&self) -> Vec<i64> {
        self.sessions.keys().copied().collect()
    }

    /// The connection a session is attached to.
    pub fn session_conn(&self, id: i64) -> Option<SimConnId> {
        self.sessions.get(&id).and_then(|s| s.conn)
    }

    /// The negotiated timeout of a session, ms.
    pub fn session_timeout(&self, id: i64) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.timeout_ms)
    }

    /// The session a connection completed its handshake for.
    pub fn conn_session(&self, conn: SimConnId) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session)
    }

    /// Paths of a session's ephemeral nodes.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        self.tree
            .ephemerals
            .get(&session_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last zxid assigned.
    pub fn last_zxid(&self) -> i64 {
        self.zxid
    }

    /// Open (not closing) connections on a member.
    pub fn connections(&self, member: usize) -> Vec<SimConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.member == member && !c.closing)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The member a connection is on.
    pub fn conn_member(&self, conn: SimConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.member)
    }

    /// The watches a connection holds.
    pub fn watches(&self, conn: SimConnId) -> Option<&SimWatches> {
        self.conns.get(&conn).map(|c| &c.watches)
    }

    /// Number of watch registrations on a connection (0 if unknown).
    pub fn watch_count(&self, conn: SimConnId) -> usize {
        self.watches(conn).map_or(0, SimWatches::len)
    }

    /// Every request header received after a handshake: (connection, xid, opcode),
    /// in arrival order (auth and held requests included when received).
    pub fn request_log(&self) -> &[(SimConnId, i32, OpCode)] {
        &self.log
    }

    /// Empties the request log.
    pub fn clear_request_log(&mut self) {
        self.log.clear();
    }

    /// Applies a write as an outside client with no session (no ephemerals),
    /// firing watches like any other write. Reads are answered too.
    pub fn admin(&mut self, req: Request, now: Instant) -> Result<Response, ErrorCode> {
        let ctx = Ctx::default();
        if is_write(req.opcode()) {
            let (_, res) = self.apply_write(&ctx, &req, now);
            res
        } else {
            self.apply_read(&req)
        }
    }

    // ----------------------------------------------------------- internals

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

    fn update_quorum(&mut self, now: Instant) {
        let q = self.members.iter().any(|m| m.up && !m.read_only);
        if q && !self.quorum {
            for s in self.sessions.values_mut() {
                s.last_heard = now;
            }
        }
        self.quorum = q;
    }

    fn close_member_conns(&mut self, m: usize, flush: bool) {
        let ids: Vec<SimConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.member == m)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_conn(id, flush);
        }
    }

    fn drop_local_sessions(&mut self, m: usize) {
        self.sessions.retain(|_, s| s.local_to != Some(m));
    }

    fn close_conn(&mut self, cid: SimConnId, flush: bool) {
        let Some(c) = self.conns.get_mut(&cid) else {
            return;
        };
        if !flush {
            self.output.retain(|(o, _)| *o != cid);
        }
        if c.closing {
            return;
        }
        c.closing = true;
        c.watches = SimWatches::default();
        c.held.clear();
        if let Some(sid) = c.session {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if s.conn == Some(cid) {
                    s.conn = None;
                }
            }
        }
        self.closes.push_back(cid);
    }

    fn push_frame(&mut self, cid: SimConnId, f: impl FnOnce(&mut BytesMut)) {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, f);
        self.output.push_back((cid, buf.freeze()));
    }

    fn reply(&mut self, cid: SimConnId, xid: i32, zxid: i64, res: Result<Response, ErrorCode>) {
        let (err, body) = match res {
            Ok(b) => (ErrorCode::Ok, Some(b)),
            Err(e) => (ErrorCode::from_code(e.code()), None),
        };
        self.push_frame(cid, |b| {
            ReplyHeader { xid, zxid, err }.encode(b);
            if let Some(body) = &body {
                body.encode_body(b);
            }
        });
    }

    fn notify(&mut self, cid: SimConnId, event_type: EventType, path: &str) {
        self.push_frame(cid, |b| {
            ReplyHeader {
                xid: -1,
                zxid: -1,
                err: ErrorCode::Ok,
            }
            .encode(b);
            WatcherEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path: path.to_owned(),
            }
            .encode(b);
        });
    }

    /// Sends the notifications a change causes, connection by connection.
    fn fire(&mut self, triggers: Vec<Trigger>) {
        let ids: Vec<SimConnId> = self.conns.keys().copied().collect();
        for t in triggers {
            for &id in &ids {
                let Some(c) = self.conns.get_mut(&id) else {
                    continue;
                };
                if c.closing || c.session.is_none() {
                    continue;
                }
                let w = &mut c.watches;
                let mut events: Vec<(EventType, String)> = Vec::new();
                match &t {
                    Trigger::Created(p) => {
                        if w.fire_data(p) {
                            events.push((EventType::NodeCreated, p.clone()));
                        }
                        let parent = parent_of(p);
                        if w.fire_child(parent) {
                            events.push((EventType::NodeChildrenChanged, parent.to_owned()));
                        }
                    }
                    Trigger::Deleted(p) => {
                        let by_data = w.fire_data(p);
                        let by_child = w.fire_child(p);
                        if by_data || by_child {
                            events.push((EventType::NodeDeleted, p.clone()));
                        }
                        let parent = parent_of(p);
                        if w.fire_child(parent) {
                            events.push((EventType::NodeChildrenChanged, parent.to_owned()));
                        }
                    }
                    Trigger::DataChanged(p) => {
                        if w.fire_data(p) {
                            events.push((EventType::NodeDataChanged, p.clone()));
                        }
                    }
                }
                for (ty, path) in events {
                    self.notify(id, ty, &path);
                }
            }
        }
    }

    /// Ends a session: deletes its ephemerals in txn `zxid`, fires their watches,
    /// forgets it. Returns the connection it was attached to.
    fn kill_session(&mut self, sid: i64, zxid: i64, now: Instant) -> Option<SimConnId> {
        let _ = now;
        let s = self.sessions.remove(&sid)?;
        let paths: Vec<String> = self
            .tree
            .ephemerals
            .remove(&sid)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        let mut triggers = Vec::new();
        for p in paths.iter().rev() {
            self.tree.remove(p, zxid);
            triggers.push(Trigger::Deleted(p.clone()));
        }
        self.fire(triggers);
        s.conn
    }

    fn ctx(&self, cid: SimConnId) -> Ctx {
        let Some(c) = self.conns.get(&cid) else {
            return Ctx::default();
        };
        let session = c.session.unwrap_or(0);
        Ctx {
            session,
            local: self
                .sessions
                .get(&session)
                .is_some_and(|s| s.local_to.is_some()),
            digest_ids: c.digest_users.iter().map(|(_, id)| id.clone()).collect(),
        }
    }

    fn negotiate(&self, requested: i32) -> i32 {
        requested.clamp(self.min_timeout, self.max_timeout)
    }

    /// The answer to a four-letter word sent as the first bytes of a connection
    /// (`None`: not a command; the bytes are a frame length).
    fn four_letter_word(&self, cid: SimConnId, word: &[u8]) -> Option<Vec<u8>> {
        let member = &self.members[self.conns.get(&cid)?.member];
        let text = std::str::from_utf8(word).ok()?;
        Some(match text {
            "isro" => (if member.read_only { "ro" } else { "rw" }).into(),
            "ruok" => "imok".into(),
            "srvr" => format!(
                "Zookeeper version: sim\nZxid: 0x{:x}\nMode: {}\n",
                self.zxid,
                if member.read_only {
                    "read-only"
                } else {
                    "follower"
                }
            )
            .into_bytes(),
            "stat" | "conf" | "cons" | "crst" | "dump" | "envi" | "mntr" | "wchs" | "wchc"
            | "wchp" | "dirs" | "gtmk" | "stmk" | "srst" | "hash" => {
                format!("{text} is not executed because it is not in the whitelist.\n").into_bytes()
            }
            _ => return None,
        })
    }

    fn on_frame(&mut self, cid: SimConnId, frame: Bytes, now: Instant) {
        let Some(c) = self.conns.get(&cid) else {
            return;
        };
        if c.session.is_none() {
            self.handshake(cid, frame, now);
            return;
        }
        if frame.len() < 8 {
            self.close_conn(cid, true);
            return;
        }
        let xid = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let op = OpCode::from_i32(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]));
        let body = frame.slice(8..);
        self.log.push((cid, xid, op));
        let member = c.member;
        let has_held = !c.held.is_empty();
        if let Some(s) = c.session.and_then(|sid| self.sessions.get_mut(&sid)) {
            s.last_heard = now;
        }
        match op {
            OpCode::Auth => self.auth(cid, xid, body),
            OpCode::Sasl => {
                self.reply(cid, xid, 0, Err(ErrorCode::AuthFailed));
                self.close_conn(cid, true);
            }
            _ if self.members[member].hold || has_held => {
                if let Some(c) = self.conns.get_mut(&cid) {
                    c.held.push_back((xid, op, body));
                }
            }
            _ => self.execute(cid, xid, op, body, now),
        }
    }

    fn handshake(&mut self, cid: SimConnId, frame: Bytes, now: Instant) {
        let mut r = Reader::new(frame);
        let Ok(req) = ConnectRequest::decode(&mut r) else {
            self.close_conn(cid, true);
            return;
        };
        let Some(member) = self.conns.get(&cid).map(|c| c.member) else {
            return;
        };
        let ro = self.members[member].read_only;
        if ro && req.read_only != Some(true) {
            self.close_conn(cid, true);
            return;
        }
        if req.last_zxid_seen > self.visible_zxid(member) {
            self.close_conn(cid, true);
            return;
        }
        let ro_byte = req.read_only.is_some();
        let timeout = self.negotiate(req.timeout);
        let sid = if req.session_id == 0 {
            let id = ((member as i64 + 1) << 56) | self.next_session;
            self.next_session += 1;
            if !ro {
                self.next_zxid();
            }
            self.sessions.insert(
                id,
                SimSession {
                    passwd: password_for(id),
                    timeout_ms: timeout,
                    conn: None,
                    last_heard: now,
                    local_to: ro.then_some(member),
                },
            );
            id
        } else {
            let valid = match self.sessions.get(&req.session_id) {
                Some(s) => {
                    if ro && s.local_to != Some(member) {
                        // A read-only server refuses global sessions outright.
                        self.close_conn(cid, true);
                        return;
                    }
                    s.passwd == req.passwd && s.local_to.is_none_or(|m| m == member)
                }
                None if ro => {
                    self.close_conn(cid, true);
                    return;
                }
                None => false,
            };
            if !valid {
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout: 0,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0; 16]),
                    read_only: req.read_only.map(|_| ro),
                };
                self.push_frame(cid, |b| resp.encode(b));
                self.close_conn(cid, true);
                return;
            }
            req.session_id
        };
        let old = {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            s.timeout_ms = timeout;
            s.last_heard = now;
            s.conn.replace(cid)
        };
        if let Some(old) = old.filter(|o| *o != cid) {
            // The session moved: the older connection is closed.
            if let Some(c) = self.conns.get_mut(&old) {
                c.session = None;
            }
            self.close_conn(old, true);
        }
        let passwd = self.sessions[&sid].passwd.clone();
        if let Some(c) = self.conns.get_mut(&cid) {
            c.session = Some(sid);
            c.ro_byte = ro_byte;
        }
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id: sid,
            passwd,
            read_only: req.read_only.map(|_| ro),
        };
        self.push_frame(cid, |b| resp.encode(b));
    }

    fn auth(&mut self, cid: SimConnId, xid: i32, body: Bytes) {
        let Ok(pkt) = AuthPacket::decode(&mut Reader::new(body)) else {
            self.close_conn(cid, true);
            return;
        };
        if pkt.scheme != "digest" {
            self.reply(cid, xid, 0, Err(ErrorCode::AuthFailed));
            self.close_conn(cid, true);
            return;
        }
        let text = String::from_utf8_lossy(&pkt.auth).into_owned();
        let user = text.split(':').next().unwrap_or("").to_owned();
        let id = digest_id(&text);
        if let Some(c) = self.conns.get_mut(&cid) {
            if !c.digest_users.iter().any(|(_, i)| *i == id) {
                c.digest_users.push((user, id));
            }
        }
        self.reply(cid, xid, 0, Ok(Response::Empty));
    }

    /// Processes one pipelined request and queues its reply.
    fn execute(&mut self, cid: SimConnId, xid: i32, op: OpCode, body: Bytes, now: Instant) {
        let member = match self.conns.get(&cid) {
            Some(c) if !c.closing && !c.hung => c.member,
            _ => return,
        };
        let cur = self.visible_zxid(member);
        match op {
            OpCode::Check => {
                if let Some(c) = self.conns.get_mut(&cid) {
                    c.hung = true;
                }
                return;
            }
            OpCode::Unknown(_)
            | OpCode::Notification
            | OpCode::CreateSession
            | OpCode::Error
            | OpCode::DeleteContainer => {
                self.reply(cid, xid, -1, Err(ErrorCode::Unimplemented));
                self.close_conn(cid, true);
                return;
            }
            _ => {}
        }
        let mut r = Reader::new(body);
        let req = match Request::decode_body(op, &mut r) {
            Ok(Request::Multi(m)) if m.ops.iter().any(MultiOp::is_read) => None,
            Ok(Request::MultiRead(m)) if m.ops.iter().any(|o| !o.is_read()) => None,
            Ok(req) => Some(req),
            Err(_) => None,
        };
        let Some(req) = req else {
            self.reply(cid, xid, cur, Err(ErrorCode::MarshallingError));
            return;
        };
        if self.members[member].read_only && is_write(op) {
            self.reply(cid, xid, cur, Err(ErrorCode::NotReadOnly));
            return;
        }
        match req {
            Request::Ping => self.reply(cid, -2, cur, Ok(Response::Empty)),
            Request::CloseSession => {
                let zxid = self.next_zxid();
                if let Some(sid) = self.conns.get(&cid).and_then(|c| c.session) {
                    self.kill_session(sid, zxid, now);
                }
                self.reply(cid, xid, zxid, Ok(Response::Empty));
                self.close_conn(cid, true);
            }
            Request::Reconfig(_) => self.reply(cid, xid, cur, Err(ErrorCode::ReconfigDisabled)),
            Request::Sync(p) => {
                let res =
                    check_path(&p.path).map(|_| Response::Sync(PathResponse { path: p.path }));
                self.reply(cid, xid, cur, res);
            }
            req if is_write(op) => {
                let ctx = self.ctx(cid);
                let (zxid, res) = self.apply_write(&ctx, &req, now);
                self.reply(cid, xid, zxid, res);
            }
            Request::Exists(r) => {
                let res = self
                    .tree
                    .node(&r.path)
                    .map(|n| Response::Stat(StatResponse { stat: n.stat() }));
                if r.watch && !matches!(res, Err(ErrorCode::BadArguments)) {
                    self.watches_mut(cid).data.insert(r.path);
                }
                self.reply(cid, xid, cur, res);
            }
            Request::GetData(r) => {
                let res = self.tree.get_data(&r.path).map(Response::GetData);
                if r.watch && res.is_ok() {
                    self.watches_mut(cid).data.insert(r.path);
                }
                self.reply(cid, xid, cur, res);
            }
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                let res = self.tree.children(&r.path).map(|(children, stat)| {
                    if op == OpCode::GetChildren {
                        Response::GetChildren(GetChildrenResponse { children })
                    } else {
                        Response::GetChildren2(GetChildren2Response { children, stat })
                    }
                });
                if r.watch && res.is_ok() {
                    self.watches_mut(cid).child.insert(r.path);
                }
                self.reply(cid, xid, cur, res);
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r) => {
                let remove = op == OpCode::RemoveWatches;
                let res = self.remove_watches(cid, &r, remove);
                self.reply(cid, xid, cur, res.map(|_| Response::Empty));
            }
            Request::AddWatch(r) => {
                let res = check_path(&r.path).and_then(|_| {
                    let w = self.watches_mut(cid);
                    match r.mode {
                        AddWatchMode::Persistent => w.persistent.insert(r.path.clone()),
                        AddWatchMode::PersistentRecursive => w.recursive.insert(r.path.clone()),
                        _ => return Err(ErrorCode::BadArguments),
                    };
                    Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
                });
                self.reply(cid, xid, cur, res);
            }
            Request::SetWatches(_) | Request::SetWatches2(_)
                if self.set_watches_answers.front().is_some_and(|c| !c.is_ok()) =>
            {
                let code = self.set_watches_answers.pop_front().unwrap_or_default();
                self.reply(cid, xid, cur, Err(code));
            }
            Request::SetWatches(sw) => {
                self.set_watches_answers.pop_front();
                let sw2 = SetWatches2 {
                    relative_zxid: sw.relative_zxid,
                    data_watches: sw.data_watches,
                    exist_watches: sw.exist_watches,
                    child_watches: sw.child_watches,
                    ..SetWatches2::default()
                };
                self.set_watches(cid, sw2);
                self.reply(cid, xid, cur, Ok(Response::Empty));
            }
            Request::SetWatches2(sw) => {
                self.set_watches_answers.pop_front();
                self.set_watches(cid, sw);
                self.reply(cid, xid, cur, Ok(Response::Empty));
            }
            Request::GetEphemerals(p) => {
                let sid = self.conns.get(&cid).and_then(|c| c.session).unwrap_or(0);
                let all = p.path.is_empty() || p.path == "/";
                let ephemerals = self
                    .ephemerals(sid)
                    .into_iter()
                    .filter(|e| all || e.starts_with(&p.path))
                    .collect();
                let res = Response::GetEphemerals(GetEphemeralsResponse { ephemerals });
                self.reply(cid, xid, cur, Ok(res));
            }
            Request::WhoAmI => {
                let mut client_info = vec![ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                }];
                if let Some(c) = self.conns.get(&cid) {
                    for (user, _) in &c.digest_users {
                        client_info.push(ClientInfo {
                            auth_scheme: "digest".into(),
                            user: user.clone(),
                        });
                    }
                }
                let res = Response::WhoAmI(WhoAmIResponse { client_info });
                self.reply(cid, xid, cur, Ok(res));
            }
            req => {
                let res = self.apply_read(&req);
                self.reply(cid, xid, cur, res);
            }
        }
    }

    fn watches_mut(&mut self, cid: SimConnId) -> &mut SimWatches {
        // Only called for connections known to exist.
        &mut self
            .conns
            .get_mut(&cid)
            .expect("connection checked by the caller")
            .watches
    }

    fn remove_watches(
        &mut self,
        cid: SimConnId,
        r: &WatchesRequest,
        remove: bool,
    ) -> Result<(), ErrorCode> {
        check_path(&r.path)?;
        let w = self.watches_mut(cid);
        let p = r.path.as_str();
        let tables: Vec<&mut BTreeSet<String>> = match r.watcher_type {
            WatcherType::Children => vec![&mut w.child],
            WatcherType::Data => vec![&mut w.data],
            WatcherType::Any => vec![
                &mut w.data,
                &mut w.child,
                &mut w.persistent,
                &mut w.recursive,
            ],
            WatcherType::Persistent => vec![&mut w.persistent],
            WatcherType::PersistentRecursive => vec![&mut w.recursive],
            _ => return Err(ErrorCode::BadArguments),
        };
        let mut found = false;
        for t in tables {
            if remove {
                found |= t.remove(p);
            } else {
                found |= t.contains(p);
            }
        }
        if found {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// SetWatches(2): catch-up events for what changed after `relative_zxid`
    /// (queued before the reply), re-arm the rest.
    fn set_watches(&mut self, cid: SimConnId, sw: SetWatches2) {
        let rel = sw.relative_zxid;
        let mut events = Vec::new();
        let mut armed = SimWatches::default();
        for p in sw.data_watches {
            match self.tree.nodes.get(&p) {
                None => events.push((EventType::NodeDeleted, p)),
                Some(n) if n.mzxid > rel => events.push((EventType::NodeDataChanged, p)),
                Some(_) => {
                    armed.data.insert(p);
                }
            }
        }
        for p in sw.exist_watches {
            if self.tree.nodes.contains_key(&p) {
                events.push((EventType::NodeCreated, p));
            } else {
                armed.data.insert(p);
            }
        }
        for p in sw.child_watches {
            match self.tree.nodes.get(&p) {
                None => events.push((EventType::NodeDeleted, p)),
                Some(n) if n.pzxid > rel => events.push((EventType::NodeChildrenChanged, p)),
                Some(_) => {
                    armed.child.insert(p);
                }
            }
        }
        armed.persistent.extend(sw.persistent_watches);
        armed.recursive.extend(sw.persistent_recursive_watches);
        let w = self.watches_mut(cid);
        w.data.extend(armed.data);
        w.child.extend(armed.child);
        w.persistent.extend(armed.persistent);
        w.recursive.extend(armed.recursive);
        for (ty, p) in events {
            self.notify(cid, ty, &p);
        }
    }

    /// Applies a write (never fails to assign a zxid), firing watches on success.
    fn apply_write(
        &mut self,
        ctx: &Ctx,
        req: &Request,
        now: Instant,
    ) -> (i64, Result<Response, ErrorCode>) {
        let zxid = self.next_zxid();
        let time = self.time_ms(now);
        let mut triggers = Vec::new();
        let res = match req {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => {
                let op = req.opcode();
                self.tree
                    .create(ctx, op, c, -1, zxid, time, &mut triggers)
                    .map(|(path, stat)| {
                        if op == OpCode::Create {
                            Response::Create(CreateResponse { path })
                        } else {
                            Response::Create2(Create2Response { path, stat })
                        }
                    })
            }
            Request::CreateTtl(c) => {
                let cr = CreateRequest {
                    path: c.path.clone(),
                    data: c.data.clone(),
                    acl: c.acl.clone(),
                    flags: c.flags,
                };
                self.tree
                    .create(
                        ctx,
                        OpCode::CreateTtl,
                        &cr,
                        c.ttl,
                        zxid,
                        time,
                        &mut triggers,
                    )
                    .map(|(path, stat)| Response::Create2(Create2Response { path, stat }))
            }
            Request::Delete(d) => self
                .tree
                .delete(&d.path, d.version, zxid, &mut triggers)
                .map(|_| Response::Empty),
            Request::SetData(s) => self
                .tree
                .set_data(s, zxid, time, &mut triggers)
                .map(|stat| Response::Stat(StatResponse { stat })),
            Request::SetAcl(s) => self
                .tree
                .set_acl(ctx, s)
                .map(|stat| Response::Stat(StatResponse { stat })),
            Request::Multi(m) => Ok(Response::Multi(self.multi(
                ctx,
                m,
                zxid,
                time,
                &mut triggers,
            ))),
            Request::Sync(p) => Ok(Response::Sync(PathResponse {
                path: p.path.clone(),
            })),
            _ => Err(ErrorCode::Unimplemented),
        };
        self.fire(triggers);
        (zxid, res)
    }

    fn multi(
        &mut self,
        ctx: &Ctx,
        m: &MultiRequest,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> MultiResponse {
        let mut staged = self.tree.clone();
        let mut staged_triggers = Vec::new();
        let mut results = Vec::new();
        let mut failed = None;
        for (i, op) in m.ops.iter().enumerate() {
            let t = &mut staged_triggers;
            let res = match op {
                MultiOp::Create { op, req } => {
                    staged
                        .create(ctx, *op, req, -1, zxid, time, t)
                        .map(|(path, stat)| match op {
                            OpCode::Create | OpCode::Create2 => {
                                MultiResult::Create(CreateResponse { path })
                            }
                            _ => MultiResult::Create2(Create2Response { path, stat }),
                        })
                }
                MultiOp::CreateTtl(c) => {
                    let cr = CreateRequest {
                        path: c.path.clone(),
                        data: c.data.clone(),
                        acl: c.acl.clone(),
                        flags: c.flags,
                    };
                    staged
                        .create(ctx, OpCode::CreateTtl, &cr, c.ttl, zxid, time, t)
                        .map(|(path, stat)| MultiResult::Create2(Create2Response { path, stat }))
                }
                MultiOp::Delete(d) => staged
                    .delete(&d.path, d.version, zxid, t)
                    .map(|_| MultiResult::Delete),
                MultiOp::SetData(s) => staged
                    .set_data(s, zxid, time, t)
                    .map(|stat| MultiResult::SetData(StatResponse { stat })),
                MultiOp::Check(c) => staged.check(c).map(|_| MultiResult::Check),
                _ => Err(ErrorCode::MarshallingError),
            };
            match res {
                Ok(r) => results.push(r),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if let Some((i, e)) = failed {
            let results = (0..m.ops.len())
                .map(|j| {
                    MultiResult::Error(match j.cmp(&i) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => e,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    })
                })
                .collect();
            return MultiResponse { results };
        }
        self.tree = staged;
        triggers.extend(staged_triggers);
        MultiResponse { results }
    }

    /// Reads that set no watches.
    fn apply_read(&self, req: &Request) -> Result<Response, ErrorCode> {
        match req {
            Request::Exists(r) => self
                .tree
                .node(&r.path)
                .map(|n| Response::Stat(StatResponse { stat: n.stat() })),
            Request::GetData(r) => self.tree.get_data(&r.path).map(Response::GetData),
            Request::GetChildren(r) => self
                .tree
                .children(&r.path)
                .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
            Request::GetChildren2(r) => self.tree.children(&r.path).map(|(children, stat)| {
                Response::GetChildren2(GetChildren2Response { children, stat })
            }),
            Request::GetAcl(r) => self.tree.node(&r.path).map(|n| {
                Response::GetAcl(GetAclResponse {
                    acl: n.acl.clone(),
                    stat: n.stat(),
                })
            }),
            Request::GetAllChildrenNumber(r) => self.tree.node(&r.path).map(|_| {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                    total_number: self.tree.descendants(&r.path) as i32,
                })
            }),
            Request::MultiRead(m) => {
                let results = m
                    .ops
                    .iter()
                    .map(|op| match op {
                        MultiOp::GetData(r) => match self.tree.get_data(&r.path) {
                            Ok(d) => MultiResult::GetData(d),
                            Err(e) => MultiResult::Error(e),
                        },
                        MultiOp::GetChildren(r) => match self.tree.children(&r.path) {
                            Ok((children, _)) => {
                                MultiResult::GetChildren(GetChildrenResponse { children })
                            }
                            Err(e) => MultiResult::Error(e),
                        },
                        _ => MultiResult::Error(ErrorCode::MarshallingError),
                    })
                    .collect();
                Ok(Response::Multi(MultiResponse { results }))
            }
            _ => Err(ErrorCode::Unimplemented),
        }
    }
}

use crate::digest::digest_id;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::{from_bytes, to_bytes};
    use crate::types::Perms;

    struct T {
        c: SimCluster,
        now: Instant,
        next_conn: u64,
    }

    /// A raw client: a connection and its session.
    #[derive(Clone, Copy)]
    struct Cli {
        conn: SimConnId,
        sid: i64,
    }

    fn frame(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        write_frame(&mut b, f);
        b.to_vec()
    }

    fn connect_frame(
        sid: i64,
        passwd: &[u8],
        last_zxid: i64,
        timeout: i32,
        ro: Option<bool>,
    ) -> Vec<u8> {
        frame(|b| {
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: last_zxid,
                timeout,
                session_id: sid,
                passwd: Bytes::copy_from_slice(passwd),
                read_only: ro,
            }
            .encode(b)
        })
    }

    fn req_frame(xid: i32, req: &Request) -> Vec<u8> {
        frame(|b| {
            RequestHeader {
                xid,
                op: req.opcode(),
            }
            .encode(b);
            req.encode_body(b);
        })
    }

    fn create(path: &str, data: &[u8], flags: i32) -> CreateRequest {
        CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            acl: Acl::open_unsafe(),
            flags,
        }
    }

    fn pw(path: &str, watch: bool) -> PathWatchRequest {
        PathWatchRequest {
            path: path.into(),
            watch,
        }
    }

    /// A decoded server frame: a reply (header + body) for one connection.
    fn split(frame: &Bytes) -> (ReplyHeader, Bytes) {
        let payload = frame.slice(4..);
        let mut r = Reader::new(payload.clone());
        let h = ReplyHeader::decode(&mut r).unwrap();
        (h, payload.slice(16..))
    }

    impl T {
        #[allow(clippy::disallowed_methods)] // a test needs some instant to start from
        fn new(members: usize) -> T {
            let now = Instant::now(); // clock-exception: test start instant
            T {
                c: SimCluster::new(members, now),
                now,
                next_conn: 1,
            }
        }

        fn advance(&mut self, ms: u64) {
            self.now = later(self.now, Duration::from_millis(ms));
            self.c.handle_timeout(self.now);
        }

        fn accept(&mut self, member: usize) -> SimConnId {
            let id = SimConnId(self.next_conn);
            self.next_conn += 1;
            assert!(self.c.accept(member, id, self.now));
            id
        }

        fn send(&mut self, conn: SimConnId, bytes: &[u8]) {
            self.c.handle_input(conn, bytes, self.now);
        }

        /// All queued frames for `conn` (other connections' frames are kept).
        fn out(&mut self, conn: SimConnId) -> Vec<Bytes> {
            let mut mine = Vec::new();
            let mut rest = VecDeque::new();
            while let Some((c, b)) = self.c.poll_output() {
                if c == conn {
                    mine.push(b);
                } else {
                    rest.push_back((c, b));
                }
            }
            self.c.output = rest;
            mine
        }

        fn closes(&mut self) -> Vec<SimConnId> {
            std::iter::from_fn(|| self.c.poll_close()).collect()
        }

        fn handshake(
            &mut self,
            member: usize,
            sid: i64,
            passwd: &[u8],
            ro: Option<bool>,
        ) -> (SimConnId, Vec<Bytes>) {
            let conn = self.accept(member);
            self.send(conn, &connect_frame(sid, passwd, 0, 10_000, ro));
            let out = self.out(conn);
            (conn, out)
        }

        fn session(&mut self, member: usize) -> Cli {
            let (conn, out) = self.handshake(member, 0, &[0; 16], Some(false));
            assert_eq!(out.len(), 1);
            let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
            Cli {
                conn,
                sid: resp.session_id,
            }
        }

        /// Sends a request and returns every frame the connection got back.
        fn call(&mut self, cli: Cli, xid: i32, req: &Request) -> Vec<(ReplyHeader, Bytes)> {
            self.send(cli.conn, &req_frame(xid, req));
            self.out(cli.conn).iter().map(split).collect()
        }

        /// Sends a request and returns its reply (the last frame), checking the xid.
        fn ok(&mut self, cli: Cli, xid: i32, req: &Request) -> Response {
            let frames = self.call(cli, xid, req);
            let (h, body) = frames.last().cloned().expect("a reply");
            assert_eq!(h.xid, xid);
            assert_eq!(h.err, ErrorCode::Ok, "{req:?}");
            Response::decode_body(req.opcode(), &mut Reader::new(body)).unwrap()
        }

        fn err(&mut self, cli: Cli, xid: i32, req: &Request) -> ErrorCode {
            let frames = self.call(cli, xid, req);
            let (h, body) = frames.last().cloned().expect("a reply");
            assert_eq!(h.xid, xid);
            assert!(body.is_empty(), "error replies carry no body");
            h.err
        }
    }

    fn event(frame: &(ReplyHeader, Bytes)) -> (EventType, String) {
        assert_eq!(frame.0.xid, -1);
        assert_eq!(frame.0.zxid, -1);
        let e: WatcherEvent = from_bytes(frame.1.clone()).unwrap();
        assert_eq!(e.state, KeeperState::SyncConnected);
        (e.event_type, e.path)
    }

    #[test]
    fn handshake_new_session_and_timeout_clamp() {
        let mut t = T::new(3);
        let conn = t.accept(1);
        t.send(conn, &connect_frame(0, &[0; 16], 0, 100_000, Some(false)));
        let out = t.out(conn);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].len(),
            4 + 37,
            "ConnectResponse with the read-only byte"
        );
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 40_000);
        assert_eq!(resp.session_id >> 56, 2, "top byte is the member id");
        assert_eq!(resp.passwd.len(), 16);
        assert_eq!(resp.read_only, Some(false));
        assert!(t.c.session_alive(resp.session_id));

        // Without the trailing byte: 36 bytes; timeout clamped up.
        let conn = t.accept(0);
        t.send(conn, &connect_frame(0, &[0; 16], 0, 1, None));
        let out = t.out(conn);
        assert_eq!(out[0].len(), 4 + 36);
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 4000);
        assert_eq!(resp.read_only, None);
    }

    #[test]
    fn handshake_in_any_chunking() {
        let mut t = T::new(1);
        let conn = t.accept(0);
        let bytes = connect_frame(0, &[0; 16], 0, 10_000, Some(false));
        for b in &bytes {
            t.send(conn, std::slice::from_ref(b));
        }
        assert_eq!(t.out(conn).len(), 1);
    }

    #[test]
    fn resume_moves_session_and_closes_old_connection() {
        let mut t = T::new(3);
        let a = t.session(0);
        let passwd = password_for(a.sid);
        let (b, out) = t.handshake(2, a.sid, &passwd, Some(false));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.session_id, a.sid);
        assert_eq!(resp.passwd, passwd);
        assert_eq!(t.closes(), vec![a.conn]);
        assert_eq!(t.c.session_conn(a.sid), Some(b));
    }

    #[test]
    fn wrong_password_and_unknown_session_get_invalid_response_then_close() {
        let mut t = T::new(1);
        let a = t.session(0);
        for (sid, pw) in [(a.sid, [7u8; 16]), (12345, [0; 16])] {
            let (conn, out) = t.handshake(0, sid, &pw, Some(false));
            assert_eq!(out.len(), 1);
            let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
            assert_eq!(resp.timeout, 0);
            assert_eq!(resp.session_id, 0);
            assert_eq!(&resp.passwd[..], &[0; 16]);
            assert_eq!(t.closes(), vec![conn]);
        }
        assert!(
            t.c.session_alive(a.sid),
            "a wrong password does not hurt the session"
        );
    }

    #[test]
    fn client_ahead_of_server_is_closed_without_response() {
        let mut t = T::new(2);
        let a = t.session(0);
        t.c.set_lagging(1, true);
        t.ok(a, 1, &Request::Create(create("/x", b"", 0)));
        let zxid = t.c.last_zxid();
        let conn = t.accept(1);
        t.send(conn, &connect_frame(0, &[0; 16], zxid, 10_000, Some(false)));
        assert!(t.out(conn).is_empty());
        assert_eq!(t.closes(), vec![conn]);
        // The up-to-date member accepts it.
        let conn = t.accept(0);
        t.send(conn, &connect_frame(0, &[0; 16], zxid, 10_000, Some(false)));
        assert_eq!(t.out(conn).len(), 1);
    }

    #[test]
    fn create_get_set_delete() {
        let mut t = T::new(1);
        let a = t.session(0);
        let Response::Create2(c) = t.ok(a, 1, &Request::Create2(create("/a", b"hi", 0))) else {
            panic!()
        };
        assert_eq!(c.path, "/a");
        assert_eq!(c.stat.data_length, 2);
        assert_eq!(c.stat.czxid, t.c.last_zxid());
        assert_eq!(c.stat.ephemeral_owner, 0);
        let Response::Create(c) = t.ok(a, 2, &Request::Create(create("/a/b", b"", 0))) else {
            panic!()
        };
        assert_eq!(c.path, "/a/b");
        let Response::GetData(d) = t.ok(a, 3, &Request::GetData(pw("/a", false))) else {
            panic!()
        };
        assert_eq!(d.data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(d.stat.num_children, 1);
        assert_eq!(d.stat.cversion, 1);

        let set = |v| {
            Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"v2")),
                version: v,
            })
        };
        assert_eq!(t.err(a, 4, &set(5)), ErrorCode::BadVersion);
        let Response::Stat(s) = t.ok(a, 5, &set(0)) else {
            panic!()
        };
        assert_eq!(s.stat.version, 1);
        assert_eq!(s.stat.mzxid, t.c.last_zxid());

        let del = |p: &str, v| {
            Request::Delete(DeleteRequest {
                path: p.into(),
                version: v,
            })
        };
        assert_eq!(t.err(a, 6, &del("/a", -1)), ErrorCode::NotEmpty);
        assert_eq!(t.err(a, 7, &del("/nope", -1)), ErrorCode::NoNode);
        assert_eq!(t.err(a, 8, &del("/a/b", 3)), ErrorCode::BadVersion);
        assert_eq!(t.ok(a, 9, &del("/a/b", 0)), Response::Empty);
        assert_eq!(
            t.err(a, 10, &del("/zookeeper", -1)),
            ErrorCode::BadArguments
        );
        assert_eq!(
            t.err(a, 11, &Request::Create(create("/a", b"", 0))),
            ErrorCode::NodeExists
        );
        assert_eq!(
            t.err(a, 12, &Request::Create(create("/x/y", b"", 0))),
            ErrorCode::NoNode
        );
        assert_eq!(
            t.err(a, 13, &Request::Create(create("/f", b"", 7))),
            ErrorCode::BadArguments
        );
        assert_eq!(
            t.err(a, 14, &Request::Create(create("/f", b"", 5))),
            ErrorCode::BadArguments,
            "TTL flags on op 1"
        );
        let Response::Create2(e) = t.ok(a, 15, &Request::Create2(create("/e", b"", 1))) else {
            panic!()
        };
        assert_eq!(e.stat.ephemeral_owner, a.sid);
        assert_eq!(
            t.err(a, 16, &Request::Create(create("/e/c", b"", 0))),
            ErrorCode::NoChildrenForEphemerals
        );
        let ttl = |flags, ttl| {
            Request::CreateTtl(CreateTtlRequest {
                path: "/ttl".into(),
                data: Some(Bytes::new()),
                acl: Acl::open_unsafe(),
                flags,
                ttl,
            })
        };
        assert_eq!(t.err(a, 17, &ttl(0, 100)), ErrorCode::BadArguments);
        assert_eq!(t.err(a, 18, &ttl(5, 0)), ErrorCode::BadArguments);
        let Response::Create2(c) = t.ok(a, 19, &ttl(5, 100)) else {
            panic!()
        };
        assert_eq!(c.stat.ephemeral_owner, 0);
        assert_eq!(
            t.err(
                a,
                20,
                &Request::Create(CreateRequest {
                    acl: vec![],
                    ..create("/n", b"", 0)
                })
            ),
            ErrorCode::InvalidAcl
        );
        let Response::GetChildren(ch) = t.ok(a, 21, &Request::GetChildren(pw("/", false))) else {
            panic!()
        };
        assert_eq!(ch.children, vec!["a", "e", "ttl", "zookeeper"]);
        assert_eq!(
            t.ok(
                a,
                22,
                &Request::GetAllChildrenNumber(PathRequest { path: "/".into() })
            ),
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 6 })
        );
        let Response::GetEphemerals(e) = t.ok(
            a,
            23,
            &Request::GetEphemerals(PathRequest { path: "/".into() }),
        ) else {
            panic!()
        };
        assert_eq!(e.ephemerals, vec!["/e"]);
        assert_eq!(
            t.err(a, 24, &Request::Exists(pw("/nothere", false))),
            ErrorCode::NoNode
        );
    }

    #[test]
    fn replies_carry_the_xid_and_zxid() {
        let mut t = T::new(1);
        let a = t.session(0);
        let z0 = t.c.last_zxid();
        let frames = t.call(a, 41, &Request::Create(create("/z", b"", 0)));
        assert_eq!(frames[0].0.xid, 41);
        assert_eq!(frames[0].0.zxid, z0 + 1);
        // A failed write consumes a zxid too.
        let frames = t.call(a, 42, &Request::Create(create("/z", b"", 0)));
        assert_eq!(frames[0].0.zxid, z0 + 2);
        // Reads report the last zxid.
        let frames = t.call(a, 43, &Request::GetData(pw("/z", false)));
        assert_eq!(frames[0].0.zxid, z0 + 2);
        // Ping: xid -2 whatever was sent.
        let frames = t.call(a, 44, &Request::Ping);
        assert_eq!(frames[0].0.xid, -2);
        assert_eq!(frames[0].0.zxid, z0 + 2);
    }

    #[test]
    fn sequential_names_come_from_the_parent_counter() {
        let mut t = T::new(1);
        let a = t.session(0);
        t.ok(a, 1, &Request::Create(create("/q", b"", 0)));
        let mut names = Vec::new();
        for i in 0..3 {
            let Response::Create(c) = t.ok(a, 2 + i, &Request::Create(create("/q/n-", b"", 2)))
            else {
                panic!()
            };
            names.push(c.path);
        }
        assert_eq!(
            names,
            ["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"]
        );
        t.ok(
            a,
            10,
            &Request::Delete(DeleteRequest {
                path: "/q/n-0000000002".into(),
                version: -1,
            }),
        );
        // The counter counts creates, not live children.
        let Response::Create2(c) = t.ok(a, 11, &Request::Create2(create("/q/", b"", 3))) else {
            panic!()
        };
        assert_eq!(c.path, "/q/0000000003");
        assert_eq!(c.stat.ephemeral_owner, a.sid);
        let (_, stat) = t.c.get("/q").unwrap();
        assert_eq!(stat.cversion, 4 * 2 - 3);
    }

    #[test]
    fn failed_multi_bytes_and_nothing_applied() {
        let mut t = T::new(1);
        let a = t.session(0);
        t.ok(a, 1, &Request::Create(create("/m", b"", 0)));
        let z0 = t.c.last_zxid();
        let multi = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create,
                    req: create("/m/new", b"", 0),
                },
                MultiOp::Create {
                    op: OpCode::Create,
                    req: create("/m", b"", 0),
                },
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: Some(Bytes::new()),
                    version: -1,
                }),
            ],
        });
        let frames = t.call(a, 2, &multi);
        assert_eq!(frames.len(), 1);
        let (h, body) = &frames[0];
        assert_eq!(h.err, ErrorCode::Ok, "a failed multi has header err 0");
        assert_eq!(h.zxid, z0 + 1);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, // error, Ok
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x92, 0xff, 0xff, 0xff, 0x92, // NodeExists
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe, // RuntimeInconsistency
            0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff, // terminator
        ];
        // The Ok slot: header err 0, ErrorResponse 0.
        let mut exp = expected.to_vec();
        exp[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(&body[..], &exp[..]);
        assert!(t.c.get("/m/new").is_none());
        assert_eq!(t.c.get("/m").unwrap().1.version, 0);

        // A successful multi shares one zxid and applies everything.
        let ok = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create2,
                    req: create("/m/x", b"", 0),
                },
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 0,
                }),
                MultiOp::Create {
                    op: OpCode::CreateContainer,
                    req: create("/m/c", b"", 4),
                },
            ],
        });
        let Response::Multi(m) = t.ok(a, 3, &ok) else {
            panic!()
        };
        assert!(matches!(&m.results[0], MultiResult::Create(c) if c.path == "/m/x"));
        assert_eq!(m.results[1], MultiResult::Check);
        assert!(
            matches!(&m.results[2], MultiResult::Create2(c) if c.stat.czxid == t.c.last_zxid())
        );
        assert_eq!(t.c.get("/m/x").unwrap().1.czxid, t.c.last_zxid());

        // Reads inside multi: MARSHALLINGERROR, connection stays.
        let bad = Request::Multi(MultiRequest {
            ops: vec![MultiOp::GetData(pw("/m", false))],
        });
        assert_eq!(t.err(a, 4, &bad), ErrorCode::MarshallingError);
        let mr = Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(pw("/m", true)),
                MultiOp::GetChildren(pw("/none", false)),
            ],
        });
        let Response::Multi(m) = t.ok(a, 5, &mr) else {
            panic!()
        };
        assert!(matches!(m.results[0], MultiResult::GetData(_)));
        assert_eq!(m.results[1], MultiResult::Error(ErrorCode::NoNode));
        assert_eq!(t.c.watch_count(a.conn), 0, "multiRead sets no watches");
        assert!(t.closes().is_empty());
    }

    #[test]
    fn watch_fires_on_another_connection_before_the_reply() {
        let mut t = T::new(2);
        let a = t.session(0);
        let b = t.session(1);
        t.ok(a, 1, &Request::Create(create("/w", b"", 0)));
        t.ok(a, 2, &Request::GetData(pw("/w", true)));
        assert_eq!(
            t.err(a, 3, &Request::Exists(pw("/w/kid", true))),
            ErrorCode::NoNode
        );
        t.ok(a, 4, &Request::GetChildren(pw("/w", true)));
        assert_eq!(t.c.watch_count(a.conn), 3);

        // B writes; A gets one NodeDataChanged.
        let set = Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: Some(Bytes::from_static(b"x")),
            version: -1,
        });
        t.ok(b, 1, &set);
        let got: Vec<_> = t.out(a.conn).iter().map(split).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(event(&got[0]), (EventType::NodeDataChanged, "/w".into()));
        // One-shot: a second write fires nothing.
        t.ok(b, 2, &set);
        assert!(t.out(a.conn).is_empty());

        // A's own create: events first, then the reply.
        let frames = t.call(a, 5, &Request::Create(create("/w/kid", b"", 0)));
        assert_eq!(frames.len(), 3);
        assert_eq!(event(&frames[0]), (EventType::NodeCreated, "/w/kid".into()));
        assert_eq!(
            event(&frames[1]),
            (EventType::NodeChildrenChanged, "/w".into())
        );
        assert_eq!(frames[2].0.xid, 5);
        assert_eq!(t.c.watch_count(a.conn), 0);

        // Delete fan-out: one NodeDeleted per connection even with data and child watches.
        t.ok(a, 6, &Request::GetData(pw("/w/kid", true)));
        t.ok(a, 7, &Request::GetChildren(pw("/w/kid", true)));
        t.ok(a, 8, &Request::GetChildren(pw("/w", true)));
        t.ok(
            b,
            3,
            &Request::Delete(DeleteRequest {
                path: "/w/kid".into(),
                version: -1,
            }),
        );
        let got: Vec<_> = t.out(a.conn).iter().map(split).map(|f| event(&f)).collect();
        assert_eq!(
            got,
            vec![
                (EventType::NodeDeleted, "/w/kid".to_owned()),
                (EventType::NodeChildrenChanged, "/w".to_owned())
            ]
        );
    }

    #[test]
    fn persistent_and_recursive_watches() {
        let mut t = T::new(1);
        let a = t.session(0);
        let b = t.session(0);
        let add = |p: &str, mode| {
            Request::AddWatch(AddWatchRequest {
                path: p.into(),
                mode,
            })
        };
        t.ok(a, 1, &add("/p", AddWatchMode::Persistent));
        t.ok(a, 2, &add("/r", AddWatchMode::PersistentRecursive));
        t.ok(b, 1, &Request::Create(create("/p", b"", 0)));
        t.ok(b, 2, &Request::Create(create("/p/c", b"", 0)));
        t.ok(b, 3, &Request::Create(create("/r", b"", 0)));
        t.ok(b, 4, &Request::Create(create("/r/c", b"", 0)));
        t.ok(
            b,
            5,
            &Request::SetData(SetDataRequest {
                path: "/r/c".into(),
                data: Some(Bytes::new()),
                version: -1,
            }),
        );
        let got: Vec<_> = t.out(a.conn).iter().map(split).map(|f| event(&f)).collect();
        assert_eq!(
            got,
            vec![
                (EventType::NodeCreated, "/p".to_owned()),
                (EventType::NodeChildrenChanged, "/p".to_owned()),
                (EventType::NodeCreated, "/r".to_owned()),
                (EventType::NodeCreated, "/r/c".to_owned()),
                (EventType::NodeDataChanged, "/r/c".to_owned()),
            ]
        );
        // Removal: NoWatcher when there is none.
        let rm = |p: &str, ty| {
            Request::RemoveWatches(WatchesRequest {
                path: p.into(),
                watcher_type: ty,
            })
        };
        assert_eq!(
            t.err(a, 3, &rm("/p", WatcherType::Data)),
            ErrorCode::NoWatcher
        );
        let chk = Request::CheckWatches(WatchesRequest {
            path: "/p".into(),
            watcher_type: WatcherType::Any,
        });
        t.ok(a, 4, &chk);
        t.ok(a, 5, &rm("/p", WatcherType::Any));
        assert_eq!(t.err(a, 6, &chk), ErrorCode::NoWatcher);
        t.ok(a, 7, &rm("/r", WatcherType::PersistentRecursive));
        assert_eq!(t.c.watch_count(a.conn), 0);
        t.ok(b, 6, &Request::Create(create("/r/d", b"", 0)));
        assert!(t.out(a.conn).is_empty());
    }

    #[test]
    fn set_watches_catch_up_before_reply() {
        let mut t = T::new(2);
        let a = t.session(0);
        let b = t.session(1);
        for (i, p) in ["/d", "/c", "/same", "/gone"].iter().enumerate() {
            t.ok(b, i as i32 + 1, &Request::Create(create(p, b"", 0)));
        }
        let rel = t.c.last_zxid();
        // A disconnects; B changes things.
        t.c.handle_closed(a.conn, t.now);
        t.ok(
            b,
            10,
            &Request::SetData(SetDataRequest {
                path: "/d".into(),
                data: Some(Bytes::new()),
                version: -1,
            }),
        );
        t.ok(b, 11, &Request::Create(create("/c/k", b"", 0)));
        t.ok(b, 12, &Request::Create(create("/born", b"", 0)));
        t.ok(
            b,
            13,
            &Request::Delete(DeleteRequest {
                path: "/gone".into(),
                version: -1,
            }),
        );
        // A resumes on the other member and restores its watches.
        let (conn, out) = t.handshake(1, a.sid, &password_for(a.sid), Some(false));
        assert_eq!(out.len(), 1);
        let a2 = Cli { conn, sid: a.sid };
        let sw = Request::SetWatches2(SetWatches2 {
            relative_zxid: rel,
            data_watches: vec!["/d".into(), "/same".into(), "/gone".into()],
            exist_watches: vec!["/born".into(), "/unborn".into()],
            child_watches: vec!["/c".into(), "/same".into()],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec!["/r".into()],
        });
        let frames = t.call(a2, -8, &sw);
        let (last, rest) = frames.split_last().unwrap();
        assert_eq!(last.0.xid, -8, "the SetWatches xid is echoed");
        assert_eq!(last.0.err, ErrorCode::Ok);
        let events: Vec<_> = rest.iter().map(event).collect();
        assert_eq!(
            events,
            vec![
                (EventType::NodeDataChanged, "/d".to_owned()),
                (EventType::NodeDeleted, "/gone".to_owned()),
                (EventType::NodeCreated, "/born".to_owned()),
                (EventType::NodeChildrenChanged, "/c".to_owned()),
            ]
        );
        let w = t.c.watches(conn).unwrap().clone();
        assert_eq!(w.data.iter().collect::<Vec<_>>(), ["/same", "/unborn"]);
        assert_eq!(w.child.iter().collect::<Vec<_>>(), ["/same"]);
        assert_eq!(w.persistent.len() + w.recursive.len(), 2);
    }

    #[test]
    fn expiry_deletes_ephemerals_and_fires_watches() {
        let mut t = T::new(2);
        let a = t.session(0);
        let b = t.session(1);
        t.ok(a, 1, &Request::Create(create("/eph", b"", 1)));
        t.ok(b, 1, &Request::GetData(pw("/eph", true)));
        assert_eq!(t.c.session_timeout(a.sid), Some(10_000));
        // A's client goes away; B keeps pinging.
        t.c.handle_closed(a.conn, t.now);
        t.advance(6000);
        assert_eq!(t.call(b, 2, &Request::Ping)[0].0.xid, -2);
        t.advance(3999);
        assert!(t.c.session_alive(a.sid));
        assert_eq!(t.c.poll_timeout(), Some(t.now + Duration::from_millis(1)));
        t.advance(1);
        assert!(!t.c.session_alive(a.sid));
        assert!(t.c.get("/eph").is_none());
        let got: Vec<_> = t.out(b.conn).iter().map(split).map(|f| event(&f)).collect();
        assert_eq!(got, vec![(EventType::NodeDeleted, "/eph".to_owned())]);
        // Resuming it now: invalid response, then close.
        let (conn, out) = t.handshake(0, a.sid, &password_for(a.sid), Some(false));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 0);
        assert_eq!(t.closes(), vec![conn]);
    }

    #[test]
    fn attached_but_silent_session_expires_and_its_connection_closes() {
        let mut t = T::new(1);
        let a = t.session(0);
        t.advance(9999);
        assert!(t.c.session_alive(a.sid));
        t.advance(1);
        assert!(!t.c.session_alive(a.sid));
        assert_eq!(t.closes(), vec![a.conn]);
    }

    #[test]
    fn no_expiry_without_quorum_and_clock_restarts_after() {
        let mut t = T::new(2);
        let a = t.session(0);
        t.c.stop_member(0, t.now);
        t.c.stop_member(1, t.now);
        assert_eq!(t.closes(), vec![a.conn]);
        assert_eq!(t.c.poll_timeout(), None);
        t.advance(60_000);
        assert!(t.c.session_alive(a.sid));
        assert!(!t.c.accept(0, SimConnId(999), t.now));
        t.c.start_member(1, t.now);
        assert_eq!(
            t.c.poll_timeout(),
            Some(t.now + Duration::from_millis(10_000))
        );
    }

    #[test]
    fn read_only_member() {
        let mut t = T::new(2);
        let rw = t.session(0);
        t.ok(rw, 1, &Request::Create(create("/r", b"data", 0)));
        t.c.set_read_only(1, true, t.now);
        // A client without the read-only flag is closed with no response.
        let (conn, out) = t.handshake(1, 0, &[0; 16], Some(false));
        assert!(out.is_empty());
        assert_eq!(t.closes(), vec![conn]);
        // A global session is refused too.
        let (conn, out) = t.handshake(1, rw.sid, &password_for(rw.sid), Some(true));
        assert!(out.is_empty());
        assert_eq!(t.closes(), vec![conn]);
        // A read-only client gets a new local session.
        let (conn, out) = t.handshake(1, 0, &[0; 16], Some(true));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.read_only, Some(true));
        assert!(resp.timeout > 0);
        let ro = Cli {
            conn,
            sid: resp.session_id,
        };
        let Response::GetData(d) = t.ok(ro, 1, &Request::GetData(pw("/r", false))) else {
            panic!()
        };
        assert_eq!(d.data.as_deref(), Some(&b"data"[..]));
        assert_eq!(
            t.err(ro, 2, &Request::Create(create("/w", b"", 0))),
            ErrorCode::NotReadOnly
        );
        assert_eq!(
            t.err(ro, 3, &Request::Sync(PathRequest { path: "/".into() })),
            ErrorCode::NotReadOnly
        );
        // Its local session is unknown elsewhere.
        let (conn, out) = t.handshake(0, ro.sid, &password_for(ro.sid), Some(true));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 0);
        assert_eq!(t.closes(), vec![conn]);
    }

    #[test]
    fn auth_ok_whoami_and_failure_closes() {
        let mut t = T::new(1);
        let a = t.session(0);
        let auth = |scheme: &str, cred: &'static [u8]| {
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: scheme.into(),
                auth: Bytes::from_static(cred),
            })
        };
        let frames = t.call(a, -4, &auth("digest", b"alice:wrong"));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].0.xid, frames[0].0.zxid, frames[0].0.err),
            (-4, 0, ErrorCode::Ok)
        );
        let Response::WhoAmI(w) = t.ok(a, 1, &Request::WhoAmI) else {
            panic!()
        };
        assert_eq!(w.client_info[1].auth_scheme, "digest");
        assert_eq!(w.client_info[1].user, "alice");
        // CREATOR_ALL expands to the digest id.
        t.ok(
            a,
            2,
            &Request::Create(CreateRequest {
                acl: Acl::creator_all(),
                ..create("/secret", b"", 0)
            }),
        );
        assert_eq!(
            t.c.acl("/secret").unwrap(),
            vec![Acl::new(
                Perms::ALL,
                "digest",
                "alice:9ussi3jBkbd4no1raUvxHSkUEN8="
            )]
        );

        let frames = t.call(a, -4, &auth("bogus", b"x"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.err, ErrorCode::AuthFailed);
        assert_eq!(t.closes(), vec![a.conn]);
    }

    #[test]
    fn held_pipeline_lets_auth_overtake() {
        let mut t = T::new(1);
        let a = t.session(0);
        t.c.set_hold(0, true, t.now);
        t.send(a.conn, &req_frame(1, &Request::GetData(pw("/", false))));
        t.send(
            a.conn,
            &req_frame(
                -4,
                &Request::Auth(AuthPacket {
                    auth_type: 0,
                    scheme: "digest".into(),
                    auth: Bytes::from_static(b"u:p"),
                }),
            ),
        );
        t.send(a.conn, &req_frame(2, &Request::Ping));
        let xids: Vec<i32> = t.out(a.conn).iter().map(|f| split(f).0.xid).collect();
        assert_eq!(xids, vec![-4]);
        t.c.set_hold(0, false, t.now);
        let xids: Vec<i32> = t.out(a.conn).iter().map(|f| split(f).0.xid).collect();
        assert_eq!(xids, vec![1, -2]);
    }

    #[test]
    fn close_session_replies_then_closes_and_deletes_ephemerals() {
        let mut t = T::new(1);
        let a = t.session(0);
        t.ok(a, 1, &Request::Create(create("/e", b"", 1)));
        let frames = t.call(a, 2, &Request::CloseSession);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.xid, 2);
        assert_eq!(t.closes(), vec![a.conn]);
        assert!(!t.c.session_alive(a.sid));
        assert!(t.c.get("/e").is_none());
    }

    #[test]
    fn bad_input_closes() {
        let mut t = T::new(1);
        // Unknown opcode: UNIMPLEMENTED with zxid -1, then close.
        let a = t.session(0);
        t.send(
            a.conn,
            &frame(|b| {
                RequestHeader {
                    xid: 1,
                    op: OpCode::Unknown(55),
                }
                .encode(b)
            }),
        );
        let frames: Vec<_> = t.out(a.conn).iter().map(split).collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].0.zxid, frames[0].0.err),
            (-1, ErrorCode::Unimplemented)
        );
        assert_eq!(t.closes(), vec![a.conn]);
        // Undecodable header: closed silently.
        let b = t.session(0);
        t.send(b.conn, &frame(|b| b.extend_from_slice(&[1, 2, 3])));
        assert!(t.out(b.conn).is_empty());
        assert_eq!(t.closes(), vec![b.conn]);
        // Bad frame length.
        let c = t.session(0);
        t.send(c.conn, &[0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(t.closes(), vec![c.conn]);
        // Undecodable body of a known op: MARSHALLINGERROR, stays open.
        let d = t.session(0);
        t.send(
            d.conn,
            &frame(|b| {
                RequestHeader {
                    xid: 9,
                    op: OpCode::GetData,
                }
                .encode(b);
                b.extend_from_slice(&[0, 0]);
            }),
        );
        let frames: Vec<_> = t.out(d.conn).iter().map(split).collect();
        assert_eq!(frames[0].0.err, ErrorCode::MarshallingError);
        assert!(t.closes().is_empty());
        // Garbage instead of a ConnectRequest.
        let conn = t.accept(0);
        t.send(conn, &frame(|b| b.extend_from_slice(&[9; 5])));
        assert!(t.out(conn).is_empty());
        assert_eq!(t.closes(), vec![conn]);
    }

    #[test]
    fn stop_member_closes_connections_and_drops_unsent_output() {
        let mut t = T::new(2);
        let a = t.session(0);
        t.send(a.conn, &req_frame(1, &Request::Ping));
        t.c.stop_member(0, t.now);
        assert!(t.out(a.conn).is_empty());
        assert_eq!(t.closes(), vec![a.conn]);
        assert!(t.c.session_alive(a.sid));
        // Resume on the other member.
        let (_, out) = t.handshake(1, a.sid, &password_for(a.sid), Some(false));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.session_id, a.sid);
    }

    #[test]
    fn four_letter_words_answer_and_close() {
        let mut t = T::new(2);
        t.c.set_read_only(1, true, t.now);
        for (member, expected) in [(0, &b"rw"[..]), (1, &b"ro"[..])] {
            let conn = t.accept(member);
            t.send(conn, b"is");
            assert!(t.out(conn).is_empty());
            t.send(conn, b"ro");
            assert_eq!(t.out(conn), vec![Bytes::from_static(expected)]);
            assert_eq!(t.closes(), vec![conn]);
        }
        let conn = t.accept(0);
        t.send(conn, b"ruok");
        assert_eq!(t.out(conn), vec![Bytes::from_static(b"imok")]);
        // A 4lw on an established session is a huge frame length: closed, no answer.
        let a = t.session(0);
        t.closes();
        t.send(a.conn, b"isro");
        assert!(t.out(a.conn).is_empty());
        assert_eq!(t.closes(), vec![a.conn]);
    }

    #[test]
    fn digest_id_matches_known_vector() {
        assert_eq!(
            digest_id("alice:wrong"),
            "alice:9ussi3jBkbd4no1raUvxHSkUEN8="
        );
        let _ = to_bytes(&Stat::default());
    }
}
