//! Following the ensemble's own configuration (Curator's `EnsembleTracker`):
//! `/zookeeper/config` is read with a watch whenever the session is connected
//! and after each change, and a new member list replaces the session's hosts.

use std::time::Instant;

use zk_proto::{RequestId, Response, Session, Submitted, WatcherId};

use super::calls::Reply;

/// The ensemble tracker's one outstanding read and its watch.
#[derive(Default)]
pub(crate) struct Tracker {
    call: Option<RequestId>,
    watcher: Option<WatcherId>,
}

impl Tracker {
    /// The read `id` is the tracker's.
    pub(crate) fn owns_call(&self, id: RequestId) -> bool {
        self.call == Some(id)
    }

    /// The watch `watcher` is the tracker's.
    pub(crate) fn owns_watch(&self, watcher: WatcherId) -> bool {
        self.watcher == Some(watcher)
    }

    /// The tracker's watch fired or was removed: read again (with a new watch).
    pub(crate) fn watch_ended(&mut self, session: &mut Session, now: Instant) {
        self.watcher = None;
        self.read(session, now);
    }

    /// Reads the ensemble's config with a watch, unless a read or a watch is
    /// already out.
    pub(crate) fn read(&mut self, session: &mut Session, now: Instant) {
        if self.call.is_some() || self.watcher.is_some() || !session.state().is_connected() {
            return;
        }
        match session.submit_get_config(true, now) {
            Ok(Submitted { id, watcher }) => {
                self.call = Some(id);
                self.watcher = watcher;
            }
            Err(e) => tracing::debug!(error = %e, "ensemble tracker: cannot read the config"),
        }
    }

    /// The config read completed: a member list that differs from the session's
    /// hosts replaces them.
    pub(crate) fn reply(&mut self, session: &mut Session, result: Reply, now: Instant) {
        self.call = None;
        let data = match result {
            Ok(Response::GetData(d)) => d.data.unwrap_or_default(),
            Ok(_) => return,
            Err(e) => {
                // The watch went with the failed read; the next Connected reads again.
                tracing::debug!(error = %e, "ensemble tracker: config read failed");
                return;
            }
        };
        let hosts = crate::ensemble::client_hosts(&String::from_utf8_lossy(&data));
        if hosts.is_empty() {
            return;
        }
        let mut current = session.hosts().to_vec();
        let mut new = hosts.clone();
        current.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        new.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        if current != new {
            tracing::info!(?hosts, "ensemble tracker: new member list");
            if let Err(e) = session.update_hosts(hosts, now) {
                tracing::warn!(error = %e, "ensemble tracker: cannot apply the member list");
            }
        }
    }
}
