//! The replicated data tree: nodes with their stats, ephemeral ownership, and
//! the rules a change obeys (path checks, versions, ACL fixing, sequential names
//! from the parent's counter, no children for ephemerals).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::path::validate_path;
use crate::records::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, GetDataResponse, SetAclRequest,
    SetDataRequest, Stat,
};
use crate::types::{CreateMode, OpCode};

use super::{watches::Trigger, EPOCH_BASE_MS};

/// Largest TTL a server accepts, ms (2^40 - 1).
const MAX_TTL: i64 = (1 << 40) - 1;

/// A stored znode.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// `None`: created or set with null data (the real server keeps null too).
    pub(super) data: Option<Bytes>,
    pub(super) acl: Vec<Acl>,
    pub(super) czxid: i64,
    pub(super) mzxid: i64,
    pub(super) pzxid: i64,
    pub(super) ctime: i64,
    pub(super) mtime: i64,
    pub(super) version: i32,
    pub(super) aversion: i32,
    /// Session id for ephemerals; 0 for persistent, container and TTL nodes.
    pub(super) owner: i64,
    /// Children ever created (the server's stored cversion; the sequence counter).
    pub(super) creates: i32,
    pub(super) children: BTreeSet<String>,
}

impl Node {
    pub(super) fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.creates.wrapping_mul(2).wrapping_sub(n),
            aversion: self.aversion,
            ephemeral_owner: self.owner,
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children: n,
            pzxid: self.pzxid,
        }
    }

    pub(super) fn new(
        data: Option<Bytes>,
        acl: Vec<Acl>,
        zxid: i64,
        time: i64,
        owner: i64,
    ) -> Node {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            aversion: 0,
            owner,
            creates: 0,
            children: BTreeSet::new(),
        }
    }
}

/// Who is asking: what a create needs to know about the caller.
#[derive(Debug, Clone, Default)]
pub(super) struct Ctx {
    pub(super) session: i64,
    pub(super) local: bool,
    /// `user:hash` digest ids of the connection.
    pub(super) digest_ids: Vec<String>,
}

/// The replicated state: nodes and which session owns which ephemerals.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub(super) nodes: BTreeMap<String, Node>,
    pub(super) ephemerals: BTreeMap<i64, BTreeSet<String>>,
}

pub(super) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `path`, then each ancestor up to `/`.
pub(super) fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = if cur == "/" {
            None
        } else {
            Some(parent_of(cur))
        };
        Some(cur)
    })
}

fn is_system(path: &str) -> bool {
    path == "/" || path == "/zookeeper" || path.starts_with("/zookeeper/")
}

