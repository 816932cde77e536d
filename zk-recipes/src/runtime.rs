//! How a watcher's loop runs without naming a runtime: the loop is a
//! `Send + 'static` future that waits only on zk-client's hand-off slots, so it
//! runs on any executor, and by default on a dedicated thread of its own under
//! [`zk_client::blocking::block_on`].

use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use zk_client::{Client, Error, SessionState, StateStream};

use crate::mailbox::lock;

/// A watcher's loop, ready to run.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where a watcher's loop runs.
///
/// The default, [`Spawner::thread`], gives each watcher a thread of its own that
/// runs the loop with [`zk_client::blocking::block_on`]: no runtime needed, and a
/// callback may block (even make blocking client calls) without stalling
/// anything but its own watcher. [`Spawner::new`] hands the loop to an executor
/// instead, e.g. `Spawner::new(|t| { tokio::spawn(t); })`; then a callback must
/// not block that executor.
///
/// ```no_run
/// # mod tokio { pub fn spawn<F: std::future::Future + Send + 'static>(_: F) {} }
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::{DataWatch, Spawner};
/// // Inside a tokio runtime: the watcher's loop becomes a task, not a thread.
/// let on_tokio = Spawner::new(|task| {
///     tokio::spawn(task);
/// });
/// let config = DataWatch::with_spawner(zk, "/app/config", &on_tokio)?;
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Spawner(Arc<dyn Fn(&'static str, Task) + Send + Sync>);

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Spawner")
    }
}

impl Default for Spawner {
    fn default() -> Self {
        Spawner::thread()
    }
}

impl Spawner {
    /// One std thread per watcher, named after the watcher, running its loop
    /// with `block_on` until the watcher stops.
    pub fn thread() -> Spawner {
        Spawner(Arc::new(|name: &'static str, task: Task| {
            // If the thread cannot start, the task is dropped unrun, and dropping
            // it ends the watcher (its handle reports the end).
            let spawned = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    zk_client::blocking::block_on(task, None);
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, watcher = name, "could not start the watcher's thread");
            }
        }))
    }

    /// Hands each loop to `spawn` (an executor's spawn function).
    pub fn new(spawn: impl Fn(Task) + Send + Sync + 'static) -> Spawner {
        Spawner(Arc::new(move |_name, task| spawn(task)))
    }

    pub(crate) fn spawn(&self, name: &'static str, task: Task) {
        (self.0)(name, task)
    }
}

struct Ctl {
    stopped: bool,
    waker: Option<Waker>,
    finished: bool,
    reason: Option<Error>,
    /// The thread delivering to a callback right now.
    delivering: Option<ThreadId>,
}

/// Shared by a watcher's handle and its loop: the stop request, the end and
/// its reason, and the lock a callback runs under.
pub(crate) struct Control {
    ctl: Mutex<Ctl>,
    cond: Condvar,
}

impl Control {
    pub(crate) fn new() -> Arc<Control> {
        Arc::new(Control {
            ctl: Mutex::new(Ctl {
                stopped: false,
                waker: None,
                finished: false,
                reason: None,
                delivering: None,
            }),
            cond: Condvar::new(),
        })
    }

