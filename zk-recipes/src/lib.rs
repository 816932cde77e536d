//! ZooKeeper recipes that run on any runtime, and on none: the watchers
//! [`DataWatch`], [`ChildrenWatch`] and [`TreeCache`], and kazoo's coordination
//! recipes, node for node, so that a Rust service and kazoo (Python) services
//! can share a lock, an election, a counter or a queue on the same paths (see
//! [Coordination recipes](#coordination-recipes)).
//!
//! They are built on `zk-client` alone, so `zk-tokio`, `zk-smol` and
//! `zk-blocking` all re-export this crate as `recipes` (e.g.
//! `zk_tokio::recipes::DataWatch`). Each watcher's loop is a `Send + 'static`
//! future that waits only on the client's own hand-off points; by default it runs
//! on a thread of its own ([`Spawner::thread`]), or on an executor you name
//! ([`Spawner::new`]).
//!
//! Every watcher is a handle you must keep: **dropping it stops the watcher and
//! removes its server watches** (locally at once, on the server with the next
//! request the client sends). A watcher holds a clone of the client while it
//! runs, so the session stays open until the watchers are dropped too (or the
//! client is closed, which ends them).
//!
//! Reading works the same everywhere: `next().await` from async code,
//! `recv_timeout` from a thread (no runtime needed), `try_next` to poll.
//!
//! ```no_run
//! # fn demo(zk: &zk_client::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use zk_recipes::{ChildrenWatch, DataWatch, TreeCache};
//!
//! let mut config = DataWatch::new(zk, "/app/config")?;
//! if let Some(update) = config.recv_timeout(Some(Duration::from_secs(5)))? {
//!     println!("config is {:?} (exists: {})", update.data, update.exists());
//! }
//!
//! // kazoo's callback form: return false to stop.
//! let members = ChildrenWatch::callback(zk, "/app/members", Default::default(), |u| {
//!     println!("members: {:?}", u.children);
//!     true
//! })?;
//! members.detach(); // keep it running without holding the handle
//!
//! let cache = TreeCache::new(zk, "/app")?;
//! cache.wait_initialized(Some(Duration::from_secs(10)))?;
//! println!("{} nodes, config: {:?}", cache.len(), cache.get("/app/config"));
//! # Ok(()) }
//! ```
//!
//! # Coordination recipes
//!
//! Each has kazoo 2.11's node layout, naming and data encoding exactly (the
//! type's docs give them), and is written once for every adapter: its futures
//! are `Send + 'static` and run on any executor; each also has `_blocking`
//! forms for threads (`zk-blocking`), which need no runtime. Where a recipe
//! differs from kazoo, the type's docs say so (mostly where kazoo has known
//! bugs: string-ordered sequence numbers, leaked contender nodes, silent loss).
//!
//! | recipe | kazoo | tested against |
//! |---|---|---|
//! | [`Lock`] | `Lock` | real server (every adapter), kazoo 2.11, simulated fault schedules |
//! | [`ReadLock`], [`WriteLock`] | `ReadLock`, `WriteLock` (2.9+ rules) | real server (every adapter), kazoo 2.11 |
//! | [`Election`] | `Election` | real server (every adapter), kazoo 2.11, simulated fault schedules |
//! | [`Semaphore`] | `Semaphore` | real server (every adapter), kazoo 2.11 |
//! | [`Counter`] (`i64`, `f64`, `i32` = `support_curator`) | `Counter` | real server (every adapter), kazoo 2.11 |
//! | [`Barrier`], [`DoubleBarrier`] | `Barrier`, `DoubleBarrier` | real server (every adapter), kazoo 2.11 |
//! | [`Queue`], [`LockingQueue`] | `Queue`, `LockingQueue` | real server (every adapter), kazoo 2.11 |
//! | [`Party`], [`ShallowParty`] | `Party`, `ShallowParty` | real server (every adapter), kazoo 2.11 |
//! | [`NonBlockingLease`], [`MultiNonBlockingLease`] | same names | real server (every adapter), kazoo 2.11 |
//! | [`SetPartitioner`] | `SetPartitioner` | real server (every adapter), kazoo 2.11 |
//!
//! What we add to kazoo's: **fencing tokens** ([`LockGuard::fencing_token`],
//! [`Leadership::fencing_token`]: the holder node's czxid, larger for every new
//! holder), **explicit loss** ([`Holding`]: `Suspended` means the lock may be
//! lost, `Lost` that it is), and **cancellation-safe acquisition** (dropping an
//! acquisition removes its contender node, also across a connection loss).
//!
//! ```no_run
//! # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
//! use zk_recipes::{Counter, Lock};
//! let lock = Lock::new(&zk, "/app/lock", "rust-worker")?;
//! let guard = lock.acquire().await?;
//! let hits = Counter::<i64>::new(&zk, "/app/hits")?;
//! hits.add(1).await?;
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # Curator's recipes
//!
//! [`curator`] has Apache Curator 5's recipes on Curator's layouts, for Rust
//! services beside Java ones: `InterProcessMutex`, the read/write lock,
//! `InterProcessMultiLock`, `InterProcessSemaphoreV2` and
//! `InterProcessSemaphoreMutex`, `LeaderLatch`, `LeaderSelector`,
//! `SharedValue`, `SharedCount`, `DistributedAtomicLong`,
//! `PersistentNode`, `GroupMember`, the barriers and curator-x-discovery's
//! service registry, each tested against a real Curator 5.4 process.
//! `docs/from-curator.md` in the repository maps Curator's classes to them.
#![warn(missing_docs)]

