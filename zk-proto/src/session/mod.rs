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
//! passed in should not go backwards; an earlier instant than one already seen is
//! taken as that latest one (clamped), never a panic: two threads that read the
//! clock and then race for the session can hand it instants out of order.
//!
//! Connections are named by [`ConnId`]. Several can be open at once (the
//! read-only probe runs beside the session's connection). Input for a connection
//! the session has already abandoned is ignored, so late bytes from a dead socket
//! can never corrupt a new one.
//!
//! # Where each concern lives
//!
//! * `mod.rs` (here): the [`Session`] and its state, its constructor, getters,
//!   [`poll_action`](Session::poll_action) and [`poll_event`](Session::poll_event).
//! * `events.rs`: what the session hands out ([`Transmit`], [`Action`], [`Event`])
//!   and the ids it names connections and requests by; `state.rs`: [`SessionState`].
//! * `link.rs`: host choice, connection attempts and losing a connection;
//!   `handshake.rs`: the ConnectRequest and ConnectResponse, and what follows them.
//! * `timers.rs`: read timeout, pings, connect timeout, [`poll_timeout`](Session::poll_timeout)
//!   and [`handle_timeout`](Session::handle_timeout).
//! * `outbound.rs`: [`submit`](Session::submit), xids, the outbound buffer and the
//!   queue while disconnected; `paths.rs`: validation and the chroot.
//! * `replies.rs`: bytes in, the xid order, completions; `watchers.rs`: watch
//!   registrations; `restore.rs`: SetWatches after a reconnect.
//! * `auth.rs`: credentials and SASL; `probe.rs`: looking for a read-write server
//!   from a read-only one; `close.rs`: close, restart, expiry and the terminal states.

mod auth;
mod close;
mod events;
mod handshake;
mod link;
mod outbound;
mod paths;
mod probe;
mod replies;
mod restore;
mod state;
#[cfg(test)]
mod test_peer;
mod timers;
mod watchers;

pub use events::{
    Action, ConnId, DisconnectReason, Event, RemovalReason, RequestId, Submitted, Transmit,
    WatchedEvent,
};
pub use state::{CoarseState, SessionState};

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::config::{Config, HostAddr};
use crate::frame::FrameDecoder;
use crate::hosts::{HostList, Rng};
use crate::ops::Request;
use crate::types::{OpCode, WatcherType};
use crate::watches::{WatchKind, WatchRegistry, WatcherId};

use auth::{Credential, SaslRun};
use probe::Probe;

const XID_NOTIFICATION: i32 = -1;
const XID_PING: i32 = -2;
const XID_AUTH: i32 = -4;
const XID_SET_WATCHES: i32 = -8;
/// The ensemble config node, read by [`Session::submit_get_config`] without the chroot.
/// (A plain getData of this path through [`Session::submit`] is chrooted like any other.)
pub const CONFIG_NODE: &str = "/zookeeper/config";
/// Marks an in-flight entry answered locally (an empty multi), never sent.
const LOCAL_XID: i32 = 0;

/// Whom a request in flight belongs to: where its reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    User(RequestId),
    Close,
    Internal,
    /// A SASL token; its reply feeds the exchange.
    Sasl,
}

/// The watch a request asks for: armed only when the request succeeds.
#[derive(Debug, Clone)]
struct Intent {
    id: WatcherId,
    path: String,
    kind: WatchKind,
}

/// A request sent and not yet answered; replies come in the order sent.
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

/// A request waiting for a connection (or for SASL to finish).
#[derive(Debug)]
struct Queued {
    id: RequestId,
    req: Request,
    watch: Option<Intent>,
    unchrooted: bool,
    traced: bool,
}

