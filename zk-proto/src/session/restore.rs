//! The SetWatches restore: after a reconnect to the same session, its watch
//! registrations are sent again, in batches, with the last zxid seen (SetWatches, or
//! SetWatches2 when persistent watches are among them); a batch the server refuses
//! ends the registrations it carried.

use crate::error::{ErrorCode, ZkError};
use crate::ops::Request;
use crate::records::{SetWatches, SetWatches2};
use crate::watches::{WatchKind, WatcherId};

use super::{Event, RemovalReason, Session, XID_SET_WATCHES};

impl Session {
    /// The registrations a SetWatches batch restores (server paths × kinds).
    pub(super) fn batch_watchers(&self, batch: &SetWatches2) -> Vec<WatcherId> {
        let mut ids = Vec::new();
        for (paths, kind) in [
            (&batch.data_watches, WatchKind::Data),
            (&batch.exist_watches, WatchKind::Exist),
            (&batch.child_watches, WatchKind::Child),
            (&batch.persistent_watches, WatchKind::Persistent),
            (
                &batch.persistent_recursive_watches,
                WatchKind::PersistentRecursive,
            ),
        ] {
            for p in paths {
                ids.extend(self.watches.ids_at(p, &[kind]));
            }
        }
        ids
    }

    /// The server refused a SetWatches batch: the watches it restored are dead.
    /// Those that fired or were removed since it was sent are already gone.
    pub(super) fn restore_failed(&mut self, restored: Vec<WatcherId>, code: ErrorCode) {
        for watcher in restored {
            if self.watches.remove(watcher).is_some() {
                self.events.push_back(Event::WatcherRemoved {
                    watcher,
                    reason: RemovalReason::NotSet(ZkError::Server(code)),
                });
            }
        }
        self.events.push_back(Event::RestoreFailed { code });
    }

    /// Sends the registrations again in batches, each answered by one reply in
    /// order (`set_watches_inflight` remembers which registrations each restores).
    pub(super) fn restore_watches(&mut self) {
        if !self.watches.is_empty() {
            for batch in self
                .watches
                .set_watches_batches(self.last_zxid, self.config.set_watches_batch)
            {
                let restores = self.batch_watchers(&batch);
                let req = if batch.persistent_watches.is_empty()
                    && batch.persistent_recursive_watches.is_empty()
                {
                    Request::SetWatches(SetWatches {
                        relative_zxid: batch.relative_zxid,
                        data_watches: batch.data_watches,
                        exist_watches: batch.exist_watches,
                        child_watches: batch.child_watches,
                    })
                } else {
                    Request::SetWatches2(batch)
                };
                self.send_frame(XID_SET_WATCHES, &req);
                self.set_watches_inflight.push_back(restores);
            }
        }
    }

    /// The reply to a SetWatches batch (one per batch, in order): a refused
    /// batch ends the registrations it restored.
    pub(super) fn on_set_watches_reply(&mut self, err: ErrorCode) {
        let restored = self.set_watches_inflight.pop_front().unwrap_or_default();
        if !err.is_ok() {
            self.restore_failed(restored, err);
        }
    }
}
