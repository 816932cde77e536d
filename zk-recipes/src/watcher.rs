//! What [`DataWatch`](crate::DataWatch) and [`ChildrenWatch`](crate::ChildrenWatch)
//! share, written once: the handle a caller reads reports from ([`Watcher`]),
//! and the loop that reads with the next watch armed, reports, waits for the
//! change or a reconnection, and reads again ([`rearm_loop`]). Each watcher says
//! only what it reads and what it reports ([`Rearm`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, Error, ErrorCode, OneshotWatch, Result, Stat, WatchedEvent};

use crate::mailbox::{Bound, Mailbox};
use crate::runtime::{
    classify, connected, launch, or_stop, state_change, wait_for, After, Control, Reconnects,
    Spawner, Wake,
};
use crate::WatchHandle;

/// A running watcher's reports, as a stream (`U`: [`DataUpdate`](crate::DataUpdate)
/// for a [`DataWatch`](crate::DataWatch), [`ChildrenUpdate`](crate::ChildrenUpdate)
/// for a [`ChildrenWatch`](crate::ChildrenWatch)). It keeps only the latest report
/// not yet taken. Dropping it stops the watcher and removes its watch.
#[must_use = "dropping a watcher stops it and removes its server watch"]
pub struct Watcher<U> {
    /// `DataWatch` or `ChildrenWatch`, for `Debug`.
    kind: &'static str,
    path: String,
    mailbox: Mailbox<U>,
    control: Arc<Control>,
}

impl<U> std::fmt::Debug for Watcher<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.kind)
            .field("path", &self.path)
            .field("finished", &self.control.is_finished())
            .finish()
    }
}

impl<U: Send + 'static> Watcher<U> {
    /// Starts the loop `run` makes (from its control and the function that
    /// delivers a report) on `spawner`, its reports going to the new watcher.
    pub(crate) fn start<F>(
        kind: &'static str,
        thread: &'static str,
        path: &str,
        spawner: &Spawner,
        run: impl FnOnce(Arc<Control>, Box<dyn FnMut(U) -> bool + Send>) -> F,
    ) -> Result<Watcher<U>>
    where
        F: Future<Output = Option<Error>> + Send + 'static,
    {
        zk_proto::path::validate_path(path, false)?;
        let mailbox = Mailbox::new(Bound::Latest);
        let control = Control::new();
        let (m1, m2) = (mailbox.clone(), mailbox.clone());
        let body = run(
            control.clone(),
            Box::new(move |u| {
                m1.push(u);
                true
            }),
        );
        launch(spawner, thread, control.clone(), move |_| m2.close(), body);
        Ok(Watcher {
            kind,
            path: path.to_owned(),
            mailbox,
            control,
        })
    }

    /// Starts the loop `run` makes with `f` as its report function (kazoo's
    /// callback form): returning `false` stops it; a panic in `f` is logged and
    /// stops this watch only.
    pub(crate) fn start_callback<F>(
        thread: &'static str,
        path: &str,
        spawner: &Spawner,
        mut f: impl FnMut(U) -> bool + Send + 'static,
        run: impl FnOnce(Arc<Control>, Box<dyn FnMut(U) -> bool + Send>) -> F,
    ) -> Result<WatchHandle>
    where
        F: Future<Output = Option<Error>> + Send + 'static,
    {
        zk_proto::path::validate_path(path, false)?;
        let control = Control::new();
        let (c, p) = (control.clone(), path.to_owned());
        let body = run(
            control.clone(),
            Box::new(move |u| crate::call_guarded(&c, &p, || f(u))),
        );
        launch(spawner, thread, control.clone(), |_| {}, body);
        Ok(WatchHandle::new(control))
    }
}

impl<U> Watcher<U> {
    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next report; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<U> {
        std::future::poll_fn(|cx| self.mailbox.poll_recv(cx)).await
    }

