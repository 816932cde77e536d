//! [`SetPartitioner`]: kazoo's set partitioner, node for node.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use zk_client::{Client, Error, OneshotWatch, Result, SessionState, StateStream};

use crate::barrier::default_identifier;
use crate::common::{join, now, retrying, Cancel, Delay};
use crate::lock::{Lock, LockGuard, LockOptions};
use crate::mailbox::lock;
use crate::party::ShallowParty;
use crate::runtime::Spawner;

/// Where a [`SetPartitioner`] stands (kazoo's `PartitionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionState {
    /// Waiting for the party to settle, computing our share, taking its locks.
    Allocating,
    /// Our share is held: work on [`SetPartitioner::partition`].
    Acquired,
    /// The party or the connection changed: stop working on the share and call
    /// [`SetPartitioner::release_set`] to re-allocate.
    Release,
    /// The session was lost (or [`finish`](SetPartitioner::finish) was called):
    /// nothing more happens; make a new partitioner.
    Failure,
}

/// How a member's share is computed: `(our identifier, every member's
/// identifier, the set) -> our items`. Every member must use the same one.
pub type PartitionFn = Arc<dyn Fn(&str, &[String], &[String]) -> Vec<String> + Send + Sync>;

/// kazoo's default partition function: sort the set and the members; member
/// `i` of `n` gets `sorted_set[i::n]` (every n-th item from the i-th).
/// Python sorts `str` by code point, which is the order of Rust's `String`.
pub fn default_partition(me: &str, members: &[String], set: &[String]) -> Vec<String> {
    let mut items = set.to_vec();
    items.sort();
    let mut workers = members.to_vec();
    workers.sort();
    let Some(i) = workers.iter().position(|w| w == me) else {
        return Vec::new();
    };
    items.into_iter().skip(i).step_by(workers.len()).collect()
}

/// Options of a [`SetPartitioner`] (kazoo's keyword arguments).
#[derive(Clone)]
pub struct PartitionerOptions {
    /// This member's identifier (`None`: `"<host>-<pid>"`, kazoo's default).
    /// It goes into a node name, so no `/`.
    pub identifier: Option<String>,
    /// How long the party must stay unchanged before allocating (kazoo's
    /// `time_boundary`, 30 s).
    pub time_boundary: Duration,
    /// How long each lock is waited for before checking whether the party
    /// changed meanwhile (kazoo's `max_reaction_time`, 1 s).
    pub max_reaction_time: Duration,
    /// The partition function (`None`: [`default_partition`]).
    pub partition_func: Option<PartitionFn>,
    /// Where the partitioner's loop (and its locks' cleanups) run.
    pub spawner: Spawner,
}

impl Default for PartitionerOptions {
    fn default() -> Self {
        PartitionerOptions {
            identifier: None,
            time_boundary: Duration::from_secs(30),
            max_reaction_time: Duration::from_secs(1),
            partition_func: None,
            spawner: Spawner::default(),
        }
    }
}

impl fmt::Debug for PartitionerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionerOptions")
            .field("identifier", &self.identifier)
            .field("time_boundary", &self.time_boundary)
            .field("max_reaction_time", &self.max_reaction_time)
            .field("custom_partition_func", &self.partition_func.is_some())
            .finish()
    }
}

struct St {
    state: PartitionState,
    partition: Vec<String>,
    changes: u64,
    wakers: Vec<Waker>,
    reason: Option<Error>,
}

struct Shared {
    st: Mutex<St>,
    cond: Condvar,
    /// Asks the loop to re-allocate (from Release).
    release: Cancel,
    /// Asks the loop to finish.
    finish: Cancel,
}