/// The session's connection, from none through the attempt and handshake to up.
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

    /// When bytes last came from the server on the live connection (on the clock
    /// the caller passes in); `None` while no connection carries the session.
    ///
    /// Why: the read timeout counts from here (a connection silent for two thirds
    /// of the negotiated timeout is given up), so this shows how close a quiet
    /// connection is to that, and lets a test on a manual clock wait for a ping's
    /// answer before it moves the clock on.
    pub fn last_received(&self) -> Option<Instant> {
        matches!(
            self.state,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
        .then_some(self.last_recv)
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

    /// Number of armed watch registrations.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Requests sent and not yet answered, plus those waiting for a connection.
    pub fn outstanding(&self) -> usize {
        self.inflight.len() + self.queued.len()
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

    /// The session's time: `now`, or the latest instant seen if `now` is earlier.
    fn clock(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// Next transport action. Should be called after every input and command.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
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
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::ZkError;
    use crate::session::test_peer::{events, get_data, hosts, t0, Peer};
    use crate::session::{Event, RequestId, Session};

    /// An instant earlier than one already seen is clamped to it: no panic (in
    /// debug builds too), and no deadline moves.
    #[test]
    fn time_going_back_is_clamped() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let later = now + std::time::Duration::from_secs(5);
        s.handle_timeout(later);
        while s.poll_action().is_some() {}
        let due = s.poll_timeout();
        s.handle_timeout(now);
        assert_eq!(s.poll_timeout(), due);
        assert!(s.poll_action().is_none());
        s.submit(get_data("/a"), now).unwrap();
        assert_eq!(s.outstanding(), 1);
    }

    /// Freeing idle memory never drops what waits: requests queued while
    /// disconnected are still there after `shrink_idle`, and still complete.
    #[test]
    fn shrink_idle_keeps_queued_requests() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let ids: Vec<RequestId> = (0..3)
            .map(|_| s.submit(get_data("/a"), now).unwrap().id)
            .collect();
        s.shrink_idle();
        assert_eq!(s.outstanding(), 3);
        s.close(now);
        let failed: Vec<RequestId> = events(&mut s)
            .into_iter()
            .filter_map(|e| match e {
                Event::Completed {
                    id,
                    result: Err(ZkError::SessionClosed),
                } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(failed, ids);
    }

    /// A `check` stands only inside a multi: alone it is refused before
    /// anything is sent.
    #[test]
    fn check_alone_is_refused() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let check = crate::ops::Request::Check(crate::records::CheckVersionRequest {
            path: "/a".into(),
            version: 1,
        });
        assert!(matches!(
            s.submit(check, now),
            Err(crate::error::UsageError::InvalidRequest(_))
        ));
        assert_eq!(s.outstanding(), 0);
    }

    /// The packets the session manages itself (pings, auth, close, the watch
    /// restore) are refused from a caller, before anything is sent.
    #[test]
    fn session_packets_are_refused_from_callers() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        for req in [crate::ops::Request::Ping, crate::ops::Request::CloseSession] {
            assert!(matches!(
                s.submit(req, now),
                Err(crate::error::UsageError::InvalidRequest(_))
            ));
        }
        assert_eq!(s.outstanding(), 0);
    }

    /// Credentials are kept per (scheme, credentials) pair: two users of one
    /// scheme are two credentials to replay, the same one twice is one.
    #[test]
    fn credentials_are_kept_per_scheme_and_secret() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        s.add_auth("digest", bytes::Bytes::from_static(b"a:a"), now)
            .unwrap();
        s.add_auth("digest", bytes::Bytes::from_static(b"b:b"), now)
            .unwrap();
        s.add_auth("digest", bytes::Bytes::from_static(b"a:a"), now)
            .unwrap();
        s.add_auth("ip", bytes::Bytes::from_static(b"a:a"), now)
            .unwrap();
        assert_eq!(s.creds.len(), 3);
    }

    /// What grew is given back once empty: the event queue that a burst of
    /// completions filled (64 requests failed by a close) keeps room for one,
    /// no more and no less.
    #[test]
    fn shrink_idle_frees_a_grown_queue() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        for _ in 0..64 {
            s.submit(get_data("/a"), now).unwrap();
        }
        s.close(now);
        let _ = events(&mut s);
        assert!(s.events.is_empty() && s.events.capacity() >= 64);
        s.shrink_idle();
        // Room for one stays: one call at a time allocates nothing.
        assert!(
            (1..64).contains(&s.events.capacity()),
            "{}",
            s.events.capacity()
        );
    }

    /// A session's `Debug` names where it stands (state, session id, counts) and
    /// prints no secret: neither the session password nor a credential.
    #[test]
    fn debug_shows_the_state_and_no_secret() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        p.s.add_auth("digest", bytes::Bytes::from_static(b"alice:secret"), p.now)
            .unwrap();
        let d = format!("{:?}", p.s);
        assert!(d.contains("state: Connected"), "{d}");
        assert!(d.contains("session_id: Some(7)"), "{d}");
        assert!(d.contains("credentials: 1"), "{d}");
        assert!(!d.contains("secret") && !d.contains("alice"), "{d}");
    }
}
