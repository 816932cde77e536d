//! The system under test: a three-member ensemble whose members reach each other through
//! fault proxies (`Ensemble::start_partitionable`), and one proxy per client group and member,
//! so the nemesis can also cut or black-hole a group's connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zk_testkit::proxy::Proxy;
use zk_testkit::{Ensemble, ServerOptions};

/// Members in the ensemble.
pub const MEMBERS: usize = 3;
/// Client groups: one per adapter (tokio, smol, blocking), each a process of its own.
pub const GROUPS: usize = 3;
/// ZooKeeper's tick: sessions time out within 2..20 ticks; a follower that hears nothing from
/// its leader for `syncLimit` ticks drops out.
pub const TICK_MS: u32 = 1000;

/// The ensemble and the client proxies.
pub struct Cluster {
    /// The members.
    pub ensemble: Ensemble,
    /// `clients[g][m]`: group `g`'s proxy to member `m`.
    pub clients: Vec<Vec<Proxy>>,
    /// `client_pids[g]`: group `g`'s client process (set once they are started).
    pub client_pids: Vec<u32>,
}

impl Cluster {
    /// Starts the ensemble (waits for a leader) and the client proxies.
    pub fn start() -> Cluster {
        let opts = ServerOptions {
            tick_time_ms: TICK_MS,
            extra_cfg: vec![
                "maxClientCnxns=0".to_string(),
                "initLimit=20".to_string(),
                "syncLimit=5".to_string(),
            ],
            // The members' log times are then UTC, like the wall clock the campaign maps
            // them with (`serverlog`).
            extra_jvm_flags: vec!["-Duser.timezone=UTC".to_string()],
            ..ServerOptions::default()
        };
        let ensemble = Ensemble::start_partitionable(MEMBERS, opts);
        let clients = (0..GROUPS)
            .map(|_| {
                (0..MEMBERS)
                    .map(|m| Proxy::start(ensemble.client_addr(m)))
                    .collect()
            })
            .collect();
        Cluster {
            ensemble,
            clients,
            client_pids: Vec::new(),
        }
    }

    /// Group `g`'s connect string (its proxies, in member order).
    pub fn connect_string(&self, g: usize) -> String {
        let hosts: Vec<String> = self.clients[g].iter().map(Proxy::connect_string).collect();
        hosts.join(",")
    }

    /// The members' own client addresses (for the final reads).
    pub fn direct_connect_string(&self) -> String {
        self.ensemble.connect_string()
    }

    /// Member addresses, for logs.
    pub fn member_addrs(&self) -> Vec<SocketAddr> {
        (0..MEMBERS).map(|m| self.ensemble.client_addr(m)).collect()
    }

    /// Closes every connection of group `g` (they reconnect at once).
    pub fn cut_clients(&self, g: usize) {
        for p in &self.clients[g] {
            p.cut_all();
        }
    }

    /// Group `g`'s connections forward nothing (`on`) or forward again.
    pub fn black_hole_clients(&self, g: usize, on: bool) {
        for p in &self.clients[g] {
            p.black_hole(on);
        }
    }

    /// Whether every member serves and exactly one leads.
    pub fn healthy(&self) -> bool {
        let modes: Vec<Option<String>> = (0..MEMBERS).map(|m| self.ensemble.mode(m)).collect();
        modes
            .iter()
            .all(|m| matches!(m.as_deref(), Some("leader") | Some("follower")))
            && modes
                .iter()
                .filter(|m| m.as_deref() == Some("leader"))
                .count()
                == 1
    }

    /// Waits until [`healthy`](Cluster::healthy); false after `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.healthy() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}