impl Shared {
    fn set(&self, state: PartitionState, partition: Vec<String>) {
        let wakers = {
            let mut s = lock(&self.st);
            if s.state == PartitionState::Failure {
                return;
            }
            s.state = state;
            s.partition = partition;
            s.changes += 1;
            std::mem::take(&mut s.wakers)
        };
        self.cond.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// kazoo's `SetPartitioner`: divides a set of items among the members of a
/// party, each member holding a kazoo [`Lock`] per item of its share, and
/// re-divides when members come and go.
///
/// # Layout (kazoo 2.11)
///
/// * `<path>/party`: a [`ShallowParty`] (`<32 hex>-<identifier>`).
/// * `<path>/locks/<item>`: one [`Lock`] per item, without identifier (empty
///   data): `<path>/locks/<item>/<hex>__lock__<seq>`.
///
/// # States
///
/// [`Allocating`](PartitionState::Allocating): wait until the party's children
/// stay unchanged for `time_boundary`, compute our share with the partition
/// function over the members' identifiers (default: [`default_partition`]),
/// take each item's lock (waiting `max_reaction_time` at a time, starting over
/// if the party changes meanwhile). [`Acquired`](PartitionState::Acquired):
/// all held. A later change of the party, or of the connection state, moves to
/// [`Release`](PartitionState::Release): stop using the share and call
/// [`release_set`](SetPartitioner::release_set), which releases the locks and
/// allocates again. A lost session moves to [`Failure`](PartitionState::Failure)
/// (final; kazoo's rule), as does [`finish`](SetPartitioner::finish).
///
/// kazoo members and these share one partitioning if they use the same
/// identifiers' order and partition function (the default ones agree).
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{PartitionState, PartitionerOptions, SetPartitioner};
/// let items: Vec<String> = (0..12).map(|i| format!("shard-{i}")).collect();
/// let p = SetPartitioner::new(zk, "/app/partition", items, PartitionerOptions {
///     identifier: Some("worker-1".into()),
///     time_boundary: Duration::from_secs(5),
///     ..PartitionerOptions::default()
/// })?;
/// loop {
///     match p.wait_until(None, |s| s != PartitionState::Allocating) {
///         PartitionState::Acquired => {
///             println!("working on {:?}", p.partition());
///             p.wait_until(None, |s| s != PartitionState::Acquired);
///         }
///         PartitionState::Release => p.release_set(),
///         _ => break, // Failure: start over with a new partitioner
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "dropping the SetPartitioner releases its share and leaves the party"]
pub struct SetPartitioner {
    shared: Arc<Shared>,
    path: String,
}

impl fmt::Debug for SetPartitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetPartitioner")
            .field("path", &self.path)
            .field("state", &self.state())
            .finish()
    }
}

impl SetPartitioner {
    /// Joins the party at `path` and starts allocating `set`.
    pub fn new(
        client: &Client,
        path: &str,
        set: Vec<String>,
        opts: PartitionerOptions,
    ) -> Result<SetPartitioner> {
        zk_proto::path::validate_path(path, false)?;
        for item in &set {
            zk_proto::path::validate_path(&join(&join(path, "locks"), item), false)?;
            if item.contains('/') {
                return Err(Error::InvalidArgument(format!("item {item:?} has a '/'")));
            }
        }
        let identifier = opts.identifier.clone().unwrap_or_else(default_identifier);
        let party = ShallowParty::new(client, &join(path, "party"), &identifier)?;
        let shared = Arc::new(Shared {
            st: Mutex::new(St {
                state: PartitionState::Allocating,
                partition: Vec::new(),
                changes: 0,
                wakers: Vec::new(),
                reason: None,
            }),
            cond: Condvar::new(),
            release: Cancel::default(),
            finish: Cancel::default(),
        });
        let task = Loop {
            client: client.clone(),
            path: path.to_owned(),
            identifier,
            set,
            party,
            func: opts
                .partition_func
                .clone()
                .unwrap_or_else(|| Arc::new(default_partition)),
            opts: opts.clone(),
            shared: shared.clone(),
            held: Vec::new(),
        };
        let s2 = shared.clone();
        opts.spawner.spawn(
            "zk-set-partitioner",
            Box::pin(async move {
                let reason = task.run().await;
                lock(&s2.st).reason = reason;
                s2.set(PartitionState::Failure, Vec::new());
            }),
        );
        Ok(SetPartitioner {
            shared,
            path: path.to_owned(),
        })
    }

    /// The state now.
    pub fn state(&self) -> PartitionState {
        lock(&self.shared.st).state
    }

    /// Our share while [`Acquired`](PartitionState::Acquired) (kazoo's
    /// iteration), empty otherwise.
    pub fn partition(&self) -> Vec<String> {
        let s = lock(&self.shared.st);
        if s.state == PartitionState::Acquired {
            s.partition.clone()
        } else {
            Vec::new()
        }
    }

    /// Why it failed on its own, if it did (an error no retry could fix).
    pub fn failure_reason(&self) -> Option<Error> {
        lock(&self.shared.st).reason.clone()
    }

