//! The runtime-independent half of the ZooKeeper client: the typed API, the
//! routing of replies and watch events to callers, options and retries. It
//! holds no socket and no timer; `zk-tokio`, `zk-smol` and `zk-blocking` drive
//! its [`Shared`] core with their own I/O and re-export the API.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod acl;
mod adapter;
pub mod blocking;
mod builder;
mod calls;
mod client;
pub mod clock;
mod core;
mod data;
pub mod driver;
pub mod ensemble;
mod error;
pub mod fourlw;
mod id_map;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod ops;
mod read_buf;
mod reader;
mod requests;
pub mod retry;
pub mod runtime;
mod slot;
pub mod telemetry;
mod wait;
mod watch;

pub use acl::{make_acl, make_digest_acl, make_digest_acl_credential};
pub use builder::ClientBuilder;
pub use bytes::Bytes;
pub use client::{
    Client, ClientOptions, ConnectionEvent, Diagnostics, ListenerId, SessionInfo, WeakClient,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use core::{CountGuard, DriverPoll, Io, LiveCounts, Shared, TryWrite, WatchMessage};
pub use data::{Data, IntoData};
pub use error::{Error, Result};
pub use ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
pub use read_buf::ReadBuf;
pub use reader::{ConnReader, LentRead};
pub use requests::Transaction;
pub use runtime::ClientExt;
pub use watch::{OneshotWatch, StateStream, WatchStream};
pub use zk_proto::{
    Acl, AddWatchMode, ClientInfo, CoarseState, CreateMode, ErrorCode, EventType, ExpiryPolicy,
    HostAddr, Id, Perms, QueuePolicy, SessionState, Stat, WatchedEvent, WatcherType,
};

pub use zk_proto::sasl::{SaslConfig, SaslMechanism};

/// SASL GSSAPI (Kerberos): the `zk-gssapi` crate (the `gssapi` feature).
#[cfg(feature = "gssapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "gssapi")))]
pub use zk_gssapi as gssapi;
pub use zk_proto::time::later;

/// The prelude of the async adapters (`zk_tokio::prelude`, `zk_smol::prelude`):
/// the client, its builder and extension trait, and the types most calls take or
/// return.
pub mod prelude {
    pub use crate::{
        Acl, AddWatchMode, Bytes, Client, ClientBuilder, ClientExt, CreateMode, CreateOptions,
        Data, Error, Result, SessionState, Stat, WatchedEvent, WatcherType,
    };
}

/// A random seed per call: the std hasher's per-process random keys, mixed with
/// a counter so two calls never share one.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(std::process::id() as u64);
    h.finish()
}
