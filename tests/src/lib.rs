//! The project's integration suites against real ZooKeeper 3.8 servers and
//! ensembles, for every adapter. The servers, proxy and simulated ensemble come
//! from the same test kit users get ([`zk_testkit`]); [`facade`] is the one
//! blocking face over the three adapters that lets each suite be written once.
//!
//! The tests never skip: if ZooKeeper is not installed they fail with the command that fixes it.

pub mod curator;
pub mod facade;
pub mod watchdog;
pub use zk_testkit::{certs, ensemble, proxy, server, simnet};
pub use zk_testkit::{
    four_letter_word, kill_session, shared_server, Ensemble, ReconfigAccess, Role, ServerOptions,
    ZkServer,
};

/// Waits until `states` has shown Suspended and then Connected again (a reconnect, to
/// the same server or another), at most `limit`; panics naming `what` and the states seen.
pub fn wait_reconnected(
    states: &mut zk_client::StateStream,
    limit: std::time::Duration,
    what: &str,
) -> Vec<zk_client::SessionState> {
    use zk_client::SessionState;
    let t = std::time::Instant::now();
    let mut seen = Vec::new();
    while !(seen.contains(&SessionState::Suspended)
        && seen.last() == Some(&SessionState::Connected))
    {
        assert!(t.elapsed() < limit, "{what}: no reconnect: {seen:?}");
        if let Some(s) = states.recv_timeout(Some(std::time::Duration::from_millis(50))) {
            seen.push(s);
        }
    }
    seen
}
