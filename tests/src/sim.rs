//! What the suites on the simulated ensemble under tokio's paused clock share
//! (`virtual_time`, `watchers_sim`, `recipes_lock_sim`): the virtual now, a
//! spawner for the recipes' loops, and the fault steps their schedules take.

use std::time::Instant;

use zk_testkit::simnet::SimNet;
use zk_tokio::recipes::Spawner;

/// Runs `f` on a current-thread tokio runtime whose clock starts paused: the
/// suites' virtual time.
pub fn block_on_paused<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

/// How many cases a property test runs: `PROPTEST_CASES` from the environment,
/// else `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// tokio's clock (virtual under a paused runtime), as the ensemble's time.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs the recipes' loops as tokio tasks, on the paused clock with the rest.
pub fn tokio_spawner() -> Spawner {
    Spawner::new(|t| {
        tokio::spawn(t);
    })
}

/// Stops member `m` (its connections cut, its sessions kept).
pub fn stop_member(net: &SimNet, m: usize) {
    net.with(|c| c.stop_member(m, now()))
}

/// Starts every member of the three again.
pub fn start_all(net: &SimNet) {
    net.with(|c| {
        for m in 0..3 {
            c.start_member(m, now());
        }
    })
}
