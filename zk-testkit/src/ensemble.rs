//! Ensembles of real ZooKeeper servers on loopback: N members from one installed
//! distribution, member by member stop, kill and restart, and dynamic
//! reconfiguration (reconfigEnabled, joiners, observers).

#![allow(clippy::module_name_repetitions)]

use crate::proxy::Proxy;
use crate::server::*;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// `n` quorum members on loopback, each with its own client, quorum and election port.
/// Members are indexed `0..n`; member `i` has `myid` `i + 1`. Dropping it kills every JVM and
/// deletes the directory.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use zk_client::ClientBuilder;
/// use zk_testkit::{Ensemble, ServerOptions};
///
/// let mut ensemble = Ensemble::start(3, ServerOptions::default());
/// let builder = ClientBuilder::new(&ensemble.connect_string()).session_timeout(Duration::from_secs(30));
/// let zk = zk_blocking::connect(&builder).unwrap();
/// let session = zk.session().unwrap().id;
/// // Kill the leader: the others elect a new one, and the client moves over.
/// let old = ensemble.leader().expect("a leader");
/// ensemble.kill(old);
/// let t = Instant::now();
/// while ensemble.leader().is_none() {
///     assert!(t.elapsed() < Duration::from_secs(30), "no new leader");
///     std::thread::sleep(Duration::from_millis(100));
/// }
/// assert!(zk.exists("/").unwrap().is_some());
/// assert_eq!(zk.session().unwrap().id, session); // the same session
/// ```
pub struct Ensemble {
    opts: ServerOptions,
    root: PathBuf,
    nodes: Vec<Node>,
    /// (quorum port, election port) of each member.
    peer_ports: Vec<(u16, u16)>,
    /// Started with [`Ensemble::start_reconfigurable`]: dynamic config, `reconfigEnabled`.
    reconfig: Option<ReconfigAccess>,
    /// Each member's role as declared in its `server.N` line (dynamic ensembles).
    roles: Vec<Role>,
    /// Started with [`Ensemble::start_partitionable`]: `peer_proxies[i][j]` carries member
    /// `i`'s quorum and election traffic to member `j` (`None` on the diagonal).
    peer_proxies: Option<Vec<Vec<Option<PeerLink>>>>,
}

/// The two proxies member `i` dials member `j` through: (quorum, election).
struct PeerLink {
    quorum: Proxy,
    election: Proxy,
    /// Whether the link is cut now.
    down: std::sync::atomic::AtomicBool,
}

impl PeerLink {
    /// Cuts or heals the link. A link already in that state is left alone: healing every
    /// link after a partition must not also drop the connections of the links that were
    /// never cut (a leader's healthy followers), which is not what a partition's end does.
    fn set_up(&self, up: bool) {
        if self.down.swap(!up, std::sync::atomic::Ordering::SeqCst) != up {
            return;
        }
        for proxy in [&self.quorum, &self.election] {
            proxy.black_hole(!up);
            // Connections that lived through a cut would deliver what they held at the heal;
            // a partition's start and end both drop them, so peers reconnect afresh.
            proxy.cut_all();
        }
    }
}

/// Who may call `reconfig` on an ensemble started with [`Ensemble::start_reconfigurable`]
/// (ZooKeeper 3.5.3+ lets only the super user, or a user with ADMIN on `/zookeeper/config`,
/// change the membership).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconfigAccess {
    /// `-Dzookeeper.skipACL=yes`: every client may, and no ACL is checked anywhere.
    SkipAcl,
    /// `-Dzookeeper.DigestAuthenticationProvider.superDigest=super:<base64 sha1>`: a client
    /// that sent `auth("digest", "super:<this password>")` is the super user and may.
    SuperUser(String),
}

impl ReconfigAccess {
    fn jvm_flags(&self) -> Vec<String> {
        match self {
            ReconfigAccess::SkipAcl => vec!["-Dzookeeper.skipACL=yes".to_string()],
            ReconfigAccess::SuperUser(password) => vec![format!(
                "-Dzookeeper.DigestAuthenticationProvider.superDigest={}",
                super_digest("super", password)
            )],
        }
    }
}

