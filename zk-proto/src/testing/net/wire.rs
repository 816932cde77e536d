//! The wire: each connection is a link with a pair of FIFO byte pipes, and every
//! connect, byte and close is a delivery scheduled after the latency (plus
//! seeded jitter, optionally cut into seeded chunks) and applied when it is due.
//! Also which links a client has, and what the client's connects, closes and
//! writes do to them.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::session::{Action, ConnId};
use crate::testing::server::SimConnId;
use crate::time::later;

use super::{member_of, SimNet};

/// A direction on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    pub(super) fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Waiting for the SYN to reach the server, or the answer to reach the client.
    Connecting,
    /// The client was told it is connected.
    Open,
    /// Over (refused, closed by both sides, or reset).
    Dead,
}

#[derive(Debug)]
pub(super) struct NetLink {
    member: Option<usize>,
    sim: SimConnId,
    state: LinkState,
    /// The client has not closed it (no `Disconnect`, no close reported to it).
    client_open: bool,
    /// The server side exists (accepted and not closed by either side).
    server_open: bool,
    blackholed: bool,
    /// Bytes still allowed per direction before the link is reset.
    cut: [Option<usize>; 2],
    /// The last scheduled delivery per direction (keeps each pipe FIFO under jitter).
    last: [Instant; 2],
}

pub(super) type Key = (usize, ConnId);

#[derive(Debug)]
pub(super) enum Delivery {
    /// The SYN reaches the server.
    Accept(Key),
    /// The connect succeeded; the client hears of it.
    Connected(Key),
    /// The connect was refused; the client hears of it.
    Refused(Key),
    ToServer(Key, Bytes),
    ToClient(Key, Bytes),
    /// The server's close reaches the client.
    ServerFin(Key),
    /// The client's close reaches the server.
    ClientFin(Key),
}

impl SimNet {
    /// The server-side id of a client connection.
    pub fn server_conn(&self, ci: usize, conn: ConnId) -> Option<SimConnId> {
        self.links.get(&(ci, conn)).map(|l| l.sim)
    }

    /// The client's connections the net considers open (connected, not closed).
    pub fn open_conns(&self, ci: usize) -> Vec<ConnId> {
        self.links
            .iter()
            .filter(|((c, _), l)| *c == ci && l.state == LinkState::Open && l.client_open)
            .map(|((_, conn), _)| *conn)
            .collect()
    }

    /// The client's open connection to the member it is on, if any.
    pub fn session_conn(&self, ci: usize) -> Option<ConnId> {
        let m = self.client_member(ci)?;
        self.links
            .iter()
            .filter(|((c, _), l)| *c == ci && l.member == Some(m) && l.client_open)
            .map(|((_, conn), _)| *conn)
            .next_back()
    }

    /// The client asked for a connection (a new link, its SYN on the way) or
    /// closed one (its FIN follows whatever it sent).
    pub(super) fn on_action(&mut self, ci: usize, a: Action) {
        match a {
            Action::Connect { conn, host } => {
                let key = (ci, conn);
                if self.links.contains_key(&key) {
                    self.violations
                        .push(format!("client {ci}: connection {conn:?} reused"));
                    return;
                }
                self.clients[ci]
                    .connects
                    .push((self.now, conn, host.clone()));
                let member = member_of(&host).filter(|m| *m < self.cluster.member_count());
                let sim = SimConnId(self.next_sim);
                self.next_sim += 1;
                let blackholed = member.is_some_and(|m| self.partitioned.contains(&m));
                self.links.insert(
                    key,
                    NetLink {
                        member,
                        sim,
                        state: LinkState::Connecting,
                        client_open: true,
                        server_open: false,
                        blackholed,
                        cut: [None; 2],
                        last: [self.now; 2],
                    },
                );
                self.by_sim.insert(sim, key);
                match member {
                    None => self.schedule(key, None, Delivery::Refused(key)),
                    Some(_) if blackholed => {}
                    Some(_) => self.schedule(key, Some(Dir::ToServer), Delivery::Accept(key)),
                }
            }
            Action::Disconnect { conn } => {
                let key = (ci, conn);
                let Some(l) = self.links.get_mut(&key) else {
                    self.violations
                        .push(format!("client {ci}: disconnect of unknown {conn:?}"));
                    return;
                };
                if !l.client_open {
                    return;
                }
                l.client_open = false;
                if l.server_open {
                    self.schedule(key, Some(Dir::ToServer), Delivery::ClientFin(key));
                } else if l.state == LinkState::Connecting {
                    // The SYN may still be on its way; Accept sees client_open false.
                } else {
                    l.state = LinkState::Dead;
                }
            }
        }
    }

