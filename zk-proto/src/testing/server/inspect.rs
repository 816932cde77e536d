//! What a test reads directly, without a client: nodes, sessions, connections,
//! watches and the log of requests received.

use bytes::Bytes;

use crate::records::{Acl, Stat};
use crate::types::OpCode;

use super::{SimCluster, SimConnId, SimWatches};

impl SimCluster {
    /// Data (`None`: null) and Stat of a node.
    pub fn get(&self, path: &str) -> Option<(Option<Bytes>, Stat)> {
        self.tree
            .nodes
            .get(path)
            .map(|n| (n.data.clone(), n.stat()))
    }

    /// Child names of a node, sorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.tree
            .nodes
            .get(path)
            .map(|n| n.children.iter().cloned().collect())
    }

    /// The stored ACL of a node.
    pub fn acl(&self, path: &str) -> Option<Vec<Acl>> {
        self.tree.nodes.get(path).map(|n| n.acl.clone())
    }

    /// Every node path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.tree.nodes.keys().cloned().collect()
    }

    /// Whether the session exists (not expired or closed).
    pub fn session_alive(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Ids of live sessions.
    pub fn sessions(&self) -> Vec<i64> {
        self.sessions.keys().copied().collect()
    }

    /// The connection a session is attached to.
    pub fn session_conn(&self, id: i64) -> Option<SimConnId> {
        self.sessions.get(&id).and_then(|s| s.conn)
    }

    /// The negotiated timeout of a session, ms.
    pub fn session_timeout(&self, id: i64) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.timeout_ms)
    }

    /// The session a connection completed its handshake for.
    pub fn conn_session(&self, conn: SimConnId) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session)
    }

    /// Paths of a session's ephemeral nodes.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        self.tree
            .ephemerals
            .get(&session_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last zxid assigned.
    pub fn last_zxid(&self) -> i64 {
        self.zxid
    }

    /// Open (not closing) connections on a member.
    pub fn connections(&self, member: usize) -> Vec<SimConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.member == member && !c.closing)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The member a connection is on.
    pub fn conn_member(&self, conn: SimConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.member)
    }

    /// The watches a connection holds.
    pub fn watches(&self, conn: SimConnId) -> Option<&SimWatches> {
        self.conns.get(&conn).map(|c| &c.watches)
    }

    /// Number of watch registrations on a connection (0 if unknown).
    pub fn watch_count(&self, conn: SimConnId) -> usize {
        self.watches(conn).map_or(0, SimWatches::len)
    }

    /// Every request header received after a handshake: (connection, xid, opcode),
    /// in arrival order (auth and held requests included when received).
    pub fn request_log(&self) -> &[(SimConnId, i32, OpCode)] {
        &self.log
    }

    /// Empties the request log.
    pub fn clear_request_log(&mut self) {
        self.log.clear();
    }
}
