//! Watches: each connection's tables (one-shot data and child, persistent,
//! persistent recursive), the notifications a change sends, removeWatches /
//! checkWatches, and SetWatches(2) with its catch-up events.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ErrorCode;
use crate::jute::Encode;
use crate::records::{ReplyHeader, SetWatches2, WatcherEvent, WatchesRequest};
use crate::types::{EventType, KeeperState, WatcherType};

use super::tree::{ancestors_and_self, check_path, parent_of, Node};
use super::{SimCluster, SimConnId};

/// The watches one connection holds, by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimWatches {
    /// One-shot data watches (getData, exists on an existing or missing node).
    pub data: BTreeSet<String>,
    /// One-shot child watches.
    pub child: BTreeSet<String>,
    /// Persistent watches (addWatch mode 0).
    pub persistent: BTreeSet<String>,
    /// Persistent recursive watches (addWatch mode 1).
    pub recursive: BTreeSet<String>,
}

impl SimWatches {
    /// Total number of watch registrations.
    pub fn len(&self) -> usize {
        self.data.len() + self.child.len() + self.persistent.len() + self.recursive.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Data table: one-shot data watch, persistent watch on `path`, or a recursive
    /// watch on `path` or an ancestor. One-shot watches are consumed.
    fn fire_data(&mut self, path: &str) -> bool {
        let one_shot = self.data.remove(path);
        let persistent = self.persistent.contains(path);
        let recursive = ancestors_and_self(path).any(|p| self.recursive.contains(p));
        one_shot || persistent || recursive
    }

    /// Child table: one-shot child watch or persistent watch on exactly `path`.
    fn fire_child(&mut self, path: &str) -> bool {
        let one_shot = self.child.remove(path);
        one_shot || self.persistent.contains(path)
    }
}

/// A change that fires watches.
#[derive(Debug, Clone)]
pub(super) enum Trigger {
    Created(String),
    Deleted(String),
    DataChanged(String),
}

impl SimCluster {
    /// Scripts the answers to the next SetWatches / SetWatches2 requests (from any
    /// connection), one code per request in arrival order: `Ok` processes the
    /// request normally, any other code is the reply's error and arms nothing.
    /// Once the codes run out, requests are processed normally again.
    pub fn answer_set_watches(&mut self, codes: impl IntoIterator<Item = ErrorCode>) {
        self.set_watches_answers.extend(codes);
    }

    /// Sends the notifications a change causes, connection by connection.
    pub(super) fn fire(&mut self, triggers: Vec<Trigger>) {
        let ids: Vec<SimConnId> = self.conns.keys().copied().collect();
        for t in triggers {
            for &id in &ids {
                let Some(c) = self.conns.get_mut(&id) else {
                    continue;
                };
                if c.closing || c.session.is_none() {
                    continue;
                }
                let w = &mut c.watches;
                let mut events: Vec<(EventType, String)> = Vec::new();
                match &t {
                    Trigger::Created(p) => {
                        if w.fire_data(p) {
                            events.push((EventType::NodeCreated, p.clone()));
                        }
                        let parent = parent_of(p);
                        if w.fire_child(parent) {
                            events.push((EventType::NodeChildrenChanged, parent.to_owned()));
                        }
                    }
                    Trigger::Deleted(p) => {
                        let by_data = w.fire_data(p);
                        let by_child = w.fire_child(p);
                        if by_data || by_child {
                            events.push((EventType::NodeDeleted, p.clone()));
                        }
                        let parent = parent_of(p);
                        if w.fire_child(parent) {
                            events.push((EventType::NodeChildrenChanged, parent.to_owned()));
                        }
                    }
                    Trigger::DataChanged(p) => {
                        if w.fire_data(p) {
                            events.push((EventType::NodeDataChanged, p.clone()));
                        }
                    }
                }
                for (ty, path) in events {
                    self.notify(id, ty, &path);
                }
            }
        }
    }

