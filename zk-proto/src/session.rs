//! The session state machine: every protocol decision of a ZooKeeper client.
//!
//! # Polling contract
//!
//! [`Session`] has four kinds of methods (the quinn-proto taxonomy):
//!
//! * getters (`&self`): [`state`](Session::state), [`session_id`](Session::session_id), ...
//! * inputs, `handle_*`: what the transport and the clock report. They return
//!   nothing: a peer's misbehaviour becomes a transition and events, never an `Err`.
//! * commands from the application: [`submit`](Session::submit) (and its
//!   variants [`submit_get_config`](Session::submit_get_config),
//!   [`submit_unchrooted`](Session::submit_unchrooted)),
//!   [`add_auth`](Session::add_auth), [`remove_watcher`](Session::remove_watcher),
//!   [`update_hosts`](Session::update_hosts), [`close`](Session::close),
//!   [`restart`](Session::restart). They return `Err` only
//!   for local misuse, before anything is sent.
//! * outputs, `poll_*`: [`poll_action`](Session::poll_action) (open or close a
//!   connection), [`poll_transmit`](Session::poll_transmit) (bytes to write),
//!   [`poll_event`](Session::poll_event) (completions, watch events, state changes)
//!   and [`poll_timeout`](Session::poll_timeout).
//!
//! After **every** input or command, drain `poll_action`, `poll_transmit` and
//! `poll_event` until each returns `None`, then read `poll_timeout` and call
//! [`handle_timeout`](Session::handle_timeout) when that instant is reached. Time
//! passed in must never go backwards (earlier values are clamped).
//!
//! Connections are named by [`ConnId`]. Several can be open at once (the
//! read-only probe runs beside the session's connection). Input for a connection
//! the session has already abandoned is ignored, so late bytes from a dead socket
//! can never corrupt a new one.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::config::{Config, ExpiryPolicy, HostAddr, QueuePolicy};
use crate::error::{DecodeError, ErrorCode, UsageError, ZkError};
use crate::frame::{write_frame, FrameDecoder, MAX_SKIPPABLE_FRAME};
use crate::hosts::{HostList, Rebalance, Rng};
use crate::jute::{Decode, Encode, Reader};
use crate::ops::{Request, Response};
use crate::path::{validate_path, Chroot};
use crate::records::{
    AuthPacket, ConnectRequest, ConnectResponse, MultiOp, MultiResult, PathWatchRequest,
    ReplyHeader, RequestHeader, SaslPacket, SetWatches, SetWatches2, WatcherEvent, WatchesRequest,
};
use crate::time::later;
use crate::types::{AddWatchMode, CreateMode, EventType, OpCode, WatcherType};
use crate::watches::{WatchKind, WatchRegistry, WatcherId};

const XID_NOTIFICATION: i32 = -1;
const XID_PING: i32 = -2;
const XID_AUTH: i32 = -4;
const XID_SET_WATCHES: i32 = -8;
/// The ensemble config node, read by [`Session::submit_get_config`] without the chroot.
/// (A plain getData of this path through [`Session::submit`] is chrooted like any other.)
pub const CONFIG_NODE: &str = "/zookeeper/config";
/// Marks an in-flight entry answered locally (an empty multi), never sent.
const LOCAL_XID: i32 = 0;
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
const PROBE_FIRST: Duration = Duration::from_millis(100);
const PROBE_MAX: Duration = Duration::from_secs(60);
/// The wait for the first handshake reply after an answered one (doubling per
/// unanswered handshake in a row): see [`Session::handshake_wait`].
const HANDSHAKE_FIRST_WAIT: Duration = Duration::from_secs(1);

/// One transport connection; fresh for every attempt, never reused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One submitted request; unique for the session's life (unlike xids).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Bytes to write on a connection, in order, entirely.
#[must_use]
#[derive(Debug, Clone)]
pub struct Transmit {
    /// The connection.
    pub conn: ConnId,
    /// The bytes (one or more whole frames).
    pub data: Bytes,
}

/// Transport work for the adapter.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Open a TCP (or TLS) connection to `host`, then report
    /// [`handle_connected`](Session::handle_connected) or
    /// [`handle_connect_failed`](Session::handle_connect_failed). The adapter resolves the name.
    Connect {
        /// The id to report back with.
        conn: ConnId,
        /// Where.
        host: HostAddr,
    },
    /// Close this connection now and forget it; nothing more may be written on it.
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
}

/// Where the session stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// No session yet; trying servers. Intermediate.
    Connecting,
    /// Session live on a read-write server. Intermediate.
    Connected,
    /// Session live on a read-only server: reads work, writes fail with NotReadOnly.
    /// The session keeps looking for a read-write server. Intermediate.
    ConnectedReadOnly,
    /// The session exists but its connection was lost; reconnecting. Requests wait
    /// or fail by the queue policy. Intermediate.
    Suspended,
    /// The session is gone (the server said so, or no server was reached within its
    /// timeout). With the default [`ExpiryPolicy::NewSession`] this state is reported
    /// and left at once for `Connecting` (a new session); with
    /// [`ExpiryPolicy::Terminal`] it is terminal.
    Expired,
    /// A server rejected the credentials. Terminal.
    AuthFailed,
    /// Closed by the caller. Terminal.
    Closed,
    /// No server was reached in [`Config::connect_max_rounds`] full rounds over the
    /// host list; the session stopped trying. Terminal: [`restart`](Session::restart)
    /// tries again (a new session). The old session, if there was one, may still be
    /// alive on the servers until it expires; [`credentials`](Session::credentials)
    /// still returns it.
    Unreachable,
}

impl SessionState {
    /// Whether nothing more will happen without a [`restart`](Session::restart).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired
                | SessionState::AuthFailed
                | SessionState::Closed
                | SessionState::Unreachable
        )
    }

    /// Whether requests can be sent now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// kazoo's coarse view.
    ///
    /// Why: listeners written for kazoo's `KazooState` (or Curator's connection
    /// states) want three states, not eight.
    ///
    /// ```
    /// use zk_proto::{CoarseState, SessionState};
    ///
    /// assert_eq!(SessionState::ConnectedReadOnly.coarse(), CoarseState::Connected);
    /// assert_eq!(SessionState::Suspended.coarse(), CoarseState::Suspended);
    /// assert_eq!(SessionState::Expired.coarse(), CoarseState::Lost);
    /// assert!(SessionState::Suspended.coarse() != CoarseState::Lost); // the session may live on
    /// assert!(!SessionState::Suspended.is_terminal() && !SessionState::Suspended.is_connected());
    /// ```
    pub fn coarse(self) -> CoarseState {
        match self {
            SessionState::Connected | SessionState::ConnectedReadOnly => CoarseState::Connected,
            SessionState::Suspended => CoarseState::Suspended,
            _ => CoarseState::Lost,
        }
    }
}

/// kazoo's `KazooState` (and Curator's connection states, folded).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CoarseState {
    /// Connected (read-write or read-only).
    Connected,
    /// Connection lost; the session may still be alive.
    Suspended,
    /// No session (not yet, or no more).
    Lost,
}

/// A watch notification as delivered to one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The client path (chroot stripped).
    pub path: String,
    /// The zxid of the change that fired the watch, when the server sends it
    /// (ZooKeeper 3.9 puts it in the notification's header, ZOOKEEPER-4655;
    /// earlier servers send -1, which is `None`). Why: a reader can tell whether
    /// a read it makes after the event already sees that change.
    pub zxid: Option<i64>,
}

/// Why a registration ended without (more) events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalReason {
    /// The request that would have armed it failed with this error.
    NotSet(ZkError),
    /// The caller removed it.
    Removed,
    /// The session ended.
    SessionEnded(ZkError),
}

/// Why a connection was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer closed it or the transport failed.
    Closed,
    /// Nothing arrived for the read timeout.
    ReadTimeout,
    /// The connect or handshake took longer than the connect timeout.
    ConnectTimeout,
    /// The server took the connection but did not answer the handshake within
    /// the handshake's own wait, which is shorter than the connect timeout (see
    /// [`Session::handshake_wait`]).
    HandshakeTimeout,
    /// The peer sent bytes that are not the protocol.
    Malformed(DecodeError),
    /// A reply's xid was not the oldest outstanding one.
    XidOutOfOrder {
        /// The xid we waited for (None: nothing outstanding).
        expected: Option<i32>,
        /// The xid received.
        got: i32,
    },
    /// A request's deadline passed.
    RequestTimeout,
    /// Moving off a read-only server to a read-write one.
    LeavingReadOnly,
    /// Moving to another server after [`Session::update_hosts`] replaced the host
    /// list (the current server left the list, or the list grew and this session
    /// was picked to spread the load), or abandoning an attempt to a server that
    /// left the list. The session is kept.
    Rebalance,
}

/// Application-facing output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The session state changed. The caller must publish it to state listeners.
    StateChanged {
        /// Before.
        from: SessionState,
        /// After.
        to: SessionState,
    },
    /// A request finished; exactly one per submitted request.
    Completed {
        /// The request.
        id: RequestId,
        /// Its outcome. A failed multi is `Ok` with error results inside.
        result: Result<Response, ZkError>,
    },
    /// A registration fired. One-shot registrations end with this event.
    Watch {
        /// The registration.
        watcher: WatcherId,
        /// The event.
        event: WatchedEvent,
    },
    /// A registration ended without firing; no events follow for it.
    WatcherRemoved {
        /// The registration.
        watcher: WatcherId,
        /// Why.
        reason: RemovalReason,
    },
    /// SASL authentication failed on a connection (the server refused it, its
    /// answer did not verify, or the mechanism could not start: no credentials, an
    /// unknown principal); the state becomes `AuthFailed` right after.
    SaslFailed {
        /// `host:port: ` and why, in words (never a secret).
        reason: String,
    },
    /// A connection was dropped (diagnostics; the state change, if any, is reported separately).
    Disconnected {
        /// Which.
        conn: ConnId,
        /// Why.
        reason: DisconnectReason,
    },
    /// What a traced request cost on the wire (see [`Session::trace_request`]);
    /// comes right before that request's [`Event::Completed`] when it was sent.
    RequestTraced {
        /// The request.
        id: RequestId,
        /// The xid it was sent with.
        xid: i32,
        /// Its frame's length on the wire (length prefix included).
        request_bytes: u32,
        /// Its reply's length on the wire (length prefix included); 0 when no
        /// reply came (a connection loss, a timeout).
        response_bytes: u32,
    },
    /// The server rejected a SetWatches batch sent on reconnect to restore watches
    /// (diagnostics). Every registration that batch restored has already been
    /// reported dead, with [`Event::WatcherRemoved`] and
    /// [`RemovalReason::NotSet`]`(ZkError::Server(code))`: re-arm them if needed.
    RestoreFailed {
        /// The server's answer.
        code: ErrorCode,
    },
}

/// What [`Session::submit`] gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// Completes with [`Event::Completed`].
    pub id: RequestId,
    /// The watch registration, when the request asks for one. It is armed only if
    /// the request succeeds; otherwise [`Event::WatcherRemoved`] with `NotSet` follows.
    pub watcher: Option<WatcherId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    User(RequestId),
    Close,
    Internal,
    /// A SASL token; its reply feeds the exchange.
    Sasl,
}

/// A SASL exchange running on the current connection, before anything else is sent.
#[derive(Debug)]
struct SaslRun {
    exchange: crate::sasl::SaslExchange,
    /// Whether the handshake said the server is read-only (applied once SASL is done).
    read_only: bool,
}

