//! One server's JVM: its command line, start, stop and restart, and the wait until it
//! serves (or why it did not).

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::fourlw::mode_at;
use super::host::{lock, loopback};
use super::install::install;
use super::process::{spawn_watchdog, Running};
use super::{LOG_TAIL_LINES, POLL, START_ATTEMPTS, START_TIMEOUT};

pub(crate) const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// JVM flags of every server. On the 2-core machine they cut the CPU time a start costs by about
/// a fifth (0.32 s instead of 0.40 s) and the wall time to serving a little. They come first, so
/// [`ServerOptions::extra_jvm_flags`] can override them (e.g. `-XX:TieredStopAtLevel=4` for a
/// benchmark; HotSpot takes the last occurrence).
pub(crate) const BASE_JVM_FLAGS: &[&str] = &[
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
];

/// How a wait for servers ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ready,
    /// A server logged "Address already in use": another process took a port after we chose it.
    BindError,
    /// A JVM exited for another reason.
    Exited,
    TimedOut,
}

/// One server process: its directory (`zoo.cfg`, `data/`, `server.log`) and client port.
pub(crate) struct Node {
    pub(crate) dir: PathBuf,
    pub(crate) client_port: u16,
    pub(crate) jvm_flags: Vec<String>,
    /// The watchdog removes `dir` and then this directory if it is empty (ensemble root).
    pub(crate) cleanup_parent: Option<PathBuf>,
    /// Length of `server.log` when the current JVM started: bind errors are looked for after it.
    pub(crate) log_start: Mutex<u64>,
    pub(crate) proc: Mutex<Option<Running>>,
}

impl Node {
    pub(crate) fn new(
        dir: PathBuf,
        jvm_flags: Vec<String>,
        cleanup_parent: Option<PathBuf>,
    ) -> Node {
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

    pub(crate) fn addr(&self) -> SocketAddr {
        loopback(self.client_port)
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub(crate) fn write_cfg(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(self.cfg_path(), text).unwrap_or_else(|e| {
            panic!("zk-tests: cannot write {}: {e}", self.cfg_path().display())
        });
    }

    /// Removes what a failed first start of a dynamic-config member left behind (its
    /// transaction log and the `zoo.cfg.dynamic.<version>` files), so a retry on new ports
    /// starts from the freshly written config alone. Keeps `myid` and the log.
    pub(crate) fn forget_dynamic_state(&self) {
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
    pub(crate) fn spawn(&self) {
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
        let watchdog = spawn_watchdog(java.id(), &self.dir, self.cleanup_parent.as_deref());
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

    pub(crate) fn shutdown(&self, graceful: bool) {
        // Take it out first so the lock is not held during the (up to 10 s) wait.
        let running = lock(&self.proc).take();
        if let Some(mut running) = running {
            running.shutdown(graceful);
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        lock(&self.proc)
            .as_mut()
            .is_some_and(|running| !running.has_exited())
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        let mut proc = lock(&self.proc);
        let running = proc.as_mut()?;
        (!running.has_exited()).then(|| running.java.id())
    }

    pub(crate) fn mode(&self) -> Option<String> {
        mode_at(self.addr())
    }

    /// The current JVM's part of the log.
    pub(crate) fn current_log(&self) -> String {
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

    pub(crate) fn bind_failed(&self) -> bool {
        self.current_log().contains("Address already in use")
    }

    /// The last lines of the whole log, for panic messages.
    pub(crate) fn log_tail(&self) -> String {
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
pub(crate) fn wait_until(nodes: &[&Node], timeout: Duration, ready: impl Fn() -> bool) -> Outcome {
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

pub(crate) fn describe(outcome: &Outcome) -> String {
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
