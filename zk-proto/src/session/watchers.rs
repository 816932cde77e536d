//! The session's watch registrations: the intent of a watching request, armed
//! when it succeeds, a notification fanned out to the registrations it fires, and
//! removal by the caller (on the server too, when the last one on a path goes).

use std::time::Instant;

use crate::ops::Request;
use crate::records::{WatcherEvent, WatchesRequest};
use crate::types::{AddWatchMode, WatcherType};
use crate::watches::{WatchKind, WatcherId};

use super::{Event, Intent, Origin, RemovalReason, Session, WatchedEvent};

impl Session {
    /// Drops one watch registration locally. When it was the last one on its path,
    /// the server's watch is removed too. Unknown or already-fired ids are ignored.
    ///
    /// Why: a watcher nobody listens to any more (a cache closed, a caller gone)
    /// should not keep a watch on the server.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{Config, Event, PathWatchRequest, RemovalReason, Request, Session};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1").unwrap(), now);
    /// let read = Request::GetChildren(PathWatchRequest { path: "/jobs".into(), watch: true });
    /// let watcher = session.submit(read, now).unwrap().watcher.unwrap();
    ///
    /// session.remove_watcher(watcher, now);
    /// assert_eq!(
    ///     session.poll_event(),
    ///     Some(Event::WatcherRemoved { watcher, reason: RemovalReason::Removed })
    /// );
    /// // Once is enough: a second removal says nothing.
    /// session.remove_watcher(watcher, now);
    /// assert_eq!(session.poll_event(), None);
    /// ```
    pub fn remove_watcher(&mut self, watcher: WatcherId, now: Instant) {
        let now = self.clock(now);
        if let Some((path, _kind, last)) = self.watches.remove(watcher) {
            self.events.push_back(Event::WatcherRemoved {
                watcher,
                reason: RemovalReason::Removed,
            });
            // A watch request on the same path still in flight will arm the server's
            // watch again; removing it now would wipe that one too.
            if last && self.ready() && !self.path_has_pending_intent(&path) {
                let req = Request::RemoveWatches(WatchesRequest {
                    path,
                    watcher_type: WatcherType::Any,
                });
                self.send_own(req, Origin::Internal, now);
            }
        } else if self.is_pending_watcher(watcher) && self.cancelled.insert(watcher) {
            self.events.push_back(Event::WatcherRemoved {
                watcher,
                reason: RemovalReason::Removed,
            });
        }
    }

    pub(super) fn intent_for(&mut self, req: &Request) -> Option<Intent> {
        let (path, kind) = match req {
            Request::Exists(r) if r.watch => (&r.path, WatchKind::Data),
            Request::GetData(r) if r.watch => (&r.path, WatchKind::Data),
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch => {
                (&r.path, WatchKind::Child)
            }
            Request::AddWatch(r) => (
                &r.path,
                if r.mode == AddWatchMode::PersistentRecursive {
                    WatchKind::PersistentRecursive
                } else {
                    WatchKind::Persistent
                },
            ),
            _ => return None,
        };
        let id = WatcherId(self.next_watcher);
        self.next_watcher += 1;
        Some(Intent {
            id,
            path: path.clone(),
            kind,
        })
    }

    fn path_has_pending_intent(&self, path: &str) -> bool {
        self.inflight
            .iter()
            .filter_map(|f| f.watch.as_ref())
            .chain(self.queued.iter().filter_map(|q| q.watch.as_ref()))
            .any(|i| i.path == path)
    }

    fn is_pending_watcher(&self, w: WatcherId) -> bool {
        self.inflight
            .iter()
            .filter_map(|f| f.watch.as_ref())
            .chain(self.queued.iter().filter_map(|q| q.watch.as_ref()))
            .any(|i| i.id == w)
    }

    pub(super) fn on_notification(&mut self, ev: WatcherEvent, zxid: Option<i64>) {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.watches.fire(ev.event_type, &ev.path, &mut fired);
        if !fired.is_empty() {
            let path = self.config.chroot.strip(&ev.path);
            for &watcher in &fired {
                self.events.push_back(Event::Watch {
                    watcher,
                    event: WatchedEvent {
                        event_type: ev.event_type,
                        path: path.clone(),
                        zxid,
                    },
                });
            }
        }
        self.fired = fired;
    }

    pub(super) fn unarm_cancelled(&mut self, path: &str, kind: WatchKind) {
        let (kinds, wt): (&[WatchKind], WatcherType) = match kind {
            WatchKind::Data | WatchKind::Exist => {
                (&[WatchKind::Data, WatchKind::Exist], WatcherType::Data)
            }
            WatchKind::Child => (&[WatchKind::Child], WatcherType::Children),
            WatchKind::Persistent => (&[WatchKind::Persistent], WatcherType::Persistent),
            WatchKind::PersistentRecursive => (
                &[WatchKind::PersistentRecursive],
                WatcherType::PersistentRecursive,
            ),
        };
        let still_needed =
            !self.watches.ids_at(path, kinds).is_empty() || self.path_has_pending_intent(path);
        if !still_needed && self.ready() {
            let req = Request::RemoveWatches(WatchesRequest {
                path: path.to_owned(),
                watcher_type: wt,
            });
            let now = self.now;
            self.send_own(req, Origin::Internal, now);
        }
    }

