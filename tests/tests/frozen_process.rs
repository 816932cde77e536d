//! A process frozen past its session timeout (a long GC pause, a SIGSTOP) must not be told,
//! the moment it runs again, that its session is connected or that its lock is held: the
//! servers have expired the session meanwhile and another process may hold the lock. Found by
//! the Jepsen campaign (`scripts/jepsen.sh 60 --seed 1` with `PauseClientProcess`: a semaphore
//! holder claimed its lease 10 s after its last contact, while two others held both leases).
//!
//! The freeze is a clock that jumps: every thread of the process sees time move on at once and
//! the driver, whose timer is armed on real time, has not run yet; exactly what a process sees
//! after SIGCONT. zk-smol and zk-blocking, on a real server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, Clock, SessionState};
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Holding, Lock};

/// Real time plus a jump the test makes; drivers arm real timers (`wake_at` is not
/// overridden), so a jump alone does not wake them.
#[derive(Clone)]
struct JumpClock {
    base: Instant,
    jumped_ms: Arc<AtomicU64>,
}

impl JumpClock {
    fn new() -> JumpClock {
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        JumpClock {
            base,
            jumped_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn jump(&self, d: Duration) {
        self.jumped_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for JumpClock {
    fn now(&self) -> Instant {
        self.base
            + self.base.elapsed()
            + Duration::from_millis(self.jumped_ms.load(Ordering::SeqCst))
    }
}

fn builder() -> ClientBuilder {
    ClientBuilder::new(&shared_server().connect_string()).session_timeout(Duration::from_secs(6))
}

/// Takes a lock, freezes for twice the session timeout, then asks at once.
fn check(zk: &zk_client::Client, clock: &JumpClock, path: &str) {
    assert_eq!(zk.state(), SessionState::Connected);
    let lock = Lock::new(zk, path, "frozen").unwrap();
    let guard = smol::block_on(lock.acquire()).unwrap();
    assert_eq!(guard.status(), Holding::Held);
    clock.jump(Duration::from_secs(12));
    let (status, state) = (guard.status(), zk.state());
    assert_ne!(
        status,
        Holding::Held,
        "12 s after the last word from the server (session timeout 6 s) the lock is still Held"
    );
    assert_ne!(state, SessionState::Connected);
}

#[test]
fn blocking_client_frozen_past_its_session_timeout_does_not_claim_its_lock() {
    let clock = JumpClock::new();
    let zk = zk_blocking::connect_with(
        &builder(),
        Arc::new(zk_blocking::TcpConnector),
        Arc::new(clock.clone()),
    )
    .unwrap();
    check(zk.as_async(), &clock, "/frozen-process-blocking");
}

#[test]
fn smol_client_frozen_past_its_session_timeout_does_not_claim_its_lock() {
    let clock = JumpClock::new();
    let zk = smol::block_on(zk_smol::connect_with(
        &builder(),
        Arc::new(zk_smol::TcpConnector),
        Arc::new(clock.clone()),
    ))
    .unwrap();
    check(&zk, &clock, "/frozen-process-smol");
}