mod barrier;
mod children_watch;
mod common;
mod counter;
pub mod curator;
mod data_watch;
mod election;
mod lease;
mod lock;
mod mailbox;
mod partitioner;
mod party;
mod queue;
mod runtime;
mod semaphore;
mod tree;
mod tree_cache;
mod watch_set;
mod watcher;

use std::sync::Arc;
use std::time::Duration;

pub use barrier::{Barrier, DoubleBarrier};
pub use children_watch::{ChildrenUpdate, ChildrenWatch, ChildrenWatchOptions};
pub use counter::{Change, Counter, CounterValue};
pub use data_watch::{DataUpdate, DataWatch};
pub use election::{Election, Leadership};
pub use lease::{MultiNonBlockingLease, NonBlockingLease};
pub use lock::{Holding, Lock, LockGuard, LockOptions, ReadLock, WriteLock};
pub use partitioner::{
    default_partition, PartitionFn, PartitionState, PartitionerOptions, SetPartitioner,
};
pub use party::{Party, ShallowParty};
pub use queue::{LockingQueue, Queue, DEFAULT_PRIORITY};
pub use runtime::{Spawner, Task};
pub use semaphore::{Semaphore, SemaphoreLease};
pub use tree_cache::{TreeCache, TreeCacheError, TreeCacheOptions, TreeEvent};
pub use watcher::Watcher;

use runtime::Control;

/// Keeps a callback watcher ([`DataWatch::callback`], [`ChildrenWatch::callback`])
/// running. Dropping it, or [`stop`](WatchHandle::stop), stops the watcher and
/// removes its server watches; [`detach`](WatchHandle::detach) lets it run until
/// its callback returns `false`, its callback panics, or the session ends.
#[must_use = "dropping the handle stops the watch; call detach() to keep it running"]
pub struct WatchHandle {
    control: Option<Arc<Control>>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl WatchHandle {
    fn new(control: Arc<Control>) -> WatchHandle {
        WatchHandle {
            control: Some(control),
        }
    }

    /// Stops the watcher. When this returns the callback is not running (unless
    /// this is called from inside the callback itself) and will not be called
    /// again; the loop drops its watch right after.
    pub fn stop(mut self) {
        if let Some(c) = self.control.take() {
            c.stop();
        }
    }

    /// Lets the watcher run on without the handle.
    pub fn detach(mut self) {
        self.control = None;
    }

    /// Whether the watcher has ended (callback returned false or panicked,
    /// session over, stopped).
    pub fn is_finished(&self) -> bool {
        self.control.as_ref().is_some_and(|c| c.is_finished())
    }

    /// Why it ended on its own, if it did (a callback that returned `false` or
    /// panicked ends it without an error).
    pub fn end_reason(&self) -> Option<zk_client::Error> {
        self.control.as_ref().and_then(|c| c.reason())
    }

    /// Blocks until the watcher has ended; false if `timeout` passed first.
    pub fn wait_finished(&self, timeout: Option<Duration>) -> bool {
        match &self.control {
            Some(c) => c.wait_finished(timeout),
            None => true,
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(c) = self.control.take() {
            c.stop();
        }
    }
}

/// Runs a user callback for `path` under the watcher's control: not at all once
/// stopped, and a panic is logged and stops (only) this watcher.
fn call_guarded(control: &Control, path: &str, f: impl FnOnce() -> bool) -> bool {
    let r = control.deliver(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    match r {
        None => false,
        Some(Ok(go_on)) => go_on,
        Some(Err(p)) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic)".into());
            tracing::error!(path, panic = %msg, "watch callback panicked; this watch stops");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_panicking_callback_is_contained_and_stop_waits_for_a_running_one() {
        let c = Control::new();
        assert!(!call_guarded(&c, "/p", || panic!("expected by the test")));
        assert!(call_guarded(&c, "/p", || true));
        // stop() from another thread waits for the callback in progress.
        let calls = Arc::new(AtomicUsize::new(0));
        let (c2, k2) = (c.clone(), calls.clone());
        let t = std::thread::spawn(move || {
            call_guarded(&c2, "/p", || {
                std::thread::sleep(Duration::from_millis(100));
                k2.fetch_add(1, Ordering::SeqCst);
                true
            })
        });
        std::thread::sleep(Duration::from_millis(20));
        c.stop();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "stop returned during a callback"
        );
        assert!(t.join().unwrap());
        // None after it; a stop from inside a callback does not wait for itself.
        assert!(!call_guarded(&c, "/p", || unreachable!()));
        let c3 = Control::new();
        let inner = c3.clone();
        assert!(call_guarded(&c3, "/p", move || {
            inner.stop();
            true
        }));
        assert!(c3.is_stopped());
    }

    #[test]
    fn a_dropped_task_still_ends_the_watcher() {
        let c = Control::new();
        let ended = Arc::new(AtomicUsize::new(0));
        let e2 = ended.clone();
        // A spawner that drops the task unrun (an executor shutting down).
        let drop_it = Spawner::new(drop);
        runtime::launch(
            &drop_it,
            "test",
            c.clone(),
            move |_| {
                e2.fetch_add(1, Ordering::SeqCst);
            },
            async { None },
        );
        assert!(c.wait_finished(Some(Duration::from_secs(1))));
        assert_eq!(ended.load(Ordering::SeqCst), 1);
        let h = WatchHandle::new(c);
        assert!(h.is_finished() && h.end_reason().is_none());
    }
}