    pub(super) fn remove_local(&mut self, path: &str, wt: WatcherType) {
        let kinds: &[WatchKind] = match wt {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            _ => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        };
        for id in self.watches.ids_at(path, kinds) {
            self.watches.remove(id);
            self.events.push_back(Event::WatcherRemoved {
                watcher: id,
                reason: RemovalReason::Removed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::ops::Request;
    use crate::records::{AddWatchRequest, WatchesRequest};
    use crate::session::test_peer::{hosts, reply, Peer};
    use crate::types::{AddWatchMode, OpCode, WatcherType};

    /// A removeWatches of one type, once the server has done it, forgets only
    /// the registrations of that type on the path (here one of each of four).
    #[test]
    fn removing_one_watch_type_keeps_the_others() {
        use crate::jute::Encode;
        use crate::records::{GetChildrenResponse, GetDataResponse, PathWatchRequest, Stat};
        for wt in [
            WatcherType::Children,
            WatcherType::Data,
            WatcherType::Persistent,
            WatcherType::PersistentRecursive,
        ] {
            let mut p = Peer::connected(Config::new(hosts(1)), false);
            let watch = || PathWatchRequest {
                path: "/a".into(),
                watch: true,
            };
            let add = |mode| {
                Request::AddWatch(AddWatchRequest {
                    path: "/a".into(),
                    mode,
                })
            };
            for req in [
                Request::GetChildren(watch()),
                Request::GetData(watch()),
                add(AddWatchMode::Persistent),
                add(AddWatchMode::PersistentRecursive),
            ] {
                p.s.submit(req, p.now).unwrap();
            }
            for (xid, op) in p.transmit() {
                let r = match op {
                    OpCode::GetChildren => {
                        reply(xid, |b| GetChildrenResponse { children: vec![] }.encode(b))
                    }
                    OpCode::GetData => reply(xid, |b| {
                        GetDataResponse {
                            data: None,
                            stat: Stat::default(),
                        }
                        .encode(b)
                    }),
                    _ => reply(xid, |_| {}),
                };
                p.s.handle_input(p.conn, &r, p.now);
            }
            assert_eq!(p.s.watch_count(), 4, "{wt:?}");
            let remove = Request::RemoveWatches(WatchesRequest {
                path: "/a".into(),
                watcher_type: wt,
            });
            p.s.submit(remove, p.now).unwrap();
            let [(xid, OpCode::RemoveWatches)] = p.transmit()[..] else {
                panic!("one removeWatches sent");
            };
            p.s.handle_input(p.conn, &reply(xid, |_| {}), p.now);
            assert_eq!(p.s.watch_count(), 3, "{wt:?}");
        }
    }

    /// A watch cancelled while its request was in flight is not removed from
    /// the server when the reply arms it if another registration still needs
    /// that server watch.
    #[test]
    fn a_cancelled_watch_keeps_the_server_watch_another_needs() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let add = || {
            Request::AddWatch(AddWatchRequest {
                path: "/a".into(),
                mode: AddWatchMode::Persistent,
            })
        };
        p.s.submit(add(), p.now).unwrap();
        let [(xid, OpCode::AddWatch)] = p.transmit()[..] else {
            panic!("one addWatch sent");
        };
        p.s.handle_input(p.conn, &reply(xid, |_| {}), p.now);
        assert_eq!(p.s.watch_count(), 1);

        let second = p.s.submit(add(), p.now).unwrap();
        let [(xid, OpCode::AddWatch)] = p.transmit()[..] else {
            panic!("a second addWatch sent");
        };
        p.s.remove_watcher(second.watcher.expect("a registration"), p.now);
        p.s.handle_input(p.conn, &reply(xid, |_| {}), p.now);
        assert_eq!(p.transmit(), [], "nothing removed on the server");
        assert_eq!(p.s.watch_count(), 1);
    }

    /// A watch cancelled while its request was in flight, and armed by the
    /// reply, is removed from the server when nothing else needs it.
    #[test]
    fn a_cancelled_watch_nobody_needs_is_removed_from_the_server() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let req = Request::AddWatch(AddWatchRequest {
            path: "/a".into(),
            mode: AddWatchMode::Persistent,
        });
        let sub = p.s.submit(req, p.now).unwrap();
        let [(xid, OpCode::AddWatch)] = p.transmit()[..] else {
            panic!("one addWatch sent");
        };
        p.s.remove_watcher(sub.watcher.expect("a registration"), p.now);
        p.s.handle_input(p.conn, &reply(xid, |_| {}), p.now);
        assert!(
            matches!(p.transmit()[..], [(_, OpCode::RemoveWatches)]),
            "the server's watch is removed"
        );
        assert_eq!(p.s.watch_count(), 0);
    }
}
