//! The project's integration suites against real ZooKeeper 3.8 servers and
//! ensembles, for every adapter. The servers, proxy and simulated ensemble come
//! from the same test kit users get ([`zk_testkit`]); [`facade`] is the one
//! blocking face over the three adapters that lets each suite be written once.
//!
//! The tests never skip: if ZooKeeper is not installed they fail with the command that fixes it.

pub mod curator;
pub mod facade;
pub mod peer;
pub mod sim;
pub mod watchdog;
pub mod wire;
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

/// The per-adapter wrappers every suite needs, written once: a module per adapter
/// (`tokio: TokioZk, smol: SmolZk, blocking: BlockingZk`, in the file's own names),
/// and in each a `#[test]` per generic test body of the file (`fn name<Z: Zk>()`).
///
/// `adapter_suites!(tokio: TokioZk, ... => [a, b])` runs each body under the
/// file's `run(name, body)` watchdog, named `<module>::<test>` (`tokio::a`);
/// `adapter_suites!(direct tokio: TokioZk, ... => [a, b])` calls it on the test's
/// own thread. The test paths stay `<module>::<test>`, so filters keep working.
#[macro_export]
macro_rules! adapter_suites {
    (@one $how:ident $m:ident, $z:ty, [$($t:ident),+ $(,)?]) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $t() {
                    $crate::adapter_suites!(@call $how $m, $z, $t)
                }
            )+
        }
    };
    (@call run $m:ident, $z:ty, $t:ident) => {
        run(concat!(stringify!($m), "::", stringify!($t)), super::$t::<$z>)
    };
    (@call direct $m:ident, $z:ty, $t:ident) => {
        super::$t::<$z>()
    };
    (direct $($m:ident: $z:ty),+ $(,)? => $tests:tt) => {
        $( $crate::adapter_suites!(@one direct $m, $z, $tests); )+
    };
    ($($m:ident: $z:ty),+ $(,)? => $tests:tt) => {
        $( $crate::adapter_suites!(@one run $m, $z, $tests); )+
    };
}

/// A path no other test (adapter, process) uses: `/<prefix><tag>-<adapter>-<pid>-<n>`,
/// `n` counting up in this test binary. Each suite names its paths by its own prefix.
pub fn unique_path(prefix: &str, tag: &str, adapter: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "/{prefix}{tag}-{adapter}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}
