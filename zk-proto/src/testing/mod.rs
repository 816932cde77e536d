//! Deterministic test doubles: a sans-IO simulated ZooKeeper ensemble
//! ([`server::SimCluster`]) and a simulated network with a fake clock that drives
//! client sessions against it ([`net::SimNet`]).
//!
//! Nothing here performs I/O or reads a clock; time is always an argument.
//! Compiled for this crate's own tests and, with the `testing` feature, for
//! integration tests and other crates.

pub mod net;
pub mod server;