/// The role in a member's `server.N=...:role;...` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Votes (and may lead).
    Participant,
    /// Follows without voting; serves clients.
    Observer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }
}

/// `user:base64(sha1("user:password"))`, ZooKeeper's digest form of a credential (what
/// `DigestAuthenticationProvider.generateDigest` prints).
pub fn super_digest(user: &str, password: &str) -> String {
    zk_client::acl::make_digest_acl_credential(user, password)
}

fn parse_membership(conf: &str) -> Option<String> {
    let (_, after) = conf.split_once("membership:")?;
    let lines: Vec<&str> = after
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("server.") || l.starts_with("version="))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

impl Ensemble {
    /// Starts `n` members and waits until every one serves (as leader or follower) and there is
    /// exactly one leader. A start that lost a port to another process is retried on new ports.
    pub fn start(n: usize, opts: ServerOptions) -> Ensemble {
        Ensemble::start_inner(n, opts, None)
    }

    /// Like [`start`](Ensemble::start), for dynamic reconfiguration (ZooKeeper 3.5+): every
    /// member gets `reconfigEnabled=true`, `standaloneEnabled=false` and the member list in
    /// the dynamic form, `server.N=127.0.0.1:<quorum>:<election>:participant;127.0.0.1:<client>`,
    /// in a `zoo.cfg.dynamic` named by `dynamicConfigFile=` (ZooKeeper then keeps its own
    /// `zoo.cfg.dynamic.<version>` files and rewrites `zoo.cfg` to point at the newest, so a
    /// restarted member comes back with the membership it last knew). `access` says who may
    /// call `reconfig`. [`add_member`](Ensemble::add_member) starts a joiner.
    pub fn start_reconfigurable(n: usize, opts: ServerOptions, access: ReconfigAccess) -> Ensemble {
        Ensemble::start_inner(n, opts, Some(access))
    }

    /// Like [`start`](Ensemble::start), with every member's quorum and election traffic to
    /// every other member going through a [`Proxy`] of its own (one per ordered pair and
    /// port): member `i`'s `server.j` line names the proxies that forward to `j`'s real
    /// ports, while its own line keeps its real ports (it binds them). So the links between
    /// members can be cut and healed ([`set_link`](Ensemble::set_link),
    /// [`isolate`](Ensemble::isolate), [`heal_links`](Ensemble::heal_links)), as in a network
    /// partition, or slowed ([`delay_link`](Ensemble::delay_link)), to make a member lag;
    /// clients still reach every member directly.
    pub fn start_partitionable(n: usize, opts: ServerOptions) -> Ensemble {
        Ensemble::start_with(n, opts, None, true)
    }

    fn member_jvm_flags(&self) -> Vec<String> {
        // SASL's JAAS file (DIGEST-MD5 users or Kerberos) is the same for every member.
        let mut flags = self.opts.auth_jvm_flags(&self.root);
        flags.extend(self.opts.jvm_flags());
        if let Some(access) = &self.reconfig {
            flags.extend(access.jvm_flags());
        }
        flags
    }

    /// A node for member `id` (1-based) under the root, with its `myid`.
    fn new_node(&self, id: usize) -> Node {
        let node = Node::new(
            self.root.join(format!("n{id}")),
            self.member_jvm_flags(),
            Some(self.root.clone()),
        );
        let myid = node.data_dir().join("myid");
        fs::write(&myid, format!("{id}\n"))
            .unwrap_or_else(|e| panic!("zk-tests: cannot write {}: {e}", myid.display()));
        node
    }

    fn start_inner(n: usize, opts: ServerOptions, reconfig: Option<ReconfigAccess>) -> Ensemble {
        Ensemble::start_with(n, opts, reconfig, false)
    }