    /// The client wrote bytes: they go on the link, if it is open.
    pub(super) fn on_transmit(&mut self, ci: usize, conn: ConnId, data: Bytes) {
        let key = (ci, conn);
        match self.links.get(&key) {
            Some(l) if l.client_open && l.state == LinkState::Open => {}
            Some(l) => {
                self.violations.push(format!(
                    "client {ci}: wrote on {conn:?} in state {:?} (client_open {})",
                    l.state, l.client_open
                ));
                return;
            }
            None => {
                self.violations
                    .push(format!("client {ci}: wrote on unknown {conn:?}"));
                return;
            }
        }
        if self.record_wire {
            self.clients[ci].sent.push((self.now, conn, data.clone()));
        }
        self.schedule_data(key, Dir::ToServer, data);
    }

    /// Lets only the next `k` bytes through in `dir` on the link.
    pub(super) fn set_cut(&mut self, key: Key, dir: Dir, k: usize) {
        if let Some(l) = self.links.get_mut(&key) {
            l.cut[dir.index()] = Some(k);
        }
    }

    /// Black-holes every link to `member`: nothing more is delivered either way.
    pub(super) fn blackhole_member(&mut self, member: usize) {
        for l in self.links.values_mut() {
            if l.member == Some(member) {
                l.blackholed = true;
            }
        }
    }

