//! A [`LockGuard`] or [`SemaphoreLease`] is held by the session that owns its
//! node (the node's `ephemeralOwner`), not by whichever session the client has
//! when the acquisition ends (issue 20), on every adapter against a real server.
//!
//! The schedule: an acquisition polled (as a task polls it) until the answer
//! that makes it a holder was sent by the server under the first session, then
//! held without being polled (the `select!` pattern, a task busy elsewhere)
//! while that session expires and the client opens a new one; then polled to
//! its end. The answer was read by the client before the expiry, so the
//! acquisition ends with a guard for the node of the dead session. Such a guard
//! must say the lock (lease) is lost; one that took the client's session after
//! the reply believes the new session holds a node that no longer exists.
//!
//! The server sits behind the kit's proxy with [`REPLY_DELAY`] added to what it
//! sends, so the test, watching the nodes directly, knows where the acquisition
//! stands.

mod recipes_common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_client::SessionState;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Holding, Lock, Semaphore};

/// Added by the proxy to everything the server sends the acquiring client.
/// Below the client's first handshake wait (1 s).
const REPLY_DELAY: Duration = Duration::from_millis(600);
/// How often the acquisition is polled, and the server looked at, meanwhile.
const TICK: Duration = Duration::from_millis(5);
/// Schedules tried before giving up (one missed only if the machine stalled
/// for hundreds of milliseconds).
const TRIES: usize = 3;

/// Polls `f` once on the adapter's executor.
fn poll_once<Z: Adapter, F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Z::exec(std::future::poll_fn(|cx| {
        Poll::Ready(Pin::new(&mut *f).poll(cx))
    }))
}