    fn start_with(
        n: usize,
        opts: ServerOptions,
        reconfig: Option<ReconfigAccess>,
        proxied: bool,
    ) -> Ensemble {
        assert!(n >= 1, "an ensemble needs at least one member");
        install();
        let root = make_temp_dir("ensemble");
        let mut ensemble = Ensemble {
            opts,
            root,
            nodes: Vec::new(),
            peer_ports: Vec::new(),
            reconfig,
            roles: vec![Role::Participant; n],
            peer_proxies: None,
        };
        ensemble.nodes = (1..=n).map(|id| ensemble.new_node(id)).collect();
        for attempt in 1..=START_ATTEMPTS {
            for node in &mut ensemble.nodes {
                node.client_port = free_port();
            }
            ensemble.peer_ports = (0..n).map(|_| (free_port(), free_port())).collect();
            if proxied {
                ensemble.peer_proxies = Some(ensemble.start_peer_proxies());
            }
            if attempt > 1 && ensemble.reconfig.is_some() {
                for node in &ensemble.nodes {
                    node.forget_dynamic_state();
                }
            }
            ensemble.write_cfgs();
            for node in &ensemble.nodes {
                node.spawn();
            }
            let all: Vec<&Node> = ensemble.nodes.iter().collect();
            let outcome = wait_until(&all, START_TIMEOUT, || ensemble.has_quorum());
            match outcome {
                Outcome::Ready => return ensemble,
                Outcome::BindError if attempt < START_ATTEMPTS => {
                    for node in &ensemble.nodes {
                        node.shutdown(false);
                    }
                }
                outcome => ensemble.fail("start", None, &outcome),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// A proxy per ordered pair of members and per peer port, to the real ports. The election
    /// proxies rewrite the address each member advertises when it connects (its own, real
    /// election port) to the proxy the other member reaches it through, since ZooKeeper
    /// connects back to that address (see [`Proxy::rewrite_election_address`]).
    fn start_peer_proxies(&self) -> Vec<Vec<Option<PeerLink>>> {
        let n = self.peer_ports.len();
        let links: Vec<Vec<Option<PeerLink>>> = (0..n)
            .map(|from| {
                (0..n)
                    .map(|to| {
                        (from != to).then(|| {
                            let (quorum, election) = self.peer_ports[to];
                            PeerLink {
                                quorum: Proxy::start(loopback(quorum)),
                                election: Proxy::start(loopback(election)),
                                down: std::sync::atomic::AtomicBool::new(false),
                            }
                        })
                    })
                    .collect()
            })
            .collect();
        for (from, row) in links.iter().enumerate() {
            for (to, link) in row.iter().enumerate() {
                if let (Some(link), Some(back)) = (link, &links[to][from]) {
                    link.election.rewrite_election_address(
                        &loopback(self.peer_ports[from].1).to_string(),
                        &back.election.addr().to_string(),
                    );
                }
            }
        }
        links
    }

    /// The (quorum, election) ports member `from` dials member `to` on: the proxies' with
    /// [`start_partitionable`](Ensemble::start_partitionable), else `to`'s own.
    fn peer_ports_seen_by(&self, from: usize, to: usize) -> (u16, u16) {
        match self
            .peer_proxies
            .as_ref()
            .and_then(|p| p[from][to].as_ref())
        {
            Some(link) => (link.quorum.addr().port(), link.election.addr().port()),
            None => self.peer_ports[to],
        }
    }

    fn write_cfgs(&self) {
        if self.reconfig.is_some() {
            let servers: Vec<String> = (0..self.nodes.len()).map(|i| self.server_spec(i)).collect();
            for i in 0..self.nodes.len() {
                self.write_dynamic_cfg(i, &servers);
            }
            return;
        }
        for (me, node) in self.nodes.iter().enumerate() {
            let servers = (0..self.nodes.len()).map(|i| {
                let (quorum, election) = self.peer_ports_seen_by(me, i);
                format!("server.{}=127.0.0.1:{quorum}:{election}", i + 1)
            });
            let mut cfg = self.opts.base_cfg(&node.data_dir(), node.client_port);
            cfg.push("initLimit=10".to_string());
            cfg.push("syncLimit=5".to_string());
            if self.nodes.len() == 1 {
                // Otherwise a single server line means a standalone server, with no leader.
                cfg.push("standaloneEnabled=false".to_string());
            }
            cfg.extend(servers);
            cfg.extend(self.opts.auth_cfg());
            cfg.extend(self.opts.extra_cfg.iter().cloned());
            node.write_cfg(&cfg);
        }
    }

    /// Member `i`'s zoo.cfg (static part: no clientPort, which is in its `server.N` line) and
    /// `zoo.cfg.dynamic` with `servers`.
    fn write_dynamic_cfg(&self, i: usize, servers: &[String]) {
        let node = &self.nodes[i];
        let dynamic = node.dir.join("zoo.cfg.dynamic");
        let mut text = servers.join("\n");
        text.push('\n');
        fs::write(&dynamic, text)
            .unwrap_or_else(|e| panic!("zk-tests: cannot write {}: {e}", dynamic.display()));
        let mut cfg: Vec<String> = self
            .opts
            .base_cfg(&node.data_dir(), node.client_port)
            .into_iter()
            .filter(|line| !line.starts_with("clientPort"))
            .collect();
        cfg.push("initLimit=10".to_string());
        cfg.push("syncLimit=5".to_string());
        cfg.push("reconfigEnabled=true".to_string());
        cfg.push("standaloneEnabled=false".to_string());
        cfg.push(format!("dynamicConfigFile={}", dynamic.display()));
        cfg.extend(self.opts.auth_cfg());
        cfg.extend(self.opts.extra_cfg.iter().cloned());
        node.write_cfg(&cfg);
    }

    /// Member `i`'s line in the dynamic form, as `reconfig` takes it (`joining`):
    /// `server.<i+1>=127.0.0.1:<quorum>:<election>:<role>;127.0.0.1:<client>`.
    pub fn server_spec(&self, i: usize) -> String {
        let (quorum, election) = self.peer_ports[i];
        format!(
            "server.{}=127.0.0.1:{quorum}:{election}:{};127.0.0.1:{}",
            i + 1,
            self.roles[i].as_str(),
            self.nodes[i].client_port
        )
    }

    /// Member `i`'s server id (`myid`), as `reconfig` takes it (`leaving`): `i + 1`.
    pub fn server_id(&self, i: usize) -> usize {
        i + 1
    }

    /// The membership a serving member runs with, from its `conf` answer (the leader's if
    /// there is one): its `server.N=...` lines and `version=<hex>`, as in `/zookeeper/config`.
    /// `None` if no member answers.
    pub fn membership(&self) -> Option<String> {
        let mut order: Vec<usize> = self.leader().into_iter().collect();
        order.extend((0..self.nodes.len()).filter(|&i| self.nodes[i].is_running()));
        order.into_iter().find_map(|i| {
            four_letter_word(self.nodes[i].addr(), "conf", PROBE_TIMEOUT)
                .ok()
                .and_then(|conf| parse_membership(&conf))
        })
    }

    /// Starts a joiner (ensembles from [`start_reconfigurable`](Ensemble::start_reconfigurable)
    /// only), as ZooKeeper's reconfiguration guide describes: its config lists the current
    /// membership (read from a serving member, see [`membership`](Ensemble::membership)) plus
    /// itself with `role`. It connects to the leader and serves as a non-voting follower;
    /// it is not a member until a client calls `reconfig` with
    /// [`server_spec`](Ensemble::server_spec) of the returned index as `joining`. Waits until
    /// it serves; a start that lost a port is retried on new ports.
    pub fn add_member(&mut self, role: Role) -> usize {
        assert!(
            self.reconfig.is_some(),
            "add_member needs an ensemble from Ensemble::start_reconfigurable"
        );
        let current = self.membership().unwrap_or_else(|| {
            panic!(
                "zk-tests: no member of {} answers conf",
                self.connect_string()
            )
        });
        let mut servers: Vec<String> = current
            .lines()
            .filter(|l| l.starts_with("server."))
            .map(str::to_string)
            .collect();
        let i = self.nodes.len();
        let node = self.new_node(i + 1);
        self.nodes.push(node);
        self.roles.push(role);
        self.peer_ports.push((0, 0));
        servers.push(String::new());
        for attempt in 1..=START_ATTEMPTS {
            self.nodes[i].client_port = free_port();
            self.peer_ports[i] = (free_port(), free_port());
            if attempt > 1 {
                self.nodes[i].forget_dynamic_state();
            }
            *servers.last_mut().expect("one line") = self.server_spec(i);
            self.write_dynamic_cfg(i, &servers);
            self.nodes[i].spawn();
            let node = &self.nodes[i];
            match wait_until(&[node], START_TIMEOUT, || node.mode().is_some()) {
                Outcome::Ready => return i,
                Outcome::BindError if attempt < START_ATTEMPTS => node.shutdown(false),
                outcome => self.fail("join", Some(i), &outcome),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Every member is leader or follower and exactly one is leader.
    fn has_quorum(&self) -> bool {
        let mut leaders = 0;
        for i in 0..self.nodes.len() {
            match self.mode(i).as_deref() {
                Some("leader") => leaders += 1,
                Some("follower") => {}
                _ => return false,
            }
        }
        leaders == 1
    }

    fn fail(&self, what: &str, member: Option<usize>, outcome: &Outcome) -> ! {
        let logs: Vec<String> = match member {
            Some(i) => vec![self.nodes[i].log_tail()],
            None => self.nodes.iter().map(Node::log_tail).collect(),
        };
        let modes: Vec<String> = (0..self.nodes.len())
            .map(|i| format!("{i}: {:?}", self.mode(i)))
            .collect();
        panic!(
            "zk-tests: ZooKeeper ensemble {} ({what}{}) {}; modes now [{}]\n{}",
            self.connect_string(),
            member
                .map(|i| format!(" of member {i}"))
                .unwrap_or_default(),
            describe(outcome),
            modes.join(", "),
            logs.join("\n")
        )
    }

    /// Number of members started (joiners from [`add_member`](Ensemble::add_member) and
    /// members removed by a `reconfig` included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: an ensemble has at least one member.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `"127.0.0.1:p1,127.0.0.1:p2,..."` in member order (every member started so far).
    pub fn connect_string(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| n.addr().to_string()).collect();
        hosts.join(",")
    }

    /// Client address of member `i`.
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr()
    }

    /// SIGKILL member `i`; returns once the process is gone.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].shutdown(false);
    }

    /// SIGTERM member `i`; returns once the process is gone (SIGKILL after 10 s).
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].shutdown(true);
    }

    /// Starts member `i` again (same ports and data; a running member is stopped first) and
    /// waits until it serves in any mode. It can only serve once it sees a quorum, or, with
    /// [`ServerOptions::read_only_mode`], as a read-only server.
    pub fn start_member(&mut self, i: usize) {
        self.nodes[i].shutdown(true);
        for attempt in 1..=START_ATTEMPTS {
            self.nodes[i].spawn();
            let node = &self.nodes[i];
            match wait_until(&[node], START_TIMEOUT, || node.mode().is_some()) {
                Outcome::Ready => return,
                Outcome::BindError if attempt < START_ATTEMPTS => {
                    node.shutdown(false);
                    thread::sleep(Duration::from_secs(1));
                }
                outcome => self.fail("start", Some(i), &outcome),
            }
        }
    }

    /// Member `i`'s JVM process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].pid()
    }

