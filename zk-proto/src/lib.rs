//! The ZooKeeper client protocol as a pure state machine.
//!
//! This crate performs no I/O, reads no clock, spawns nothing and never panics
//! on bytes from the network. Bytes received and the current time go in; frames
//! to send, events and session transitions come out. Runtime adapters
//! (`zk-tokio`, `zk-smol`, `zk-blocking`) own the socket and the timer.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod digest;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod hosts;
pub mod jute;
pub mod ops;
pub mod path;
pub mod records;
pub mod sasl;
pub mod session;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod types;
pub mod watches;

pub use config::{Config, ExpiryPolicy, HostAddr, QueuePolicy};
pub use error::{DecodeError, ErrorCode, UsageError, ZkError};
pub use ops::{Request, Response};
pub use records::*;
pub use session::{
    Action, CoarseState, ConnId, DisconnectReason, Event, RemovalReason, RequestId, Session,
    SessionState, Submitted, Transmit, WatchedEvent,
};
pub use types::*;
pub use watches::{WatchKind, WatcherId};
