//! Error types, in three families kept apart on purpose:
//! [`ErrorCode`] is what the server said (kept even when unknown to this version),
//! [`ZkError`] is what a request resolves to, [`DecodeError`] is a malformed peer.
//! Local misuse of the API is [`UsageError`], returned by commands before anything is sent.

use std::fmt;

/// A result code as the server puts it in `ReplyHeader.err` (KeeperException.Code).
///
/// Codes this version does not know are kept in [`ErrorCode::Unknown`], so a newer
/// server's answer is never lost.
///
/// Why: to turn the `err` field of a reply header into something to match on,
/// and back into the number a log line or another client expects.
///
/// ```
/// use zk_proto::{ErrorCode, ZkError};
///
/// let code = ErrorCode::from_code(-101);
/// assert_eq!(code, ErrorCode::NoNode);
/// assert_eq!(code.code(), -101);
/// assert_eq!(code.to_string(), "NoNode (-101)");
/// assert!(ErrorCode::from_code(0).is_ok());
///
/// // A code from a newer server survives the round trip.
/// let newer = ErrorCode::from_code(-999);
/// assert_eq!(newer, ErrorCode::Unknown(-999));
/// assert_eq!(newer.code(), -999);
///
/// // A request failed by the server carries its code.
/// let err = ZkError::from(ErrorCode::NodeExists);
/// assert_eq!(err, ZkError::Server(ErrorCode::NodeExists));
/// assert_eq!(err.code().code(), -110);
/// ```
// Equality and hashing go by the wire code: `Unknown(-101)` built by hand is
// `NoNode`, as `ErrorCode::from_code(-101)` would make it.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0: success.
    #[default]
    Ok,
    /// -1: range marker; not sent by servers.
    SystemError,
    /// -2: a multi's sub-operation after the one that failed.
    RuntimeInconsistency,
    /// -3
    DataInconsistency,
    /// -4: the connection was lost; the outcome of the request is unknown.
    ConnectionLoss,
    /// -5: the server could not decode the request body.
    MarshallingError,
    /// -6: unknown opcode or a disabled feature (TTL nodes without extendedTypesEnabled).
    Unimplemented,
    /// -7: the operation timed out on the client.
    OperationTimeout,
    /// -8: bad flags, TTL or path.
    BadArguments,
    /// -12
    UnknownSession,
    /// -13
    NewConfigNoQuorum,
    /// -14
    ReconfigInProgress,
    /// -100: range marker.
    ApiError,
    /// -101
    NoNode,
    /// -102: an ACL check failed.
    NoAuth,
    /// -103
    BadVersion,
    /// -108: ephemeral nodes cannot have children.
    NoChildrenForEphemerals,
    /// -110
    NodeExists,
    /// -111
    NotEmpty,
    /// -112
    SessionExpired,
    /// -113
    InvalidCallback,
    /// -114
    InvalidAcl,
    /// -115
    AuthFailed,
    /// -118
    SessionMoved,
    /// -119: a write sent to a read-only server.
    NotReadOnly,
    /// -120
    EphemeralOnLocalSession,
    /// -121: no such watch (checkWatches / removeWatches).
    NoWatcher,
    /// -122
    RequestTimeout,
    /// -123
    ReconfigDisabled,
    /// -124: the server requires SASL auth on this connection.
    SessionClosedRequireSaslAuth,
    /// -125: hard quota exceeded (3.7+).
    QuotaExceeded,
    /// -127: the server dropped the request under load; safe to retry after a pause (3.7+).
    ThrottledOp,
    /// A code this version does not name.
    Unknown(i32),
}

impl ErrorCode {
    /// Maps a wire code.
    pub fn from_code(code: i32) -> ErrorCode {
        use ErrorCode::*;
        match code {
            0 => Ok,
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -13 => NewConfigNoQuorum,
            -14 => ReconfigInProgress,
            -100 => ApiError,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -124 => SessionClosedRequireSaslAuth,
            -125 => QuotaExceeded,
            -127 => ThrottledOp,
            n => Unknown(n),
        }
    }