    /// Asks the loop to stop and wakes it. If a callback is running on another
    /// thread, waits until it returns, so that none runs after this returns.
    pub(crate) fn stop(&self) {
        let mut c = lock(&self.ctl);
        c.stopped = true;
        let w = c.waker.take();
        let me = std::thread::current().id();
        while matches!(c.delivering, Some(t) if t != me) {
            c = self.cond.wait(c).unwrap_or_else(|p| p.into_inner());
        }
        drop(c);
        if let Some(w) = w {
            w.wake();
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        lock(&self.ctl).stopped
    }

    pub(crate) fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut c = lock(&self.ctl);
        if c.stopped {
            return Poll::Ready(());
        }
        match &c.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => c.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Runs `f` (a callback) unless the watcher was stopped; `None` if stopped.
    pub(crate) fn deliver<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        {
            let mut c = lock(&self.ctl);
            if c.stopped {
                return None;
            }
            c.delivering = Some(std::thread::current().id());
        }
        struct Done<'a>(&'a Control);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                lock(&self.0.ctl).delivering = None;
                self.0.cond.notify_all();
            }
        }
        let _done = Done(self);
        Some(f())
    }

    pub(crate) fn finish(&self, reason: Option<Error>) {
        let mut c = lock(&self.ctl);
        if !c.finished {
            c.finished = true;
            c.reason = reason;
        }
        drop(c);
        self.cond.notify_all();
    }

    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.ctl).finished
    }

    pub(crate) fn reason(&self) -> Option<Error> {
        lock(&self.ctl).reason.clone()
    }

    /// Blocks until the loop has ended; false if `timeout` passed first.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn wait_finished(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let mut c = lock(&self.ctl);
        while !c.finished {
            c = match deadline {
                None => self.cond.wait(c).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.cond
                        .wait_timeout(c, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        true
    }
}

/// Runs a watcher's loop on `spawner`. Whatever way the loop ends (returns, or
/// its future is dropped unfinished), `on_end` runs once with the reason.
pub(crate) fn launch<F>(
    spawner: &Spawner,
    name: &'static str,
    control: Arc<Control>,
    on_end: impl FnOnce(Option<Error>) + Send + 'static,
    body: F,
) where
    F: Future<Output = Option<Error>> + Send + 'static,
{
    struct End<E: FnOnce(Option<Error>)> {
        control: Arc<Control>,
        on_end: Option<E>,
        reason: Option<Error>,
    }
    impl<E: FnOnce(Option<Error>)> Drop for End<E> {
        fn drop(&mut self) {
            let reason = self.reason.take();
            // The reason is in place before a reader can see the end.
            self.control.finish(reason.clone());
            if let Some(f) = self.on_end.take() {
                f(reason);
            }
        }
    }
    // Made before the task, so that a task dropped unpolled still ends the watcher.
    let mut end = End {
        control,
        on_end: Some(on_end),
        reason: None,
    };
    let task = async move {
        end.reason = body.await;
        if let Some(e) = &end.reason {
            tracing::debug!(watcher = name, error = %e, "watcher ended");
        }
    };
    spawner.spawn(name, Box::pin(task));
}

/// What woke a watcher waiting for its next change.
pub(crate) enum Wake<T> {
    /// Stop requested.
    Stopped,
    /// The awaited future finished.
    Ready(T),
    /// The connection came back after a loss (same or new session).
    Reconnected,
}

/// Follows the session's state for a watcher: says when a connection came back
/// after it was lost, which is when a watcher reads again.
pub(crate) struct Reconnects {
    states: StateStream,
    lost: bool,
    ended: bool,
}

impl Reconnects {
    pub(crate) fn new(client: &Client) -> Reconnects {
        Reconnects {
            states: client.state_stream(),
            lost: false,
            ended: false,
        }
    }

    /// Forgets the changes seen so far (called right before a read: whatever
    /// happened before it, the read sees). If the last of them is a lost
    /// connection (it can be lost between the caller's check and this call),
    /// the coming reconnection is still reported: the read may have failed
    /// with the connection, and only the read after the reconnection stands.
    pub(crate) fn reset(&mut self) {
        let mut last = None;
        while let Ok(Some(s)) = self.states.wait_next(Some(Duration::ZERO)) {
            last = Some(s);
        }
        self.lost = last.is_some_and(|s| !s.is_connected());
    }

    pub(crate) fn poll_reconnected(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.ended {
            return Poll::Pending;
        }
        loop {
            let next = pin!(self.states.next());
            match next.poll(cx) {
                Poll::Ready(Some(s)) if s.is_connected() => {
                    if self.lost {
                        self.lost = false;
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Some(SessionState::Closed)) | Poll::Ready(None) => {
                    // The client is finished: nothing will reconnect. Report it as
                    // a reconnection so the loop looks at the state and ends.
                    self.ended = true;
                    return Poll::Ready(());
                }
                Poll::Ready(Some(_)) => self.lost = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Waits for `fut`, a stop request, or a reconnection, whichever comes first.
pub(crate) async fn wait_for<F: Future>(
    control: &Control,
    reconnects: Option<&mut Reconnects>,
    fut: F,
) -> Wake<F::Output> {
    let mut fut = pin!(fut);
    let mut reconnects = reconnects;
    std::future::poll_fn(move |cx| {
        if control.poll_stopped(cx).is_ready() {
            return Poll::Ready(Wake::Stopped);
        }
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Wake::Ready(v));
        }
        if let Some(r) = reconnects.as_deref_mut() {
            if r.poll_reconnected(cx).is_ready() {
                return Poll::Ready(Wake::Reconnected);
            }
        }
        Poll::Pending
    })
    .await
}

/// `fut`, unless a stop request comes first (`None`).
pub(crate) async fn or_stop<F: Future>(control: &Control, fut: F) -> Option<F::Output> {
    match wait_for(control, None, fut).await {
        Wake::Ready(v) => Some(v),
        _ => None,
    }
}

/// What a watcher does after a call failed.
pub(crate) enum After {
    /// Wait for a connection, then read again.
    Retry,
    /// Wait for the next change of session state, then read again (the client
    /// refused the request itself; retrying at once would spin).
    RetryAfterStateChange,
    /// The watcher cannot go on.
    End,
}

pub(crate) fn classify(e: &Error) -> After {
    match e {
        Error::ConnectionLoss
        | Error::Timeout
        | Error::NotConnected
        | Error::SessionExpired
        | Error::Malformed(_)
        | Error::Server(zk_proto::ErrorCode::ThrottledOp)
        | Error::Server(zk_proto::ErrorCode::ConnectionLoss)
        | Error::Server(zk_proto::ErrorCode::SessionExpired)
        | Error::Server(zk_proto::ErrorCode::OperationTimeout)
        | Error::WatchRemoved => After::Retry,
        Error::QueueFull | Error::OutboundFull => After::RetryAfterStateChange,
        _ => After::End,
    }
}

/// Waits until the client is connected (riding through an expiry under the
/// default NewSession policy). `Err` when the session can never come back
/// (closed, auth failed, expired under the Terminal policy); `Ok(false)` if
/// stopped first.
pub(crate) async fn connected(client: &Client, control: &Control) -> Result<bool, Error> {
    if client.state().is_connected() {
        return Ok(true);
    }
    match or_stop(control, client.wait_connected()).await {
        None => Ok(false),
        Some(Ok(())) => Ok(true),
        Some(Err(e)) => Err(e),
    }
}

/// Waits for the next session state change (or a stop).
pub(crate) async fn state_change(client: &Client, control: &Control) {
    let mut s = client.state_stream();
    let _ = or_stop(control, s.next()).await; // the current state
    let _ = or_stop(control, s.next()).await;
}
