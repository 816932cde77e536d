//! The Curator lock recipes (mutex, multi-lock, semaphore) taken and let go
//! the adapter's way, written once for every kind: the `_blocking` twin on
//! zk-blocking, the future on the adapter's executor otherwise.

use std::future::Future;
use std::time::Duration;

use zk_client::Result;
use zk_tokio::recipes::curator::{
    InterProcessMultiLock, InterProcessMutex, InterProcessSemaphoreV2, Lease, MultiLockGuard,
    MutexGuard,
};

use super::Adapter;

/// A lock-like recipe: the three ways its users take it.
pub trait Lockable {
    /// What holding it is (a guard, a lease).
    type Guard: Held;
    /// `acquire_blocking`: within `limit`, or without a bound.
    fn take_blocking(&self, limit: Option<Duration>) -> Result<Option<Self::Guard>>;
    /// `acquire`: without a bound.
    fn take(&self) -> impl Future<Output = Result<Self::Guard>>;
    /// `acquire_timeout`: within `limit`.
    fn take_within(&self, limit: Duration) -> impl Future<Output = Result<Option<Self::Guard>>>;
}

/// What a lock-like recipe hands out, let go the same two ways.
pub trait Held {
    /// `release_blocking`.
    fn give_blocking(self) -> Result<()>;
    /// `release`.
    fn give(self) -> impl Future<Output = Result<()>>;
}

/// One recipe and what it hands out, forwarding to their own methods.
macro_rules! lockable {
    ($($lock:ty => $guard:ty),+ $(,)?) => {$(
        impl Lockable for $lock {
            type Guard = $guard;
            fn take_blocking(&self, limit: Option<Duration>) -> Result<Option<$guard>> {
                self.acquire_blocking(limit)
            }
            fn take(&self) -> impl Future<Output = Result<$guard>> {
                self.acquire()
            }
            fn take_within(&self, limit: Duration) -> impl Future<Output = Result<Option<$guard>>> {
                self.acquire_timeout(limit)
            }
        }
        impl Held for $guard {
            fn give_blocking(self) -> Result<()> {
                self.release_blocking()
            }
            fn give(self) -> impl Future<Output = Result<()>> {
                self.release()
            }
        }
    )+};
}

lockable!(
    InterProcessMutex => MutexGuard,
    InterProcessMultiLock => MultiLockGuard,
    InterProcessSemaphoreV2 => Lease,
);

/// Takes `lock` on adapter `Z`: within `ms` (`None` if it was not had by
/// then), or without a bound (`ms` `None`: always `Some`).
pub fn take<Z: Adapter, L: Lockable>(lock: &L, ms: Option<u64>) -> Option<L::Guard> {
    match (Z::NAME, ms) {
        ("blocking", ms) => lock.take_blocking(ms.map(Duration::from_millis)).unwrap(),
        (_, None) => Some(Z::exec(lock.take()).unwrap()),
        (_, Some(ms)) => Z::exec(lock.take_within(Duration::from_millis(ms))).unwrap(),
    }
}

/// Takes `lock` on adapter `Z` without a bound.
pub fn hold<Z: Adapter, L: Lockable>(lock: &L) -> L::Guard {
    take::<Z, L>(lock, None).expect("taken without a bound")
}

/// Lets `held` go on adapter `Z`.
pub fn give<Z: Adapter, H: Held>(held: H) {
    if Z::NAME == "blocking" {
        held.give_blocking().unwrap()
    } else {
        Z::exec(held.give()).unwrap()
    }
}
