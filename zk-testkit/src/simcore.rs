//! What the two transports of the simulated ensemble share: the cluster, its open
//! connections, the members that refuse new ones, and the bookkeeping the fault
//! injections read. [`SimNet`](crate::simnet::SimNet) (tokio pipes) and
//! [`SimEnsemble`](crate::simstd::SimEnsemble) (threads and socket pairs) differ
//! only in how bytes reach a connection and how one is closed: [`Conn`].

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use bytes::Bytes;
use zk_proto::testing::server::{SimCluster, SimConnId};
use zk_proto::HostAddr;

/// The server side of one connection.
pub(crate) trait Conn {
    /// The member it is connected to.
    fn member(&self) -> usize;
    /// Queues bytes the server sent, for the client to read.
    fn deliver(&self, bytes: Bytes);
    /// The server closed it: the client sees the end of the stream.
    fn close(self);
}

pub(crate) struct Core<C> {
    pub(crate) cluster: SimCluster,
    pub(crate) conns: HashMap<SimConnId, C>,
    next: u64,
    /// Members whose new connections are refused before the handshake (a dead host).
    refuse: Vec<bool>,
    accepted: usize,
    refused: usize,
}

impl<C: Conn> Core<C> {
    pub(crate) fn new(members: usize, now: Instant) -> Core<C> {
        Core {
            cluster: SimCluster::new(members, now),
            conns: HashMap::new(),
            next: 0,
            refuse: vec![false; members],
            accepted: 0,
            refused: 0,
        }
    }

    /// The connect string for all members, `m0:1,m1:1,...` (`/chroot` appended if given).
    pub(crate) fn connect_string(&self, chroot: &str) -> String {
        let hosts: Vec<String> = (0..self.cluster.member_count())
            .map(|i| format!("m{i}:1"))
            .collect();
        format!("{}{chroot}", hosts.join(","))
    }

    /// A new connection to `host` if its member takes it: its id, to register
    /// with [`insert`](Core::insert) once its transport is made.
    pub(crate) fn admit(
        &mut self,
        host: &HostAddr,
        now: Instant,
    ) -> io::Result<(SimConnId, usize)> {
        let member: usize = host
            .host
            .strip_prefix('m')
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not a simulated host: {host}")))?;
        let conn = SimConnId(self.next);
        self.next += 1;
        if self.refuse.get(member).copied().unwrap_or(true)
            || !self.cluster.accept(member, conn, now)
        {
            self.refused += 1;
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        self.accepted += 1;
        Ok((conn, member))
    }

    pub(crate) fn insert(&mut self, conn: SimConnId, c: C) {
        self.conns.insert(conn, c);
    }

    /// Moves the cluster's output to its connections and closes what it closed.
    pub(crate) fn flush(&mut self) {
        while let Some((conn, bytes)) = self.cluster.poll_output() {
            if let Some(c) = self.conns.get(&conn) {
                c.deliver(bytes);
            }
        }
        while let Some(conn) = self.cluster.poll_close() {
            if let Some(c) = self.conns.remove(&conn) {
                c.close();
            }
        }
    }

    /// The open connections to member `m` (every member: `None`).
    pub(crate) fn conns_of(&self, m: Option<usize>) -> Vec<SimConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| m.is_none_or(|m| c.member() == m))
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn set_refuse(&mut self, m: usize, on: bool) {
        self.refuse[m] = on;
    }

    pub(crate) fn open(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn refused(&self) -> usize {
        self.refused
    }

    pub(crate) fn accepted(&self) -> usize {
        self.accepted
    }
}
