//! [`ZkServer`]: one standalone server, and the [`shared_server`] of a test binary.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use super::host::{free_port, loopback, make_temp_dir};
use super::install::install;
use super::node::{describe, wait_until, Node, Outcome};
use super::options::ServerOptions;
use super::{START_ATTEMPTS, START_TIMEOUT};

/// One standalone ZooKeeper server on `127.0.0.1`. Dropping it kills the JVM and deletes its
/// directory.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_client::{ClientBuilder, CreateMode, SessionState};
/// use zk_testkit::{ServerOptions, ZkServer};
///
/// // TTL nodes are on by default; other zoo.cfg lines go in `extra_cfg`.
/// let mut server = ZkServer::start_with(ServerOptions {
///     extra_cfg: vec!["maxClientCnxns=100".into()],
///     ..Default::default()
/// });
/// // A session long enough to outlast the restart below (a JVM start takes seconds).
/// let builder = ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(30));
/// let zk = zk_blocking::connect(&builder).unwrap();
/// zk.create("/kept", "", CreateMode::Persistent).unwrap();
///
/// // The server goes away: the client is Suspended, then back on the same session.
/// let mut states = zk.state_stream();
/// server.kill();
/// server.restart(); // same port, same data
/// assert!(std::iter::from_fn(|| states.recv_timeout(Some(Duration::from_secs(10))))
///     .any(|s| s == SessionState::Connected));
/// assert!(zk.exists("/kept").unwrap().is_some());
/// ```
pub struct ZkServer {
    opts: ServerOptions,
    node: Node,
    /// The TLS port, when [`ServerOptions::tls`] is set.
    secure_port: Option<u16>,
    /// The zoo.cfg lines of the TLS setup (written once).
    tls_cfg: Vec<String>,
}

impl ZkServer {
    /// Starts a server with [`ServerOptions::default`] and waits until it serves.
    pub fn start() -> ZkServer {
        ZkServer::start_with(ServerOptions::default())
    }

    /// Starts a server and waits until it serves (panics after [`START_TIMEOUT`] with its log).
    /// A start that lost its port to another process is retried on a new port.
    pub fn start_with(opts: ServerOptions) -> ZkServer {
        install();
        let dir = make_temp_dir("server");
        let mut flags = opts.jvm_flags();
        // Before the caller's flags, which may override them.
        for (i, f) in opts.auth_jvm_flags(&dir).into_iter().enumerate() {
            flags.insert(i, f);
        }
        let node = Node::new(dir, flags, None);
        // From here on a panic drops `server`, which kills the JVM and removes the directory.
        let mut server = ZkServer {
            opts,
            node,
            secure_port: None,
            tls_cfg: Vec::new(),
        };
        if let Some(tls) = &server.opts.tls {
            server.tls_cfg = tls.write_stores(&server.node.dir);
        }
        for attempt in 1..=START_ATTEMPTS {
            server.node.client_port = free_port();
            if server.opts.tls.is_some() {
                server.secure_port = Some(free_port());
            }
            server.write_cfg();
            server.node.spawn();
            match server.wait_serving() {
                Outcome::Ready => return server,
                Outcome::BindError if attempt < START_ATTEMPTS => server.node.shutdown(false),
                outcome => server.fail("start", &outcome),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub(crate) fn write_cfg(&self) {
        let mut cfg = self
            .opts
            .base_cfg(&self.node.data_dir(), self.node.client_port);
        cfg.extend(self.opts.auth_cfg());
        if let Some(port) = self.secure_port {
            cfg.push(format!("secureClientPort={port}"));
            cfg.push("secureClientPortAddress=127.0.0.1".to_string());
            cfg.extend(self.tls_cfg.iter().cloned());
        }
        cfg.extend(self.opts.extra_cfg.iter().cloned());
        self.node.write_cfg(&cfg);
    }

    pub(crate) fn wait_serving(&self) -> Outcome {
        wait_until(&[&self.node], START_TIMEOUT, || self.node.mode().is_some())
    }

    pub(crate) fn fail(&self, what: &str, outcome: &Outcome) -> ! {
        panic!(
            "zk-tests: ZooKeeper server on {} ({what}) {}\n{}",
            self.node.addr(),
            describe(outcome),
            self.node.log_tail()
        )
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.node.client_port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.node.addr()
    }

    /// `"127.0.0.1:port"`, for a client's host list.
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// The TLS port, when started with [`ServerOptions::tls`].
    pub fn secure_port(&self) -> Option<u16> {
        self.secure_port
    }

    /// `127.0.0.1:secure port`; panics when the server has no TLS port.
    pub fn secure_addr(&self) -> SocketAddr {
        loopback(
            self.secure_port
                .expect("zk-tests: this server was started without ServerOptions::tls"),
        )
    }

    /// `"127.0.0.1:secure port"`, for a TLS client's host list; panics without a TLS port.
    pub fn secure_connect_string(&self) -> String {
        self.secure_addr().to_string()
    }

    /// SIGKILL; returns once the process is gone. The data directory stays for [`restart`].
    ///
    /// [`restart`]: ZkServer::restart
    pub fn kill(&mut self) {
        self.node.shutdown(false);
    }

    /// SIGTERM; returns once the process is gone (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        self.node.shutdown(true);
    }

    /// Starts the server again on the same port and data directory and waits until it serves.
    /// A server still running is stopped (SIGTERM) first. Sessions survive (they are in the
    /// transaction log). If the port is taken meanwhile the start is retried, then it panics.
    pub fn restart(&mut self) {
        self.node.shutdown(true);
        for attempt in 1..=START_ATTEMPTS {
            self.node.spawn();
            match self.wait_serving() {
                Outcome::Ready => return,
                Outcome::BindError if attempt < START_ATTEMPTS => {
                    self.node.shutdown(false);
                    thread::sleep(Duration::from_secs(1));
                }
                outcome => self.fail("restart", &outcome),
            }
        }
    }

    /// Whether the JVM is alive (it may not be serving yet or any more).
    pub fn is_running(&self) -> bool {
        self.node.is_running()
    }

    /// The JVM's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.node.pid()
    }

    /// The server's directory: `zoo.cfg`, `data/`, `server.log`. Deleted on drop.
    pub fn dir(&self) -> &Path {
        &self.node.dir
    }

    /// The file with the JVM's stdout and stderr (every start appends to it).
    pub fn log_path(&self) -> PathBuf {
        self.node.log_path()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.node.log_tail()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.node.shutdown(false);
        let _ = fs::remove_dir_all(&self.node.dir);
    }
}

/// One server per test binary for the tests that can share it, started on first use with
/// [`ServerOptions::default`]. It is never dropped; its watchdog kills it and removes its
/// directory when the test process ends.
///
/// Tests that share it should use paths of their own (they run in parallel):
///
/// ```no_run
/// let zk = zk_blocking::connect(&zk_client::ClientBuilder::new(
///     &format!("{}/my-test", zk_testkit::shared_server().connect_string()), // a chroot per test
/// ))
/// .unwrap();
/// zk.ensure_path("/").unwrap(); // creates the chroot
/// ```
pub fn shared_server() -> &'static ZkServer {
    static SHARED: OnceLock<ZkServer> = OnceLock::new();
    SHARED.get_or_init(ZkServer::start)
}
