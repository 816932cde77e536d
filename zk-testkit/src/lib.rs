//! Test kit for code that uses ZooKeeper: what Curator's `TestingServer`,
//! `TestingCluster` and `KillSession` and kazoo's `KazooTestHarness` give Java and
//! Python users.
//!
//! * [`ZkServer`]: a real standalone server from the installed distribution
//!   (Debian's `zookeeper` package; a missing install fails loudly with the command
//!   that fixes it) on a free loopback port, with stop, kill -9 and restart.
//! * [`Ensemble`]: N members, each stoppable, killable and restartable, and
//!   reconfigurable ones (`Ensemble::start_reconfigurable`) that members can join.
//! * [`kill_session`]: expires a session on the server the way Curator's
//!   KillSession does, so you can test your code's expiry handling.
//! * [`Kdc`]: a real MIT Kerberos KDC (Debian's `krb5-kdc`) with a realm of its own on
//!   loopback, principals and keytabs for a ZooKeeper server started with
//!   [`ServerOptions::kerberos`] (SASL GSSAPI) and for its clients.
//! * [`proxy::Proxy`]: a TCP proxy that cuts, black-holes and heals connections.
//! * [`simnet::SimNet`]: zk-proto's simulated ensemble behind an in-memory transport
//!   for zk-tokio: no JVM, deterministic, and on tokio's paused clock an idle hour
//!   takes milliseconds. Limits: it implements the protocol the client uses (sessions,
//!   watches, multi, ACLs, TTL and containers, read-only mode), not the server's
//!   internals (no quorum logs, no snapshots, no four-letter words but `ruok`,
//!   `srvr`, `isro`).
//! * [`simstd::SimEnsemble`]: the same simulated ensemble on plain threads and Unix
//!   socket pairs, for zk-smol and zk-blocking (or any runtime), on real time.
//!
//! Every server is cleaned up when its handle drops, and by a watchdog process if the
//! test process dies (a panic, a kill).
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_testkit::{kill_session, ZkServer};
//!
//! let server = ZkServer::start();
//! let zk = zk_blocking::connect(&zk_client::ClientBuilder::new(&server.connect_string())).unwrap();
//! let mut states = zk.state_stream();
//! kill_session(&server.connect_string(), &zk.session().unwrap(), Duration::from_secs(10)).unwrap();
//! // The client reports Expired, then (by default) opens a new session.
//! assert!(std::iter::from_fn(|| states.recv_timeout(Some(Duration::from_secs(10))))
//!     .any(|s| s == zk_client::SessionState::Expired));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "certs")]
#[cfg_attr(docsrs, doc(cfg(feature = "certs")))]
pub mod certs;
pub mod ensemble;
pub mod kdc;
mod kill;
pub mod proxy;
pub mod server;
mod simcore;
pub mod simnet;
#[cfg(unix)]
pub mod simstd;

pub use ensemble::{Ensemble, ReconfigAccess, Role};
pub use kdc::Kdc;
pub use kill::kill_session;
pub use server::{
    four_letter_word, pkcs12_keystore, shared_server, ClientAuth, KerberosServerOptions,
    ServerOptions, TlsServerOptions, ZkServer,
};
