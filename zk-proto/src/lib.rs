//! The ZooKeeper client protocol as a pure state machine.
//!
//! This crate performs no I/O, reads no clock, spawns nothing and never panics
//! on bytes from the network. Bytes received and the current time go in; frames
//! to send, events and session transitions come out. Runtime adapters
//! (`zk-tokio`, `zk-smol`, `zk-blocking`) own the socket and the timer.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod frame;
pub mod jute;
pub mod ops;
pub mod path;
pub mod records;
pub mod types;

pub use error::{DecodeError, ErrorCode, UsageError, ZkError};
pub use ops::{Request, Response};
pub use records::*;
pub use types::*;
