//! A watcher that reads again at a reconnection does not forget a disconnection
//! that came just before its read (issue 20, commit 3d988fe: `Reconnects::reset`),
//! on every adapter against a real server.
//!
//! The window: a watcher's loop waits for the connection (`wait_connected`),
//! which answers at the first `Connected` it is told of; if the connection went
//! again before the loop ran, the loop reads while disconnected, and the read
//! fails (a client with `QueuePolicy::FailFast`). Only the reconnection after
//! that can repair it, and the loop must not have forgotten, when it started the
//! read, that the connection was already gone. On a busy executor the loop runs
//! late; here it runs on an executor the test stalls ([`Gate`]) while the
//! connection comes back and goes again.
//!
//! Seen through a [`TreeCache`]: its full read after the reconnection fails, and
//! a node made meanwhile appears once the connection is back for good. With the
//! disconnection forgotten, the cache waits for a reconnection it never sees: the
//! node never appears, and no `Resynced` comes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, QueuePolicy};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Spawner, Task, TreeCache, TreeCacheOptions, TreeEvent};

/// Bound of one wait for something that should come promptly.
const WAIT: Duration = Duration::from_secs(30);
/// Time for a runnable loop to reach its next wait.
const SETTLE: Duration = Duration::from_millis(300);

/// An executor that can be stalled: while closed, the task it runs is not
/// polled (its wake-ups are kept for when it opens), as a watcher on a busy
/// runtime.
#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    /// A spawner running each task on a thread of its own, behind this gate.
    fn spawner(self: &Arc<Self>) -> Spawner {
        let gate = self.clone();
        Spawner::new(move |task| {
            let gated = Gated {
                gate: gate.clone(),
                task,
            };
            thread::spawn(move || zk_client::blocking::block_on(gated, None));
        })
    }
}

struct Gated {
    gate: Arc<Gate>,
    task: Task,
}

impl Future for Gated {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.closed.load(Ordering::SeqCst) {
            *self.gate.waker.lock().unwrap() = Some(cx.waker().clone());
            // Opened meanwhile: the waker may have been missed.
            if !self.gate.closed.load(Ordering::SeqCst) {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        self.task.as_mut().poll(cx)
    }
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Drops the client's connection and lets no new one through.
fn disconnect<Z: Zk>(zk: &Z, proxy: &Proxy) {
    proxy.black_hole(true);
    proxy.cut_all();
    eventually("the client disconnected", || !zk.state().is_connected());
}

fn reconnect<Z: Zk>(zk: &Z, proxy: &Proxy) {
    proxy.black_hole(false);
    eventually("the client reconnected", || zk.state().is_connected());
}

/// An event's kind and path.
fn short(e: TreeEvent) -> String {
    match e {
        TreeEvent::NodeAdded { path, .. } => format!("NodeAdded {path}"),
        TreeEvent::NodeUpdated { path, .. } => format!("NodeUpdated {path}"),
        TreeEvent::NodeRemoved { path, .. } => format!("NodeRemoved {path}"),
        e => format!("{e:?}"),
    }
}

fn reset_keeps_a_disconnection<Z: Zk>() {
    static N: AtomicU64 = AtomicU64::new(0);
    let root = format!(
        "/rw-{}-{}-{}",
        Z::NAME,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let truth = Z::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
    truth.create(&root, "", CreateMode::Persistent).unwrap();
    truth
        .create(&format!("{root}/a"), "", CreateMode::Persistent)
        .unwrap();

    let proxy = Proxy::start(shared_server().addr());
    let b = ClientBuilder::new(&proxy.connect_string())
        .session_timeout(Duration::from_secs(30))
        .queue_policy(QueuePolicy::FailFast, 1000)
        .connect_deadline(WAIT);
    let zk = Z::connect(&b).unwrap();
    let gate = Arc::new(Gate::default());
    let opts = TreeCacheOptions {
        spawner: gate.spawner(),
        ..TreeCacheOptions::default()
    };
    let mut cache = TreeCache::with_options(zk.as_async(), &root, opts).unwrap();
    cache.wait_initialized(Some(WAIT)).unwrap();
    while let Ok(Some(_)) = cache.recv_event_timeout(Some(Duration::from_millis(200))) {}

    // 1. Lost, back while the loop is stalled, lost again: the loop sees the
    //    reconnection, finds the connection gone, and waits for it.
    disconnect(&zk, &proxy);
    gate.close();
    reconnect(&zk, &proxy);
    disconnect(&zk, &proxy);
    gate.open();
    thread::sleep(SETTLE);
    // 2. Back while the loop is stalled again (its wait answers), and lost
    //    before it runs: it starts its full read with the connection gone.
    gate.close();
    reconnect(&zk, &proxy);
    disconnect(&zk, &proxy);
    let added = format!("{root}/b");
    truth.create(&added, "", CreateMode::Persistent).unwrap();
    gate.open();
    thread::sleep(SETTLE);
    // 3. Back for good: the failed read is done again, and finds the new node.
    reconnect(&zk, &proxy);
    let t = Instant::now();
    let mut events = Vec::new();
    while cache.get(&added).is_none() && t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(e)) = cache.recv_event_timeout(Some(Duration::from_millis(100))) {
            events.push(short(e));
        }
    }
    let seen = cache.get(&added).is_some();
    while let Ok(Some(e)) = cache.recv_event_timeout(Some(Duration::from_millis(200))) {
        events.push(short(e));
    }
    println!(
        "[{}] after the last reconnection: {added} in the cache: {seen} ({:?}); events {events:?}",
        Z::NAME,
        t.elapsed()
    );
    assert!(
        seen && events.iter().any(|e| e == "Resynced"),
        "[{}] the full read that failed just after a reconnection was never done again: \
         {added} (made while disconnected) missing 10 s after the connection came back; \
         events {events:?}",
        Z::NAME
    );
    drop(cache);
    zk.close().unwrap();
    truth.delete_recursive(&root).unwrap();
    truth.close().unwrap();
}

#[test]
fn reset_keeps_a_disconnection_tokio() {
    reset_keeps_a_disconnection::<TokioZk>();
}

#[test]
fn reset_keeps_a_disconnection_smol() {
    reset_keeps_a_disconnection::<SmolZk>();
}

#[test]
fn reset_keeps_a_disconnection_blocking() {
    reset_keeps_a_disconnection::<BlockingZk>();
}
