//! Real ZooKeeper 3.8 servers for tests: one standalone server ([`ZkServer`]) or an ensemble of
//! quorum members ([`Ensemble`]), all on loopback, each in its own temporary directory.
//!
//! Std only and blocking. Every JVM is started directly (`java -cp zookeeper.jar:...
//! QuorumPeerMain zoo.cfg`) with its stdout and stderr in `server.log` next to its `zoo.cfg`;
//! `slf4j-simple.jar` is put on the class path when installed, so the log has ZooKeeper's INFO
//! lines. A start waits until `srvr` answers with a `Mode:` line (not just `ruok`) and panics
//! after [`START_TIMEOUT`] with the tail of that log.
//!
//! Cleanup: dropping a [`ZkServer`] or [`Ensemble`] kills its JVMs and deletes its directory,
//! also while a test panics. Each JVM additionally gets a watchdog (`sh -c`) that holds the read
//! end of a pipe whose write end only this test process holds: when the process ends, however it
//! ends, the pipe reports EOF and the watchdog kills the JVM and removes its directory. That is
//! what cleans up after [`shared_server`], which lives in a static and is never dropped.
//!
//! ZooKeeper missing is a loud panic naming the fix, never a skip.
//!
//! [`Ensemble::start_reconfigurable`] starts an ensemble for dynamic reconfiguration
//! (`reconfigEnabled`, members in the dynamic `server.N=...;client` form, a super user or
//! `skipACL` for `reconfig`); [`Ensemble::add_member`] starts a joiner for a client to add.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one start (or restart) may take before the harness panics with the server's log.
/// Generous: the CI machine has two cores and test binaries may start servers concurrently.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The command that installs what the harness needs (the machines run as root).
pub const INSTALL_FIX: &str = "apt-get update && apt-get install -y zookeeper";

/// How long [`ZkServer::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll interval while waiting for a server.
const POLL: Duration = Duration::from_millis(25);
/// Timeout of one `srvr` probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Starts that failed because a port was taken meanwhile are retried this many times in all.
const START_ATTEMPTS: usize = 4;
/// How many lines of a server's log a panic message shows.
const LOG_TAIL_LINES: usize = 80;

const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// JVM flags of every server. On the 2-core machine they cut the CPU time a start costs by about
/// a fifth (0.32 s instead of 0.40 s) and the wall time to serving a little. They come first, so
/// [`ServerOptions::extra_jvm_flags`] can override them (e.g. `-XX:TieredStopAtLevel=4` for a
/// benchmark; HotSpot takes the last occurrence).
const BASE_JVM_FLAGS: &[&str] = &[
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
];

/// Jars added to the class path after `zookeeper.jar` when present: logging, and the Netty codec
/// and resolver that the Netty connection factory (TLS) needs. `zookeeper.jar`'s manifest names
/// the rest of its dependencies.
const OPTIONAL_JARS: &[&str] = &["slf4j-simple.jar", "netty-codec.jar", "netty-resolver.jar"];

/// The watchdog, run as `sh -c WATCHDOG zk-tests-watchdog <java pid> <dir> [<parent dir>]` with
/// its stdin a pipe from this process. The line `dismiss` ends it quietly (the harness stopped the
/// JVM itself); EOF means this process is gone: kill the JVM, wait (at most 2 s) until it is dead
/// or a zombie (init may reap orphans slowly), remove its directory and, if given, the parent
/// directory once it is empty.
const WATCHDOG: &str = r#"while read -r line; do
  [ "$line" = dismiss ] && exit 0
done
kill -KILL "$1" 2>/dev/null
n=0
while [ $n -lt 40 ] && [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null; do
  sleep 0.05; n=$((n + 1))
done
rm -rf "$2"
[ -n "$3" ] && rmdir "$3" 2>/dev/null
exit 0"#;

/// Options of a server or of every member of an ensemble.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `-Dzookeeper.extendedTypesEnabled=true` (TTL nodes). Default true.
    pub extended_types: bool,
    /// `-Dreadonlymode.enabled=true`, plus `localSessionsEnabled=true` and
    /// `localSessionsUpgradingEnabled=true` in zoo.cfg (without local sessions no client can open
    /// a session on a read-only server). Only a quorum member that lost its quorum becomes
    /// read-only; a standalone server never does. Default false.
    pub read_only_mode: bool,
    /// `tickTime` in ms; the session timeout is clamped to 2..20 ticks. Default 2000.
    pub tick_time_ms: u32,
    /// Extra zoo.cfg lines, written last (for a repeated key the last line wins).
    pub extra_cfg: Vec<String>,
    /// Extra JVM arguments, after the harness's own (so they win where HotSpot takes the last).
    pub extra_jvm_flags: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            extended_types: true,
            read_only_mode: false,
            tick_time_ms: 2000,
            extra_cfg: Vec::new(),
            extra_jvm_flags: Vec::new(),
        }
    }
}