    pub(super) fn schedule(&mut self, key: Key, dir: Option<Dir>, d: Delivery) {
        let base = match dir {
            Some(dir) => self.latency[dir.index()],
            None => Duration::ZERO,
        };
        let jitter = if self.jitter.is_zero() || dir.is_none() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.unit())
        };
        let mut at = later(later(self.now, base), jitter);
        if let (Some(dir), Some(l)) = (dir, self.links.get_mut(&key)) {
            at = at.max(l.last[dir.index()]);
            l.last[dir.index()] = at;
        }
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }

    pub(super) fn schedule_data(&mut self, key: Key, dir: Dir, data: Bytes) {
        let make = |b: Bytes| match dir {
            Dir::ToServer => Delivery::ToServer(key, b),
            Dir::ToClient => Delivery::ToClient(key, b),
        };
        if !self.chunking || data.len() < 2 {
            self.schedule(key, Some(dir), make(data));
            return;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let n = 1 + self.rng.below(rest.len());
            let piece = rest.split_to(n);
            self.schedule(key, Some(dir), make(piece));
        }
    }

    /// Moves the server's output and closes onto the wire.
    pub(super) fn pump_server(&mut self) {
        while let Some((sim, data)) = self.cluster.poll_output() {
            if let Some(&key) = self.by_sim.get(&sim) {
                self.schedule_data(key, Dir::ToClient, data);
            }
        }
        while let Some(sim) = self.cluster.poll_close() {
            if let Some(&key) = self.by_sim.get(&sim) {
                if let Some(l) = self.links.get_mut(&key) {
                    l.server_open = false;
                }
                self.schedule(key, Some(Dir::ToClient), Delivery::ServerFin(key));
            }
        }
    }

    /// Both sides see the connection close, now; nothing more is delivered.
    pub(super) fn reset(&mut self, key: Key) {
        let Some(l) = self.links.get_mut(&key) else {
            return;
        };
        let tell_client = l.client_open;
        let tell_server = l.server_open;
        let was_open = l.state == LinkState::Open;
        l.client_open = false;
        l.server_open = false;
        l.blackholed = true;
        l.state = LinkState::Dead;
        let sim = l.sim;
        if tell_server {
            self.cluster.handle_closed(sim, self.now);
            self.pump_server();
        }
        if tell_client {
            let (ci, conn) = key;
            if was_open {
                self.clients[ci].session.handle_disconnected(conn, self.now);
            } else {
                self.clients[ci]
                    .session
                    .handle_connect_failed(conn, self.now);
            }
            self.drain_client(ci);
        }
    }

    /// Applies a cut budget to bytes about to be delivered; returns the bytes to
    /// deliver and whether the link must be reset after them.
    fn apply_cut(&mut self, key: Key, dir: Dir, mut data: Bytes) -> (Bytes, bool) {
        let Some(l) = self.links.get_mut(&key) else {
            return (data, false);
        };
        let Some(left) = l.cut[dir.index()] else {
            return (data, false);
        };
        if data.len() < left {
            l.cut[dir.index()] = Some(left - data.len());
            return (data, false);
        }
        data.truncate(left);
        l.cut[dir.index()] = Some(0);
        (data, true)
    }

    /// Bytes reaching the open end of a link in `dir` (the server's connection
    /// `sim`, or the client's), within the link's cut budget; a spent budget
    /// resets the link after them.
    fn deliver_data(&mut self, key: Key, dir: Dir, sim: SimConnId, data: Bytes) {
        let (data, reset) = self.apply_cut(key, dir, data);
        if !data.is_empty() {
            match dir {
                Dir::ToServer => {
                    self.cluster.handle_input(sim, &data, self.now);
                    self.pump_server();
                }
                Dir::ToClient => {
                    let (ci, conn) = key;
                    self.clients[ci].session.handle_input(conn, &data, self.now);
                    self.drain_client(ci);
                }
            }
        }
        if reset {
            self.reset(key);
        }
    }

    pub(super) fn deliver(&mut self, d: Delivery) {
        let key = match &d {
            Delivery::Accept(k)
            | Delivery::Connected(k)
            | Delivery::Refused(k)
            | Delivery::ToServer(k, _)
            | Delivery::ToClient(k, _)
            | Delivery::ServerFin(k)
            | Delivery::ClientFin(k) => *k,
        };
        let (ci, conn) = key;
        let Some(l) = self.links.get(&key) else {
            return;
        };
        if l.blackholed {
            return;
        }
        let (member, sim, client_open, server_open) =
            (l.member, l.sim, l.client_open, l.server_open);
        match d {
            Delivery::Accept(_) => {
                if !client_open {
                    if let Some(l) = self.links.get_mut(&key) {
                        l.state = LinkState::Dead;
                    }
                    return;
                }
                let ok = member.is_some_and(|m| self.cluster.accept(m, sim, self.now));
                if let Some(l) = self.links.get_mut(&key) {
                    l.server_open = ok;
                }
                let next = if ok {
                    Delivery::Connected(key)
                } else {
                    Delivery::Refused(key)
                };
                self.schedule(key, Some(Dir::ToClient), next);
            }
            Delivery::Connected(_) => {
                if !client_open {
                    // The client gave up meanwhile; its FIN follows the SYN.
                    if server_open {
                        self.schedule(key, Some(Dir::ToServer), Delivery::ClientFin(key));
                    }
                    return;
                }
                if let Some(l) = self.links.get_mut(&key) {
                    l.state = LinkState::Open;
                }
                self.clients[ci].session.handle_connected(conn, self.now);
                self.drain_client(ci);
            }
            Delivery::Refused(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.state = LinkState::Dead;
                    l.client_open = false;
                }
                if client_open {
                    self.clients[ci]
                        .session
                        .handle_connect_failed(conn, self.now);
                    self.drain_client(ci);
                }
            }
            Delivery::ToServer(_, data) if server_open => {
                self.deliver_data(key, Dir::ToServer, sim, data);
            }
            Delivery::ToClient(_, data) if client_open => {
                self.deliver_data(key, Dir::ToClient, sim, data);
            }
            Delivery::ToServer(..) | Delivery::ToClient(..) => {}
            Delivery::ServerFin(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.client_open = false;
                    l.state = LinkState::Dead;
                }
                if client_open {
                    self.clients[ci].session.handle_disconnected(conn, self.now);
                    self.drain_client(ci);
                }
            }
            Delivery::ClientFin(_) => {
                if let Some(l) = self.links.get_mut(&key) {
                    l.server_open = false;
                    l.state = LinkState::Dead;
                }
                if server_open {
                    self.cluster.handle_closed(sim, self.now);
                    self.pump_server();
                }
            }
        }
    }
}
