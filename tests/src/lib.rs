//! The project's integration suites against real ZooKeeper 3.8 servers and
//! ensembles, for every adapter. The servers, proxy and simulated ensemble come
//! from the same test kit users get ([`zk_testkit`]); [`facade`] is the one
//! blocking face over the three adapters that lets each suite be written once.
//!
//! The tests never skip: if ZooKeeper is not installed they fail with the command that fixes it.

pub mod facade;
pub mod watchdog;
pub use zk_testkit::{certs, ensemble, proxy, server, simnet};
pub use zk_testkit::{
    four_letter_word, kill_session, shared_server, Ensemble, ReconfigAccess, Role, ServerOptions,
    ZkServer,
};