pub(super) fn check_path(path: &str) -> Result<(), ErrorCode> {
    validate_path(path, false).map_err(|_| ErrorCode::BadArguments)
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == actual {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

fn fix_acl(acl: &[Acl], ctx: &Ctx) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::new();
    for a in acl {
        match a.id.scheme.as_str() {
            "auth" => {
                if ctx.digest_ids.is_empty() {
                    return Err(ErrorCode::InvalidAcl);
                }
                for id in &ctx.digest_ids {
                    out.push(Acl::new(a.perms, "digest", id));
                }
            }
            "world" if a.id.id != "anyone" => return Err(ErrorCode::InvalidAcl),
            "digest" if !a.id.id.contains(':') => return Err(ErrorCode::InvalidAcl),
            "world" | "digest" | "ip" | "sasl" | "x509" | "super" => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

impl Tree {
    pub(super) fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        let open = Acl::open_unsafe();
        let mut root = Node::new(Some(Bytes::new()), open.clone(), 0, EPOCH_BASE_MS, 0);
        root.children.insert("zookeeper".into());
        let mut zk = Node::new(Some(Bytes::new()), open.clone(), 0, EPOCH_BASE_MS, 0);
        zk.children.insert("config".into());
        zk.children.insert("quota".into());
        nodes.insert("/".to_owned(), root);
        nodes.insert("/zookeeper".to_owned(), zk);
        nodes.insert(
            "/zookeeper/config".to_owned(),
            Node::new(Some(Bytes::new()), Acl::read_unsafe(), 0, EPOCH_BASE_MS, 0),
        );
        nodes.insert(
            "/zookeeper/quota".to_owned(),
            Node::new(Some(Bytes::new()), open, 0, EPOCH_BASE_MS, 0),
        );
        Tree {
            nodes,
            ephemerals: BTreeMap::new(),
        }
    }

    pub(super) fn node(&self, path: &str) -> Result<&Node, ErrorCode> {
        check_path(path)?;
        self.nodes.get(path).ok_or(ErrorCode::NoNode)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create(
        &mut self,
        ctx: &Ctx,
        op: OpCode,
        req: &CreateRequest,
        ttl: i64,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(String, Stat), ErrorCode> {
        let mode = CreateMode::from_flags(req.flags, ttl).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl().is_some() {
            if ttl <= 0 || ttl > MAX_TTL {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        let _ = op;
        let sequential = mode.is_sequential();
        validate_path(&req.path, sequential).map_err(|_| ErrorCode::BadArguments)?;
        let acl = fix_acl(&req.acl, ctx)?;
        if req.path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = parent_of(&req.path).to_owned();
        let parent = self.nodes.get(&parent_path).ok_or(ErrorCode::NoNode)?;
        let path = if sequential {
            format!("{}{:010}", req.path, parent.creates)
        } else {
            req.path.clone()
        };
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if parent.owner != 0 {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = if mode.is_ephemeral() {
            if ctx.local {
                return Err(ErrorCode::EphemeralOnLocalSession);
            }
            if ctx.session == 0 {
                return Err(ErrorCode::BadArguments);
            }
            ctx.session
        } else {
            0
        };
        let node = Node::new(req.data.clone(), acl, zxid, time, owner);
        let stat = node.stat();
        self.nodes.insert(path.clone(), node);
        let parent = self.nodes.get_mut(&parent_path).ok_or(ErrorCode::NoNode)?;
        parent.creates = parent.creates.wrapping_add(1);
        parent.pzxid = zxid;
        parent.children.insert(name_of(&path).to_owned());
        if owner != 0 {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(path.clone());
        }
        triggers.push(Trigger::Created(path.clone()));
        Ok((path, stat))
    }

    /// A createTTL: the rules of [`Tree::create`], with the request's TTL.
    pub(super) fn create_ttl(
        &mut self,
        ctx: &Ctx,
        req: &CreateTtlRequest,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(String, Stat), ErrorCode> {
        let plain = CreateRequest {
            path: req.path.clone(),
            data: req.data.clone(),
            acl: req.acl.clone(),
            flags: req.flags,
        };
        self.create(
            ctx,
            OpCode::CreateTtl,
            &plain,
            req.ttl,
            zxid,
            time,
            triggers,
        )
    }

    pub(super) fn delete(
        &mut self,
        path: &str,
        version: i32,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), ErrorCode> {
        check_path(path)?;
        if is_system(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        check_version(version, node.version)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(path, zxid);
        triggers.push(Trigger::Deleted(path.to_owned()));
        Ok(())
    }

    /// Removes a childless node, keeping parent and ephemeral bookkeeping.
    pub(super) fn remove(&mut self, path: &str, zxid: i64) {
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        if let Some(parent) = self.nodes.get_mut(parent_of(path)) {
            parent.children.remove(name_of(path));
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
        }
        if node.owner != 0 {
            if let Some(set) = self.ephemerals.get_mut(&node.owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&node.owner);
                }
            }
        }
    }

    pub(super) fn set_data(
        &mut self,
        req: &SetDataRequest,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        check_path(&req.path)?;
        let node = self.nodes.get_mut(&req.path).ok_or(ErrorCode::NoNode)?;
        check_version(req.version, node.version)?;
        node.data = req.data.clone();
        node.version = node.version.wrapping_add(1);
        node.mzxid = zxid;
        node.mtime = time;
        triggers.push(Trigger::DataChanged(req.path.clone()));
        Ok(node.stat())
    }

    pub(super) fn set_acl(&mut self, ctx: &Ctx, req: &SetAclRequest) -> Result<Stat, ErrorCode> {
        check_path(&req.path)?;
        let acl = fix_acl(&req.acl, ctx);
        let node = self.nodes.get_mut(&req.path).ok_or(ErrorCode::NoNode)?;
        check_version(req.version, node.aversion)?;
        node.acl = acl?;
        node.aversion = node.aversion.wrapping_add(1);
        Ok(node.stat())
    }

    pub(super) fn check(&self, req: &CheckVersionRequest) -> Result<(), ErrorCode> {
        check_version(req.version, self.node(&req.path)?.version)
    }

    pub(super) fn get_data(&self, path: &str) -> Result<GetDataResponse, ErrorCode> {
        let n = self.node(path)?;
        Ok(GetDataResponse {
            data: n.data.clone(),
            stat: n.stat(),
        })
    }

    pub(super) fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ErrorCode> {
        let n = self.node(path)?;
        Ok((n.children.iter().cloned().collect(), n.stat()))
    }

    pub(super) fn descendants(&self, path: &str) -> usize {
        let Some(n) = self.nodes.get(path) else {
            return 0;
        };
        n.children
            .iter()
            .map(|c| {
                let child = if path == "/" {
                    format!("/{c}")
                } else {
                    format!("{path}/{c}")
                };
                1 + self.descendants(&child)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::{Request, Response};
    use crate::records::DeleteRequest;
    use crate::testing::server::test_wire::{create, T};

    #[test]
    fn sequential_names_come_from_the_parent_counter() {
        let (mut t, a) = T::with_node(1, create("/q", b"", 0));
        let mut names = Vec::new();
        for i in 0..3 {
            let Response::Create(c) = t.ok(a, 2 + i, &Request::Create(create("/q/n-", b"", 2)))
            else {
                panic!()
            };
            names.push(c.path);
        }
        assert_eq!(
            names,
            ["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"]
        );
        t.ok(
            a,
            10,
            &Request::Delete(DeleteRequest {
                path: "/q/n-0000000002".into(),
                version: -1,
            }),
        );
        // The counter counts creates, not live children.
        let Response::Create2(c) = t.ok(a, 11, &Request::Create2(create("/q/", b"", 3))) else {
            panic!()
        };
        assert_eq!(c.path, "/q/0000000003");
        assert_eq!(c.stat.ephemeral_owner, a.sid);
        let (_, stat) = t.c.get("/q").unwrap();
        assert_eq!(stat.cversion, 4 * 2 - 3);
    }
}
