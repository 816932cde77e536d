//! Real ZooKeeper 3.8 servers for tests: one standalone server ([`ZkServer`]) or an ensemble of
//! quorum members ([`Ensemble`]), all on loopback, each in its own temporary directory.
//!
//! Std only and blocking. Every JVM is started directly (`java -cp zookeeper.jar:...
//! QuorumPeerMain zoo.cfg`) with its stdout and stderr in `server.log` next to its `zoo.cfg`;
//! `slf4j-simple.jar` is put on the class path when installed, so the log has ZooKeeper's INFO
//! lines. A start waits until `srvr` answers with a `Mode:` line (not just `ruok`) and panics
//! after [`START_TIMEOUT`] with the tail of that log.
//!
//! Cleanup: dropping a [`ZkServer`] or [`Ensemble`] kills its JVMs and deletes its directory,
//! also while a test panics. Each JVM additionally gets a watchdog (`sh -c`) that holds the read
//! end of a pipe whose write end only this test process holds: when the process ends, however it
//! ends, the pipe reports EOF and the watchdog kills the JVM and removes its directory. That is
//! what cleans up after [`shared_server`], which lives in a static and is never dropped.
//!
//! ZooKeeper missing is a loud panic naming the fix, never a skip.
//!
//! [`Ensemble::start_reconfigurable`] starts an ensemble for dynamic reconfiguration
//! (`reconfigEnabled`, members in the dynamic `server.N=...;client` form, a super user or
//! `skipACL` for `reconfig`); [`Ensemble::add_member`] starts a joiner for a client to add.

use std::time::Duration;

mod fourlw;
mod host;
mod install;
mod node;
mod options;
mod process;
mod standalone;
mod tls;

pub use fourlw::four_letter_word;
#[cfg(test)]
pub(crate) use fourlw::parse_mode;
pub(crate) use host::{free_port, lock, loopback, make_temp_dir};
pub(crate) use install::install;
pub use install::{find_install, zookeeper_install, Install};
pub(crate) use node::{describe, wait_until, Node, Outcome};
pub use options::{KerberosServerOptions, ServerOptions};
pub(crate) use process::{send_signal, spawn_watchdog, Running};
pub use standalone::{shared_server, ZkServer};
pub use tls::{pkcs12_keystore, ClientAuth, TlsServerOptions, OPENSSL_FIX};

/// How long one start (or restart) may take before the harness panics with the server's log.
/// Generous: the CI machine has two cores and test binaries may start servers concurrently.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The command that installs what the harness needs (the machines run as root).
pub const INSTALL_FIX: &str = "apt-get update && apt-get install -y zookeeper";

/// How long [`ZkServer::stop`] waits after SIGTERM before it sends SIGKILL.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll interval while waiting for a server.
pub(crate) const POLL: Duration = Duration::from_millis(25);
/// Timeout of one `srvr` probe.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Starts that failed because a port was taken meanwhile are retried this many times in all.
pub(crate) const START_ATTEMPTS: usize = 4;
/// How many lines of a server's log a panic message shows.
pub(crate) const LOG_TAIL_LINES: usize = 80;

pub use crate::ensemble::{super_digest, Ensemble, ReconfigAccess, Role};
