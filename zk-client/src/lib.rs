//! The runtime-independent half of the ZooKeeper client: the typed API, the
//! routing of replies and watch events to callers, options and retries. It
//! holds no socket and no timer; `zk-tokio`, `zk-smol` and `zk-blocking` drive
//! its [`Shared`] core with their own I/O and re-export the API.
#![warn(missing_docs)]

pub mod blocking;
mod builder;
mod calls;
mod client;
mod core;
mod error;
pub mod fourlw;
mod ops;
pub mod retry;
mod slot;

pub use builder::ClientBuilder;
pub use client::{
    Client, ClientOptions, ListenerId, OneshotWatch, SessionInfo, StateStream, Transaction,
    WatchStream,
};
pub use core::{Io, IoReady, ReadBuf, Shared, WatchMessage};
pub use error::{Error, Result};
pub use ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
pub use zk_proto::{
    Acl, AddWatchMode, ClientInfo, CoarseState, CreateMode, ErrorCode, EventType, ExpiryPolicy,
    HostAddr, Id, Perms, QueuePolicy, SessionState, Stat, WatchedEvent, WatcherType,
};
