//! A held lock: its fencing token, where it stands (held, suspended, lost),
//! the wait for its loss, and its release.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, Error, ErrorCode, EventType, Result, SessionState};

use super::cleanup::Leftover;
use super::core::LockCore;
use crate::common::{fired_or, join, retryable, settle};

/// Where a held lock stands; see [`LockGuard::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holding {
    /// Connected, same session, node not seen deleted: held.
    Held,
    /// The connection is down but the session may still be alive: **the lock
    /// may have been lost**. Nothing that relies on exclusion should be done
    /// until it is `Held` again; if the session expires meanwhile, another
    /// contender may already hold it.
    Suspended,
    /// The session that held it ended, or the node was deleted: **lost**.
    /// Another contender may hold it now. Final.
    Lost,
}

/// A held lock (the contender node that is first). Release with
/// [`release`](LockGuard::release); dropping it releases in the background.
///
/// ```no_run
/// # async fn demo(lock: zk_recipes::Lock) -> zk_client::Result<()> {
/// let guard = lock.acquire().await?;
/// let token = guard.fencing_token();
/// // Work until done, or until the lock may be gone.
/// let work = async { /* ... writes carrying `token` ... */ };
/// let lost = guard.lost();
/// # drop((work, lost, token));
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    core: Arc<LockCore>,
    node: String,
    seq: i64,
    czxid: i64,
    session: i64,
    lost: Arc<AtomicBool>,
    released: AtomicBool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("node", &self.node_path())
            .field("fencing_token", &self.czxid)
            .finish()
    }
}

impl LockGuard {
    /// A guard for a node that `core`'s path holds for this session (a
    /// semaphore's lease): released, watched and cleaned up like a lock's.
    pub(crate) fn adopt(core: Arc<LockCore>, node: String, czxid: i64, session: i64) -> LockGuard {
        LockGuard::new(core, node, 0, czxid, session)
    }

    /// The guard of `core`'s node `node` (sequence number `seq`), made in
    /// transaction `czxid` by `session`.
    pub(super) fn new(
        core: Arc<LockCore>,
        node: String,
        seq: i64,
        czxid: i64,
        session: i64,
    ) -> LockGuard {
        LockGuard {
            core,
            node,
            seq,
            czxid,
            session,
            lost: Arc::new(AtomicBool::new(false)),
            released: AtomicBool::new(false),
        }
    }

    /// The fencing token of this tenure: the czxid (creation zxid) of the
    /// holder's node. zxids grow with every write across the whole ensemble
    /// (also across leader changes), and a later holder's node was created after
    /// the earlier holder's, so each new holder's token is larger than every
    /// earlier one's, whoever held it (also a kazoo or another client in between
    /// the two). A resource that remembers the highest token it has accepted and
    /// rejects lower ones cannot be written by a holder that lost the lock
    /// without knowing. (The node's sequence number, [`sequence`](LockGuard::sequence),
    /// also grows, but only until the parent's counter wraps.)
    pub fn fencing_token(&self) -> i64 {
        self.czxid
    }

    /// The sequence number of the holder's node.
    pub fn sequence(&self) -> i64 {
        self.seq
    }

    /// The id of the session that holds the lock (its node is that session's
    /// ephemeral).
    pub fn session_id(&self) -> i64 {
        self.session
    }

    /// The holder's node.
    pub fn node_path(&self) -> String {
        join(&self.core.path, &self.node)
    }

    /// Where the lock stands now (no request is sent): [`Holding::Lost`] once
    /// the session changed or ended, or [`lost`](LockGuard::lost) saw the node
    /// deleted; [`Holding::Suspended`] while disconnected.
    pub fn status(&self) -> Holding {
        status_of(&self.core.client, self.session, &self.lost)
    }

