//! What the client handles ask of the core: submitting calls (with their
//! reply slots and watch queues), auth, watch removal, close and restart, the
//! session's state and settings, state streams and listeners.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::{HostAddr, Request, Session, SessionState, Submitted, UsageError, WatcherId};

use super::states::Listener;
use super::{lock, Registered, Reply, Shared};
use crate::slot::{Queue, Slot};
use crate::telemetry;

impl Shared {
    pub(crate) fn submit(&self, req: Request) -> Result<Registered, UsageError> {
        let oneshot = !matches!(req, Request::AddWatch(_));
        let traced = telemetry::start(&req);
        self.submit_with(traced, oneshot, |s, now| s.submit(req, now))
    }

    pub(crate) fn submit_config(&self) -> Result<Registered, UsageError> {
        let traced = telemetry::start_config();
        self.submit_with(traced, true, |s, now| s.submit_get_config(false, now))
    }

    /// A request whose paths are server paths (outside the chroot), e.g. to create
    /// the chroot itself.
    pub(crate) fn submit_unchrooted(&self, req: Request) -> Result<Registered, UsageError> {
        let traced = telemetry::start(&req);
        self.submit_with(traced, true, |s, now| s.submit_unchrooted(req, now))
    }

    /// What every way of submitting a call does around the session's own submit:
    /// marks the submission (so the hand-off may batch the write), records the
    /// outcome on the call's span, and registers the reply slot (and its watch,
    /// `oneshot` unless it is a persistent watch). The ways differ only in `submit`.
    fn submit_with(
        &self,
        traced: Option<telemetry::Start>,
        oneshot: bool,
        submit: impl FnOnce(&mut Session, Instant) -> Result<Submitted, UsageError>,
    ) -> Result<Registered, UsageError> {
        self.with(|g, now| {
            g.submitting = true;
            let r = submit(&mut g.session, now);
            g.tele
                .submit_result(&mut g.session, r.as_ref().map(|s| s.id), traced, now);
            let Submitted { id, watcher } = r?;
            Ok(g.calls.register(id, watcher, oneshot))
        })
    }

    pub(crate) fn add_auth(
        &self,
        scheme: &str,
        auth: Bytes,
    ) -> Result<Arc<Slot<Reply>>, UsageError> {
        let traced = telemetry::start_auth();
        self.with(|g, now| {
            let r = g.session.add_auth(scheme, auth, now);
            g.tele
                .submit_result(&mut g.session, r.as_ref().copied(), traced, now);
            let id = r?;
            Ok(g.calls.register_call(id))
        })
    }

    /// Events a persistent watch keeps unread (`ClientBuilder::watch_backlog`).
    pub(crate) fn set_watch_backlog(&self, events: usize) {
        lock(&self.inner).calls.set_watch_backlog(events);
    }

    /// Removes a registration (its holder is gone or no longer interested).
    pub(crate) fn remove_watcher(&self, w: WatcherId) {
        self.with(|g, now| {
            g.calls.forget_watcher(w);
            g.session.remove_watcher(w, now);
        })
    }

    pub(crate) fn close(&self) {
        self.with(|g, now| g.session.close(now))
    }

    pub(crate) fn abandon(&self) {
        self.with(|g, now| g.session.abandon(now))
    }

    pub(crate) fn restart(&self) {
        self.with(|g, now| {
            g.attempts.restarting();
            g.session.restart(now)
        })
    }

    /// Why SASL authentication was refused, if that is how the session ended.
    pub(crate) fn sasl_failure(&self) -> Option<String> {
        lock(&self.inner).attempts.sasl_failure()
    }

    pub(crate) fn detach(&self) {
        self.with(|g, now| {
            g.detached = true;
            g.session.close(now);
        })
    }

    /// The session's state as of now. A deadline that passed while the driver could not
    /// run (the process was stopped, as in a long GC pause, or the runtime starved) is
    /// handled first: a connection silent past its read timeout is reported `Suspended`
    /// at once, not once the driver wakes. Otherwise a lock holder asking right after a
    /// pause longer than the session timeout was told its session was still connected,
    /// though the servers had expired it (the Jepsen campaign's `PauseClientProcess`).
    pub(crate) fn state(&self) -> SessionState {
        self.with(|g, now| {
            g.run_due(now);
            g.session.state()
        })
    }

    pub(crate) fn session_info(&self) -> (Option<(i64, Bytes)>, Option<Duration>, i64) {
        let g = lock(&self.inner);
        (
            g.session.credentials(),
            g.session.negotiated_timeout(),
            g.session.last_zxid(),
        )
    }

    pub(crate) fn current_host(&self) -> Option<HostAddr> {
        lock(&self.inner).session.current_host().cloned()
    }

    pub(crate) fn hosts(&self) -> Vec<HostAddr> {
        lock(&self.inner).session.hosts().to_vec()
    }

    pub(crate) fn expiry_policy(&self) -> zk_proto::ExpiryPolicy {
        lock(&self.inner).session.config().expiry_policy
    }

    pub(crate) fn chroot(&self) -> Option<String> {
        lock(&self.inner)
            .session
            .config()
            .chroot
            .root()
            .map(str::to_owned)
    }

    pub(crate) fn state_queue(&self) -> Arc<Queue<SessionState>> {
        let mut g = lock(&self.inner);
        let st = g.session.state();
        let finished = g.finished();
        g.states.stream(st, finished)
    }

    pub(crate) fn add_listener(&self, l: Listener) -> u64 {
        lock(&self.inner).states.add_listener(l)
    }

    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        lock(&self.inner).states.remove_listener(id)
    }
}
