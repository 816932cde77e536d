//! The client's watch registry: every registration has its own id, even when
//! the server holds one watch per connection for them all; notifications fan out
//! to every matching registration; the lists for SetWatches are rebuilt from here.

use std::collections::{BTreeMap, HashMap};

use crate::records::SetWatches2;
use crate::types::EventType;

/// Identifies one watch registration for the life of the session.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatcherId(pub u64);

/// What a registration listens to.
///
/// Why: one-shot kinds end with their first event and must be re-armed by a new
/// read; persistent kinds keep firing until removed. [`WatchRegistry`] shows the
/// difference:
///
/// ```
/// use zk_proto::types::EventType;
/// use zk_proto::watches::{WatchRegistry, WatcherId};
/// use zk_proto::WatchKind;
///
/// assert!(!WatchKind::Data.is_persistent());
/// assert!(WatchKind::PersistentRecursive.is_persistent());
///
/// let mut watches = WatchRegistry::default();
/// watches.insert(WatcherId(1), "/app".into(), WatchKind::Data);
/// watches.insert(WatcherId(2), "/app".into(), WatchKind::Persistent);
/// watches.insert(WatcherId(3), "/".into(), WatchKind::PersistentRecursive);
///
/// let mut fired = Vec::new();
/// watches.fire(EventType::NodeDataChanged, "/app", &mut fired);
/// assert_eq!(fired, [WatcherId(1), WatcherId(2), WatcherId(3)]);
/// // The one-shot watch is used up; the persistent ones stay.
/// assert!(!watches.contains(WatcherId(1)));
/// assert_eq!(watches.len(), 2);
///
/// fired.clear();
/// watches.fire(EventType::NodeDataChanged, "/app", &mut fired);
/// assert_eq!(fired, [WatcherId(2), WatcherId(3)]);
///
/// // Child-list changes reach no recursive watch (the server sends none to them).
/// fired.clear();
/// watches.fire(EventType::NodeChildrenChanged, "/app", &mut fired);
/// assert_eq!(fired, [WatcherId(2)]);
///
/// // Removing the last registration on a path says so: the server's watch can go.
/// assert_eq!(watches.remove(WatcherId(2)), Some(("/app".into(), WatchKind::Persistent, true)));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// One-shot: data changes and deletion of an existing node (getData, exists).
    Data,
    /// One-shot: creation of a missing node (exists on a missing node).
    Exist,
    /// One-shot: child list changes and deletion (getChildren).
    Child,
    /// Every event on exactly this path, until removed (addWatch persistent).
    Persistent,
    /// Created, deleted, data changed on this path and below (addWatch recursive).
    PersistentRecursive,
}

impl WatchKind {
    /// Whether it stays after firing.
    pub fn is_persistent(self) -> bool {
        matches!(self, WatchKind::Persistent | WatchKind::PersistentRecursive)
    }
}

#[derive(Debug, Default)]
struct PathWatches {
    data: Vec<WatcherId>,
    exist: Vec<WatcherId>,
    child: Vec<WatcherId>,
    persistent: Vec<WatcherId>,
    recursive: Vec<WatcherId>,
}

impl PathWatches {
    fn list(&mut self, kind: WatchKind) -> &mut Vec<WatcherId> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }
}

/// The registry. Paths are server paths (chroot applied).
#[derive(Debug, Default)]
pub struct WatchRegistry {
    by_path: BTreeMap<String, PathWatches>,
    by_id: HashMap<WatcherId, (String, WatchKind)>,
    recursive_count: usize,
}