    /// Resolves once the lock is lost: the session that holds it ended (or the
    /// client closed), or its node was deleted (by someone else). Cancel-safe;
    /// it sets an exists watch on the node while it waits.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.until(|h| h == Holding::Lost)
    }

    /// [`lost`](LockGuard::lost) from a thread: `true` once the lock is lost,
    /// `false` if `timeout` passed first.
    pub fn lost_blocking(&self, timeout: Option<Duration>) -> bool {
        zk_client::blocking::block_on(self.lost(), timeout).is_some()
    }

    /// [`not_held`](LockGuard::not_held) from a thread: `None` if `timeout`
    /// passed while still held.
    pub fn not_held_blocking(&self, timeout: Option<Duration>) -> Option<Holding> {
        zk_client::blocking::block_on(self.not_held(), timeout)
    }

    /// Resolves with the new status once the lock is no longer surely held:
    /// [`Holding::Suspended`] (connection down) or [`Holding::Lost`].
    pub fn not_held(&self) -> impl Future<Output = Holding> + Send + 'static {
        let f = self.until(|h| h != Holding::Held);
        let (c, session, lost) = (self.core.client.clone(), self.session, self.lost.clone());
        async move {
            f.await;
            status_of(&c, session, &lost)
        }
    }

    fn until(&self, done: fn(Holding) -> bool) -> impl Future<Output = ()> + Send + 'static {
        let (c, session, lost) = (self.core.client.clone(), self.session, self.lost.clone());
        let path = self.node_path();
        async move {
            loop {
                let mut states = c.state_stream();
                let _ = states.next().await;
                if done(status_of(&c, session, &lost)) {
                    return;
                }
                let watch = if c.state().is_connected() {
                    match c.exists_watch(&path).await {
                        Ok((None, _)) => {
                            lost.store(true, Ordering::SeqCst);
                            continue;
                        }
                        Ok((Some(s), w)) if s.ephemeral_owner == session => Some(w),
                        Ok((Some(_), _)) => {
                            lost.store(true, Ordering::SeqCst);
                            continue;
                        }
                        Err(_) => None,
                    }
                } else {
                    None
                };
                match watch {
                    Some(w) => {
                        let fired = fired_or(w, states.next()).await;
                        if fired.is_some_and(|e| e.event_type == EventType::NodeDeleted) {
                            lost.store(true, Ordering::SeqCst);
                        }
                    }
                    None => {
                        if states.next().await.is_none() {
                            lost.store(true, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
    }

    /// Releases the lock: deletes the node, through connection losses (a
    /// node already gone, e.g. with an expired session, is fine). Errors only if
    /// the client can never reconnect before the delete went through.
    pub fn release(self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.release_shared()
    }

    /// [`release`](LockGuard::release) through a shared reference (for the
    /// recipes that hand the guard out by reference, like an election's
    /// leadership). Releasing twice is harmless.
    pub(crate) fn release_shared(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.released.store(true, Ordering::SeqCst);
        let (c, path) = (self.core.client.clone(), self.node_path());
        let session = self.session;
        async move {
            loop {
                match c.delete(&path, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => return Ok(()),
                    Err(e) if retryable(&e) => {
                        if let Err(e2) = settle(&c, &e).await {
                            // A later session means the holder's ended, and
                            // its ephemeral node with it.
                            let gone = c.session().map(|s| s.id) != Some(session);
                            return if gone { Ok(()) } else { Err(e2) };
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// [`release`](LockGuard::release) from a thread.
    pub fn release_blocking(self) -> Result<()> {
        zk_client::blocking::block_on(self.release(), None).unwrap_or(Ok(()))
    }
}

fn status_of(c: &Client, session: i64, lost: &AtomicBool) -> Holding {
    if lost.load(Ordering::SeqCst) {
        return Holding::Lost;
    }
    let st = c.state();
    if st.is_terminal() || c.session().map(|s| s.id) != Some(session) {
        return Holding::Lost;
    }
    if st == SessionState::Connected {
        Holding::Held
    } else {
        Holding::Suspended
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let l = Leftover {
            client: self.core.client.clone(),
            path: self.core.path.clone(),
            prefix: String::new(),
            node: Some(self.node.clone()),
            pending: None,
            search: false,
        };
        l.spawn(&self.core.spawner);
    }
}