#[derive(Debug, Clone)]
struct Intent {
    id: WatcherId,
    path: String,
    kind: WatchKind,
}

#[derive(Debug)]
struct InFlight {
    xid: i32,
    op: OpCode,
    origin: Origin,
    watch: Option<Intent>,
    sent_at: Instant,
    remove_type: Option<(String, WatcherType)>,
    /// Submitted with server paths: the reply's paths are not stripped.
    unchrooted: bool,
    /// Report its wire details ([`Event::RequestTraced`]).
    traced: bool,
    /// Its frame's length (length prefix included).
    request_bytes: u32,
}

#[derive(Debug)]
struct Queued {
    id: RequestId,
    req: Request,
    watch: Option<Intent>,
    unchrooted: bool,
    traced: bool,
}

/// One distinct (scheme, auth) pair: sent once per connection however often it was added.
#[derive(Debug)]
struct Credential {
    scheme: String,
    auth: Bytes,
    /// `add_auth` calls made while disconnected, completed by the next send's reply.
    waiting: Vec<RequestId>,
}

#[derive(Debug, Clone, Copy)]
enum Link {
    /// No connection; the next attempt goes to `host` at `at`. None when terminal.
    Idle {
        next: Option<(usize, Instant)>,
    },
    Connecting {
        conn: ConnId,
        host: usize,
        deadline: Instant,
    },
    Handshaking {
        conn: ConnId,
        host: usize,
        deadline: Instant,
        /// The deadline is the handshake's own wait, shorter than the connect
        /// timeout: reaching it is a [`DisconnectReason::HandshakeTimeout`].
        short: bool,
    },
    Up {
        conn: ConnId,
        host: usize,
    },
}

#[derive(Debug)]
struct Probe {
    next_at: Instant,
    interval: Duration,
    turn: usize,
    conn: Option<(ConnId, usize, Instant)>,
    answer: Vec<u8>,
}