    /// The wire code.
    pub fn code(self) -> i32 {
        use ErrorCode::*;
        match self {
            Ok => 0,
            SystemError => -1,
            RuntimeInconsistency => -2,
            DataInconsistency => -3,
            ConnectionLoss => -4,
            MarshallingError => -5,
            Unimplemented => -6,
            OperationTimeout => -7,
            BadArguments => -8,
            UnknownSession => -12,
            NewConfigNoQuorum => -13,
            ReconfigInProgress => -14,
            ApiError => -100,
            NoNode => -101,
            NoAuth => -102,
            BadVersion => -103,
            NoChildrenForEphemerals => -108,
            NodeExists => -110,
            NotEmpty => -111,
            SessionExpired => -112,
            InvalidCallback => -113,
            InvalidAcl => -114,
            AuthFailed => -115,
            SessionMoved => -118,
            NotReadOnly => -119,
            EphemeralOnLocalSession => -120,
            NoWatcher => -121,
            RequestTimeout => -122,
            ReconfigDisabled => -123,
            SessionClosedRequireSaslAuth => -124,
            QuotaExceeded => -125,
            ThrottledOp => -127,
            Unknown(n) => n,
        }
    }

    /// The code's name as the Java client spells its `KeeperException.Code`
    /// (`NoNode`), `"Unknown"` for a code this version does not know.
    ///
    /// Why: a static name for a log field or a metric label, with no allocation.
    ///
    /// ```
    /// assert_eq!(zk_proto::ErrorCode::NoNode.name(), "NoNode");
    /// ```
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Ok => "Ok",
            SystemError => "SystemError",
            RuntimeInconsistency => "RuntimeInconsistency",
            DataInconsistency => "DataInconsistency",
            ConnectionLoss => "ConnectionLoss",
            MarshallingError => "MarshallingError",
            Unimplemented => "Unimplemented",
            OperationTimeout => "OperationTimeout",
            BadArguments => "BadArguments",
            UnknownSession => "UnknownSession",
            NewConfigNoQuorum => "NewConfigNoQuorum",
            ReconfigInProgress => "ReconfigInProgress",
            ApiError => "ApiError",
            NoNode => "NoNode",
            NoAuth => "NoAuth",
            BadVersion => "BadVersion",
            NoChildrenForEphemerals => "NoChildrenForEphemerals",
            NodeExists => "NodeExists",
            NotEmpty => "NotEmpty",
            SessionExpired => "SessionExpired",
            InvalidCallback => "InvalidCallback",
            InvalidAcl => "InvalidAcl",
            AuthFailed => "AuthFailed",
            SessionMoved => "SessionMoved",
            NotReadOnly => "NotReadOnly",
            EphemeralOnLocalSession => "EphemeralOnLocalSession",
            NoWatcher => "NoWatcher",
            RequestTimeout => "RequestTimeout",
            ReconfigDisabled => "ReconfigDisabled",
            SessionClosedRequireSaslAuth => "SessionClosedRequireSaslAuth",
            QuotaExceeded => "QuotaExceeded",
            ThrottledOp => "ThrottledOp",
            Unknown(_) => "Unknown",
        }
    }

    /// Whether this is success.
    pub fn is_ok(self) -> bool {
        self == ErrorCode::Ok
    }
}

impl PartialEq for ErrorCode {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for ErrorCode {}

impl std::hash::Hash for ErrorCode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code().hash(state);
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(n) => write!(f, "unknown error code {n}"),
            other => write!(f, "{other:?} ({})", other.code()),
        }
    }
}

