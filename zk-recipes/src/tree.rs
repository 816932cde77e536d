//! The TreeCache's mirror and the rules that keep it right, without any I/O.
//!
//! Every read the cache sends gets a sequence number in the order it was sent,
//! and replies are applied in that order. ZooKeeper answers a session's requests
//! in order, each as of a point in the server's history no earlier than the one
//! before, so a node only ever moves forward in time here; the last read of a
//! node after its last change leaves it exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zk_client::{Data, Stat};

use crate::common::{join, parent_of};

/// What changed in the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Added(String, Data, Stat),
    Updated(String, Data, Stat),
    Removed(String, Data, Stat),
}

#[derive(Debug, Clone)]
struct Node {
    data: Data,
    stat: Stat,
    children: BTreeSet<String>,
    /// Sequence number of the last read that found the node.
    confirmed: u64,
}

/// Applying a data read would take the mirror past its node limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// What a data read did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    Done,
    /// The node exists but its parent is not mirrored (yet): the parent must be
    /// walked again. Nothing was changed.
    Orphan(String),
}

fn name_of(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

/// The mirror of the subtree at `root`.
#[derive(Debug)]
pub(crate) struct Tree {
    root: String,
    nodes: HashMap<String, Node>,
    max_nodes: usize,
}

impl Tree {
    pub(crate) fn new(root: &str, max_nodes: usize) -> Tree {
        Tree {
            root: root.to_owned(),
            nodes: HashMap::new(),
            max_nodes,
        }
    }

    pub(crate) fn max_nodes(&self) -> usize {
        self.max_nodes
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    pub(crate) fn get(&self, path: &str) -> Option<(Data, Stat)> {
        self.nodes.get(path).map(|n| (n.data.clone(), n.stat))
    }

    pub(crate) fn children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes
            .get(path)
            .map(|n| n.children.iter().cloned().collect())
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, (Data, Stat)> {
        self.nodes
            .iter()
            .map(|(p, n)| (p.clone(), (n.data.clone(), n.stat)))
            .collect()
    }

    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
    }

    /// Whether `path` is the root or below it.
    pub(crate) fn covers(&self, path: &str) -> bool {
        path == self.root
            || self.root == "/"
            || (path.starts_with(&self.root) && path.as_bytes().get(self.root.len()) == Some(&b'/'))
    }

    /// A data read of `path` (sent as number `seq`): `Some` if it found the node.
    pub(crate) fn apply_data(
        &mut self,
        path: &str,
        seq: u64,
        found: Option<(Data, Stat)>,
        changes: &mut Vec<Change>,
    ) -> Result<Applied, Full> {
        let Some((data, stat)) = found else {
            self.remove(path, changes);
            return Ok(Applied::Done);
        };
        if let Some(n) = self.nodes.get_mut(path) {
            n.confirmed = n.confirmed.max(seq);
            if n.stat.mzxid != stat.mzxid || n.stat.czxid != stat.czxid || n.data != data {
                n.data = data.clone();
                n.stat = stat;
                changes.push(Change::Updated(path.to_owned(), data, stat));
            } else {
                // Same data version; the child counters may have moved.
                n.stat = stat;
            }
            return Ok(Applied::Done);
        }
        if path != self.root {
            let Some(parent) = parent_of(path) else {
                return Ok(Applied::Done);
            };
            if !self.nodes.contains_key(parent) {
                return Ok(Applied::Orphan(parent.to_owned()));
            }
        }
        if self.nodes.len() >= self.max_nodes {
            return Err(Full);
        }
        if path != self.root {
            if let Some(p) = parent_of(path).and_then(|p| self.nodes.get_mut(p)) {
                p.children.insert(name_of(path).to_owned());
            }
        }
        self.nodes.insert(
            path.to_owned(),
            Node {
                data: data.clone(),
                stat,
                children: BTreeSet::new(),
                confirmed: seq,
            },
        );
        changes.push(Change::Added(path.to_owned(), data, stat));
        Ok(Applied::Done)
    }

    /// A listing of `path`'s children (read number `seq`; `None`: no such node).
    /// Mirrored children it does not name are removed. Returns the names it lists
    /// that are not mirrored.
    pub(crate) fn apply_children(
        &mut self,
        path: &str,
        seq: u64,
        listed: Option<&[String]>,
        changes: &mut Vec<Change>,
    ) -> Vec<String> {
        let Some(listed) = listed else {
            self.remove(path, changes);
            return Vec::new();
        };
        let Some(n) = self.nodes.get_mut(path) else {
            return Vec::new();
        };
        n.confirmed = n.confirmed.max(seq);
        let listed_set: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        let gone: Vec<String> = n
            .children
            .iter()
            .filter(|c| !listed_set.contains(c.as_str()))
            .cloned()
            .collect();
        let new: Vec<String> = listed
            .iter()
            .filter(|c| !n.children.contains(c.as_str()))
            .cloned()
            .collect();
        for c in gone {
            let child = join(path, &c);
            let stale = self.nodes.get(&child).is_none_or(|n| n.confirmed < seq);
            if stale {
                self.remove(&child, changes);
            }
        }
        new
    }

    /// Removes every node not confirmed by a read numbered `since` or later
    /// (the end of a full walk that started at `since`).
    pub(crate) fn sweep(&mut self, since: u64, changes: &mut Vec<Change>) {
        let mut stale: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.confirmed < since)
            .map(|(p, _)| p.clone())
            .collect();
        // Parents first: removing one removes its subtree.
        stale.sort();
        for p in stale {
            self.remove(&p, changes);
        }
    }

    /// Removes `path` and everything below it, deepest first.
    pub(crate) fn remove(&mut self, path: &str, changes: &mut Vec<Change>) {
        let Some(n) = self.nodes.get(path) else {
            return;
        };
        let kids: Vec<String> = n.children.iter().map(|c| join(path, c)).collect();
        for k in kids {
            self.remove(&k, changes);
        }
        if let Some(n) = self.nodes.remove(path) {
            if let Some(p) = parent_of(path).and_then(|p| self.nodes.get_mut(p)) {
                p.children.remove(name_of(path));
            }
            changes.push(Change::Removed(path.to_owned(), n.data, n.stat));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64, mzxid: i64, version: i32) -> Stat {
        Stat {
            czxid,
            mzxid,
            version,
            ..Stat::default()
        }
    }

    fn found(d: &str, s: Stat) -> Option<(Data, Stat)> {
        Some((Data::new(d.as_bytes().to_vec()), s))
    }

    fn paths(c: &[Change]) -> Vec<String> {
        c.iter()
            .map(|c| match c {
                Change::Added(p, ..) => format!("+{p}"),
                Change::Updated(p, ..) => format!("~{p}"),
                Change::Removed(p, ..) => format!("-{p}"),
            })
            .collect()
    }

    #[test]
    fn build_update_remove() {
        let mut t = Tree::new("/r", 100);
        let mut ch = Vec::new();
        assert_eq!(
            t.apply_data("/r", 1, found("", stat(1, 1, 0)), &mut ch),
            Ok(Applied::Done)
        );
        assert_eq!(
            t.apply_children("/r", 2, Some(&["b".into(), "a".into()]), &mut ch),
            vec!["b".to_string(), "a".to_string()]
        );
        t.apply_data("/r/a", 3, found("x", stat(2, 2, 0)), &mut ch)
            .unwrap();
        t.apply_data("/r/b", 4, found("y", stat(3, 3, 0)), &mut ch)
            .unwrap();
        t.apply_data("/r/a/c", 5, found("z", stat(4, 4, 0)), &mut ch)
            .unwrap();
        assert_eq!(paths(&ch), ["+/r", "+/r/a", "+/r/b", "+/r/a/c"]);
        assert_eq!(t.children("/r").unwrap(), ["a", "b"]);
        ch.clear();
        // The same version again: nothing; a new one: updated.
        t.apply_data("/r/a", 6, found("x", stat(2, 2, 0)), &mut ch)
            .unwrap();
        t.apply_data("/r/a", 7, found("x2", stat(2, 9, 1)), &mut ch)
            .unwrap();
        assert_eq!(paths(&ch), ["~/r/a"]);
        ch.clear();
        // A listing without a removes its subtree, deepest first.
        t.apply_children("/r", 8, Some(&["b".into()]), &mut ch);
        assert_eq!(paths(&ch), ["-/r/a/c", "-/r/a"]);
        assert_eq!(t.len(), 2);
        ch.clear();
        // The root gone: everything goes.
        t.apply_data("/r", 9, None, &mut ch).unwrap();
        assert_eq!(paths(&ch), ["-/r/b", "-/r"]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn orphans_and_limit() {
        let mut t = Tree::new("/", 2);
        let mut ch = Vec::new();
        assert_eq!(
            t.apply_data("/a/b", 1, found("", stat(1, 1, 0)), &mut ch),
            Ok(Applied::Orphan("/a".into()))
        );
        t.apply_data("/", 2, found("", stat(0, 0, 0)), &mut ch)
            .unwrap();
        t.apply_data("/a", 3, found("", stat(1, 1, 0)), &mut ch)
            .unwrap();
        assert_eq!(
            t.apply_data("/a/b", 4, found("", stat(2, 2, 0)), &mut ch),
            Err(Full)
        );
        assert_eq!(t.children("/").unwrap(), ["a"]);
        assert!(t.covers("/anything"));
    }

    #[test]
    fn sweep_removes_what_a_walk_did_not_confirm() {
        let mut t = Tree::new("/r", 100);
        let mut ch = Vec::new();
        t.apply_data("/r", 1, found("", stat(1, 1, 0)), &mut ch)
            .unwrap();
        t.apply_data("/r/a", 2, found("", stat(2, 2, 0)), &mut ch)
            .unwrap();
        t.apply_data("/r/b", 3, found("", stat(3, 3, 0)), &mut ch)
            .unwrap();
        ch.clear();
        // A walk from 10 confirms /r and /r/b only.
        t.apply_data("/r", 10, found("", stat(1, 1, 0)), &mut ch)
            .unwrap();
        t.apply_data("/r/b", 11, found("", stat(3, 3, 0)), &mut ch)
            .unwrap();
        t.sweep(10, &mut ch);
        assert_eq!(paths(&ch), ["-/r/a"]);
        assert!(t.covers("/r/x") && t.covers("/r") && !t.covers("/rx"));
    }
}