/// A ZooKeeper client session, without I/O. See the module docs for the polling contract.
/// Its `Debug` prints no secret (no session password, no credentials, no buffered bytes).
pub struct Session {
    config: Config,
    state: SessionState,
    rng: Rng,
    hosts: HostList,
    link: Link,
    rx: FrameDecoder,
    tx: BytesMut,
    side_tx: VecDeque<Transmit>,
    next_conn: u64,
    next_request: u64,
    next_watcher: u64,
    xid: i32,
    session: Option<(i64, Bytes)>,
    session_global: bool,
    negotiated: Option<Duration>,
    last_zxid: i64,
    inflight: VecDeque<InFlight>,
    /// Per auth packet sent, the requests its reply completes.
    auth_inflight: VecDeque<Vec<RequestId>>,
    /// Per SetWatches batch sent, the registrations it restores.
    set_watches_inflight: VecDeque<Vec<WatcherId>>,
    ping_inflight: bool,
    queued: VecDeque<Queued>,
    creds: Vec<Credential>,
    watches: WatchRegistry,
    cancelled: HashSet<WatcherId>,
    last_send: Instant,
    /// When the last ping reply came: a late reply must not leave the next ping due in the past.
    ping_ack: Instant,
    last_recv: Instant,
    last_contact: Option<Instant>,
    closing: Option<Instant>,
    /// [`restart`](Session::restart) on a live session: a new session starts
    /// once the close under way is done.
    restart_pending: bool,
    /// When the current (or last) connection attempt started: the backoff after
    /// a failed attempt counts from there.
    attempt_started: Instant,
    /// Handshakes in a row that got no reply (any reply resets it).
    unanswered_handshakes: u32,
    probe: Option<Probe>,
    /// SASL in progress on the current connection (requests wait meanwhile).
    sasl: Option<SaslRun>,
    events: VecDeque<Event>,
    actions: VecDeque<Action>,
    now: Instant,
    fired: Vec<WatcherId>,
    /// The length of the reply being handled (for [`Event::RequestTraced`]).
    reply_bytes: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("link", &self.link)
            .field("session_id", &self.session.as_ref().map(|(id, _)| *id))
            .field("negotiated", &self.negotiated)
            .field("last_zxid", &self.last_zxid)
            .field("inflight", &self.inflight.len())
            .field("queued", &self.queued.len())
            .field("credentials", &self.creds.len())
            .field("watches", &self.watches.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that starts connecting at once (drain [`poll_action`](Session::poll_action)).
    /// With no hosts in `config` it starts Closed: there is nothing to connect to
    /// (the client's builder refuses an empty connect string before this).
    pub fn new(config: Config, now: Instant) -> Session {
        let mut rng = Rng::new(config.seed);
        let hosts = HostList::new(
            config.hosts.len().max(1),
            config.randomize_hosts,
            config.backoff,
            &mut rng,
        );
        let mut creds: Vec<Credential> = Vec::new();
        for (scheme, auth) in &config.auth {
            if !creds.iter().any(|c| c.scheme == *scheme && c.auth == *auth) {
                creds.push(Credential {
                    scheme: scheme.clone(),
                    auth: auth.clone(),
                    waiting: Vec::new(),
                });
            }
        }
        let mut s = Session {
            rx: FrameDecoder::new(config.max_frame),
            session: config.resume.clone(),
            session_global: config.resume.is_some(),
            state: SessionState::Connecting,
            config,
            rng,
            hosts,
            link: Link::Idle { next: None },
            tx: BytesMut::new(),
            side_tx: VecDeque::new(),
            next_conn: 0,
            next_request: 0,
            next_watcher: 0,
            xid: 0,
            negotiated: None,
            last_zxid: 0,
            inflight: VecDeque::new(),
            auth_inflight: VecDeque::new(),
            set_watches_inflight: VecDeque::new(),
            ping_inflight: false,
            queued: VecDeque::new(),
            creds,
            watches: WatchRegistry::default(),
            cancelled: HashSet::new(),
            last_send: now,
            ping_ack: now,
            last_recv: now,
            last_contact: None,
            closing: None,
            restart_pending: false,
            attempt_started: now,
            unanswered_handshakes: 0,
            probe: None,
            sasl: None,
            events: VecDeque::new(),
            actions: VecDeque::new(),
            now,
            fired: Vec::new(),
            reply_bytes: 0,
        };
        if s.config.hosts.is_empty() {
            s.set_state(SessionState::Closed);
        } else {
            s.next_attempt(now);
        }
        s
    }

    // ---------------------------------------------------------------- getters

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The session id, once a server issued one.
    pub fn session_id(&self) -> Option<i64> {
        self.session.as_ref().map(|s| s.0)
    }

    /// Id and password, to resume the session from another client (kazoo's `client_id`).
    ///
    /// Why: a process handing its session (and its ephemeral nodes) to another
    /// one passes these, which the other puts in [`Config::resume`].
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::SessionState;
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let config = net.config(&[0]);
    /// let old = net.add_client(config);
    /// net.run_until(|n| n.state(old) == SessionState::Connected, Duration::from_secs(5));
    /// let (id, password) = net.session(old).credentials().unwrap();
    /// net.with_session(old, |s, now| s.abandon(now)); // leave it alive on the server
    ///
    /// let mut config = net.config(&[0]);
    /// config.resume = Some((id, password));
    /// let new = net.add_client(config);
    /// net.run_until(|n| n.state(new) == SessionState::Connected, Duration::from_secs(5));
    /// assert_eq!(net.session(new).session_id(), Some(id));
    /// assert!(net.cluster.session_alive(id));
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn credentials(&self) -> Option<(i64, Bytes)> {
        self.session.clone()
    }

    /// The timeout the server granted.
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.negotiated
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The configuration. `hosts` is the current host list, as replaced by
    /// [`update_hosts`](Session::update_hosts).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current host list, in the order given (the connect string's, or the
    /// last [`update_hosts`](Session::update_hosts)'s). Same as `config().hosts`.
    pub fn hosts(&self) -> &[HostAddr] {
        &self.config.hosts
    }

    /// The server the session is on (or being connected to). `None` while not
    /// connecting, and while a closing session waits for its reply on a server that
    /// [`update_hosts`](Session::update_hosts) removed from the list.
    pub fn current_host(&self) -> Option<&HostAddr> {
        match self.link {
            Link::Connecting { host, .. }
            | Link::Handshaking { host, .. }
            | Link::Up { host, .. } => self.config.hosts.get(host),
            Link::Idle { .. } => None,
        }
    }

    /// Frees the memory of the queues that are empty, so an idle session keeps
    /// room for one entry in each at most (a thousand idle sessions in one process
    /// add up). Cheap when there is nothing to free.
    pub fn shrink_idle(&mut self) {
        // Room for one entry stays: a client making one call at a time (the
        // common case) then allocates nothing per call for these queues.
        fn shrink<T>(q: &mut VecDeque<T>, keep: usize) {
            if q.is_empty() && q.capacity() > keep {
                if keep == 0 {
                    *q = VecDeque::new();
                } else {
                    q.shrink_to(keep);
                }
            }
        }
        shrink(&mut self.inflight, 1);
        shrink(&mut self.queued, 0);
        shrink(&mut self.events, 1);
        shrink(&mut self.actions, 1);
    }

    /// The connection the session is up on (handshake done), if any: the one
    /// whose input carries replies.
    pub fn connection(&self) -> Option<ConnId> {
        match self.link {
            Link::Up { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// Whether [`poll_transmit`](Session::poll_transmit) has bytes to hand out.
    pub fn wants_transmit(&self) -> bool {
        !self.side_tx.is_empty() || !self.tx.is_empty()
    }

    /// Number of armed watch registrations.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Asks for the wire details of a request just submitted (its xid and
    /// its request and reply sizes), reported as [`Event::RequestTraced`] before
    /// its completion; `false` if `id` is not the latest request still waiting or
    /// in flight (it completed at once, or others were submitted since).
    ///
    /// Why: a client's per-request trace span records them, and only requests
    /// someone traces pay for the extra event.
    pub fn trace_request(&mut self, id: RequestId) -> bool {
        if let Some(q) = self.queued.back_mut().filter(|q| q.id == id) {
            q.traced = true;
            return true;
        }
        match self.inflight.back_mut() {
            Some(f) if f.origin == Origin::User(id) => {
                f.traced = true;
                true
            }
            _ => false,
        }
    }

    /// Bytes the session holds for the transport that
    /// [`poll_transmit`](Session::poll_transmit) has not handed out yet.
    pub fn outbound_bytes(&self) -> usize {
        self.tx.len() + self.side_tx.iter().map(|t| t.data.len()).sum::<usize>()
    }

    /// Requests sent and not yet answered, plus those waiting for a connection.
    pub fn outstanding(&self) -> usize {
        self.inflight.len() + self.queued.len()
    }

    fn session_timeout(&self) -> Duration {
        self.negotiated.unwrap_or(self.config.session_timeout)
    }

    /// Two thirds of the session timeout: a connection silent this long is dead.
    pub fn read_timeout(&self) -> Duration {
        let t = self.session_timeout();
        t.checked_mul(2).map_or(t / 3 * 2, |d| d / 3)
    }

    fn ping_interval(&self) -> Duration {
        (self.read_timeout() / 2).min(MAX_PING_INTERVAL)
    }

    fn next_ping(&self) -> Instant {
        // Normally a ping is due an interval after the last send; after a late ping
        // reply it is due at once (at the reply's time), never in the past.
        later(self.last_send, self.ping_interval()).max(self.ping_ack)
    }

    /// The timeout of each connection attempt (TCP connect plus handshake):
    /// [`Config::connect_timeout`], or by default the session timeout divided by
    /// the number of hosts, clamped to 100 ms ..= 10 s. Adapters that connect
    /// blocking use it as the connect's own timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout.unwrap_or_else(|| {
            (self.session_timeout() / self.config.hosts.len().max(1) as u32)
                .clamp(Duration::from_millis(100), Duration::from_secs(10))
        })
    }

    /// How long the next handshake may go unanswered before the attempt is given
    /// up ([`DisconnectReason::HandshakeTimeout`]): 1 s after an answered
    /// handshake (or at the start), doubling with each unanswered one in a row
    /// (2, 4, 8 s, ...), never more than the
    /// [`connect_timeout`](Session::connect_timeout), which still bounds the whole
    /// attempt (TCP connect included). Any handshake reply brings it back to 1 s.
    ///
    /// Why: ZooKeeper 3.8 listens before it serves. A connection that lands in
    /// that window while the server starts (a restart, a rolling upgrade) is
    /// refused on the server's side by a path that can fail (a
    /// NullPointerException in `ZooKeeperServer.removeCnxn`) and leave the socket
    /// open and silent. Waiting the whole connect timeout there (10 s with a 30 s
    /// session) kept sessions away for about 10 s after their server was back.
    /// A healthy server answers a handshake in one round trip plus well under a
    /// millisecond, so a second of silence almost always means that state, and
    /// giving up then lets the next attempt (at once: the backoff counts from the
    /// attempt's start, so a second of waiting has used it up) reach the server
    /// once it serves.
    ///
    /// A legitimately slow handshake still connects: over a link whose round
    /// trip exceeds a second, or with a server too busy to answer in a second
    /// (a long GC pause, a session revalidation queued behind a large write), the
    /// waits double, so within a few attempts one waits as long as the whole
    /// connect timeout, exactly what every attempt waited before. A handshake
    /// that needs `T` (at most the connect timeout) gets through on the first
    /// attempt whose wait reaches `T`, after less than `2 T` spent on shorter
    /// attempts (1 + 2 + ... + 8 = 15 s at most with a 10 s connect timeout,
    /// before the first full-length one); one that needs more never connected
    /// before either. Each abandoned attempt is closed (the adapter is told to
    /// disconnect), so its handshake, if the server reads it later, is for a
    /// closed connection and cannot take the session from the next one: the
    /// server moves a session to the connection whose handshake it processed
    /// last, which is the live one. A new session's abandoned handshake may leave
    /// an orphan session on the server, which expires after its timeout.
    pub fn handshake_wait(&self) -> Duration {
        let doubled = HANDSHAKE_FIRST_WAIT
            .checked_mul(1u32 << self.unanswered_handshakes.min(20))
            .unwrap_or(Duration::MAX);
        doubled.min(self.connect_timeout())
    }

    fn link_conn(&self) -> Option<ConnId> {
        match self.link {
            Link::Connecting { conn, .. }
            | Link::Handshaking { conn, .. }
            | Link::Up { conn, .. } => Some(conn),
            Link::Idle { .. } => None,
        }
    }

    fn terminal_error(&self) -> Option<ZkError> {
        match self.state {
            SessionState::Expired => Some(ZkError::SessionExpired),
            SessionState::AuthFailed => Some(ZkError::AuthFailed),
            SessionState::Closed => Some(ZkError::SessionClosed),
            SessionState::Unreachable => Some(ZkError::Unreachable),
            _ if self.closing.is_some() && !self.restart_pending => Some(ZkError::SessionClosed),
            _ => None,
        }
    }

    // ---------------------------------------------------------------- inputs

    fn clock(&mut self, now: Instant) -> Instant {
        debug_assert!(now >= self.now || self.now - now < Duration::from_millis(1));
        self.now = self.now.max(now);
        self.now
    }

    /// The transport connected `conn` (after [`Action::Connect`]).
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        let now = self.clock(now);
        match self.link {
            Link::Connecting {
                conn: c,
                host,
                deadline,
            } if c == conn => {
                self.rx.clear();
                self.tx.clear();
                let (session_id, passwd) = match (&self.session, self.session_global) {
                    (Some((id, pw)), true) => (*id, pw.clone()),
                    _ => (0, Bytes::from_static(&[0u8; 16])),
                };
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.last_zxid,
                    timeout: self
                        .config
                        .session_timeout
                        .as_millis()
                        .min(i32::MAX as u128) as i32,
                    session_id,
                    passwd,
                    read_only: Some(self.config.read_only),
                };
                write_frame(&mut self.tx, |b| req.encode(b));
                // The handshake's own wait, when it ends before the attempt's deadline.
                let wait = later(now, self.handshake_wait());
                self.link = Link::Handshaking {
                    conn,
                    host,
                    deadline: deadline.min(wait),
                    short: wait < deadline,
                };
                self.last_recv = now;
            }
            _ => {
                if let Some(p) = &mut self.probe {
                    if p.conn.map(|c| c.0) == Some(conn) {
                        self.side_tx.push_back(Transmit {
                            conn,
                            data: Bytes::from_static(b"isro"),
                        });
                        return;
                    }
                }
                self.actions.push_back(Action::Disconnect { conn });
            }
        }
    }

    /// The transport could not connect `conn`.
    pub fn handle_connect_failed(&mut self, conn: ConnId, now: Instant) {
        let now = self.clock(now);
        if self.link_conn() == Some(conn) {
            self.attempt_failed(now, DisconnectReason::Closed, false);
        } else {
            self.probe_finished(conn, now);
        }
    }

    /// The transport closed `conn` (EOF or error).
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        let now = self.clock(now);
        if self.link_conn() == Some(conn) {
            self.drop_link(now, DisconnectReason::Closed, false);
        } else {
            self.probe_finished(conn, now);
        }
    }

    /// Bytes arrived on `conn`.
    pub fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        let now = self.clock(now);
        if self.link_conn() != Some(conn) {
            if let Some(p) = &mut self.probe {
                if p.conn.map(|c| c.0) == Some(conn) && p.answer.len() < 16 {
                    let room = 16 - p.answer.len();
                    p.answer.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            return;
        }
        self.last_recv = now;
        self.rx.push(data);
        loop {
            if self.link_conn() != Some(conn) {
                return;
            }
            let frame = match self.rx.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(DecodeError::FrameLength { len, max })
                    if matches!(self.link, Link::Up { .. })
                        && len >= 0
                        && len as usize <= MAX_SKIPPABLE_FRAME =>
                {
                    // An oversized reply: if it answers the oldest request, fail
                    // just that one and skip the frame; anything else is garbage.
                    let Some(xid) = self.rx.peek_xid() else {
                        return; // wait for the xid
                    };
                    if xid > 0 && self.inflight.front().is_some_and(|f| f.xid == xid) {
                        self.rx.skip_frame();
                        self.reply_too_large(len as usize, max, now);
                        continue;
                    }
                    let e = DecodeError::FrameLength { len, max };
                    self.drop_link(now, DisconnectReason::Malformed(e), false);
                    return;
                }
                Err(e) => {
                    self.drop_link(now, DisconnectReason::Malformed(e), false);
                    return;
                }
            };
            match self.link {
                Link::Handshaking { .. } => self.on_connect_response(frame, now),
                Link::Up { .. } => self.on_reply(frame, now),
                _ => return,
            }
        }
    }

    /// The deadline from [`poll_timeout`](Session::poll_timeout) was reached. Early calls do nothing.
    /// [`poll_timeout`](Session::poll_timeout)'s example shows both (a ping, then a read timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        if let Some(deadline) = self.closing {
            if now >= deadline {
                self.finish_close(now);
                return;
            }
        }
        match self.link {
            Link::Idle {
                next: Some((host, at)),
            } if now >= at => self.connect(host, now),
            Link::Connecting { deadline, .. } if now >= deadline => {
                self.attempt_failed(now, DisconnectReason::ConnectTimeout, true);
            }
            Link::Handshaking {
                deadline, short, ..
            } if now >= deadline => {
                self.unanswered_handshakes = self.unanswered_handshakes.saturating_add(1);
                let reason = if short {
                    DisconnectReason::HandshakeTimeout
                } else {
                    DisconnectReason::ConnectTimeout
                };
                self.attempt_failed(now, reason, true);
            }
            Link::Up { .. } => {
                if now >= later(self.last_recv, self.read_timeout()) {
                    self.drop_link(now, DisconnectReason::ReadTimeout, true);
                } else if let Some(rt) = self.config.request_timeout {
                    if let Some(front) = self.inflight.front() {
                        if now >= later(front.sent_at, rt) {
                            if let Some(f) = self.inflight.pop_front() {
                                self.complete(f, Err(ZkError::Timeout));
                            }
                            self.drop_link(now, DisconnectReason::RequestTimeout, true);
                        }
                    }
                }
                if matches!(self.link, Link::Up { .. })
                    && !self.ping_inflight
                    && now >= self.next_ping()
                {
                    self.send_frame(XID_PING, &Request::Ping);
                    self.ping_inflight = true;
                }
            }
            _ => {}
        }
        if self.state == SessionState::Suspended && self.config.client_side_expiry {
            if let (Some(t), Some(last)) = (self.negotiated, self.last_contact) {
                if now >= later(last, t) {
                    self.expire(now);
                    return;
                }
            }
        }
        self.probe_timeout(now);
    }

    // ---------------------------------------------------------------- commands

    /// Sends a request (or queues it while disconnected). Paths are client paths:
    /// they are validated and the chroot is applied here, to every path (including
    /// `/zookeeper/config`: see [`submit_get_config`](Session::submit_get_config)).
    ///
    /// Fails with [`UsageError::OutboundFull`] while more than
    /// [`Config::max_outbound`] bytes wait to be taken by
    /// [`poll_transmit`](Session::poll_transmit).
    ///
    /// Why: a caller keeps the returned id to match its [`Event::Completed`], and
    /// the watcher id to match its [`Event::Watch`]; misuse fails here, before any
    /// byte is sent.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{Config, PathWatchRequest, Request, Session, UsageError};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1:2181/app").unwrap(), now);
    ///
    /// // Not connected yet: the request waits (QueuePolicy::Queue, the default).
    /// let read = Request::GetData(PathWatchRequest { path: "/config".into(), watch: true });
    /// let sent = session.submit(read, now).unwrap();
    /// assert!(sent.watcher.is_some());
    /// assert_eq!(session.outstanding(), 1);
    ///
    /// // Ids are unique for the session's life.
    /// let again = Request::GetData(PathWatchRequest { path: "/config".into(), watch: false });
    /// let second = session.submit(again, now).unwrap();
    /// assert_ne!(second.id, sent.id);
    /// assert_eq!(second.watcher, None);
    ///
    /// // A bad path is refused locally, with the rule it breaks.
    /// let bad = Request::GetData(PathWatchRequest { path: "config".into(), watch: false });
    /// match session.submit(bad, now) {
    ///     Err(UsageError::InvalidPath { path, reason }) => {
    ///         assert_eq!(path, "config");
    ///         assert_eq!(reason, "path must start with /");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// // Pings, auth and closeSession belong to the session itself.
    /// assert!(matches!(
    ///     session.submit(Request::Ping, now),
    ///     Err(UsageError::InvalidRequest(_))
    /// ));
    /// assert_eq!(session.outstanding(), 2);
    /// ```
    pub fn submit(&mut self, req: Request, now: Instant) -> Result<Submitted, UsageError> {
        self.submit_inner(req, true, now)
    }

    /// getConfig: reads (and with `watch`, watches) the ensemble configuration,
    /// [`CONFIG_NODE`] (`/zookeeper/config`), which lives outside any chroot: the
    /// chroot is *not* applied. The reply is a [`Response::GetData`]; watch events
    /// carry the path `/zookeeper/config`. Errors as [`submit`](Session::submit).
    ///
    /// Why: to follow ensemble reconfigurations (and then
    /// [`update_hosts`](Session::update_hosts)) from a client that has a chroot.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::path::Chroot;
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::{Response, SessionState};
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let mut config = net.config(&[0]);
    /// config.chroot = Chroot::new("/app").unwrap();
    /// let ci = net.add_client(config);
    /// net.run_until(|n| n.state(ci) == SessionState::Connected, Duration::from_secs(5));
    ///
    /// let read = net.with_session(ci, |s, now| s.submit_get_config(true, now)).unwrap();
    /// assert!(read.watcher.is_some());
    /// net.run_until(|n| n.client(ci).completion(read.id).is_some(), Duration::from_secs(5));
    /// // Read from /zookeeper/config itself, not /app/zookeeper/config (which does not exist).
    /// assert!(matches!(net.client(ci).completion(read.id), Some(Ok(Response::GetData(_)))));
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn submit_get_config(
        &mut self,
        watch: bool,
        now: Instant,
    ) -> Result<Submitted, UsageError> {
        let req = Request::GetData(PathWatchRequest {
            path: CONFIG_NODE.to_owned(),
            watch,
        });
        self.submit_unchrooted(req, now)
    }

    /// Like [`submit`](Session::submit), but the request's paths are server paths:
    /// validated, the chroot *not* applied, and the reply's paths (created names,
    /// ...) not stripped. For nodes outside the chroot, such as creating the chroot
    /// node itself. Watch events are reported as usual (server path with the
    /// chroot stripped when it is under the chroot).
    ///
    /// Why: a client with a chroot cannot create its own chroot node through
    /// `submit` (that would create `/app/app`); this can.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::path::Chroot;
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::{Acl, CreateRequest, Request, Response};
    ///
    /// let create = |path: &str| {
    ///     Request::Create(CreateRequest {
    ///         path: path.into(),
    ///         data: None,
    ///         acl: Acl::open_unsafe(),
    ///         flags: 0,
    ///     })
    /// };
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let mut config = net.config(&[0]);
    /// config.chroot = Chroot::new("/app").unwrap();
    /// let ci = net.add_client(config);
    ///
    /// let root = net.with_session(ci, |s, now| s.submit_unchrooted(create("/app"), now)).unwrap();
    /// net.run_until(|n| n.client(ci).completion(root.id).is_some(), Duration::from_secs(5));
    /// let Some(Ok(Response::Create(r))) = net.client(ci).completion(root.id) else { panic!() };
    /// assert_eq!(r.path, "/app"); // a server path, not stripped
    ///
    /// // From now on, client paths live under it.
    /// let Some(Ok(Response::Create(r))) = net.call(ci, create("/x"), Duration::from_secs(5)) else {
    ///     panic!()
    /// };
    /// assert_eq!(r.path, "/x");
    /// assert!(net.cluster.get("/app/x").is_some());
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn submit_unchrooted(
        &mut self,
        req: Request,
        now: Instant,
    ) -> Result<Submitted, UsageError> {
        self.submit_inner(req, false, now)
    }

    fn submit_inner(
        &mut self,
        mut req: Request,
        chroot: bool,
        now: Instant,
    ) -> Result<Submitted, UsageError> {
        let now = self.clock(now);
        if let Some(e) = self.terminal_error() {
            return Err(UsageError::SessionTerminated(e));
        }
        match &req {
            Request::Auth(_)
            | Request::Ping
            | Request::CloseSession
            | Request::SetWatches(_)
            | Request::SetWatches2(_) => {
                return Err(UsageError::InvalidRequest(
                    "managed by the session: use add_auth / close",
                ))
            }
            Request::Check(_) => {
                return Err(UsageError::InvalidRequest(
                    "check is only valid inside a multi",
                ))
            }
            Request::Multi(m) if m.ops.iter().any(MultiOp::is_read) => {
                return Err(UsageError::InvalidRequest("reads belong in multi_read"))
            }
            Request::MultiRead(m) if m.ops.iter().any(|o| !o.is_read()) => {
                return Err(UsageError::InvalidRequest("writes belong in multi"))
            }
            Request::CreateTtl(r) if !(1..(1i64 << 40)).contains(&r.ttl) => {
                return Err(UsageError::InvalidRequest("TTL must be 1 ms to 2^40-1 ms"))
            }
            _ => {}
        }
        if chroot {
            prefix_paths(&mut req, &self.config.chroot)?;
        } else {
            prefix_paths(&mut req, &Chroot::none())?;
        }
        if matches!(self.link, Link::Up { .. }) && self.tx.len() > self.config.max_outbound {
            return Err(UsageError::OutboundFull);
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let watch = self.intent_for(&req);
        let watcher = watch.as_ref().map(|w| w.id);
        if is_empty_multi(&req) && self.inflight.is_empty() && self.queued.is_empty() {
            // Nothing to ask the server, and nothing ahead of it to wait for.
            self.events.push_back(Event::Completed {
                id,
                result: Ok(Response::Multi(Default::default())),
            });
            return Ok(Submitted { id, watcher });
        }
        if self.ready() {
            self.send_user(id, req, watch, !chroot, false, now);
        } else {
            match self.config.queue_policy {
                QueuePolicy::FailFast => {
                    self.events.push_back(Event::Completed {
                        id,
                        result: Err(ZkError::NotConnected),
                    });
                    if let Some(w) = watch {
                        self.events.push_back(Event::WatcherRemoved {
                            watcher: w.id,
                            reason: RemovalReason::NotSet(ZkError::NotConnected),
                        });
                    }
                }
                QueuePolicy::Queue => {
                    if self.queued.len() >= self.config.queue_limit {
                        return Err(UsageError::QueueFull);
                    }
                    self.queued.push_back(Queued {
                        id,
                        req,
                        watch,
                        unchrooted: !chroot,
                        traced: false,
                    });
                }
            }
        }
        Ok(Submitted { id, watcher })
    }

    /// Adds credentials: sent now if connected, and again after every reconnect.
    /// The returned request completes when the server accepts them (or the
    /// session becomes AuthFailed). Adding a (scheme, auth) pair already added
    /// keeps one credential: it is still sent now if connected (and its request
    /// completes once, as usual), but replayed only once per reconnect.
    ///
    /// Why: `digest` credentials (kazoo's `add_auth`, the Java client's
    /// `addAuthInfo`) give the connection the identity that ACLs check.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::{Request, Response};
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let config = net.config(&[0]);
    /// let ci = net.add_client(config);
    /// // Added before the connection is up: sent once it is, and after every reconnect.
    /// let id = net.with_session(ci, |s, now| s.add_auth("digest", "alice:secret".into(), now)).unwrap();
    /// net.run_until(|n| n.client(ci).completion(id).is_some(), Duration::from_secs(5));
    /// assert_eq!(net.client(ci).completion(id), Some(&Ok(Response::Empty)));
    ///
    /// let Some(Ok(Response::WhoAmI(me))) = net.call(ci, Request::WhoAmI, Duration::from_secs(5)) else {
    ///     panic!()
    /// };
    /// assert!(me.client_info.iter().any(|c| c.auth_scheme == "digest" && c.user == "alice"));
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn add_auth(
        &mut self,
        scheme: &str,
        auth: Bytes,
        now: Instant,
    ) -> Result<RequestId, UsageError> {
        self.clock(now);
        if let Some(e) = self.terminal_error() {
            return Err(UsageError::SessionTerminated(e));
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let up = self.ready();
        let idx = match self
            .creds
            .iter()
            .position(|c| c.scheme == scheme && c.auth == auth)
        {
            Some(i) => i,
            None => {
                self.creds.push(Credential {
                    scheme: scheme.to_owned(),
                    auth: auth.clone(),
                    waiting: Vec::new(),
                });
                self.creds.len() - 1
            }
        };
        if !up {
            self.creds[idx].waiting.push(id);
        } else {
            self.send_frame(
                XID_AUTH,
                &Request::Auth(AuthPacket {
                    auth_type: 0,
                    scheme: scheme.to_owned(),
                    auth,
                }),
            );
            self.auth_inflight.push_back(vec![id]);
        }
        Ok(id)
    }

    /// Drops one watch registration locally. When it was the last one on its path,
    /// the server's watch is removed too. Unknown or already-fired ids are ignored.
    ///
    /// Why: a watcher nobody listens to any more (a cache closed, a caller gone)
    /// should not keep a watch on the server.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{Config, Event, PathWatchRequest, RemovalReason, Request, Session};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1").unwrap(), now);
    /// let read = Request::GetChildren(PathWatchRequest { path: "/jobs".into(), watch: true });
    /// let watcher = session.submit(read, now).unwrap().watcher.unwrap();
    ///
    /// session.remove_watcher(watcher, now);
    /// assert_eq!(
    ///     session.poll_event(),
    ///     Some(Event::WatcherRemoved { watcher, reason: RemovalReason::Removed })
    /// );
    /// // Once is enough: a second removal says nothing.
    /// session.remove_watcher(watcher, now);
    /// assert_eq!(session.poll_event(), None);
    /// ```
    pub fn remove_watcher(&mut self, watcher: WatcherId, now: Instant) {
        let now = self.clock(now);
        if let Some((path, _kind, last)) = self.watches.remove(watcher) {
            self.events.push_back(Event::WatcherRemoved {
                watcher,
                reason: RemovalReason::Removed,
            });
            // A watch request on the same path still in flight will arm the server's
            // watch again; removing it now would wipe that one too.
            if last && self.ready() && !self.path_has_pending_intent(&path) {
                let req = Request::RemoveWatches(WatchesRequest {
                    path,
                    watcher_type: WatcherType::Any,
                });
                self.send_internal(req, now);
            }
        } else if self.is_pending_watcher(watcher) && self.cancelled.insert(watcher) {
            self.events.push_back(Event::WatcherRemoved {
                watcher,
                reason: RemovalReason::Removed,
            });
        }
    }

    /// Ends the session: sends closeSession and waits (bounded) for its reply.
    /// Requests already sent still complete; queued ones fail with SessionClosed.
    ///
    /// Why: closing (rather than dropping the connection) deletes the session's
    /// ephemeral nodes at once instead of after the session timeout. The
    /// crate-level example closes a connected session; here one that never connected:
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{Config, Event, PathRequest, Request, Session, SessionState, ZkError};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1").unwrap(), now);
    /// let waiting = session.submit(Request::Sync(PathRequest { path: "/".into() }), now).unwrap();
    ///
    /// session.close(now);
    /// assert_eq!(session.state(), SessionState::Closed);
    /// let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    /// assert!(events.contains(&Event::Completed {
    ///     id: waiting.id,
    ///     result: Err(ZkError::SessionClosed)
    /// }));
    /// ```
    pub fn close(&mut self, now: Instant) {
        let now = self.clock(now);
        if self.state.is_terminal() || self.closing.is_some() {
            return;
        }
        self.fail_queued(ZkError::SessionClosed);
        if matches!(self.link, Link::Up { .. }) {
            let xid = self.next_xid();
            self.send_frame(xid, &Request::CloseSession);
            self.inflight.push_back(InFlight {
                xid,
                op: OpCode::CloseSession,
                origin: Origin::Close,
                watch: None,
                sent_at: now,
                remove_type: None,
                unchrooted: false,
                traced: false,
                request_bytes: 0,
            });
            self.closing = Some(later(now, self.config.close_timeout));
        } else {
            self.finish_close(now);
        }
    }

    /// Drops the connection and stops, without ending the session on the server:
    /// its ephemerals stay until it expires, and another client may resume it with
    /// [`credentials`](Session::credentials). This is what a crashed process
    /// leaves behind; useful to hand a session over.
    pub fn abandon(&mut self, now: Instant) {
        let now = self.clock(now);
        if !self.state.is_terminal() {
            self.terminate(SessionState::Closed, ZkError::SessionClosed, now);
        }
    }

    /// Replaces the host list (the Java client's `updateServerList`, for an
    /// ensemble that grew, shrank or moved). The chroot and the session stay.
    ///
    /// On a server, the session decides whether to move, so the load spreads over
    /// the new list without every client moving (see
    /// [`HostList::update`](crate::hosts::HostList::update) for the rule; the draw
    /// comes from the session's seeded generator): if its server is no longer in
    /// the list it moves; if the list grew it moves to one of the new servers with
    /// probability `1 - old/new`; otherwise it stays. Moving drops the connection
    /// ([`Event::Disconnected`] with [`DisconnectReason::Rebalance`]; requests in
    /// flight fail with `ConnectionLoss`, as on any connection loss) and connects
    /// to the chosen server at once; the session, its watches and credentials are
    /// restored there as after any reconnect.
    ///
    /// Not on a server, the new list replaces the old for the next attempt: an
    /// attempt under way to a server still in the list goes on, one to a server
    /// no longer in it is abandoned (reason `Rebalance`) for the next host at once;
    /// a backoff delay under way is kept. In a terminal state, the list is used by
    /// the next [`restart`](Session::restart).
    ///
    /// Fails with [`UsageError::InvalidConnectString`] for an empty list, changing nothing.
    ///
    /// Why: after the ensemble was reconfigured (a watch on
    /// [`CONFIG_NODE`] fired), point the session at the new members without
    /// losing it.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::config::parse_connect_string;
    /// use zk_proto::{Action, Config, DisconnectReason, Event, Session, UsageError};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("old1:2181").unwrap(), now);
    /// let Some(Action::Connect { conn, .. }) = session.poll_action() else { panic!() };
    ///
    /// assert!(matches!(
    ///     session.update_hosts(Vec::new(), now),
    ///     Err(UsageError::InvalidConnectString(_))
    /// ));
    ///
    /// // The server being tried left the list: that attempt is dropped for a new one.
    /// let (hosts, _) = parse_connect_string("new1:2181,new2:2181").unwrap();
    /// session.update_hosts(hosts, now).unwrap();
    /// assert_eq!(session.poll_action(), Some(Action::Disconnect { conn }));
    /// let Some(Action::Connect { host, .. }) = session.poll_action() else { panic!() };
    /// assert!(host.host.starts_with("new"));
    /// assert_eq!(
    ///     session.poll_event(),
    ///     Some(Event::Disconnected { conn, reason: DisconnectReason::Rebalance })
    /// );
    /// assert_eq!(session.hosts().len(), 2);
    /// ```
    pub fn update_hosts(&mut self, hosts: Vec<HostAddr>, now: Instant) -> Result<(), UsageError> {
        let now = self.clock(now);
        if hosts.is_empty() {
            return Err(UsageError::InvalidConnectString("no hosts".into()));
        }
        let old = std::mem::replace(&mut self.config.hosts, hosts);
        let on = match self.link {
            Link::Up { host, .. } if self.closing.is_none() => Some(host),
            _ => None,
        };
        let decision = self.hosts.update(
            &old,
            &self.config.hosts,
            on,
            self.config.randomize_hosts,
            &mut self.rng,
        );
        let new = &self.config.hosts;
        let find = |i: usize| old.get(i).and_then(|a| new.iter().position(|b| b == a));
        // The probe's connection, if any, to a server still in the list.
        if let Some(p) = &mut self.probe {
            if let Some((conn, host, deadline)) = p.conn {
                match find(host) {
                    Some(i) => p.conn = Some((conn, i, deadline)),
                    None => {
                        self.actions.push_back(Action::Disconnect { conn });
                        p.conn = None;
                        p.next_at = later(now, p.interval);
                    }
                }
            }
        }
        match self.link {
            Link::Up { conn, host } => match decision {
                Rebalance::Stay(i) => self.link = Link::Up { conn, host: i },
                Rebalance::Move => {
                    self.drop_link_then(now, DisconnectReason::Rebalance, true, None)
                }
                // Closing: stay for the reply.
                Rebalance::Replaced => {
                    let host = find(host).unwrap_or(usize::MAX);
                    self.link = Link::Up { conn, host };
                }
            },
            Link::Connecting {
                conn,
                host,
                deadline,
            } => match find(host) {
                Some(host) => {
                    self.hosts.attempting(host);
                    self.link = Link::Connecting {
                        conn,
                        host,
                        deadline,
                    };
                }
                None => self.abandon_attempt(conn, now),
            },
            Link::Handshaking {
                conn,
                host,
                deadline,
                short,
            } => match find(host) {
                Some(host) => {
                    self.hosts.attempting(host);
                    self.link = Link::Handshaking {
                        conn,
                        host,
                        deadline,
                        short,
                    };
                }
                None => self.abandon_attempt(conn, now),
            },
            Link::Idle {
                next: Some((_, at)),
            } => {
                let (host, _) = self.hosts.next(now, &mut self.rng);
                self.link = Link::Idle {
                    next: Some((host, at)),
                };
            }
            Link::Idle { next: None } => {}
        }
        Ok(())
    }

    /// Starts a brand-new session (keeps config and credentials): kazoo's
    /// `restart()`, which is `stop()` then `start()`. A live session is closed
    /// first, as by [`close`](Session::close) (its ephemerals go, its watchers
    /// end, state listeners see `Closed`), and the new one starts as soon as
    /// the server has answered the close (or its timeout passed). Requests
    /// queued before the call fail with `SessionClosed` as on any close;
    /// requests submitted after it wait (with [`QueuePolicy::Queue`]) for the
    /// new session. After a terminal state the new session starts at once. The
    /// count of failed rounds ([`Config::connect_max_rounds`]) and the backoff
    /// start again.
    ///
    /// Why: with [`Config::connect_max_rounds`] or [`ExpiryPolicy::Terminal`] a
    /// session can stop for good; an application that wants to go on reuses the
    /// same `Session` rather than rebuilding its config. And an application
    /// that wants a fresh session (to drop every ephemeral and watch at once)
    /// gets one without rebuilding its client.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::{Action, Config, Session, SessionState};
    ///
    /// let t0 = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut config = Config::from_connect_string("zk1:2181").unwrap();
    /// config.connect_max_rounds = Some(1);
    /// let mut session = Session::new(config, t0);
    /// let Some(Action::Connect { conn, .. }) = session.poll_action() else { panic!() };
    /// session.handle_connect_failed(conn, t0 + Duration::from_millis(1));
    /// assert_eq!(session.state(), SessionState::Unreachable);
    /// assert!(session.poll_timeout().is_none()); // nothing more will happen
    ///
    /// session.restart(t0 + Duration::from_secs(60));
    /// assert_eq!(session.state(), SessionState::Connecting);
    /// assert!(matches!(session.poll_action(), Some(Action::Connect { .. })));
    /// ```
    pub fn restart(&mut self, now: Instant) {
        let now = self.clock(now);
        if self.state.is_terminal() {
            self.start_new(now);
            return;
        }
        self.restart_pending = true;
        // A close under way (the user's own, or an earlier restart's) goes on;
        // the new session follows it.
        self.close(now);
    }

    fn start_new(&mut self, now: Instant) {
        self.session = None;
        self.session_global = false;
        self.negotiated = None;
        self.closing = None;
        self.last_contact = None;
        self.unanswered_handshakes = 0;
        self.hosts.reset();
        self.set_state(SessionState::Connecting);
        self.next_attempt(now);
    }

    // ---------------------------------------------------------------- outputs

    /// Next transport action. Should be called after every input and command.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Next bytes to write. Should be called after every input and command; `now`
    /// stamps the send time, which the ping timer counts from.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let now = self.clock(now);
        if let Some(t) = self.side_tx.pop_front() {
            return Some(t);
        }
        if self.tx.is_empty() {
            return None;
        }
        match self.link {
            Link::Handshaking { conn, .. } | Link::Up { conn, .. } => {
                self.last_send = now;
                Some(Transmit {
                    conn,
                    data: self.tx.split().freeze(),
                })
            }
            _ => {
                self.tx.clear();
                None
            }
        }
    }

    /// Next application event. Should be called after every input and command.
    ///
    /// Why: this is where a caller's reply, a watch notification and a state
    /// change come out; the adapter routes each to whoever waits for it.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{
    ///     Config, Event, MultiRequest, PathWatchRequest, QueuePolicy, Request, Response, Session,
    ///     SessionState, ZkError,
    /// };
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut config = Config::from_connect_string("zk1:2181").unwrap();
    /// config.queue_policy = QueuePolicy::FailFast;
    /// let mut session = Session::new(config, now);
    ///
    /// // An empty multi needs no server: it completes at once.
    /// let empty = session.submit(Request::Multi(MultiRequest::default()), now).unwrap();
    /// assert_eq!(
    ///     session.poll_event(),
    ///     Some(Event::Completed { id: empty.id, result: Ok(Response::Multi(Default::default())) })
    /// );
    ///
    /// // Fail-fast while not connected: the request completes with NotConnected.
    /// let read = Request::GetData(PathWatchRequest { path: "/a".into(), watch: false });
    /// let read = session.submit(read, now).unwrap();
    /// match session.poll_event() {
    ///     Some(Event::Completed { id, result: Err(ZkError::NotConnected) }) => assert_eq!(id, read.id),
    ///     other => panic!("{other:?}"),
    /// }
    ///
    /// // A state change, for state listeners.
    /// session.close(now);
    /// let mut states = Vec::new();
    /// while let Some(event) = session.poll_event() {
    ///     if let Event::StateChanged { from, to } = event {
    ///         states.push((from, to));
    ///     }
    /// }
    /// assert_eq!(states, [(SessionState::Connecting, SessionState::Closed)]);
    /// assert!(session.state().is_terminal());
    /// ```
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Session::handle_timeout) must next be called.
    /// Read it last, after draining the other outputs.
    ///
    /// Why: the adapter's only timer; sleep until this instant (or until input
    /// comes), then call `handle_timeout`. Here an idle connected session pings
    /// after the ping interval, half the [`read_timeout`](Session::read_timeout).
    /// The server's replies are written by hand with the crate's records.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use bytes::BytesMut;
    /// use zk_proto::error::ErrorCode;
    /// use zk_proto::frame::{write_frame, FrameDecoder, DEFAULT_MAX_FRAME};
    /// use zk_proto::jute::{from_bytes, Encode};
    /// use zk_proto::types::OpCode;
    /// use zk_proto::{
    ///     Action, Config, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, Session,
    ///     SessionState,
    /// };
    ///
    /// let t0 = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1:2181").unwrap(), t0);
    /// let Some(Action::Connect { conn, .. }) = session.poll_action() else { panic!() };
    /// // Until connected, the timer is the connect timeout.
    /// assert_eq!(session.poll_timeout(), Some(t0 + session.connect_timeout()));
    ///
    /// session.handle_connected(conn, t0);
    /// let hello = session.poll_transmit(t0).unwrap().data;
    /// let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    /// frames.push(&hello);
    /// let req: ConnectRequest = from_bytes(frames.next_frame().unwrap().unwrap()).unwrap();
    /// assert_eq!(req.timeout, 10_000);
    ///
    /// // The server grants the 10 s asked for.
    /// let t1 = t0 + Duration::from_millis(5);
    /// let mut reply = BytesMut::new();
    /// let granted = ConnectResponse {
    ///     protocol_version: 0,
    ///     timeout: 10_000,
    ///     session_id: 0x1234,
    ///     passwd: vec![7; 16].into(),
    ///     read_only: Some(false),
    /// };
    /// write_frame(&mut reply, |b| granted.encode(b));
    /// session.handle_input(conn, &reply, t1);
    /// assert_eq!(session.state(), SessionState::Connected);
    /// while session.poll_event().is_some() {}
    ///
    /// // Nothing to send: the next wake-up is the ping.
    /// let ping_at = session.poll_timeout().unwrap();
    /// assert_eq!(ping_at, t1 + session.read_timeout() / 2);
    /// session.handle_timeout(ping_at - Duration::from_millis(1)); // early: nothing
    /// assert!(session.poll_transmit(ping_at).is_none());
    /// session.handle_timeout(ping_at);
    /// let ping = session.poll_transmit(ping_at).unwrap().data;
    /// frames.push(&ping);
    /// let header: RequestHeader = from_bytes(frames.next_frame().unwrap().unwrap()).unwrap();
    /// assert_eq!((header.xid, header.op), (-2, OpCode::Ping));
    ///
    /// // The ping's reply keeps the connection alive; the next ping is an interval on.
    /// let t2 = ping_at + Duration::from_millis(5);
    /// let mut pong = BytesMut::new();
    /// write_frame(&mut pong, |b| ReplyHeader { xid: -2, zxid: 0, err: ErrorCode::Ok }.encode(b));
    /// session.handle_input(conn, &pong, t2);
    /// assert_eq!(session.poll_timeout(), Some(ping_at + session.read_timeout() / 2));
    ///
    /// // Silence past the read timeout: the connection is dropped, the session suspended.
    /// let dead = t2 + session.read_timeout();
    /// session.handle_timeout(dead);
    /// assert_eq!(session.poll_action(), Some(Action::Disconnect { conn }));
    /// assert_eq!(session.state(), SessionState::Suspended);
    /// ```
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if let Some(d) = self.closing {
            at(d);
        }
        match self.link {
            Link::Idle {
                next: Some((_, when)),
            } => at(when),
            Link::Connecting { deadline, .. } | Link::Handshaking { deadline, .. } => at(deadline),
            Link::Up { .. } => {
                at(later(self.last_recv, self.read_timeout()));
                if !self.ping_inflight {
                    at(self.next_ping());
                }
                if let (Some(rt), Some(f)) = (self.config.request_timeout, self.inflight.front()) {
                    at(later(f.sent_at, rt));
                }
            }
            Link::Idle { next: None } => {}
        }
        if self.state == SessionState::Suspended && self.config.client_side_expiry {
            if let (Some(n), Some(last)) = (self.negotiated, self.last_contact) {
                at(later(last, n));
            }
        }
        if let Some(p) = &self.probe {
            match p.conn {
                Some((_, _, deadline)) => at(deadline),
                None => at(p.next_at),
            }
        }
        t
    }

    // ---------------------------------------------------------------- internals

    fn set_state(&mut self, to: SessionState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.events.push_back(Event::StateChanged { from, to });
        }
    }

    fn next_xid(&mut self) -> i32 {
        self.xid = if self.xid >= i32::MAX - 1 {
            1
        } else {
            self.xid + 1
        };
        self.xid
    }

    fn send_frame(&mut self, xid: i32, req: &Request) {
        write_frame(&mut self.tx, |b| {
            RequestHeader {
                xid,
                op: req.opcode(),
            }
            .encode(b);
            req.encode_body(b);
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn send_user(
        &mut self,
        id: RequestId,
        req: Request,
        watch: Option<Intent>,
        unchrooted: bool,
        traced: bool,
        now: Instant,
    ) {
        // An empty multi is answered locally, but in its turn: it waits in the
        // in-flight queue (xid 0, never sent) behind the requests before it.
        let mut request_bytes = 0;
        let xid = if is_empty_multi(&req) {
            if self.inflight.is_empty() {
                self.events.push_back(Event::Completed {
                    id,
                    result: Ok(Response::Multi(Default::default())),
                });
                return;
            }
            LOCAL_XID
        } else {
            let xid = self.next_xid();
            let before = self.tx.len();
            self.send_frame(xid, &req);
            request_bytes = u32::try_from(self.tx.len() - before).unwrap_or(u32::MAX);
            xid
        };
        let remove_type = match &req {
            Request::RemoveWatches(r) => Some((r.path.clone(), r.watcher_type)),
            _ => None,
        };
        self.inflight.push_back(InFlight {
            xid,
            op: req.opcode(),
            origin: Origin::User(id),
            watch,
            sent_at: now,
            remove_type,
            unchrooted,
            traced,
            request_bytes,
        });
    }

    fn send_internal(&mut self, req: Request, now: Instant) {
        let xid = self.next_xid();
        self.send_frame(xid, &req);
        self.inflight.push_back(InFlight {
            xid,
            op: req.opcode(),
            origin: Origin::Internal,
            watch: None,
            sent_at: now,
            remove_type: None,
            unchrooted: false,
            traced: false,
            request_bytes: 0,
        });
    }

    fn intent_for(&mut self, req: &Request) -> Option<Intent> {
        let (path, kind) = match req {
            Request::Exists(r) if r.watch => (&r.path, WatchKind::Data),
            Request::GetData(r) if r.watch => (&r.path, WatchKind::Data),
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch => {
                (&r.path, WatchKind::Child)
            }
            Request::AddWatch(r) => (
                &r.path,
                if r.mode == AddWatchMode::PersistentRecursive {
                    WatchKind::PersistentRecursive
                } else {
                    WatchKind::Persistent
                },
            ),
            _ => return None,
        };
        let id = WatcherId(self.next_watcher);
        self.next_watcher += 1;
        Some(Intent {
            id,
            path: path.clone(),
            kind,
        })
    }

    fn path_has_pending_intent(&self, path: &str) -> bool {
        self.inflight
            .iter()
            .filter_map(|f| f.watch.as_ref())
            .chain(self.queued.iter().filter_map(|q| q.watch.as_ref()))
            .any(|i| i.path == path)
    }

    fn is_pending_watcher(&self, w: WatcherId) -> bool {
        self.inflight
            .iter()
            .filter_map(|f| f.watch.as_ref())
            .chain(self.queued.iter().filter_map(|q| q.watch.as_ref()))
            .any(|i| i.id == w)
    }

    fn next_attempt(&mut self, now: Instant) {
        self.next_attempt_since(now, now)
    }

    /// The next attempt, its backoff (if any) counted from `since`.
    fn next_attempt_since(&mut self, since: Instant, now: Instant) {
        let (host, at) = self.hosts.next(since.min(now), &mut self.rng);
        if at <= now {
            self.connect(host, now);
        } else {
            self.link = Link::Idle {
                next: Some((host, at)),
            };
        }
    }

    fn connect(&mut self, host: usize, now: Instant) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let Some(addr) = self.config.hosts.get(host).cloned() else {
            return;
        };
        self.actions.push_back(Action::Connect { conn, host: addr });
        self.attempt_started = now;
        self.link = Link::Connecting {
            conn,
            host,
            deadline: later(now, self.connect_timeout()),
        };
    }

    /// An attempt (connect or handshake) failed: try the next host.
    fn attempt_failed(&mut self, now: Instant, reason: DisconnectReason, close: bool) {
        // The backoff counts from the failed attempt's start: an attempt that
        // waited out a handshake wait of 1 s has used up a backoff of at most 1 s.
        let since = match self.link {
            Link::Connecting { .. } | Link::Handshaking { .. } => self.attempt_started,
            _ => now,
        };
        if let Some(conn) = self.link_conn() {
            if close {
                self.actions.push_back(Action::Disconnect { conn });
            }
            self.events.push_back(Event::Disconnected { conn, reason });
        }
        self.rx.clear();
        self.tx.clear();
        self.sasl = None;
        self.hosts.on_failure();
        self.link = Link::Idle { next: None };
        if self.closing.is_some() {
            self.finish_close(now);
            return;
        }
        if let Some(max) = self.config.connect_max_rounds {
            if self.hosts.failed_rounds() >= max.max(1) {
                self.terminate(SessionState::Unreachable, ZkError::Unreachable, now);
                return;
            }
        }
        self.next_attempt_since(since, now);
    }

    /// An attempt to a server that left the host list: not a failure of that server.
    fn abandon_attempt(&mut self, conn: ConnId, now: Instant) {
        self.actions.push_back(Action::Disconnect { conn });
        self.events.push_back(Event::Disconnected {
            conn,
            reason: DisconnectReason::Rebalance,
        });
        self.rx.clear();
        self.tx.clear();
        self.link = Link::Idle { next: None };
        if self.closing.is_some() {
            self.finish_close(now);
            return;
        }
        self.next_attempt(now);
    }

    /// The session's connection is gone (or being abandoned).
    fn drop_link(&mut self, now: Instant, reason: DisconnectReason, close: bool) {
        self.drop_link_then(now, reason, close, None)
    }

    /// Drops the connection, then connects to `then` (or the next host in rotation).
    fn drop_link_then(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        close: bool,
        then: Option<usize>,
    ) {
        let Link::Up { conn, .. } = self.link else {
            // Closing is always safe: an abandoned handshake must not reach the server later.
            let _ = close;
            self.attempt_failed(now, reason, true);
            return;
        };
        // Always tell the adapter to close: an abandoned socket must send nothing more.
        self.actions.push_back(Action::Disconnect { conn });
        self.events.push_back(Event::Disconnected { conn, reason });
        self.rx.clear();
        self.tx.clear();
        self.sasl = None;
        self.link = Link::Idle { next: None };
        self.ping_inflight = false;
        self.set_watches_inflight.clear();
        self.stop_probe();
        let closing = self.closing.is_some();
        for f in std::mem::take(&mut self.inflight) {
            self.complete(f, Err(ZkError::ConnectionLoss));
        }
        for id in std::mem::take(&mut self.auth_inflight)
            .into_iter()
            .flatten()
        {
            self.events.push_back(Event::Completed {
                id,
                result: Err(ZkError::ConnectionLoss),
            });
        }
        if closing {
            self.finish_close(now);
            return;
        }
        self.last_contact = Some(self.last_recv);
        self.set_state(SessionState::Suspended);
        if self.config.queue_policy == QueuePolicy::FailFast {
            self.fail_queued(ZkError::NotConnected);
        }
        match then {
            Some(host) => self.connect(host, now),
            None => self.next_attempt(now),
        }
    }

    fn on_connect_response(&mut self, frame: Bytes, now: Instant) {
        let Link::Handshaking { conn, host, .. } = self.link else {
            return;
        };
        let resp = match ConnectResponse::decode(&mut Reader::new(frame)) {
            Ok(r) => r,
            Err(e) => {
                self.attempt_failed(now, DisconnectReason::Malformed(e), true);
                return;
            }
        };
        // A server answered: the count of rounds without one starts again, and
        // the next handshake gets the shortest wait.
        self.hosts.on_connected(host);
        self.unanswered_handshakes = 0;
        if resp.timeout <= 0 {
            self.actions.push_back(Action::Disconnect { conn });
            self.link = Link::Idle { next: None };
            self.expire(now);
            return;
        }
        let read_only = resp.read_only == Some(true);
        self.session = Some((resp.session_id, resp.passwd));
        if !read_only {
            self.session_global = true;
        }
        self.negotiated = Some(Duration::from_millis(resp.timeout as u64));
        self.link = Link::Up { conn, host };
        self.last_recv = now;
        self.last_send = now;
        self.last_contact = Some(now);
        if let Some(cfg) = &self.config.sasl {
            // SASL before anything else; the rest follows when it succeeds. The
            // server is named by the host this connection reached (a mechanism
            // like GSSAPI derives `zookeeper/<host>` from it).
            let cnonce = format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64());
            let connected = self.config.hosts.get(host).map_or("", |h| h.host.as_str());
            match crate::sasl::SaslExchange::start(cfg, connected, cnonce) {
                Ok((exchange, token)) => {
                    self.sasl = Some(SaslRun {
                        exchange,
                        read_only,
                    });
                    self.send_sasl(token, now);
                }
                Err(e) => {
                    // The mechanism cannot even start (no credentials, unknown
                    // principal): no other server would change that.
                    let at = self.config.hosts.get(host).map(|h| h.to_string());
                    self.events.push_back(Event::SaslFailed {
                        reason: format!(
                            "{}: SASL {}: {e}",
                            at.unwrap_or_default(),
                            cfg.mechanism_name()
                        ),
                    });
                    self.terminate(SessionState::AuthFailed, ZkError::AuthFailed, now);
                }
            }
            return;
        }
        self.session_ready(read_only, now);
    }

    /// Sends one SASL token (a normal xid; the server answers it at once, and
    /// nothing else is outstanding meanwhile).
    fn send_sasl(&mut self, token: Bytes, now: Instant) {
        let xid = self.next_xid();
        self.send_frame(xid, &Request::Sasl(SaslPacket { token }));
        self.inflight.push_back(InFlight {
            xid,
            op: OpCode::Sasl,
            origin: Origin::Sasl,
            watch: None,
            sent_at: now,
            remove_type: None,
            unchrooted: false,
            traced: false,
            request_bytes: 0,
        });
    }

    /// A SASL reply: the next token, the end of the exchange, or its failure.
    fn on_sasl_reply(&mut self, err: ErrorCode, r: &mut Reader, now: Instant) {
        let Some(run) = &mut self.sasl else {
            return;
        };
        let step = if !err.is_ok() {
            Err(format!(
                "the server refused SASL {} authentication ({err})",
                self.config.sasl.as_ref().map_or("", |c| c.mechanism_name())
            ))
        } else {
            match SaslPacket::decode(r) {
                Ok(p) => run.exchange.step(&p.token).map_err(|e| {
                    format!(
                        "SASL {}: {e}",
                        self.config.sasl.as_ref().map_or("", |c| c.mechanism_name())
                    )
                }),
                Err(e) => Err(format!("malformed SASL reply: {e}")),
            }
        };
        match step {
            Ok(Some(token)) => self.send_sasl(token, now),
            Ok(None) => {
                let read_only = run.read_only;
                self.sasl = None;
                self.session_ready(read_only, now);
            }
            Err(reason) => {
                self.sasl = None;
                let at = self.current_host().map(|h| h.to_string());
                self.events.push_back(Event::SaslFailed {
                    reason: format!("{}: {reason}", at.unwrap_or_default()),
                });
                self.terminate(SessionState::AuthFailed, ZkError::AuthFailed, now);
            }
        }
    }

    /// Whether requests go out now: connected, and no SASL exchange running.
    fn ready(&self) -> bool {
        matches!(self.link, Link::Up { .. }) && self.sasl.is_none() && self.closing.is_none()
    }

    /// The handshake (and SASL, if any) is done: credentials, watches, what waited,
    /// then the state.
    fn session_ready(&mut self, read_only: bool, now: Instant) {
        // Credentials first, then watches, then what waited: the order the Java client uses.
        for i in 0..self.creds.len() {
            let c = &mut self.creds[i];
            let waiting = std::mem::take(&mut c.waiting);
            let req = Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: c.scheme.clone(),
                auth: c.auth.clone(),
            });
            self.send_frame(XID_AUTH, &req);
            self.auth_inflight.push_back(waiting);
        }
        if !self.watches.is_empty() {
            for batch in self
                .watches
                .set_watches_batches(self.last_zxid, self.config.set_watches_batch)
            {
                let restores = self.batch_watchers(&batch);
                let req = if batch.persistent_watches.is_empty()
                    && batch.persistent_recursive_watches.is_empty()
                {
                    Request::SetWatches(SetWatches {
                        relative_zxid: batch.relative_zxid,
                        data_watches: batch.data_watches,
                        exist_watches: batch.exist_watches,
                        child_watches: batch.child_watches,
                    })
                } else {
                    Request::SetWatches2(batch)
                };
                self.send_frame(XID_SET_WATCHES, &req);
                self.set_watches_inflight.push_back(restores);
            }
        }
        for q in std::mem::take(&mut self.queued) {
            self.send_user(q.id, q.req, q.watch, q.unchrooted, q.traced, now);
        }
        if read_only {
            self.set_state(SessionState::ConnectedReadOnly);
            if self.config.hosts.len() > 1 {
                self.probe = Some(Probe {
                    next_at: later(now, PROBE_FIRST),
                    interval: PROBE_FIRST,
                    turn: 0,
                    conn: None,
                    answer: Vec::new(),
                });
            }
        } else {
            self.stop_probe();
            self.set_state(SessionState::Connected);
        }
    }

    fn on_reply(&mut self, frame: Bytes, now: Instant) {
        // The frame plus its length prefix: what the reply cost on the wire.
        self.reply_bytes = u32::try_from(frame.len() + 4).unwrap_or(u32::MAX);
        self.on_reply_frame(frame, now);
        self.reply_bytes = 0;
    }

    fn on_reply_frame(&mut self, frame: Bytes, now: Instant) {
        let mut r = Reader::new(frame);
        let header = match ReplyHeader::decode(&mut r) {
            Ok(h) => h,
            Err(e) => {
                self.drop_link(now, DisconnectReason::Malformed(e), true);
                return;
            }
        };
        match header.xid {
            XID_NOTIFICATION => match WatcherEvent::decode(&mut r) {
                // 3.9 sends the change's zxid (ZOOKEEPER-4655); 3.8 sends -1.
                Ok(ev) => self.on_notification(ev, (header.zxid > 0).then_some(header.zxid)),
                Err(e) => self.drop_link(now, DisconnectReason::Malformed(e), true),
            },
            XID_PING => {
                self.ping_inflight = false;
                self.ping_ack = now;
            }
            XID_AUTH => {
                let waiting = self.auth_inflight.pop_front().unwrap_or_default();
                if header.err == ErrorCode::AuthFailed {
                    for id in waiting {
                        self.events.push_back(Event::Completed {
                            id,
                            result: Err(ZkError::AuthFailed),
                        });
                    }
                    self.terminate(SessionState::AuthFailed, ZkError::AuthFailed, now);
                } else {
                    let result = if header.err.is_ok() {
                        Ok(Response::Empty)
                    } else {
                        Err(ZkError::Server(header.err))
                    };
                    for id in waiting {
                        self.events.push_back(Event::Completed {
                            id,
                            result: result.clone(),
                        });
                    }
                }
            }
            XID_SET_WATCHES => {
                // One reply per batch, in order.
                let restored = self.set_watches_inflight.pop_front().unwrap_or_default();
                if !header.err.is_ok() {
                    self.restore_failed(restored, header.err);
                }
            }
            xid => {
                let expected = self.inflight.front().map(|f| f.xid);
                if expected != Some(xid) {
                    self.drop_link(
                        now,
                        DisconnectReason::XidOutOfOrder { expected, got: xid },
                        true,
                    );
                    return;
                }
                let Some(f) = self.inflight.pop_front() else {
                    return;
                };
                if f.origin == Origin::Sasl {
                    self.on_sasl_reply(header.err, &mut r, now);
                    return;
                }
                if header.zxid > 0 {
                    self.last_zxid = self.last_zxid.max(header.zxid);
                }
                if !header.err.is_ok() {
                    let code = header.err;
                    let origin = f.origin;
                    self.complete(f, Err(ZkError::Server(code)));
                    self.complete_local_front();
                    if origin == Origin::Close {
                        self.finish_close(now);
                    }
                    return;
                }
                match Response::decode_body(f.op, &mut r) {
                    Ok(resp) => {
                        let origin = f.origin;
                        self.complete(f, Ok(resp));
                        self.complete_local_front();
                        if origin == Origin::Close {
                            self.finish_close(now);
                        }
                    }
                    Err(e) => {
                        self.complete(f, Err(ZkError::Malformed(e.clone())));
                        self.drop_link(now, DisconnectReason::Malformed(e), true);
                    }
                }
            }
        }
    }

    /// The oldest request's reply is over `max` bytes (and being skipped): it fails
    /// alone, with [`ZkError::ReplyTooLarge`]; the connection stays.
    fn reply_too_large(&mut self, size: usize, max: usize, now: Instant) {
        let Some(f) = self.inflight.pop_front() else {
            return;
        };
        let origin = f.origin;
        self.reply_bytes = u32::try_from(size + 4).unwrap_or(u32::MAX);
        self.complete(f, Err(ZkError::ReplyTooLarge { size, max }));
        self.reply_bytes = 0;
        self.complete_local_front();
        if origin == Origin::Close {
            self.finish_close(now);
        }
    }

    /// The registrations a SetWatches batch restores (server paths × kinds).
    fn batch_watchers(&self, batch: &SetWatches2) -> Vec<WatcherId> {
        let mut ids = Vec::new();
        for (paths, kind) in [
            (&batch.data_watches, WatchKind::Data),
            (&batch.exist_watches, WatchKind::Exist),
            (&batch.child_watches, WatchKind::Child),
            (&batch.persistent_watches, WatchKind::Persistent),
            (
                &batch.persistent_recursive_watches,
                WatchKind::PersistentRecursive,
            ),
        ] {
            for p in paths {
                ids.extend(self.watches.ids_at(p, &[kind]));
            }
        }
        ids
    }

    /// The server refused a SetWatches batch: the watches it restored are dead.
    /// Those that fired or were removed since it was sent are already gone.
    fn restore_failed(&mut self, restored: Vec<WatcherId>, code: ErrorCode) {
        for watcher in restored {
            if self.watches.remove(watcher).is_some() {
                self.events.push_back(Event::WatcherRemoved {
                    watcher,
                    reason: RemovalReason::NotSet(ZkError::Server(code)),
                });
            }
        }
        self.events.push_back(Event::RestoreFailed { code });
    }

    /// Completes the locally answered entries now at the front of the queue.
    fn complete_local_front(&mut self) {
        while self.inflight.front().is_some_and(|f| f.xid == LOCAL_XID) {
            if let Some(f) = self.inflight.pop_front() {
                self.complete(f, Ok(Response::Multi(Default::default())));
            }
        }
    }

    fn on_notification(&mut self, ev: WatcherEvent, zxid: Option<i64>) {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.watches.fire(ev.event_type, &ev.path, &mut fired);
        if !fired.is_empty() {
            let path = self.config.chroot.strip(&ev.path);
            for &watcher in &fired {
                self.events.push_back(Event::Watch {
                    watcher,
                    event: WatchedEvent {
                        event_type: ev.event_type,
                        path: path.clone(),
                        zxid,
                    },
                });
            }
        }
        self.fired = fired;
    }

    /// Finishes a request: arms its watch, strips the chroot, emits the completion.
    fn complete(&mut self, f: InFlight, mut result: Result<Response, ZkError>) {
        if f.xid == LOCAL_XID {
            result = Ok(Response::Multi(Default::default()));
        }
        if let Some(intent) = f.watch {
            let cancelled = self.cancelled.remove(&intent.id);
            let kind = match (&result, intent.kind) {
                (Ok(_), k) => Some(k),
                (Err(ZkError::Server(ErrorCode::NoNode)), WatchKind::Data)
                    if f.op == OpCode::Exists =>
                {
                    Some(WatchKind::Exist)
                }
                _ => None,
            };
            match (kind, cancelled) {
                (None, true) => {}
                // Cancelled while in flight, but the server armed it: unless another
                // registration still needs that server watch, remove it there too.
                (Some(kind), true) => self.unarm_cancelled(&intent.path, kind),
                (Some(kind), false) => self.watches.insert(intent.id, intent.path, kind),
                (None, false) => self.events.push_back(Event::WatcherRemoved {
                    watcher: intent.id,
                    reason: RemovalReason::NotSet(
                        result.clone().err().unwrap_or(ZkError::ConnectionLoss),
                    ),
                }),
            }
        }
        if let (Ok(_), Some((path, wt))) = (&result, &f.remove_type) {
            self.remove_local(path, *wt);
        }
        let Origin::User(id) = f.origin else {
            return;
        };
        if let (Ok(resp), false) = (&mut result, f.unchrooted) {
            self.strip_chroot(resp);
        }
        // The reply's bytes belong to the first request it completes (not to the
        // locally answered ones behind it).
        let response_bytes = std::mem::take(&mut self.reply_bytes);
        if f.traced && f.xid != LOCAL_XID {
            self.events.push_back(Event::RequestTraced {
                id,
                xid: f.xid,
                request_bytes: f.request_bytes,
                response_bytes,
            });
        }
        self.events.push_back(Event::Completed { id, result });
    }

    fn unarm_cancelled(&mut self, path: &str, kind: WatchKind) {
        let (kinds, wt): (&[WatchKind], WatcherType) = match kind {
            WatchKind::Data | WatchKind::Exist => {
                (&[WatchKind::Data, WatchKind::Exist], WatcherType::Data)
            }
            WatchKind::Child => (&[WatchKind::Child], WatcherType::Children),
            WatchKind::Persistent => (&[WatchKind::Persistent], WatcherType::Persistent),
            WatchKind::PersistentRecursive => (
                &[WatchKind::PersistentRecursive],
                WatcherType::PersistentRecursive,
            ),
        };
        let still_needed =
            !self.watches.ids_at(path, kinds).is_empty() || self.path_has_pending_intent(path);
        if !still_needed && self.ready() {
            let req = Request::RemoveWatches(WatchesRequest {
                path: path.to_owned(),
                watcher_type: wt,
            });
            let now = self.now;
            self.send_internal(req, now);
        }
    }

    fn remove_local(&mut self, path: &str, wt: WatcherType) {
        let kinds: &[WatchKind] = match wt {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            _ => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        };
        for id in self.watches.ids_at(path, kinds) {
            self.watches.remove(id);
            self.events.push_back(Event::WatcherRemoved {
                watcher: id,
                reason: RemovalReason::Removed,
            });
        }
    }

    fn strip_chroot(&self, resp: &mut Response) {
        let c = &self.config.chroot;
        if c.root().is_none() {
            return;
        }
        match resp {
            Response::Create(r) => c.strip_in_place(&mut r.path),
            Response::Create2(r) => c.strip_in_place(&mut r.path),
            Response::Sync(r) => c.strip_in_place(&mut r.path),
            Response::GetEphemerals(r) => r.ephemerals.iter_mut().for_each(|p| c.strip_in_place(p)),
            Response::Multi(m) => {
                for res in &mut m.results {
                    match res {
                        MultiResult::Create(r) => c.strip_in_place(&mut r.path),
                        MultiResult::Create2(r) => c.strip_in_place(&mut r.path),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn fail_queued(&mut self, err: ZkError) {
        for q in std::mem::take(&mut self.queued) {
            if let Some(w) = q.watch {
                if !self.cancelled.remove(&w.id) {
                    self.events.push_back(Event::WatcherRemoved {
                        watcher: w.id,
                        reason: RemovalReason::NotSet(err.clone()),
                    });
                }
            }
            self.events.push_back(Event::Completed {
                id: q.id,
                result: Err(err.clone()),
            });
        }
        for c in &mut self.creds {
            for id in c.waiting.drain(..) {
                self.events.push_back(Event::Completed {
                    id,
                    result: Err(err.clone()),
                });
            }
        }
    }

    /// Ends the session for good (or until a restart / new session).
    fn terminate(&mut self, to: SessionState, err: ZkError, _now: Instant) {
        if let Some(conn) = self.link_conn() {
            self.actions.push_back(Action::Disconnect { conn });
        }
        self.link = Link::Idle { next: None };
        self.rx.clear();
        self.tx.clear();
        self.sasl = None;
        self.stop_probe();
        self.ping_inflight = false;
        self.set_watches_inflight.clear();
        for f in std::mem::take(&mut self.inflight) {
            let e = if f.origin == Origin::Close {
                err.clone()
            } else if matches!(err, ZkError::SessionClosed) {
                ZkError::ConnectionLoss
            } else {
                err.clone()
            };
            self.complete(f, Err(e));
        }
        for id in std::mem::take(&mut self.auth_inflight)
            .into_iter()
            .flatten()
        {
            self.events.push_back(Event::Completed {
                id,
                result: Err(err.clone()),
            });
        }
        self.fail_queued(err.clone());
        for watcher in self.watches.drain() {
            self.events.push_back(Event::WatcherRemoved {
                watcher,
                reason: RemovalReason::SessionEnded(err.clone()),
            });
        }
        self.cancelled.clear();
        self.closing = None;
        self.restart_pending = false;
        self.set_state(to);
    }

    fn expire(&mut self, now: Instant) {
        self.terminate(SessionState::Expired, ZkError::SessionExpired, now);
        self.session = None;
        self.session_global = false;
        self.negotiated = None;
        self.last_contact = None;
        if self.config.expiry_policy == ExpiryPolicy::NewSession {
            self.set_state(SessionState::Connecting);
            self.next_attempt(now);
        }
    }

    fn finish_close(&mut self, now: Instant) {
        let restart = self.restart_pending;
        // What was submitted after restart() waits for the new session.
        let waiting = if restart {
            std::mem::take(&mut self.queued)
        } else {
            VecDeque::new()
        };
        self.terminate(SessionState::Closed, ZkError::SessionClosed, now);
        if restart {
            self.queued = waiting;
            self.start_new(now);
        }
    }

    // ------------------------------------------------------- read-only probe

    fn stop_probe(&mut self) {
        if let Some(p) = self.probe.take() {
            if let Some((conn, _, _)) = p.conn {
                self.actions.push_back(Action::Disconnect { conn });
            }
        }
    }

    fn probe_timeout(&mut self, now: Instant) {
        let Link::Up { host: current, .. } = self.link else {
            return;
        };
        let Some(p) = &mut self.probe else {
            return;
        };
        match p.conn {
            Some((conn, _, deadline)) if now >= deadline => {
                self.actions.push_back(Action::Disconnect { conn });
                self.probe_finished(conn, now);
            }
            None if now >= p.next_at => {
                let turn = p.turn;
                p.turn += 1;
                if let Some(host) = self.hosts.probe_candidate(current, turn) {
                    let conn = ConnId(self.next_conn);
                    self.next_conn += 1;
                    let deadline = later(now, self.connect_timeout());
                    if let Some(p) = &mut self.probe {
                        p.conn = Some((conn, host, deadline));
                        p.answer.clear();
                    }
                    if let Some(addr) = self.config.hosts.get(host).cloned() {
                        self.actions.push_back(Action::Connect { conn, host: addr });
                    }
                }
            }
            _ => {}
        }
    }

    /// The probe connection ended: "rw" means move there.
    fn probe_finished(&mut self, conn: ConnId, now: Instant) {
        let Some(p) = &mut self.probe else {
            return;
        };
        let Some((pc, host, _)) = p.conn else {
            return;
        };
        if pc != conn {
            return;
        }
        p.conn = None;
        if p.answer == b"rw" {
            self.probe = None;
            // Leave the read-only server for the read-write one.
            if matches!(self.link, Link::Up { .. }) {
                self.drop_link_then(now, DisconnectReason::LeavingReadOnly, true, Some(host));
            }
        } else {
            p.interval = (p.interval * 2).min(PROBE_MAX);
            p.next_at = later(now, p.interval);
        }
    }
}

fn is_empty_multi(req: &Request) -> bool {
    matches!(req, Request::Multi(m) | Request::MultiRead(m) if m.ops.is_empty())
}

fn is_sequential(flags: i32) -> bool {
    CreateMode::from_flags(flags, 0).is_some_and(|m| m.is_sequential())
}

fn check_and_prefix(
    path: &mut String,
    sequential: bool,
    chroot: &Chroot,
) -> Result<(), UsageError> {
    validate_path(path, sequential)?;
    chroot.prefix_in_place(path);
    Ok(())
}

/// Validates every path of a request (client paths) and applies the chroot.
fn prefix_paths(req: &mut Request, chroot: &Chroot) -> Result<(), UsageError> {
    match req {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
            check_and_prefix(&mut r.path, is_sequential(r.flags), chroot)
        }
        Request::CreateTtl(r) => check_and_prefix(&mut r.path, is_sequential(r.flags), chroot),
        Request::Multi(m) | Request::MultiRead(m) => {
            for op in &mut m.ops {
                let seq = match op {
                    MultiOp::Create { req, .. } => is_sequential(req.flags),
                    MultiOp::CreateTtl(r) => is_sequential(r.flags),
                    _ => false,
                };
                check_and_prefix(op.path_mut(), seq, chroot)?;
            }
            Ok(())
        }
        // A plain prefix, not a node path: empty or "/" means every ephemeral of the session.
        Request::GetEphemerals(r) => {
            if r.path.is_empty() || r.path == "/" {
                r.path = chroot.prefix("/");
                Ok(())
            } else {
                check_and_prefix(&mut r.path, true, chroot)
            }
        }
        other => {
            let mut res = Ok(());
            other.for_each_path_mut(|p| {
                if res.is_ok() {
                    res = check_and_prefix(p, false, chroot);
                }
            });
            res
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
