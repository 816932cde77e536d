//! A long-lived recipe object keeps nothing of a finished or dropped
//! acquisition: after Lock, ReadLock, WriteLock, Semaphore and Election
//! acquisitions (taken, refused after a timeout, or dropped while waiting),
//! no clone of the acquiring task's waker is still referenced, by the recipe or
//! by the client under it (every adapter, against a real server).
//!
//! Each acquisition runs under a waker of its own (a relay to the executor's
//! waker), so the number of references to that relay once the acquisition is
//! over says whether anything kept it. Before the fix, the recipes' cancel
//! registry kept one waker per acquiring task for the object's whole life.

mod recipes_common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use recipes_common::{run, unique, Adapter};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Election, Lock, ReadLock, Semaphore, WriteLock};

/// Acquisitions per recipe and outcome.
const ROUNDS: usize = 20;

/// A waker that passes every wake to the executor's current waker.
#[derive(Default)]
struct Relay(Mutex<Option<Waker>>);

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(w) = self.0.lock().unwrap().as_ref() {
            w.wake_by_ref()
        }
    }
}

/// Polls `inner` with the relay's waker, never the executor's own.
struct Relayed<F> {
    inner: Pin<Box<F>>,
    relay: Arc<Relay>,
}

impl<F: Future> Future for Relayed<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        *self.relay.0.lock().unwrap() = Some(cx.waker().clone());
        let waker = Waker::from(self.relay.clone());
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

/// Runs `f` on the adapter's executor under a waker of its own; returns its
/// output and the waker's relay, to count what still refers to it.
fn exec_relayed<Z: Adapter, F: Future>(f: F) -> (F::Output, Arc<Relay>) {
    let relay = Arc::new(Relay::default());
    let out = Z::exec(Relayed {
        inner: Box::pin(f),
        relay: relay.clone(),
    });
    // The executor's waker itself is let go with the relay's slot.
    relay.0.lock().unwrap().take();
    (out, relay)
}

/// References to `relay` other than the test's own, once the future is gone
/// and a thread that was waking it (a timer, the connection's reader) has had
/// time to let its clone go.
fn kept(relay: &Arc<Relay>) -> usize {
    let t = std::time::Instant::now();
    while Arc::strong_count(relay) > 1 && t.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    Arc::strong_count(relay) - 1
}

/// The counts of wakers left behind by each acquisition, all expected zero.
#[derive(Default)]
struct Left(Vec<(String, usize)>);

impl Left {
    fn note(&mut self, what: &str, relay: &Arc<Relay>) {
        self.0.push((what.to_string(), kept(relay)));
    }
    fn assert_none(&self, adapter: &str) {
        let left: Vec<_> = self.0.iter().filter(|(_, n)| *n > 0).collect();
        assert!(
            left.is_empty(),
            "{adapter}: {} of {} acquisitions left their waker referenced: {:?}",
            left.len(),
            self.0.len(),
            &left[..left.len().min(8)]
        );
    }
}

/// Our client, another one's (both on the shared server), and an empty record
/// of what is left behind.
fn ours_and_theirs<Z: Adapter>() -> (Z, Z, Left) {
    let cs = shared_server().connect_string();
    (Z::connect_to(&cs), Z::connect_to(&cs), Left::default())
}

fn close_both<Z: Adapter>(zk: Z, other: Z) {
    zk.close().unwrap();
    other.close().unwrap();
}

/// Lock (and its read and write forms): taken and released; refused after a
/// timeout while another client holds it; dropped while waiting.
fn locks<Z: Adapter>() {
    let (zk, other, mut left) = ours_and_theirs::<Z>();

    let path = unique("leak-lock", Z::NAME);
    let lock = Lock::new(zk.as_async(), &path, "us").unwrap();
    let theirs = Lock::new(other.as_async(), &path, "them").unwrap();
    for _ in 0..ROUNDS {
        let (g, relay) = exec_relayed::<Z, _>(lock.acquire());
        Z::exec(g.unwrap().release()).unwrap();
        left.note("lock taken", &relay);
    }
    let held = Z::exec(theirs.acquire()).unwrap();
    for _ in 0..ROUNDS {
        let (g, relay) = exec_relayed::<Z, _>(lock.acquire_timeout(Duration::from_millis(50)));
        assert!(g.unwrap().is_none(), "held by the other client");
        left.note("lock refused", &relay);
    }
    for _ in 0..ROUNDS {
        // Polled until it waits on the holder, then dropped.
        let acquire = lock.acquire();
        let (r, relay) = exec_relayed::<Z, _>(async {
            let mut acquire = Box::pin(acquire);
            let mut delay = Box::pin(tick(Duration::from_millis(30)));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = acquire.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                delay.as_mut().poll(cx).map(|()| None)
            })
            .await
        });
        assert!(r.is_none(), "held by the other client");
        left.note("lock dropped", &relay);
    }
    Z::exec(held.release()).unwrap();

    let rw = unique("leak-rw", Z::NAME);
    let read = ReadLock::new(zk.as_async(), &rw, "r").unwrap();
    let write = WriteLock::new(zk.as_async(), &rw, "w").unwrap();
    for _ in 0..ROUNDS {
        let (g, relay) = exec_relayed::<Z, _>(read.acquire());
        Z::exec(g.unwrap().release()).unwrap();
        left.note("read lock", &relay);
        let (g, relay) = exec_relayed::<Z, _>(write.acquire());
        Z::exec(g.unwrap().release()).unwrap();
        left.note("write lock", &relay);
    }
    left.assert_none(Z::NAME);
    close_both(zk, other);
}

/// Semaphore leases taken and released, and refused while full; elections
/// won and resigned.
fn semaphore_and_election<Z: Adapter>() {
    let (zk, other, mut left) = ours_and_theirs::<Z>();

    let path = unique("leak-sem", Z::NAME);
    let sem = Semaphore::new(zk.as_async(), &path, "us", 1).unwrap();
    for _ in 0..ROUNDS {
        let (l, relay) = exec_relayed::<Z, _>(sem.acquire());
        Z::exec(l.unwrap().release()).unwrap();
        left.note("lease taken", &relay);
    }
    let theirs = Semaphore::new(other.as_async(), &path, "them", 1).unwrap();
    let full = Z::exec(theirs.acquire()).unwrap();
    for _ in 0..ROUNDS {
        let (l, relay) = exec_relayed::<Z, _>(sem.acquire_timeout(Duration::from_millis(50)));
        assert!(l.unwrap().is_none(), "the one lease is held");
        left.note("lease refused", &relay);
    }
    Z::exec(full.release()).unwrap();

    let path = unique("leak-election", Z::NAME);
    let election = Election::new(zk.as_async(), &path, "us").unwrap();
    for i in 0..ROUNDS {
        let (v, relay) = exec_relayed::<Z, _>(election.run(|_| async move { i }));
        assert_eq!(v.unwrap(), Some(i));
        left.note("election won", &relay);
    }
    left.assert_none(Z::NAME);
    close_both(zk, other);
}

/// A runtime-free sleep (a thread wakes it), so the test's own timer holds no
/// clone of the relay once it is done.
async fn tick(d: Duration) {
    let done = Arc::new(Mutex::new((false, None::<Waker>)));
    let d2 = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let mut s = d2.lock().unwrap();
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    std::future::poll_fn(|cx| {
        let mut s = done.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [locks, semaphore_and_election]);
