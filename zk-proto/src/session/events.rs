//! What the session hands out ([`Transmit`], [`Action`], [`Event`] and the
//! reasons inside them) and the ids it names connections and requests by.

use bytes::Bytes;

use crate::config::HostAddr;
use crate::error::{DecodeError, ErrorCode, ZkError};
use crate::ops::Response;
use crate::types::EventType;
use crate::watches::WatcherId;

use super::SessionState;

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
    /// [`handle_connected`](super::Session::handle_connected) or
    /// [`handle_connect_failed`](super::Session::handle_connect_failed). The adapter resolves the name.
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
    /// [`Session::handshake_wait`](super::Session::handshake_wait)).
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
    /// Moving to another server after [`Session::update_hosts`](super::Session::update_hosts) replaced the host
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
    /// What a traced request cost on the wire (see [`Session::trace_request`](super::Session::trace_request));
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

/// What [`Session::submit`](super::Session::submit) gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// Completes with [`Event::Completed`].
    pub id: RequestId,
    /// The watch registration, when the request asks for one. It is armed only if
    /// the request succeeds; otherwise [`Event::WatcherRemoved`] with `NotSet` follows.
    pub watcher: Option<WatcherId>,
}