/// Why a request did not succeed.
///
/// Why: a caller decides from it whether to retry, report, or check whether a
/// write landed.
///
/// ```
/// use zk_proto::{ErrorCode, ZkError};
///
/// // The connection dropped under a write: it may have been applied.
/// assert!(ZkError::ConnectionLoss.outcome_unknown());
/// assert!(!ZkError::Server(ErrorCode::BadVersion).outcome_unknown());
/// // The codes Java and kazoo users know these by.
/// assert_eq!(ZkError::NotConnected.code(), ErrorCode::ConnectionLoss);
/// assert_eq!(ZkError::Timeout.code(), ErrorCode::OperationTimeout);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZkError {
    /// The server answered with this non-zero code.
    Server(ErrorCode),
    /// The connection dropped before the reply came. For a write the outcome is
    /// unknown: it may have been applied.
    ConnectionLoss,
    /// The session is gone; the request was not (or no longer) sent.
    SessionExpired,
    /// The session was closed by the caller.
    SessionClosed,
    /// Authentication failed; the session is terminal.
    AuthFailed,
    /// No reply came within the request's deadline. The outcome is unknown.
    Timeout,
    /// The request waited while disconnected and the queue policy rejected it.
    NotConnected,
    /// The server answered, but the reply could not be decoded. The connection was dropped.
    Malformed(DecodeError),
    /// No server was reached in [`Config::connect_max_rounds`](crate::Config::connect_max_rounds)
    /// rounds over the host list; the session stopped trying
    /// ([`SessionState::Unreachable`](crate::SessionState::Unreachable)). The request
    /// was not sent.
    Unreachable,
    /// The server answered with a reply larger than [`Config::max_frame`](crate::Config::max_frame).
    /// The reply was skipped unread; the connection and the other requests are unaffected.
    /// The request was answered, so its outcome is known (a write was applied: only
    /// reads have large replies); repeating it gives the same answer.
    ReplyTooLarge {
        /// The reply's length in bytes (after the 4-byte length prefix).
        size: usize,
        /// The configured maximum.
        max: usize,
    },
}

impl ZkError {
    /// The code a Java or kazoo user would know this error by.
    pub fn code(&self) -> ErrorCode {
        match self {
            ZkError::Server(c) => *c,
            ZkError::ConnectionLoss | ZkError::NotConnected | ZkError::Unreachable => {
                ErrorCode::ConnectionLoss
            }
            ZkError::SessionExpired => ErrorCode::SessionExpired,
            ZkError::SessionClosed => ErrorCode::SessionExpired,
            ZkError::AuthFailed => ErrorCode::AuthFailed,
            ZkError::Timeout => ErrorCode::OperationTimeout,
            ZkError::Malformed(_) | ZkError::ReplyTooLarge { .. } => ErrorCode::MarshallingError,
        }
    }

    /// Whether a write that failed this way may still have been applied.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ZkError::ConnectionLoss | ZkError::Timeout | ZkError::Malformed(_)
        )
    }
}

impl fmt::Display for ZkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZkError::Server(c) => write!(f, "server error: {c}"),
            ZkError::ConnectionLoss => f.write_str("connection lost; outcome unknown"),
            ZkError::SessionExpired => f.write_str("session expired"),
            ZkError::SessionClosed => f.write_str("session closed"),
            ZkError::AuthFailed => f.write_str("authentication failed"),
            ZkError::Timeout => f.write_str("request timed out; outcome unknown"),
            ZkError::NotConnected => f.write_str("not connected"),
            ZkError::Malformed(e) => write!(f, "malformed reply: {e}"),
            ZkError::Unreachable => {
                f.write_str("no server could be reached; the session stopped trying")
            }
            ZkError::ReplyTooLarge { size, max } => write!(
                f,
                "reply of {size} bytes is larger than the maximum frame of {max} bytes"
            ),
        }
    }
}

impl std::error::Error for ZkError {}

impl From<ErrorCode> for ZkError {
    fn from(c: ErrorCode) -> Self {
        ZkError::Server(c)
    }
}

