//! A ZooKeeper client for Rust, on the runtime you pick: the one crate to put in
//! `Cargo.toml`.
//!
//! ```toml
//! [dependencies]
//! zk = { version = "0.1", features = ["tokio"] }   # or "smol", "blocking"
//! ```
//!
//! The API is the same on every runtime (it is written once, in `zk-client`); each
//! feature adds one adapter module that owns the sockets and timers:
//!
//! | feature | module | connect |
//! |---|---|---|
//! | `tokio` (default) | [`tokio`][mod-tokio] | `zk::tokio::connect(&builder).await` |
//! | `smol` | [`smol`][mod-smol] | `zk::smol::connect(&builder).await` |
//! | `blocking` | [`blocking`][mod-blocking] | `zk::blocking::connect(&builder)` |
//! | `recipes` | [`recipes`][mod-recipes] | `DataWatch`, `ChildrenWatch`, `TreeCache` |
//! | `tls` | [`tls`][mod-tls] | `zk::tokio::connect_tls(&builder, zk::tls::TlsOptions::new().ca_file("ca.pem"))` (and on `smol`, `blocking`) |
//! | `gssapi` | `gssapi` | `ClientBuilder::new(hosts).sasl_gssapi(zk::gssapi::GssapiOptions::new())` (Kerberos; links the system's libgssapi_krb5) |
//! | `metrics` | `metrics` | counters, gauges and a latency histogram through the `metrics` facade (names in `zk::metrics`; every adapter has `tracing` spans without it: docs/observability.md) |
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> zk::Result<()> {
//! use zk::prelude::*;
//! let zk = zk::tokio::connect(&ClientBuilder::new("127.0.0.1:2181/app")).await?;
//! zk.ensure_path("/config").await?;
//! let (data, stat, watch) = zk.get_data_watch("/config").await?;
//! println!("{} bytes at version {}", data.len(), stat.version);
//! zk.close().await
//! # }
//! ```
//!
#![doc = include_str!("../GUIDE.md")]
// Where the links above lead: the module when its feature is on, else the
// adapter crate's own docs (so `cargo doc` on any feature set has no broken link).
#![cfg_attr(feature = "tokio", doc = "[mod-tokio]: crate::tokio")]
#![cfg_attr(not(feature = "tokio"), doc = "[mod-tokio]: https://docs.rs/zk-tokio")]
#![cfg_attr(feature = "smol", doc = "[mod-smol]: crate::smol")]
#![cfg_attr(not(feature = "smol"), doc = "[mod-smol]: https://docs.rs/zk-smol")]
#![cfg_attr(feature = "blocking", doc = "[mod-blocking]: crate::blocking")]
#![cfg_attr(
    not(feature = "blocking"),
    doc = "[mod-blocking]: https://docs.rs/zk-blocking"
)]
#![cfg_attr(
    feature = "blocking",
    doc = "[blocking-as-async]: crate::blocking::Client::as_async"
)]
#![cfg_attr(
    not(feature = "blocking"),
    doc = "[blocking-as-async]: https://docs.rs/zk-blocking/latest/zk_blocking/struct.Client.html#method.as_async"
)]
#![cfg_attr(feature = "recipes", doc = "[mod-recipes]: crate::recipes")]
#![cfg_attr(
    not(feature = "recipes"),
    doc = "[mod-recipes]: https://docs.rs/zk-recipes"
)]
#![cfg_attr(feature = "tls", doc = "[mod-tls]: crate::tls")]
#![cfg_attr(not(feature = "tls"), doc = "[mod-tls]: https://docs.rs/zk-tls")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub use zk_client::*;

/// The protocol state machine underneath (sans I/O), for the curious and for tests.
pub use zk_proto as proto;

/// The client on tokio.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use zk_tokio as tokio;

/// The client on smol / async-io.
#[cfg(feature = "smol")]
#[cfg_attr(docsrs, doc(cfg(feature = "smol")))]
pub use zk_smol as smol;

/// Blocking calls on std threads.
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub use zk_blocking as blocking;

/// kazoo's and Curator's watchers and caches: DataWatch, ChildrenWatch, TreeCache.
#[cfg(feature = "recipes")]
#[cfg_attr(docsrs, doc(cfg(feature = "recipes")))]
pub use zk_recipes as recipes;

/// TLS options (`TlsOptions`, `TlsError`; kazoo's `use_ssl`, `ca`, `certfile`,
/// `keyfile`, `verify_certs`, `check_hostname` mapped in its docs). Each enabled
/// adapter gets `connect_tls` and a `tls::TlsConnector`.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use zk_tls as tls;

/// What most programs use: the builder, the client, data and errors. (`retry`,
/// `command` and `server_version` are the client's own methods: they run on the
/// runtime the client was connected with, whichever adapters are enabled.)
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn demo() -> zk::Result<()> {
/// use zk::prelude::*;
/// let zk: Client = zk::tokio::connect(&ClientBuilder::new("127.0.0.1:2181")).await?;
/// let stat: Option<Stat> = zk.exists("/").await?;
/// let mode = CreateMode::Ephemeral;
/// # let _ = (stat, mode); Ok(()) }
/// ```
pub mod prelude {
    pub use zk_client::{
        Acl, AddWatchMode, Bytes, Client, ClientBuilder, ConnectionEvent, CreateMode,
        CreateOptions, Data, Error, Result, SessionState, Stat, WatchedEvent, WatcherType,
    };
}

#[cfg(test)]
mod tests {
    /// Every enabled adapter is reachable through this crate under one name.
    #[test]
    fn adapters_are_reachable() {
        let b = crate::ClientBuilder::new("127.0.0.1:1");
        assert!(b.config().is_ok());
        #[cfg(feature = "tokio")]
        let _ = crate::tokio::connect;
        #[cfg(feature = "smol")]
        let _ = crate::smol::connect;
        #[cfg(feature = "blocking")]
        let _ = crate::blocking::connect;
        #[cfg(all(feature = "tls", feature = "tokio"))]
        let _ = crate::tokio::connect_tls;
        #[cfg(all(feature = "tls", feature = "smol"))]
        let _ = crate::smol::connect_tls;
        #[cfg(all(feature = "tls", feature = "blocking"))]
        let _ = crate::blocking::connect_tls;
        #[cfg(feature = "tls")]
        let _ = crate::tls::TlsOptions::new();
        #[cfg(feature = "gssapi")]
        let _ = b.clone().sasl_gssapi(crate::gssapi::GssapiOptions::new());
    }
}