    /// SIGSTOP member `i`'s JVM (a long GC pause: it keeps its sockets and answers nothing);
    /// [`resume`](Ensemble::resume) continues it. False if it is not running or the signal
    /// could not be sent.
    pub fn pause(&self, i: usize) -> bool {
        self.pid(i).is_some_and(|pid| send_signal(pid, "STOP"))
    }

    /// SIGCONT member `i`'s JVM after [`pause`](Ensemble::pause).
    pub fn resume(&self, i: usize) -> bool {
        self.pid(i).is_some_and(|pid| send_signal(pid, "CONT"))
    }

    /// Cuts (`up == false`) or heals the quorum and election links between members `a` and
    /// `b`, both ways: a cut black-holes them and drops their connections. Needs an ensemble
    /// from [`start_partitionable`](Ensemble::start_partitionable) (panics otherwise).
    pub fn set_link(&self, a: usize, b: usize, up: bool) {
        let proxies = self
            .peer_proxies
            .as_ref()
            .expect("set_link needs an ensemble from Ensemble::start_partitionable");
        for (from, to) in [(a, b), (b, a)] {
            if let Some(link) = &proxies[from][to] {
                link.set_up(up);
            }
        }
    }

    /// Cuts member `i` off from every other member (clients still reach it).
    pub fn isolate(&self, i: usize) {
        for j in (0..self.nodes.len()).filter(|&j| j != i) {
            self.set_link(i, j, false);
        }
    }