/// The peer sent bytes that are not valid protocol.
///
/// Why: decoding a record you received fails with one of these instead of
/// panicking; match it to log what was wrong with the bytes.
///
/// ```
/// use bytes::Bytes;
/// use zk_proto::error::DecodeError;
/// use zk_proto::jute::from_bytes;
/// use zk_proto::ReplyHeader;
///
/// // A reply header is 16 bytes (xid, zxid, err); 10 are not enough.
/// match from_bytes::<ReplyHeader>(Bytes::from_static(&[0; 10])) {
///     Err(DecodeError::Truncated { needed, available }) => assert_eq!((needed, available), (8, 6)),
///     other => panic!("{other:?}"),
/// }
/// // A string whose length is below -1.
/// let bad = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
/// assert_eq!(from_bytes::<String>(bad), Err(DecodeError::InvalidLength(-2)));
/// // Bytes that are not UTF-8 where a string is expected.
/// let bad = Bytes::from_static(&[0, 0, 0, 1, 0xff]);
/// let err = from_bytes::<String>(bad).unwrap_err();
/// assert_eq!(err, DecodeError::InvalidUtf8);
/// assert_eq!(err.to_string(), "string is not UTF-8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record needs more bytes than the frame holds.
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A length or count below -1.
    InvalidLength(i32),
    /// A frame length prefix that is negative or over the configured maximum.
    FrameLength {
        /// The prefix as sent.
        len: i32,
        /// The configured maximum.
        max: usize,
    },
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// The record ended before the frame did.
    TrailingBytes(usize),
    /// A field with a value outside its domain.
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// The value seen.
        value: i64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated record: needed {needed} bytes, {available} left"
                )
            }
            DecodeError::InvalidLength(n) => write!(f, "invalid length {n}"),
            DecodeError::FrameLength { len, max } => {
                write!(f, "frame length {len} outside 0..={max}")
            }
            DecodeError::InvalidUtf8 => f.write_str("string is not UTF-8"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the record"),
            DecodeError::InvalidValue { field, value } => {
                write!(f, "invalid value {value} for {field}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The caller asked for something that cannot be sent. Nothing was sent.
///
/// Why: these are the caller's mistakes, not the server's answers; an API built
/// on the session maps them to "invalid argument" and never retries them.
///
/// ```
/// use std::time::Instant;
///
/// use zk_proto::{Config, PathRequest, Request, Session, UsageError, ZkError};
///
/// assert!(matches!(
///     Config::from_connect_string("zk1:notaport"),
///     Err(UsageError::InvalidConnectString(_))
/// ));
///
/// let now = Instant::now(); // clock-exception: a doc example needs a start instant
/// let mut session = Session::new(Config::from_connect_string("zk1").unwrap(), now);
/// let sync = |path: &str| Request::Sync(PathRequest { path: path.into() });
/// let err = session.submit(sync("/a/"), now).unwrap_err();
/// assert!(matches!(&err, UsageError::InvalidPath { reason: "path must not end with /", .. }));
/// assert_eq!(err.to_string(), "invalid path \"/a/\": path must not end with /");
///
/// // After close, every command says why the session is over.
/// session.close(now);
/// assert_eq!(
///     session.submit(sync("/a"), now).unwrap_err(),
///     UsageError::SessionTerminated(ZkError::SessionClosed)
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// The path breaks ZooKeeper's path rules.
    InvalidPath {
        /// The path as given.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The session is in a terminal state; the error it ended with.
    SessionTerminated(ZkError),
    /// The queue of requests waiting for a connection is full.
    QueueFull,
    /// More than [`Config::max_outbound`](crate::Config::max_outbound) bytes are
    /// encoded and waiting to be taken by `poll_transmit` (the socket is not
    /// draining). Try again once the transport has written them.
    OutboundFull,
    /// The request is not valid on its own (a TTL out of range, ...). An empty
    /// multi is valid: it completes at once with no results.
    InvalidRequest(&'static str),
    /// The connect string could not be parsed.
    InvalidConnectString(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::InvalidPath { path, reason } => {
                write!(f, "invalid path {path:?}: {reason}")
            }
            UsageError::SessionTerminated(e) => write!(f, "session is over: {e}"),
            UsageError::QueueFull => f.write_str("too many requests waiting for a connection"),
            UsageError::OutboundFull => {
                f.write_str("too many bytes waiting to be written to the connection")
            }
            UsageError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            UsageError::InvalidConnectString(why) => write!(f, "invalid connect string: {why}"),
        }
    }
}

impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_compare_by_their_wire_value() {
        use std::collections::HashSet;
        assert_eq!(ErrorCode::Unknown(-101), ErrorCode::NoNode);
        assert_ne!(ErrorCode::Unknown(-999), ErrorCode::NoNode);
        let set: HashSet<ErrorCode> = [ErrorCode::NoNode, ErrorCode::Unknown(-101)].into();
        assert_eq!(set.len(), 1);
    }
}
