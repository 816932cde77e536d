//! Typed protocol constants. Each keeps values this version does not know
//! (`Unknown(i32)`) where a server may send them, so decoding never fails on a
//! newer server's constant and re-encoding gives back the same bytes.
//!
//! Why: a proxy, a logger or a client talking to a newer server can pass through
//! a value it does not know without losing it:
//!
//! ```
//! use zk_proto::jute::{from_bytes, to_bytes};
//! use zk_proto::types::{EventType, OpCode};
//!
//! assert_eq!(OpCode::from_i32(4), OpCode::GetData);
//! assert_eq!(OpCode::GetData.to_i32(), 4);
//!
//! // An event type from a future server.
//! let wire = to_bytes(&42i32);
//! let ev: EventType = from_bytes(wire.clone()).unwrap();
//! assert_eq!(ev, EventType::Unknown(42));
//! assert_eq!(to_bytes(&ev), wire);
//! ```

use bytes::{BufMut, BytesMut};

use crate::error::DecodeError;
use crate::jute::{Decode, Encode, Reader};

macro_rules! int_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $var:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A value this version does not name.
            Unknown(i32),
        }
        impl $name {
            /// Maps a wire value.
            pub fn from_i32(v: i32) -> Self {
                match v { $($val => $name::$var,)* n => $name::Unknown(n) }
            }
            /// The wire value.
            pub fn to_i32(self) -> i32 {
                match self { $($name::$var => $val,)* $name::Unknown(n) => n }
            }
        }
        impl Encode for $name {
            fn encode(&self, buf: &mut BytesMut) { buf.put_i32(self.to_i32()) }
        }
        impl Decode for $name {
            fn decode(r: &mut Reader) -> Result<Self, DecodeError> { Ok(Self::from_i32(r.i32()?)) }
            const MIN_SIZE: usize = 4;
        }
        impl Default for $name {
            fn default() -> Self { Self::Unknown(i32::MIN) }
        }
    };
}

int_enum! {
    /// Operation codes (`ZooDefs.OpCode`).
    pub enum OpCode {
        /// 0: notification (never sent as a request).
        Notification = 0,
        /// 1
        Create = 1,
        /// 2
        Delete = 2,
        /// 3
        Exists = 3,
        /// 4
        GetData = 4,
        /// 5
        SetData = 5,
        /// 6
        GetAcl = 6,
        /// 7
        SetAcl = 7,
        /// 8
        GetChildren = 8,
        /// 9
        Sync = 9,
        /// 11
        Ping = 11,
        /// 12
        GetChildren2 = 12,
        /// 13: only inside multi.
        Check = 13,
        /// 14
        Multi = 14,
        /// 15
        Create2 = 15,
        /// 16
        Reconfig = 16,
        /// 17
        CheckWatches = 17,
        /// 18
        RemoveWatches = 18,
        /// 19
        CreateContainer = 19,
        /// 20: server-internal.
        DeleteContainer = 20,
        /// 21
        CreateTtl = 21,
        /// 22
        MultiRead = 22,
        /// 100
        Auth = 100,
        /// 101
        SetWatches = 101,
        /// 102
        Sasl = 102,
        /// 103
        GetEphemerals = 103,
        /// 104
        GetAllChildrenNumber = 104,
        /// 105
        SetWatches2 = 105,
        /// 106
        AddWatch = 106,
        /// 107
        WhoAmI = 107,
        /// -10: server-internal.
        CreateSession = -10,
        /// -11
        CloseSession = -11,
        /// -1: a failed sub-result in a multi response.
        Error = -1,
    }
}