    fn notify(&mut self, cid: SimConnId, event_type: EventType, path: &str) {
        self.push_frame(cid, |b| {
            ReplyHeader {
                xid: -1,
                zxid: -1,
                err: ErrorCode::Ok,
            }
            .encode(b);
            WatcherEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path: path.to_owned(),
            }
            .encode(b);
        });
    }

    pub(super) fn watches_mut(&mut self, cid: SimConnId) -> &mut SimWatches {
        // Only called for connections known to exist.
        &mut self
            .conns
            .get_mut(&cid)
            .expect("connection checked by the caller")
            .watches
    }

    pub(super) fn remove_watches(
        &mut self,
        cid: SimConnId,
        r: &WatchesRequest,
        remove: bool,
    ) -> Result<(), ErrorCode> {
        check_path(&r.path)?;
        let w = self.watches_mut(cid);
        let p = r.path.as_str();
        let tables: Vec<&mut BTreeSet<String>> = match r.watcher_type {
            WatcherType::Children => vec![&mut w.child],
            WatcherType::Data => vec![&mut w.data],
            WatcherType::Any => vec![
                &mut w.data,
                &mut w.child,
                &mut w.persistent,
                &mut w.recursive,
            ],
            WatcherType::Persistent => vec![&mut w.persistent],
            WatcherType::PersistentRecursive => vec![&mut w.recursive],
            _ => return Err(ErrorCode::BadArguments),
        };
        let mut found = false;
        for t in tables {
            if remove {
                found |= t.remove(p);
            } else {
                found |= t.contains(p);
            }
        }
        if found {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// SetWatches(2): catch-up events for what changed after `relative_zxid`
    /// (queued before the reply), re-arm the rest.
    pub(super) fn set_watches(&mut self, cid: SimConnId, sw: SetWatches2) {
        let mut c = CatchUp {
            nodes: &self.tree.nodes,
            rel: sw.relative_zxid,
            events: Vec::new(),
        };
        let mut armed = SimWatches::default();
        c.one_shot(sw.data_watches, DATA_CHANGED, &mut armed.data);
        for p in sw.exist_watches {
            if c.nodes.contains_key(&p) {
                c.events.push((EventType::NodeCreated, p));
            } else {
                armed.data.insert(p);
            }
        }
        c.one_shot(sw.child_watches, CHILDREN_CHANGED, &mut armed.child);
        let events = c.events;
        armed.persistent.extend(sw.persistent_watches);
        armed.recursive.extend(sw.persistent_recursive_watches);
        let w = self.watches_mut(cid);
        w.data.extend(armed.data);
        w.child.extend(armed.child);
        w.persistent.extend(armed.persistent);
        w.recursive.extend(armed.recursive);
        for (ty, p) in events {
            self.notify(cid, ty, &p);
        }
    }
}

/// The event a restored one-shot watch catches up with, and the node's zxid that
/// tells whether it happened after the client's last zxid.
type Changed = (EventType, fn(&Node) -> i64);

const DATA_CHANGED: Changed = (EventType::NodeDataChanged, |n| n.mzxid);
const CHILDREN_CHANGED: Changed = (EventType::NodeChildrenChanged, |n| n.pzxid);

/// SetWatches' catch-up: the events for what changed after `rel`, in the order
/// of the restored watches: data, then exist, then child.
struct CatchUp<'a> {
    nodes: &'a BTreeMap<String, Node>,
    rel: i64,
    events: Vec<(EventType, String)>,
}

impl CatchUp<'_> {
    /// Restores one-shot data or child watches: NodeDeleted for a node that is
    /// gone, the `changed` event for one changed after `rel`; the others are
    /// re-armed in `armed`.
    fn one_shot(&mut self, paths: Vec<String>, changed: Changed, armed: &mut BTreeSet<String>) {
        let (event, zxid_of) = changed;
        for p in paths {
            match self.nodes.get(&p) {
                None => self.events.push((EventType::NodeDeleted, p)),
                Some(n) if zxid_of(n) > self.rel => self.events.push((event, p)),
                Some(_) => {
                    armed.insert(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::error::ErrorCode;
    use crate::ops::Request;
    use crate::records::{
        AddWatchRequest, DeleteRequest, SetDataRequest, SetWatches2, WatchesRequest,
    };
    use crate::testing::server::sessions::password_for;
    use crate::testing::server::test_wire::{create, event, pw, split, Cli, T};
    use crate::types::{AddWatchMode, EventType, WatcherType};

    #[test]
    fn watch_fires_on_another_connection_before_the_reply() {
        let (mut t, [a, b]) = T::with_sessions(2, [0, 1]);
        t.ok(a, 1, &Request::Create(create("/w", b"", 0)));
        t.ok(a, 2, &Request::GetData(pw("/w", true)));
        assert_eq!(
            t.err(a, 3, &Request::Exists(pw("/w/kid", true))),
            ErrorCode::NoNode
        );
        t.ok(a, 4, &Request::GetChildren(pw("/w", true)));
        assert_eq!(t.c.watch_count(a.conn), 3);

        // B writes; A gets one NodeDataChanged.
        let set = Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: Some(Bytes::from_static(b"x")),
            version: -1,
        });
        t.ok(b, 1, &set);
        let got: Vec<_> = t.out(a.conn).iter().map(split).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(event(&got[0]), (EventType::NodeDataChanged, "/w".into()));
        // One-shot: a second write fires nothing.
        t.ok(b, 2, &set);
        assert!(t.out(a.conn).is_empty());

        // A's own create: events first, then the reply.
        let frames = t.call(a, 5, &Request::Create(create("/w/kid", b"", 0)));
        assert_eq!(frames.len(), 3);
        assert_eq!(event(&frames[0]), (EventType::NodeCreated, "/w/kid".into()));
        assert_eq!(
            event(&frames[1]),
            (EventType::NodeChildrenChanged, "/w".into())
        );
        assert_eq!(frames[2].0.xid, 5);
        assert_eq!(t.c.watch_count(a.conn), 0);

        // Delete fan-out: one NodeDeleted per connection even with data and child watches.
        t.ok(a, 6, &Request::GetData(pw("/w/kid", true)));
        t.ok(a, 7, &Request::GetChildren(pw("/w/kid", true)));
        t.ok(a, 8, &Request::GetChildren(pw("/w", true)));
        t.ok(
            b,
            3,
            &Request::Delete(DeleteRequest {
                path: "/w/kid".into(),
                version: -1,
            }),
        );
        assert_eq!(
            t.events(a.conn),
            vec![
                (EventType::NodeDeleted, "/w/kid".to_owned()),
                (EventType::NodeChildrenChanged, "/w".to_owned())
            ]
        );
    }

    #[test]
    fn persistent_and_recursive_watches() {
        let (mut t, [a, b]) = T::with_sessions(1, [0, 0]);
        let add = |p: &str, mode| {
            Request::AddWatch(AddWatchRequest {
                path: p.into(),
                mode,
            })
        };
        t.ok(a, 1, &add("/p", AddWatchMode::Persistent));
        t.ok(a, 2, &add("/r", AddWatchMode::PersistentRecursive));
        t.ok(b, 1, &Request::Create(create("/p", b"", 0)));
        t.ok(b, 2, &Request::Create(create("/p/c", b"", 0)));
        t.ok(b, 3, &Request::Create(create("/r", b"", 0)));
        t.ok(b, 4, &Request::Create(create("/r/c", b"", 0)));
        t.ok(
            b,
            5,
            &Request::SetData(SetDataRequest {
                path: "/r/c".into(),
                data: Some(Bytes::new()),
                version: -1,
            }),
        );
        assert_eq!(
            t.events(a.conn),
            vec![
                (EventType::NodeCreated, "/p".to_owned()),
                (EventType::NodeChildrenChanged, "/p".to_owned()),
                (EventType::NodeCreated, "/r".to_owned()),
                (EventType::NodeCreated, "/r/c".to_owned()),
                (EventType::NodeDataChanged, "/r/c".to_owned()),
            ]
        );
        // Removal: NoWatcher when there is none.
        let rm = |p: &str, ty| {
            Request::RemoveWatches(WatchesRequest {
                path: p.into(),
                watcher_type: ty,
            })
        };
        assert_eq!(
            t.err(a, 3, &rm("/p", WatcherType::Data)),
            ErrorCode::NoWatcher
        );
        let chk = Request::CheckWatches(WatchesRequest {
            path: "/p".into(),
            watcher_type: WatcherType::Any,
        });
        t.ok(a, 4, &chk);
        t.ok(a, 5, &rm("/p", WatcherType::Any));
        assert_eq!(t.err(a, 6, &chk), ErrorCode::NoWatcher);
        t.ok(a, 7, &rm("/r", WatcherType::PersistentRecursive));
        assert_eq!(t.c.watch_count(a.conn), 0);
        t.ok(b, 6, &Request::Create(create("/r/d", b"", 0)));
        assert!(t.out(a.conn).is_empty());
    }

    #[test]
    fn set_watches_catch_up_before_reply() {
        let (mut t, [a, b]) = T::with_sessions(2, [0, 1]);
        for (i, p) in ["/d", "/c", "/same", "/gone"].iter().enumerate() {
            t.ok(b, i as i32 + 1, &Request::Create(create(p, b"", 0)));
        }
        let rel = t.c.last_zxid();
        // A disconnects; B changes things.
        t.c.handle_closed(a.conn, t.now);
        t.ok(
            b,
            10,
            &Request::SetData(SetDataRequest {
                path: "/d".into(),
                data: Some(Bytes::new()),
                version: -1,
            }),
        );
        t.ok(b, 11, &Request::Create(create("/c/k", b"", 0)));
        t.ok(b, 12, &Request::Create(create("/born", b"", 0)));
        t.ok(
            b,
            13,
            &Request::Delete(DeleteRequest {
                path: "/gone".into(),
                version: -1,
            }),
        );
        // A resumes on the other member and restores its watches.
        let (conn, out) = t.handshake(1, a.sid, &password_for(a.sid), Some(false));
        assert_eq!(out.len(), 1);
        let a2 = Cli { conn, sid: a.sid };
        let sw = Request::SetWatches2(SetWatches2 {
            relative_zxid: rel,
            data_watches: vec!["/d".into(), "/same".into(), "/gone".into()],
            exist_watches: vec!["/born".into(), "/unborn".into()],
            child_watches: vec!["/c".into(), "/same".into()],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec!["/r".into()],
        });
        let frames = t.call(a2, -8, &sw);
        let (last, rest) = frames.split_last().unwrap();
        assert_eq!(last.0.xid, -8, "the SetWatches xid is echoed");
        assert_eq!(last.0.err, ErrorCode::Ok);
        let events: Vec<_> = rest.iter().map(event).collect();
        assert_eq!(
            events,
            vec![
                (EventType::NodeDataChanged, "/d".to_owned()),
                (EventType::NodeDeleted, "/gone".to_owned()),
                (EventType::NodeCreated, "/born".to_owned()),
                (EventType::NodeChildrenChanged, "/c".to_owned()),
            ]
        );
        let w = t.c.watches(conn).unwrap().clone();
        assert_eq!(w.data.iter().collect::<Vec<_>>(), ["/same", "/unborn"]);
        assert_eq!(w.child.iter().collect::<Vec<_>>(), ["/same"]);
        assert_eq!(w.persistent.len() + w.recursive.len(), 2);
    }
}