    /// Delays by `latency` everything member `to` sends to member `from` on the quorum
    /// connection `from` opens to it. With `to` the leader and `from` a follower: the
    /// leader's proposals, commits, and answers to the follower's session revalidations
    /// and syncs reach the follower that late, so it serves its clients a view that far
    /// behind the leader's (a member behind a slow link), and with every follower
    /// delayed a write commits no sooner than `latency` after it was proposed. The
    /// link's connections are cut so the delay applies at once: the follower looks
    /// for its leader again and rejoins through the delayed link within seconds (wait
    /// for it with [`wait_for_mode`](Ensemble::wait_for_mode); delay one follower at a
    /// time, so the leader keeps its quorum). `Duration::ZERO` ends the delay the same
    /// way. Needs an ensemble from [`start_partitionable`](Ensemble::start_partitionable)
    /// (panics otherwise).
    pub fn delay_link(&self, from: usize, to: usize, latency: Duration) {
        let link = self
            .peer_proxies
            .as_ref()
            .expect("delay_link needs an ensemble from Ensemble::start_partitionable")[from][to]
            .as_ref()
            .expect("a member has no link to itself");
        link.quorum.set_latency(latency);
        link.quorum.cut_all();
    }

    /// Heals every link between members.
    pub fn heal_links(&self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.set_link(a, b, true);
            }
        }
    }

    /// Whether member `i`'s JVM is alive.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_running()
    }

    /// Member `i`'s `Mode:` from `srvr`: `"leader"`, `"follower"`, `"read-only"`, ...; `None` if
    /// it does not answer or does not serve.
    pub fn mode(&self, i: usize) -> Option<String> {
        self.nodes[i].mode()
    }

    /// The member that reports itself leader, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.mode(i).as_deref() == Some("leader"))
    }

    /// Polls member `i` until its mode is `mode`; false after `timeout`.
    pub fn wait_for_mode(&self, i: usize, mode: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.mode(i).as_deref() == Some(mode) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Member `i`'s directory (`zoo.cfg`, `data/`, `server.log`).
    pub fn member_dir(&self, i: usize) -> &Path {
        &self.nodes[i].dir
    }

    /// The last lines of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        self.nodes[i].log_tail()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.shutdown(false);
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io;

    #[test]
    fn mode_line_is_parsed() {
        let srvr = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(srvr).as_deref(), Some("follower"));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }

    #[test]
    fn super_digest_matches_zookeepers() {
        // DigestAuthenticationProvider.generateDigest("super:secret").
        assert_eq!(
            super_digest("super", "secret"),
            "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        );
    }

    #[test]
    fn membership_is_parsed_from_conf() {
        let conf = "clientPort=22181\nserverId=1\nmembership: \n\
                    server.1=127.0.0.1:1:2:participant;127.0.0.1:3\n\
                    server.2=127.0.0.1:4:5:participant;127.0.0.1:6\nversion=100000000\n";
        assert_eq!(
            parse_membership(conf).as_deref(),
            Some(
                "server.1=127.0.0.1:1:2:participant;127.0.0.1:3\n\
                 server.2=127.0.0.1:4:5:participant;127.0.0.1:6\nversion=100000000"
            )
        );
        assert_eq!(parse_membership("clientPort=1\n"), None);
    }

    #[test]
    fn handed_out_ports_are_distinct() {
        let ports: HashSet<u16> = (0..200).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 200);
    }

    #[test]
    fn four_letter_word_must_have_four_bytes() {
        let err = four_letter_word(loopback(1), "stat!", Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