    /// Blocks for the next report (no runtime needed): `Ok(None)` once the watch
    /// has ended, `Err(Timeout)` if nothing came within `timeout` (`None`: wait
    /// for ever).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<U>> {
        self.mailbox
            .recv_timeout(timeout)
            .map_err(|_| Error::Timeout)
    }

    /// A report if one is waiting.
    pub fn try_next(&mut self) -> Option<U> {
        self.mailbox.try_recv().flatten()
    }

    /// Why the watch ended on its own (`None` while it runs, or if it was
    /// stopped): a session error when the session is over, the server's refusal
    /// (for a `ChildrenWatch`, `Server(NoNode)` when the node is missing or was
    /// deleted).
    pub fn end_reason(&self) -> Option<Error> {
        self.control.reason()
    }

    /// Whether the loop has ended.
    pub fn is_finished(&self) -> bool {
        self.control.is_finished()
    }

    /// Stops the watch (as dropping it does).
    pub fn stop(self) {}
}

impl<U> Drop for Watcher<U> {
    fn drop(&mut self) {
        self.control.stop();
    }
}

/// A read of `path` with the watch for its next change armed in the same
/// request (`read`: `getData`, `getChildren2`). When the node is missing (and
/// `missing_ok`) an exists watch is armed instead, to see it created; if it
/// was created in between, it is read again.
pub(crate) async fn read_or_exists<T, F, Fut>(
    client: &Client,
    path: &str,
    missing_ok: bool,
    mut read: F,
) -> Result<(Option<T>, Option<Stat>, OneshotWatch)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(T, Stat, OneshotWatch)>>,
{
    loop {
        match read().await {
            Ok((v, s, w)) => return Ok((Some(v), Some(s), w)),
            Err(Error::Server(ErrorCode::NoNode)) if missing_ok => {}
            Err(e) => return Err(e),
        }
        match client.exists_watch(path).await? {
            (None, w) => return Ok((None, None, w)),
            (Some(_), _w) => continue,
        }
    }
}

/// One kind of watcher in [`rearm_loop`]: what it reads and what it reports.
pub(crate) trait Rearm {
    /// What one read gives (besides the next watch).
    type Read: Send;
    /// What the watcher reports.
    type Update;
    /// Once connected, before each read: `Err` ends the watch with that error.
    fn check(&mut self, _client: &Client) -> Result<()> {
        Ok(())
    }
    /// Reads, with the watch for the next change armed in the same request.
    fn read(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<(Self::Read, OneshotWatch)>> + Send;
    /// What to report of a read (`None`: nothing), `event` the change that led to
    /// it (`None` for the first read and re-reads after a reconnection).
    fn report(&mut self, read: Self::Read, event: Option<WatchedEvent>) -> Option<Self::Update>;
}

/// The loop of a watcher: once connected, read with the next watch armed,
/// report, then wait for the change, a reconnection or a stop, and read again.
/// A failed read is retried after a reconnection (or the next state change, if
/// the client itself refused it); `deliver` returns false to stop. Returns why
/// it ended on its own (`None` if stopped).
pub(crate) async fn rearm_loop<W: Rearm>(
    client: Client,
    control: Arc<Control>,
    mut watcher: W,
    mut deliver: impl FnMut(W::Update) -> bool,
) -> Option<Error> {
    let mut reconnects = Reconnects::new(&client);
    let mut armed: Option<OneshotWatch> = None;
    let mut event: Option<WatchedEvent> = None;
    loop {
        match connected(&client, &control).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(e),
        }
        if let Err(e) = watcher.check(&client) {
            return Some(e);
        }
        reconnects.reset();
        let (read, watch) = match or_stop(&control, watcher.read(&client)).await? {
            Ok(v) => v,
            Err(e) => match classify(&e) {
                After::Retry => continue,
                After::RetryAfterStateChange => {
                    state_change(&client, &control).await;
                    continue;
                }
                After::End => return Some(e),
            },
        };
        // The previous registration goes only now that the new one is armed, so
        // the server's watch on the path stays in place.
        drop(armed.replace(watch));
        if let Some(update) = watcher.report(read, event.take()) {
            if control.is_stopped() || !deliver(update) {
                return None;
            }
        }
        let Some(w) = armed.as_mut() else { continue };
        match wait_for(&control, Some(&mut reconnects), w).await {
            Wake::Stopped => return None,
            Wake::Ready(Ok(ev)) => {
                drop(armed.take());
                event = Some(ev);
            }
            // Removed, or the session ended: read again once connected.
            Wake::Ready(Err(_)) => drop(armed.take()),
            Wake::Reconnected => {}
        }
    }
}