impl ServerOptions {
    fn jvm_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.extended_types {
            flags.push("-Dzookeeper.extendedTypesEnabled=true".to_string());
        }
        if self.read_only_mode {
            flags.push("-Dreadonlymode.enabled=true".to_string());
        }
        flags.extend(self.extra_jvm_flags.iter().cloned());
        flags
    }

    /// The zoo.cfg lines every server gets, before the ensemble's and the caller's own.
    fn base_cfg(&self, data_dir: &Path, client_port: u16) -> Vec<String> {
        let mut cfg = vec![
            format!("tickTime={}", self.tick_time_ms),
            format!("dataDir={}", data_dir.display()),
            format!("clientPort={client_port}"),
            "clientPortAddress=127.0.0.1".to_string(),
            "maxClientCnxns=0".to_string(),
            "4lw.commands.whitelist=*".to_string(),
            "admin.enableServer=false".to_string(),
        ];
        if self.read_only_mode {
            cfg.push("localSessionsEnabled=true".to_string());
            cfg.push("localSessionsUpgradingEnabled=true".to_string());
        }
        cfg
    }
}

// ---------------------------------------------------------------------------------------------
// Installation

/// Where the JVM and ZooKeeper's jars are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    /// The `java` binary.
    pub java: PathBuf,
    /// `zookeeper.jar` first, then whichever of the optional jars are installed.
    pub class_path: Vec<PathBuf>,
}

impl Install {
    fn class_path_arg(&self) -> String {
        let parts: Vec<String> = self
            .class_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        parts.join(":")
    }
}

/// Finds the Debian ZooKeeper package on this machine (`/usr/share/java/zookeeper.jar`, java from
/// `$JAVA_HOME` or `/usr/bin/java`). The error says what is missing and how to install it.
pub fn zookeeper_install() -> Result<Install, String> {
    let java_home = std::env::var_os("JAVA_HOME").map(PathBuf::from);
    find_install(Path::new("/"), java_home.as_deref())
}

/// [`zookeeper_install`] under a different file-system root (for testing the detection itself):
/// looks for `<root>/usr/share/java/zookeeper.jar` and for `<java_home>/bin/java`, else
/// `<root>/usr/bin/java`.
pub fn find_install(root: &Path, java_home: Option<&Path>) -> Result<Install, String> {
    let jars = root.join("usr/share/java");
    let jar = jars.join("zookeeper.jar");
    let script = root.join("usr/share/zookeeper/bin/zkServer.sh");
    let fix = format!(
        "The zk-tests harness runs a real ZooKeeper 3.8 server and never skips. \
         Fix: `{INSTALL_FIX}` (or run `scripts/test.sh`, which installs it)."
    );
    if !jar.is_file() {
        let what = if script.is_file() {
            format!(
                "{} exists but {} is missing",
                script.display(),
                jar.display()
            )
        } else {
            format!("neither {} nor {} exists", script.display(), jar.display())
        };
        return Err(format!("ZooKeeper is not installed: {what}. {fix}"));
    }
    let java = java_home
        .map(|home| home.join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| root.join("usr/bin/java"));
    if !java.is_file() {
        return Err(format!(
            "ZooKeeper is installed but there is no Java runtime at {} (nor in $JAVA_HOME). {fix}",
            java.display()
        ));
    }
    let mut class_path = vec![jar];
    class_path.extend(
        OPTIONAL_JARS
            .iter()
            .map(|name| jars.join(name))
            .filter(|path| path.is_file()),
    );
    Ok(Install { java, class_path })
}

