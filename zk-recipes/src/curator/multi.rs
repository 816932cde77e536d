//! [`InterProcessMultiLock`]: several Curator locks taken as one.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use zk_client::{Client, Error, Result};

use crate::curator::mutex::{InterProcessMutex, MutexGuard};
use crate::lock::Holding;

/// Curator's `InterProcessMultiLock`: a list of locks acquired in order and
/// released in reverse; held only when all are. Built on paths it is a list of
/// [`InterProcessMutex`]es, so Java mutexes (or Java multi-locks) on any of
/// the same paths are excluded as they are by Java's.
///
/// # Layout (Curator 5)
///
/// Nothing of its own: each lock is an [`InterProcessMutex`] with its own
/// layout (`<path>/_c_<uuid>-lock-<seq>`).
///
/// # Acquiring
///
/// The locks are taken one after the other, in the order given. If one cannot
/// be had (its wait ran out, or an error), the ones already taken are released
/// in reverse order and the acquisition fails. As in Java, a timeout bounds
/// the wait for **each** lock, not the whole: `n` locks may take up to
/// `n × timeout`. Java goes on to the later locks after an exception (then
/// releases them all); here the first error stops. Processes that take the same
/// locks in the same order cannot deadlock on them.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::InterProcessMultiLock;
/// let both = InterProcessMultiLock::new(&zk, ["/app/locks/a", "/app/locks/b"])?;
/// let guard = both.acquire().await?;
/// println!("tokens {:?}", guard.fencing_tokens());
/// guard.release().await?; // b, then a
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a lock does nothing until acquired"]
pub struct InterProcessMultiLock {
    locks: Vec<InterProcessMutex>,
}

impl InterProcessMultiLock {
    /// An [`InterProcessMutex`] with Curator's defaults on each path, in this
    /// order (Java's `InterProcessMultiLock(client, paths)`).
    pub fn new<I, P>(client: &Client, paths: I) -> Result<InterProcessMultiLock>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        let locks = paths
            .into_iter()
            .map(|p| InterProcessMutex::new(client, p.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(InterProcessMultiLock { locks })
    }

    /// These locks, in this order (Java's `InterProcessMultiLock(locks)`):
    /// mutexes with options, or the sides of read/write locks.
    pub fn from_locks(locks: Vec<InterProcessMutex>) -> InterProcessMultiLock {
        InterProcessMultiLock { locks }
    }

    /// The locks, in acquisition order.
    pub fn locks(&self) -> &[InterProcessMutex] {
        &self.locks
    }

    /// Takes every lock, waiting as long as each needs (Java's `acquire()`).
    pub fn acquire(&self) -> impl Future<Output = Result<MultiLockGuard>> + Send + 'static {
        let f = self.take(None);
        async move {
            f.await?
                .ok_or_else(|| Error::Malformed("acquire ended without the locks".into()))
        }
    }

    /// Takes every lock, waiting at most `timeout` for each (Java's
    /// `acquire(time, unit)`); `None` when one was not had in time, after the
    /// ones taken were released in reverse order.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<MultiLockGuard>>> + Send + 'static {
        self.take(Some(timeout))
    }

    /// [`acquire`](Self::acquire) from a thread: at most `timeout` for each
    /// lock (`None`: for ever).
    pub fn acquire_blocking(&self, timeout: Option<Duration>) -> Result<Option<MultiLockGuard>> {
        zk_client::blocking::block_on(self.take(timeout), None).unwrap_or(Ok(None))
    }

    /// Whether this process holds every lock through these handles, by the
    /// rules (Java's `isAcquiredInThisProcess`: all, not some).
    pub fn is_acquired(&self) -> bool {
        self.locks.iter().all(InterProcessMutex::is_acquired)
    }

    fn take(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<MultiLockGuard>>> + Send + 'static {
        let locks = self.locks.clone();
        async move {
            let mut held = Vec::with_capacity(locks.len());
            for m in &locks {
                let r = match timeout {
                    None => m.acquire().await.map(Some),
                    Some(t) => m.acquire_timeout(t).await,
                };
                match r {
                    Ok(Some(g)) => held.push(g),
                    Ok(None) => {
                        // Java swallows a failed release here; so does this
                        // (logged): the wait's outcome is what is reported.
                        if let Err(e) = release_reverse(held).await {
                            tracing::warn!(error = %e, "could not release a lock after a timed-out multi-lock");
                        }
                        return Ok(None);
                    }
                    Err(e) => {
                        if let Err(r) = release_reverse(held).await {
                            tracing::warn!(error = %r, "could not release a lock after a failed multi-lock");
                        }
                        return Err(e);
                    }
                }
            }
            Ok(Some(MultiLockGuard { guards: held }))
        }
    }
}

/// Releases `held` last first, every one of them; the first error, if any.
async fn release_reverse(mut held: Vec<MutexGuard>) -> Result<()> {
    let mut first = None;
    while let Some(g) = held.pop() {
        if let Err(e) = g.release().await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Every lock of an [`InterProcessMultiLock`], held. Releasing (or dropping)
/// it releases them last first.
#[must_use = "dropping the guard releases the locks"]
#[derive(Debug)]
pub struct MultiLockGuard {
    guards: Vec<MutexGuard>,
}

impl MultiLockGuard {
    /// One guard per lock, in acquisition order.
    pub fn guards(&self) -> &[MutexGuard] {
        &self.guards
    }

    /// Each lock's fencing token (its holder node's czxid), in order.
    pub fn fencing_tokens(&self) -> Vec<i64> {
        self.guards.iter().map(MutexGuard::fencing_token).collect()
    }

    /// Whether every lock is still held by the rules.
    pub fn is_held(&self) -> bool {
        self.guards.iter().all(MutexGuard::is_held)
    }

    /// Resolves once the rules end the claim on any of the locks (with that
    /// lock's status); never for an empty list.
    pub fn ended(&self) -> impl Future<Output = Holding> + Send + 'static {
        let mut all: Vec<Pin<Box<dyn Future<Output = Holding> + Send>>> = self
            .guards
            .iter()
            .map(|g| Box::pin(g.ended()) as Pin<Box<dyn Future<Output = Holding> + Send>>)
            .collect();
        std::future::poll_fn(move |cx| {
            for f in &mut all {
                if let Poll::Ready(h) = f.as_mut().poll(cx) {
                    return Poll::Ready(h);
                }
            }
            Poll::Pending
        })
    }

    /// Releases every lock, last first (Java's `release()`): each is released
    /// even if an earlier one failed; the first error is returned.
    pub fn release(mut self) -> impl Future<Output = Result<()>> + Send + 'static {
        release_reverse(std::mem::take(&mut self.guards))
    }

    /// [`release`](Self::release) from a thread.
    pub fn release_blocking(self) -> Result<()> {
        zk_client::blocking::block_on(self.release(), None).unwrap_or(Ok(()))
    }
}

impl Drop for MultiLockGuard {
    fn drop(&mut self) {
        // Each guard releases in the background when dropped; last first.
        while self.guards.pop().is_some() {}
    }
}