    /// Blocks until the state satisfies `pred` or `timeout` passes; returns
    /// the state then.
    pub fn wait_until(
        &self,
        timeout: Option<Duration>,
        pred: impl Fn(PartitionState) -> bool,
    ) -> PartitionState {
        let deadline = timeout.and_then(|t| now().checked_add(t));
        let mut s = lock(&self.shared.st);
        loop {
            if pred(s.state) || s.state == PartitionState::Failure {
                return s.state;
            }
            s = match deadline {
                None => self.shared.cond.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let n = now();
                    if n >= d {
                        return s.state;
                    }
                    self.shared
                        .cond
                        .wait_timeout(s, d - n)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// kazoo's `wait_for_acquire`: blocks until Acquired (or Failure) or
    /// `timeout`; whether it is Acquired.
    pub fn wait_for_acquire(&self, timeout: Option<Duration>) -> bool {
        self.wait_until(timeout, |s| s == PartitionState::Acquired) == PartitionState::Acquired
    }

    /// Resolves with the state once it satisfies `pred` (or is Failure).
    pub fn until(
        &self,
        pred: impl Fn(PartitionState) -> bool + Send + 'static,
    ) -> impl Future<Output = PartitionState> + Send + 'static {
        let shared = self.shared.clone();
        std::future::poll_fn(move |cx| {
            let mut s = lock(&shared.st);
            if pred(s.state) || s.state == PartitionState::Failure {
                return Poll::Ready(s.state);
            }
            if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                s.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// From [`Release`](PartitionState::Release) (or
    /// [`Acquired`](PartitionState::Acquired)): releases our locks and
    /// allocates again (kazoo's `release_set`). Does nothing while allocating.
    pub fn release_set(&self) {
        self.shared.release.cancel();
    }

    /// Releases our share and leaves the party; the state becomes
    /// [`Failure`](PartitionState::Failure) (kazoo's `finish`).
    pub fn finish(&self) {
        self.shared.finish.cancel();
    }
}

impl Drop for SetPartitioner {
    fn drop(&mut self) {
        self.shared.finish.cancel();
    }
}

/// The partitioner's loop.
struct Loop {
    client: Client,
    path: String,
    identifier: String,
    set: Vec<String>,
    party: ShallowParty,
    func: PartitionFn,
    opts: PartitionerOptions,
    shared: Arc<Shared>,
    held: Vec<LockGuard>,
}

/// What ended a wait of the loop.
enum Woke {
    Fired,
    StateChanged,
    Release,
    Finish,
    Timeout,
}

fn lost(state: SessionState, session: Option<i64>, now: Option<i64>) -> bool {
    state.is_terminal() || (session.is_some() && now != session)
}

impl Loop {
    /// Waits for the first of: `watch` fires, the connection state changes
    /// (on `states`), release_set, finish, `timeout`.
    async fn wait(
        &self,
        states: &mut StateStream,
        watch: Option<&mut Pin<Box<OneshotWatch>>>,
        release_since: Option<u64>,
        timeout: Option<Duration>,
    ) -> Woke {
        let mut change = pin!(states.next());
        let mut delay = pin!(Delay::new_opt(timeout));
        let mut watch = watch;
        let mut finish = self.shared.finish.wait(0);
        let mut release = release_since.map(|r| self.shared.release.wait(r));
        std::future::poll_fn(|cx| {
            if finish.poll_cancelled(cx).is_ready() {
                return Poll::Ready(Woke::Finish);
            }
            if let Some(release) = release.as_mut() {
                if release.poll_cancelled(cx).is_ready() {
                    return Poll::Ready(Woke::Release);
                }
            }
            if let Some(w) = watch.as_deref_mut() {
                if w.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Woke::Fired);
                }
            }
            if change.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Woke::StateChanged);
            }
            delay.as_mut().poll(cx).map(|()| Woke::Timeout)
        })
        .await
    }

    async fn release_all(&mut self) {
        for g in self.held.drain(..) {
            let _ = g.release().await;
        }
    }

    /// kazoo's PatientChildrenWatch: the party's children once unchanged for
    /// `time_boundary`, with a watch for the next change; or what else woke it.
    async fn patient(
        &self,
        states: &mut StateStream,
    ) -> Result<std::result::Result<(Vec<String>, Pin<Box<OneshotWatch>>), Woke>> {
        let party = join(&self.path, "party");
        loop {
            let (kids, _, w) =
                retrying(&self.client, || self.client.get_children_watch(&party)).await?;
            let mut w = Box::pin(w);
            match self
                .wait(states, Some(&mut w), None, Some(self.opts.time_boundary))
                .await
            {
                Woke::Timeout => return Ok(Ok((kids, w))),
                Woke::Fired => {} // changed: watch again
                other => return Ok(Err(other)),
            }
        }
    }

    /// Returns why it failed (`None` when finished or the session was lost).
    async fn run(mut self) -> Option<Error> {
        let r = self.run_inner().await;
        self.release_all().await;
        let _ = self.party.leave().await;
        r.err().filter(|e| !matches!(e, Error::SessionClosed))
    }

    async fn run_inner(&mut self) -> Result<()> {
        for p in [
            self.path.clone(),
            join(&self.path, "locks"),
            join(&self.path, "party"),
        ] {
            retrying(&self.client, || self.client.ensure_path(&p)).await?;
        }
        self.party.join().await?;
        let session = self.client.session().map(|s| s.id);
        let is_lost = |c: &Client| lost(c.state(), session, c.session().map(|s| s.id));
        'allocate: loop {
            if is_lost(&self.client) {
                return Ok(());
            }
            self.shared.set(PartitionState::Allocating, Vec::new());
            // Every state change from here on counts (kazoo's listener).
            let mut states = self.client.state_stream();
            let _ = states.next().await;
            let woke = 'attempt: {
                let (kids, mut watch) = match self.patient(&mut states).await? {
                    Ok(v) => v,
                    Err(w) => break 'attempt w,
                };
                let members: Vec<String> = kids
                    .iter()
                    .map(|k| k.find('-').map_or(k.clone(), |i| k[i + 1..].to_string()))
                    .collect();
                if !members.contains(&self.identifier) {
                    // Our member node is gone (a new session): join again.
                    self.party.join().await?;
                    continue 'allocate;
                }
                let share = (self.func)(&self.identifier, &members, &self.set);
                let locks = join(&self.path, "locks");
                for item in &share {
                    let l = Lock::with_options(
                        &self.client,
                        &join(&locks, item),
                        LockOptions {
                            identifier: None,
                            spawner: self.opts.spawner.clone(),
                            ..LockOptions::default()
                        },
                    )?;
                    loop {
                        if let Some(g) = l.acquire_timeout(self.opts.max_reaction_time).await? {
                            self.held.push(g);
                            break;
                        }
                        // kazoo's abort_if_needed: did the party or the connection change?
                        match self
                            .wait(&mut states, Some(&mut watch), None, Some(Duration::ZERO))
                            .await
                        {
                            Woke::Fired => {
                                self.release_all().await;
                                continue 'allocate;
                            }
                            Woke::Timeout => {}
                            other => break 'attempt other,
                        }
                    }
                }
                self.shared.set(PartitionState::Acquired, share);
                let rel = self.shared.release.generation();
                match self
                    .wait(&mut states, Some(&mut watch), Some(rel), None)
                    .await
                {
                    // release_set while acquired: re-allocate at once (kazoo).
                    Woke::Release => {
                        self.release_all().await;
                        continue 'allocate;
                    }
                    other => other,
                }
            };
            match woke {
                Woke::Finish => return Ok(()),
                Woke::StateChanged if is_lost(&self.client) => return Ok(()),
                _ => {}
            }
            // Release: the user stops using the share, then calls release_set.
            if !self.await_release().await {
                return Ok(());
            }
            self.release_all().await;
        }
    }

    /// In Release until release_set (true) or finish / a lost session (false).
    async fn await_release(&mut self) -> bool {
        let since = self.shared.release.generation();
        self.shared.set(PartitionState::Release, Vec::new());
        let session = self.client.session().map(|s| s.id);
        let mut states = self.client.state_stream();
        let _ = states.next().await;
        loop {
            match self.wait(&mut states, None, Some(since), None).await {
                Woke::Release => return true,
                Woke::Finish => return false,
                _ => {
                    let c = &self.client;
                    if lost(c.state(), session, c.session().map(|s| s.id)) {
                        return false;
                    }
                }
            }
        }
    }
}

use std::pin::Pin;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_default_partition() {
        let set: Vec<String> = "ihgfedcba".chars().map(|c| c.to_string()).collect();
        let members = vec!["w2".to_string(), "w0".to_string(), "w1".to_string()];
        assert_eq!(default_partition("w0", &members, &set), ["a", "d", "g"]);
        assert_eq!(default_partition("w1", &members, &set), ["b", "e", "h"]);
        assert_eq!(default_partition("w2", &members, &set), ["c", "f", "i"]);
        assert!(default_partition("x", &members, &set).is_empty());
    }
}