/// The installation, looked up once per process; panics loudly when ZooKeeper is missing.
fn install() -> &'static Install {
    static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
    match INSTALL.get_or_init(zookeeper_install) {
        Ok(install) => install,
        Err(message) => panic!(
            "\n\n========== zk-tests: ZOOKEEPER IS NOT INSTALLED ==========\n{message}\n\
             ==========================================================\n"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Ports, directories, four-letter words

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loopback port that was free a moment ago and that this process has not handed out before
/// (the set is process-wide and never shrinks, so concurrent tests never share a port and a
/// restarted server finds its port unclaimed by another test).
fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut handed_out = lock(HANDED_OUT.get_or_init(Default::default));
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("zk-tests: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("zk-tests: local_addr of a listener: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("zk-tests: no unused loopback port after 1000 tries");
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A new empty directory under [`std::env::temp_dir`] with a name no other test uses.
fn make_temp_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "zk-tests-{kind}-{}-{n}-{nanos:09}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("zk-tests: cannot create {}: {e}", dir.display()),
        }
    }
}

/// Sends a four-letter word (`ruok`, `srvr`, `isro`, `mntr`, ...) and reads the answer to EOF.
/// `timeout` bounds the whole exchange.
pub fn four_letter_word(addr: SocketAddr, cmd: &str, timeout: Duration) -> io::Result<String> {
    if cmd.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a four-letter word has 4 bytes, not {cmd:?}"),
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(cmd.as_bytes())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no EOF from {addr} after {cmd} within {timeout:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The `Mode:` value of a `srvr` answer (`leader`, `follower`, `standalone`, `read-only`, ...).
fn parse_mode(srvr: &str) -> Option<String> {
    srvr.lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(|mode| mode.trim().to_string())
}

/// The server's mode, or `None` if it does not answer or is not serving.
fn mode_at(addr: SocketAddr) -> Option<String> {
    four_letter_word(addr, "srvr", PROBE_TIMEOUT)
        .ok()
        .and_then(|answer| parse_mode(&answer))
}

// ---------------------------------------------------------------------------------------------
// One JVM and its watchdog

struct Running {
    java: Child,
    /// `None` once dismissed.
    watchdog: Option<Child>,
    reaped: bool,
}

impl Running {
    /// Tells the watchdog to exit without touching anything, and reaps it.
    fn dismiss_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let dismissed = watchdog
                .stdin
                .take()
                .is_some_and(|mut stdin| stdin.write_all(b"dismiss\n").is_ok());
            if !dismissed {
                // Without the line it would see EOF and clean up: never let it get that far.
                let _ = watchdog.kill();
            }
            let _ = watchdog.wait();
        }
    }

    /// SIGTERM and a bounded wait (`graceful`), else or then SIGKILL; always reaps the JVM.
    fn shutdown(&mut self, graceful: bool) {
        if self.reaped {
            self.dismiss_watchdog();
            return;
        }
        if graceful && send_sigterm(self.java.id()) {
            self.dismiss_watchdog();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                match self.java.try_wait() {
                    Ok(Some(_)) => {
                        self.reaped = true;
                        return;
                    }
                    Ok(None) => thread::sleep(POLL),
                    Err(_) => break,
                }
            }
        }
        // Signal first and dismiss the watchdog before reaping, so the watchdog can only ever
        // signal our (unreaped) JVM, never a recycled pid.
        let _ = self.java.kill();
        self.dismiss_watchdog();
        let _ = self.java.wait();
        self.reaped = true;
    }

    fn has_exited(&mut self) -> bool {
        if !self.reaped && !matches!(self.java.try_wait(), Ok(None)) {
            self.reaped = true;
        }
        if self.reaped {
            self.dismiss_watchdog();
        }
        self.reaped
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

fn send_sigterm(pid: u32) -> bool {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// How a wait for servers ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ready,
    /// A server logged "Address already in use": another process took a port after we chose it.
    BindError,
    /// A JVM exited for another reason.
    Exited,
    TimedOut,
}

/// One server process: its directory (`zoo.cfg`, `data/`, `server.log`) and client port.
struct Node {
    dir: PathBuf,
    client_port: u16,
    jvm_flags: Vec<String>,
    /// The watchdog removes `dir` and then this directory if it is empty (ensemble root).
    cleanup_parent: Option<PathBuf>,
    /// Length of `server.log` when the current JVM started: bind errors are looked for after it.
    log_start: Mutex<u64>,
    proc: Mutex<Option<Running>>,
}

impl Node {
    fn new(dir: PathBuf, jvm_flags: Vec<String>, cleanup_parent: Option<PathBuf>) -> Node {
        let data = dir.join("data");
        fs::create_dir_all(&data)
            .unwrap_or_else(|e| panic!("zk-tests: cannot create {}: {e}", data.display()));
        Node {
            dir,
            client_port: 0,
            jvm_flags,
            cleanup_parent,
            log_start: Mutex::new(0),
            proc: Mutex::new(None),
        }
    }

    fn addr(&self) -> SocketAddr {
        loopback(self.client_port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn write_cfg(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(self.cfg_path(), text).unwrap_or_else(|e| {
            panic!("zk-tests: cannot write {}: {e}", self.cfg_path().display())
        });
    }

    /// Removes what a failed first start of a dynamic-config member left behind (its
    /// transaction log and the `zoo.cfg.dynamic.<version>` files), so a retry on new ports
    /// starts from the freshly written config alone. Keeps `myid` and the log.
    fn forget_dynamic_state(&self) {
        let _ = fs::remove_dir_all(self.data_dir().join("version-2"));
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("zoo.cfg.dynamic.")
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Starts the JVM (stopping any previous one of this node first) and its watchdog.
    fn spawn(&self) {
        self.shutdown(false);
        let install = install();
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("zk-tests: cannot open {}: {e}", log_path.display()));
        let _ = writeln!(
            log,
            "==== zk-tests: starting {} on client port {} ====",
            self.cfg_path().display(),
            self.client_port
        );
        *lock(&self.log_start) = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("zk-tests: cannot clone a file handle: {e}"));
        let mut java = Command::new(&install.java)
            .args(BASE_JVM_FLAGS)
            .args(&self.jvm_flags)
            .arg("-cp")
            .arg(install.class_path_arg())
            .arg(MAIN_CLASS)
            .arg(self.cfg_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("zk-tests: cannot run {}: {e}", install.java.display()));
        let parent = self
            .cleanup_parent
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // Its own process group too, so a Ctrl-C that kills the tests does not kill the watchdog
        // before it has cleaned up.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("zk-tests-watchdog")
            .arg(java.id().to_string())
            .arg(&self.dir)
            .arg(parent)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(e) => {
                let _ = java.kill();
                let _ = java.wait();
                panic!("zk-tests: cannot start the watchdog shell `sh`: {e}");
            }
        };
        *lock(&self.proc) = Some(Running {
            java,
            watchdog: Some(watchdog),
            reaped: false,
        });
    }

    fn shutdown(&self, graceful: bool) {
        // Take it out first so the lock is not held during the (up to 10 s) wait.
        let running = lock(&self.proc).take();
        if let Some(mut running) = running {
            running.shutdown(graceful);
        }
    }

    fn is_running(&self) -> bool {
        lock(&self.proc)
            .as_mut()
            .is_some_and(|running| !running.has_exited())
    }

    fn pid(&self) -> Option<u32> {
        let mut proc = lock(&self.proc);
        let running = proc.as_mut()?;
        (!running.has_exited()).then(|| running.java.id())
    }

    fn mode(&self) -> Option<String> {
        mode_at(self.addr())
    }

    /// The current JVM's part of the log.
    fn current_log(&self) -> String {
        let start = *lock(&self.log_start);
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.log_path()) {
            let mut bytes = Vec::new();
            if file.seek(SeekFrom::Start(start)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        text
    }

    fn bind_failed(&self) -> bool {
        self.current_log().contains("Address already in use")
    }

    /// The last lines of the whole log, for panic messages.
    fn log_tail(&self) -> String {
        let text = fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log_path().display()));
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "---- {} (last {} lines) ----\n{}\n---- end of log ----",
            self.log_path().display(),
            lines.len() - from,
            lines[from..].join("\n")
        )
    }
}