/// Polls the acquisition `f` every [`TICK`] until a child of `parent` appears
/// on the server (seen by `observer`, directly), and `then` longer; returns
/// the child's name and when it was first seen. Panics if `f` ends first.
fn poll_until_node<Z: Adapter, F: Future + Unpin>(
    f: &mut F,
    observer: &Z,
    parent: &str,
    then: Duration,
) -> (String, Instant) {
    let start = Instant::now();
    let mut seen: Option<(String, Instant)> = None;
    loop {
        assert!(
            poll_once::<Z, _>(f).is_pending(),
            "[{}] the acquisition ended before the schedule was set up",
            Z::NAME
        );
        if seen.is_none() {
            if let Some(k) = observer.get_children(parent).unwrap_or_default().pop() {
                seen = Some((k, Instant::now()));
            }
        }
        if let Some((k, at)) = &seen {
            if at.elapsed() >= then {
                return (k.clone(), *at);
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "[{}] no node under {parent}",
            Z::NAME
        );
        thread::sleep(TICK);
    }
}

/// Ends the client's session while nothing it sends or receives moves (so it
/// cannot take the session back), with the proxy's delay off from now on;
/// waits until the client has a new session.
fn expire_and_renew<Z: Adapter>(zk: &Z, proxy: &Proxy) -> i64 {
    let old = zk.session().unwrap();
    proxy.set_latency(Duration::ZERO);
    proxy.black_hole(true);
    proxy.cut_all();
    kill_session(&shared_server().connect_string(), &old, WAIT).unwrap();
    proxy.black_hole(false);
    let mut new = 0;
    eventually(WAIT, "a new session", || {
        new = zk.session().map_or(old.id, |s| s.id);
        new != old.id && zk.state() == SessionState::Connected
    });
    new
}

/// A client behind a proxy that delays what the server sends, and one that
/// watches the server directly.
fn clients<Z: Adapter>() -> (Proxy, Z, Z) {
    let proxy = Proxy::start(shared_server().addr());
    proxy.set_latency(REPLY_DELAY);
    let zk = Z::connect_for(&proxy.connect_string(), Duration::from_secs(20));
    let observer = Z::connect_to(&shared_server().connect_string());
    (proxy, zk, observer)
}

/// Whether `path` is gone from the server: an acquisition that ends with a
/// guard for such a node hit the schedule (one that missed it, its answer lost
/// with the connection, queued again under the new session: its node exists).
fn gone<Z: Zk>(observer: &Z, path: &str) -> bool {
    observer.exists(path).unwrap().is_none()
}

/// `attempt` until it hits its schedule (`true`), at most [`TRIES`] times.
fn until_hit(what: &str, mut attempt: impl FnMut() -> bool) {
    for i in 1..=TRIES {
        if attempt() {
            return;
        }
        println!("{what}: try {i} missed the schedule");
    }
    panic!("{what}: the schedule was missed {TRIES} times");
}

// ============================================================================ Lock

/// The lock: held after the create of our node was answered and consumed and
/// the children read that follows (which lists our node, first) was sent. Its
/// answer comes back [`REPLY_DELAY`] later; by then the acquisition is held.
fn lock_guard_names_the_node_owner<Z: Adapter>() {
    until_hit(&format!("[{}] Lock", Z::NAME), lock_once::<Z>);
}

fn lock_once<Z: Adapter>() -> bool {
    let (proxy, zk, observer) = clients::<Z>();
    let path = unique("owner-lock", Z::NAME);
    let first = zk.session().unwrap().id;
    let lock = Lock::new(zk.as_async(), &path, "owner").unwrap();
    let mut acquiring = Box::pin(lock.acquire());
    // The create's answer reaches the client REPLY_DELAY after the node exists,
    // the children's answer REPLY_DELAY after that: stop in between.
    let (node, at) = poll_until_node(&mut acquiring, &observer, &path, REPLY_DELAY * 3 / 2);
    // Let the children's answer arrive (the client reads it; nobody polls).
    thread::sleep(
        (at + REPLY_DELAY * 2 + Duration::from_millis(500))
            .saturating_duration_since(Instant::now()),
    );
    let second = expire_and_renew(&zk, &proxy);
    let guard = Z::exec(acquiring).unwrap();
    let hit = guard.node_path().ends_with(&node) && gone(&observer, &guard.node_path());
    if hit {
        let (status, owner) = (guard.status(), guard.session_id());
        println!(
            "[{}] Lock: guard of node {node} (session {first:#x}, expired); client on \
             session {second:#x}; status {status:?}, session_id {owner:#x}",
            Z::NAME
        );
        assert_eq!(
            (status, format!("{owner:#x}")),
            (Holding::Lost, format!("{first:#x}")),
            "[{}] the guard of a node of the expired session {first:#x} believes it holds \
             the lock (client now on session {second:#x})",
            Z::NAME
        );
        assert!(guard.lost_blocking(Some(WAIT)), "lost() never resolved");
        // Nothing of the dead tenure stands in the new session's way.
        let again = lock.try_acquire_blocking().unwrap();
        let again = again.expect("the lock is free for the new session");
        assert_eq!(again.session_id(), second);
        assert_eq!(again.status(), Holding::Held);
        again.release_blocking().unwrap();
    }
    guard.release_blocking().unwrap();
    let _ = observer.delete_recursive(&path);
    observer.close().unwrap();
    zk.close().unwrap();
    hit
}

// ============================================================================ Semaphore

/// The semaphore: held while the create of the lease node is answered (its
/// answer reaches the client [`REPLY_DELAY`] after the node exists).
fn semaphore_lease_names_the_node_owner<Z: Adapter>() {
    until_hit(&format!("[{}] Semaphore", Z::NAME), semaphore_once::<Z>);
}

fn semaphore_once<Z: Adapter>() -> bool {
    let (proxy, zk, observer) = clients::<Z>();
    let path = unique("owner-sem", Z::NAME);
    let first = zk.session().unwrap().id;
    let sem = Semaphore::new(zk.as_async(), &path, "owner", 1).unwrap();
    let mut acquiring = Box::pin(sem.acquire());
    let (node, at) = poll_until_node(&mut acquiring, &observer, &path, Duration::ZERO);
    thread::sleep(
        (at + REPLY_DELAY + Duration::from_millis(500)).saturating_duration_since(Instant::now()),
    );
    let second = expire_and_renew(&zk, &proxy);
    let lease = Z::exec(acquiring).unwrap();
    let hit = lease.node_path().ends_with(&node) && gone(&observer, &lease.node_path());
    if hit {
        let status = lease.status();
        println!(
            "[{}] Semaphore: lease of node {node} (session {first:#x}, expired); client on \
             session {second:#x}; status {status:?}",
            Z::NAME
        );
        assert_eq!(
            status,
            Holding::Lost,
            "[{}] the lease of a node of the expired session {first:#x} believes it is held \
             (client now on session {second:#x})",
            Z::NAME
        );
        assert!(lease.lost_blocking(Some(WAIT)), "lost() never resolved");
        // The one lease is free for the new session.
        let again = sem.acquire_blocking(Some(WAIT)).unwrap();
        let again = again.expect("the lease is free for the new session");
        assert_eq!(again.status(), Holding::Held);
        again.release_blocking().unwrap();
    }
    lease.release_blocking().unwrap();
    let _ = observer.delete_recursive(&path);
    let _ = observer.delete_recursive(&format!("{path}-__lock__"));
    observer.close().unwrap();
    zk.close().unwrap();
    hit
}

macro_rules! owner_suite {
    ($m:ident, $z:ty) => {
        mod $m {
            use super::*;
            #[test]
            fn lock_guard_names_the_node_owner() {
                run(
                    concat!(stringify!($m), "::lock_guard_names_the_node_owner"),
                    super::lock_guard_names_the_node_owner::<$z>,
                )
            }
            #[test]
            fn semaphore_lease_names_the_node_owner() {
                run(
                    concat!(stringify!($m), "::semaphore_lease_names_the_node_owner"),
                    super::semaphore_lease_names_the_node_owner::<$z>,
                )
            }
        }
    };
}

owner_suite!(tokio, TokioZk);
owner_suite!(smol, SmolZk);
owner_suite!(blocking, BlockingZk);
