//! zkcli end to end: the built binary against a real ZooKeeper 3.8 (the
//! zk-tests harness, which panics, never skips, when the server cannot start).
//! Each test works under a chroot of its own on the shared server, so the tests
//! run in parallel without seeing each other's nodes.
//!
//! `support.rs` holds the harness (running zkcli with a limit, a chroot per test); one
//! module per family of commands.

mod acl;
mod exit_codes;
mod fourlw;
#[cfg(feature = "gssapi")]
mod gssapi;
mod nodes;
mod output;
mod secure;
mod shell;
mod support;
mod watch;
