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

/// Counts a client's suspensions (each connection it lost) from the moment it is
/// made, through a state listener that [`Suspensions::remove`] takes off again.
pub struct Suspensions {
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    listener: zk_client::ListenerId,
}

impl Suspensions {
    /// Starts counting `zk`'s suspensions.
    pub fn count<Z: facade::Zk>(zk: &Z) -> Suspensions {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let listener = zk.add_listener(move |s| {
            if s == zk_client::SessionState::Suspended {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Suspensions { count, listener }
    }

    /// Suspensions so far.
    pub fn get(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops counting (removes the listener from `zk`).
    pub fn remove<Z: facade::Zk>(self, zk: &Z) {
        assert!(
            zk.remove_listener(self.listener),
            "the listener was registered"
        );
    }
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

/// One adapter's module of `#[test]`s, each running a body of the suite under one
/// of the suite's watchdog runners, for the suites whose bodies are not all the
/// plain `fn name<Z: Zk>()` of [`adapter_suites!`] (extra type parameters,
/// arguments, a fixture made before the watchdog starts, runners of their own):
///
/// ```ignore
/// zk_tests::tests_for!(tokio: TokioZk => {
///     run in family { a, b }
///     run_alone { c => super::other::c::<TokioZk, SmolZk>, d => || super::d(false) }
/// } #[test] fn other() {});
/// ```
///
/// makes `mod tokio { #[test] fn a() { run(&name("a"), super::family::a::<TokioZk>) } ... }`:
/// `runner in module { tests }` runs `super::module::test::<adapter>`, `runner { test =>
/// body }` runs `body`. `name("a")` is `"tokio::a"` (the adapter's
/// [`Zk::NAME`](crate::facade::Zk) and the test); each runner is a function of the
/// suite's (`fn(&str, body)`), reached through the module's `use super::*`. Items after
/// the braces go into the module as they are.
#[macro_export]
macro_rules! tests_for {
    (@tests $z:ty;) => {};
    (@tests $z:ty; $run:ident in $module:ident { $($t:ident),+ $(,)? } $($rest:tt)*) => {
        $(
            #[test]
            fn $t() {
                $run(&name(stringify!($t)), super::$module::$t::<$z>)
            }
        )+
        $crate::tests_for!(@tests $z; $($rest)*);
    };
    (@tests $z:ty; $run:ident { $($t:ident => $body:expr),+ $(,)? } $($rest:tt)*) => {
        $(
            #[test]
            fn $t() {
                $run(&name(stringify!($t)), $body)
            }
        )+
        $crate::tests_for!(@tests $z; $($rest)*);
    };
    ($m:ident: $z:ty => { $($groups:tt)* } $($extra:item)*) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            /// The test's name for its watchdog: `<adapter>::<test>`.
            fn name(test: &str) -> String {
                format!("{}::{test}", <$z as $crate::facade::Zk>::NAME)
            }
            $crate::tests_for!(@tests $z; $($groups)*);
            $($extra)*
        }
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
