//! Integration-test support for the `zk-*` crates: real ZooKeeper 3.8 servers and ensembles
//! on loopback (see [`server`]).
//!
//! The tests never skip: if ZooKeeper is not installed they fail with the command that fixes it.

pub mod server;

pub use server::{four_letter_word, shared_server, Ensemble, ServerOptions, ZkServer};
pub mod facade;
pub mod proxy;
pub mod simnet;