int_enum! {
    /// Kinds of watch notification (`Watcher.Event.EventType`).
    pub enum EventType {
        /// -1: a session state change, not a node event.
        None = -1,
        /// 1
        NodeCreated = 1,
        /// 2
        NodeDeleted = 2,
        /// 3
        NodeDataChanged = 3,
        /// 4
        NodeChildrenChanged = 4,
        /// 5: client-local.
        DataWatchRemoved = 5,
        /// 6: client-local.
        ChildWatchRemoved = 6,
        /// 7: client-local.
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Session states as they appear in watch events (`Watcher.Event.KeeperState`).
    pub enum KeeperState {
        /// 0
        Disconnected = 0,
        /// 3
        SyncConnected = 3,
        /// 4
        AuthFailed = 4,
        /// 5
        ConnectedReadOnly = 5,
        /// 6
        SaslAuthenticated = 6,
        /// -112
        Expired = -112,
        /// 7
        Closed = 7,
    }
}

int_enum! {
    /// Which watches checkWatches / removeWatches address (`Watcher.WatcherType`).
    pub enum WatcherType {
        /// 1
        Children = 1,
        /// 2
        Data = 2,
        /// 3: every kind; the only way to remove persistent watches on 3.8.
        Any = 3,
        /// 4: 3.9+.
        Persistent = 4,
        /// 5: 3.9+.
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// The mode of an addWatch request.
    pub enum AddWatchMode {
        /// 0: all events on exactly this path, until removed.
        Persistent = 0,
        /// 1: created, deleted and data-changed events on this path and every descendant.
        PersistentRecursive = 1,
    }
}

/// How a node is created. The TTL variants carry their time to live in milliseconds.
///
/// Why: a create request carries the mode as `flags`, and containers and TTL
/// nodes need their own request (opcode); this maps one to the other.
///
/// ```
/// use zk_proto::types::{CreateMode, OpCode};
///
/// let lock = CreateMode::EphemeralSequential;
/// assert_eq!(lock.flags(), 3);
/// assert!(lock.is_ephemeral() && lock.is_sequential());
/// assert_eq!(lock.opcode(), OpCode::Create2); // a plain CreateRequest
///
/// let ttl = CreateMode::PersistentWithTtl(60_000);
/// assert_eq!(ttl.opcode(), OpCode::CreateTtl); // needs Request::CreateTtl
/// assert_eq!(CreateMode::from_flags(ttl.flags(), 60_000), Some(ttl));
/// assert_eq!(CreateMode::Container.opcode(), OpCode::CreateContainer);
/// assert_eq!(CreateMode::from_flags(42, 0), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CreateMode {
    /// Lives until deleted.
    #[default]
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a 10-digit sequence number appended to the name.
    PersistentSequential,
    /// Ephemeral, with a sequence number appended.
    EphemeralSequential,
    /// Deleted by the server once its last child is gone.
    Container,
    /// Deleted by the server when unmodified and childless for the TTL (ms).
    PersistentWithTtl(i64),
    /// Sequential, with a TTL (ms).
    PersistentSequentialWithTtl(i64),
}

impl CreateMode {
    /// The `flags` field of the create request.
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl(_) => 5,
            CreateMode::PersistentSequentialWithTtl(_) => 6,
        }
    }

    /// The mode for a flags value (TTL variants get `ttl`).
    pub fn from_flags(flags: i32, ttl: i64) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl(ttl),
            6 => CreateMode::PersistentSequentialWithTtl(ttl),
            _ => return None,
        })
    }

    /// The TTL in ms, for TTL modes.
    pub fn ttl(self) -> Option<i64> {
        match self {
            CreateMode::PersistentWithTtl(t) | CreateMode::PersistentSequentialWithTtl(t) => {
                Some(t)
            }
            _ => None,
        }
    }

    /// Whether the node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the server appends a sequence number.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl(_)
        )
    }

    /// The opcode a create with this mode must use (container and TTL nodes have their own).
    pub fn opcode(self) -> OpCode {
        match self {
            CreateMode::Container => OpCode::CreateContainer,
            CreateMode::PersistentWithTtl(_) | CreateMode::PersistentSequentialWithTtl(_) => {
                OpCode::CreateTtl
            }
            _ => OpCode::Create2,
        }
    }
}

/// ACL permission bits (`ZooDefs.Perms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set ACLs.
    pub const ADMIN: Perms = Perms(16);
    /// Everything.
    pub const ALL: Perms = Perms(31);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl Encode for Perms {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.0)
    }
}
impl Decode for Perms {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Perms(r.i32()?))
    }
    const MIN_SIZE: usize = 4;
}