/// Waits until `ready()` while watching `nodes` for exits and bind errors.
fn wait_until(nodes: &[&Node], timeout: Duration, ready: impl Fn() -> bool) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut polls = 0u32;
    loop {
        if ready() {
            return Outcome::Ready;
        }
        let exited = nodes.iter().any(|node| !node.is_running());
        // Reading the logs costs a little; look every half second, and at once after an exit.
        if (exited || polls % 20 == 19) && nodes.iter().any(|node| node.bind_failed()) {
            return Outcome::BindError;
        }
        if exited {
            return Outcome::Exited;
        }
        if Instant::now() >= deadline {
            return Outcome::TimedOut;
        }
        polls += 1;
        thread::sleep(POLL);
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ready => "is ready".to_string(),
        Outcome::BindError => format!("could not bind its ports ({START_ATTEMPTS} attempts)"),
        Outcome::Exited => "exited".to_string(),
        Outcome::TimedOut => format!(
            "did not serve within {} s (srvr printed no Mode: line)",
            START_TIMEOUT.as_secs()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Standalone server

/// One standalone ZooKeeper server on `127.0.0.1`. Dropping it kills the JVM and deletes its
/// directory.
pub struct ZkServer {
    opts: ServerOptions,
    node: Node,
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
        let node = Node::new(dir, opts.jvm_flags(), None);
        // From here on a panic drops `server`, which kills the JVM and removes the directory.
        let mut server = ZkServer { opts, node };
        for attempt in 1..=START_ATTEMPTS {
            server.node.client_port = free_port();
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

    fn write_cfg(&self) {
        let mut cfg = self
            .opts
            .base_cfg(&self.node.data_dir(), self.node.client_port);
        cfg.extend(self.opts.extra_cfg.iter().cloned());
        self.node.write_cfg(&cfg);
    }

    fn wait_serving(&self) -> Outcome {
        wait_until(&[&self.node], START_TIMEOUT, || self.node.mode().is_some())
    }

    fn fail(&self, what: &str, outcome: &Outcome) -> ! {
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
pub fn shared_server() -> &'static ZkServer {
    static SHARED: OnceLock<ZkServer> = OnceLock::new();
    SHARED.get_or_init(ZkServer::start)
}

// ---------------------------------------------------------------------------------------------
// Ensemble

/// `n` quorum members on loopback, each with its own client, quorum and election port.
/// Members are indexed `0..n`; member `i` has `myid` `i + 1`. Dropping it kills every JVM and
/// deletes the directory.
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
    format!(
        "{user}:{}",
        base64(&sha1(format!("{user}:{password}").as_bytes()))
    )
}

/// SHA-1 (FIPS 180-4), for [`super_digest`] only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `server.N=...` and `version=...` lines of a `conf` answer (after `membership:`): the
/// member list the server runs with, in `/zookeeper/config`'s form.
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

    fn member_jvm_flags(&self) -> Vec<String> {
        let mut flags = self.opts.jvm_flags();
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
        };
        ensemble.nodes = (1..=n).map(|id| ensemble.new_node(id)).collect();
        for attempt in 1..=START_ATTEMPTS {
            for node in &mut ensemble.nodes {
                node.client_port = free_port();
            }
            ensemble.peer_ports = (0..n).map(|_| (free_port(), free_port())).collect();
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

    fn write_cfgs(&self) {
        if self.reconfig.is_some() {
            let servers: Vec<String> = (0..self.nodes.len()).map(|i| self.server_spec(i)).collect();
            for i in 0..self.nodes.len() {
                self.write_dynamic_cfg(i, &servers);
            }
            return;
        }
        let servers: Vec<String> = self
            .peer_ports
            .iter()
            .enumerate()
            .map(|(i, (quorum, election))| {
                format!("server.{}=127.0.0.1:{quorum}:{election}", i + 1)
            })
            .collect();
        for node in &self.nodes {
            let mut cfg = self.opts.base_cfg(&node.data_dir(), node.client_port);
            cfg.push("initLimit=10".to_string());
            cfg.push("syncLimit=5".to_string());
            if self.nodes.len() == 1 {
                // Otherwise a single server line means a standalone server, with no leader.
                cfg.push("standaloneEnabled=false".to_string());
            }
            cfg.extend(servers.iter().cloned());
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
        // DigestAuthenticationProvider.generateDigest("super:secret"), and FIPS 180 vectors.
        assert_eq!(
            super_digest("super", "secret"),
            "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        );
        assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(base64(&sha1(b"")), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(base64(b"ab"), "YWI=");
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