impl WatchRegistry {
    /// Registers an armed watch.
    pub fn insert(&mut self, id: WatcherId, path: String, kind: WatchKind) {
        self.by_path
            .entry(path.clone())
            .or_default()
            .list(kind)
            .push(id);
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count += 1;
        }
        self.by_id.insert(id, (path, kind));
    }

    /// Forgets one registration. Returns its path and whether no registration of
    /// any kind is left on that path (so the server's watch can go too).
    pub fn remove(&mut self, id: WatcherId) -> Option<(String, WatchKind, bool)> {
        let (path, kind) = self.by_id.remove(&id)?;
        let mut last = false;
        if let Some(pw) = self.by_path.get_mut(&path) {
            pw.list(kind).retain(|w| *w != id);
            if pw.is_empty() {
                self.by_path.remove(&path);
                last = true;
            }
        }
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count -= 1;
        }
        Some((path, kind, last))
    }

    /// The registrations of the given kinds on one path.
    pub fn ids_at(&self, path: &str, kinds: &[WatchKind]) -> Vec<WatcherId> {
        let Some(pw) = self.by_path.get(path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for k in kinds {
            let l = match k {
                WatchKind::Data => &pw.data,
                WatchKind::Exist => &pw.exist,
                WatchKind::Child => &pw.child,
                WatchKind::Persistent => &pw.persistent,
                WatchKind::PersistentRecursive => &pw.recursive,
            };
            out.extend_from_slice(l);
        }
        out
    }

    /// Number of registrations.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether the id is registered.
    pub fn contains(&self, id: WatcherId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Every registration that a notification of `event` on `path` reaches, in a
    /// deterministic order. One-shot registrations that fire are removed.
    pub fn fire(&mut self, event: EventType, path: &str, out: &mut Vec<WatcherId>) {
        let start = out.len();
        if let Some(pw) = self.by_path.get_mut(path) {
            let fired = |v: &mut Vec<WatcherId>, out: &mut Vec<WatcherId>| {
                out.append(v);
            };
            match event {
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    fired(&mut pw.data, out);
                    fired(&mut pw.exist, out);
                }
                EventType::NodeChildrenChanged => fired(&mut pw.child, out),
                EventType::NodeDeleted => {
                    fired(&mut pw.data, out);
                    fired(&mut pw.exist, out);
                    fired(&mut pw.child, out);
                }
                _ => {}
            }
            for id in &out[start..] {
                self.by_id.remove(id);
            }
            out.extend(pw.persistent.iter().copied());
            if pw.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive_count > 0 && event != EventType::NodeChildrenChanged {
            let mut p = path;
            loop {
                if let Some(pw) = self.by_path.get(p) {
                    out.extend(pw.recursive.iter().copied());
                }
                if p == "/" {
                    break;
                }
                p = match p.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &p[..i],
                    None => break,
                };
            }
        }
    }

    /// Removes everything, returning the ids (session ended).
    pub fn drain(&mut self) -> Vec<WatcherId> {
        let mut ids: Vec<WatcherId> = self.by_id.drain().map(|(id, _)| id).collect();
        ids.sort();
        self.by_path.clear();
        self.recursive_count = 0;
        ids
    }

    /// The SetWatches batches that restore every watch, each holding at most
    /// `batch_chars` characters of paths (the path that crosses the limit is still
    /// included, as the Java client does). Paths are in sorted order.
    pub fn set_watches_batches(&self, relative_zxid: i64, batch_chars: usize) -> Vec<SetWatches2> {
        let mut batches = Vec::new();
        let mut cur = SetWatches2 {
            relative_zxid,
            ..Default::default()
        };
        let mut chars = 0usize;
        let mut lists: [Vec<&String>; 5] = Default::default();
        for (path, pw) in &self.by_path {
            for (i, l) in [
                &pw.data,
                &pw.exist,
                &pw.child,
                &pw.persistent,
                &pw.recursive,
            ]
            .into_iter()
            .enumerate()
            {
                if !l.is_empty() {
                    lists[i].push(path);
                }
            }
        }
        for (i, list) in lists.iter().enumerate() {
            for path in list {
                let target = match i {
                    0 => &mut cur.data_watches,
                    1 => &mut cur.exist_watches,
                    2 => &mut cur.child_watches,
                    3 => &mut cur.persistent_watches,
                    _ => &mut cur.persistent_recursive_watches,
                };
                target.push((*path).clone());
                chars += path.chars().count();
                if chars >= batch_chars {
                    batches.push(std::mem::replace(
                        &mut cur,
                        SetWatches2 {
                            relative_zxid,
                            ..Default::default()
                        },
                    ));
                    chars = 0;
                }
            }
        }
        if chars > 0 {
            batches.push(cur);
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registration is known from its insertion until its removal.
    #[test]
    fn contains_follows_insert_and_remove() {
        let mut r = WatchRegistry::default();
        assert!(!r.contains(WatcherId(1)));
        r.insert(WatcherId(1), "/a".into(), WatchKind::Data);
        assert!(r.contains(WatcherId(1)));
        assert!(!r.contains(WatcherId(2)));
        r.remove(WatcherId(1));
        assert!(!r.contains(WatcherId(1)));
    }

    /// Persistent and recursive watches stay after firing; the one-shot kinds do not.
    #[test]
    fn which_kinds_persist() {
        for (k, persists) in [
            (WatchKind::Data, false),
            (WatchKind::Exist, false),
            (WatchKind::Child, false),
            (WatchKind::Persistent, true),
            (WatchKind::PersistentRecursive, true),
        ] {
            assert_eq!(k.is_persistent(), persists, "{k:?}");
        }
    }

    #[test]
    fn fan_out_and_one_shot_removal() {
        let mut r = WatchRegistry::default();
        r.insert(WatcherId(1), "/a".into(), WatchKind::Data);
        r.insert(WatcherId(2), "/a".into(), WatchKind::Data);
        r.insert(WatcherId(3), "/a".into(), WatchKind::Child);
        r.insert(WatcherId(4), "/a".into(), WatchKind::Persistent);
        r.insert(WatcherId(5), "/".into(), WatchKind::PersistentRecursive);
        r.insert(WatcherId(6), "/a/b".into(), WatchKind::Exist);
        let mut out = Vec::new();
        r.fire(EventType::NodeDeleted, "/a", &mut out);
        assert_eq!(
            out,
            vec![
                WatcherId(1),
                WatcherId(2),
                WatcherId(3),
                WatcherId(4),
                WatcherId(5)
            ]
        );
        out.clear();
        r.fire(EventType::NodeDeleted, "/a", &mut out);
        assert_eq!(out, vec![WatcherId(4), WatcherId(5)]);
        out.clear();
        r.fire(EventType::NodeChildrenChanged, "/a", &mut out);
        assert_eq!(out, vec![WatcherId(4)]);
        out.clear();
        r.fire(EventType::NodeCreated, "/a/b", &mut out);
        assert_eq!(out, vec![WatcherId(6), WatcherId(5)]);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.remove(WatcherId(4)),
            Some(("/a".into(), WatchKind::Persistent, true))
        );
        assert_eq!(r.remove(WatcherId(4)), None);
    }

    #[test]
    fn set_watches_batches_split_by_path_chars() {
        let mut r = WatchRegistry::default();
        for i in 0..100u64 {
            r.insert(WatcherId(i), format!("/n{i:04}"), WatchKind::Data);
        }
        r.insert(WatcherId(1000), "/p".into(), WatchKind::Persistent);
        let b = r.set_watches_batches(7, 50);
        let total: usize = b
            .iter()
            .map(|s| s.data_watches.len() + s.persistent_watches.len())
            .sum();
        assert_eq!(total, 101);
        assert!(b.iter().all(|s| s.relative_zxid == 7));
        // The path that crosses the limit is still included.
        assert!(b
            .iter()
            .all(|s| s.data_watches.iter().map(|p| p.len()).sum::<usize>() <= 56));
        assert_eq!(b.len(), 12);
    }

    /// `is_empty` says whether any registration is left.
    #[test]
    fn is_empty_follows_insert_and_remove() {
        let mut r = WatchRegistry::default();
        assert!(r.is_empty());
        r.insert(WatcherId(1), "/a".into(), WatchKind::Data);
        assert!(!r.is_empty());
        r.remove(WatcherId(1));
        assert!(r.is_empty());
    }
}
