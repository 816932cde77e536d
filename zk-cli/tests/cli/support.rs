//! Running zkcli: a chroot per test ([`Env`]), one run with a time limit, a running
//! child to talk to, and a second client that changes nodes meanwhile.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use zk_blocking::ClientBuilder;
use zk_tests::shared_server;

const BIN: &str = env!("CARGO_BIN_EXE_zkcli");
/// No single zkcli run in these tests may take longer.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// The digest id of `alice:wrong` (base64 of SHA-1 of the credential), the
/// vector zk-proto's test server is checked against.
pub(crate) const ALICE_DIGEST: &str = "alice:9ussi3jBkbd4no1raUvxHSkUEN8=";

/// What one run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Run {
    pub(crate) fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// A test's own corner of the server: `/zkcli-NAME`, empty, used as the chroot.
pub(crate) struct Env {
    /// `127.0.0.1:port/zkcli-NAME`.
    pub(crate) hosts: String,
    /// This test's scratch directory (the shell's history file goes there).
    pub(crate) dir: PathBuf,
    pub(crate) history: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Env {
    pub(crate) fn new(name: &str) -> Env {
        Env::on(&shared_server().connect_string(), name)
    }

    pub(crate) fn on(connect_string: &str, name: &str) -> Env {
        let admin = zk_blocking::connect(&ClientBuilder::new(connect_string))
            .expect("the test server takes a session");
        let root = format!("/zkcli-{name}");
        admin.delete_recursive(&root).unwrap();
        admin.ensure_path(&root).unwrap();
        admin.close().unwrap();
        let dir = std::env::temp_dir().join(format!("zkcli-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Env {
            hosts: format!("{connect_string}{root}"),
            history: dir.join("history"),
            dir,
        }
    }

    /// Another client, in the same chroot.
    pub(crate) fn client(&self) -> zk_blocking::Client {
        zk_blocking::connect(&ClientBuilder::new(&self.hosts)).unwrap()
    }

    /// The binary with `-z` for this test and a clean environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = bare_command(&self.history);
        c.arg("-z").arg(&self.hosts).args(args);
        c
    }

    /// Runs `zkcli -z HOSTS ARGS...` to its end.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(self.command(args), None)
    }

    /// Runs it with `input` on stdin (the shell, reading lines from a pipe).
    pub(crate) fn run_input(&self, args: &[&str], input: &str) -> Run {
        run(self.command(args), Some(input))
    }
}

pub(crate) fn bare_command(history: &PathBuf) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("ZK_HOSTS")
        .env("ZKCLI_HISTORY", history)
        .env("NO_COLOR", "1");
    c
}

/// Runs `cmd` to its end (killing it after [`RUN_LIMIT`]), collecting its output.
pub(crate) fn run(mut cmd: Command, input: Option<&str>) -> Run {
    let started = Instant::now();
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("zkcli starts");
    if let Some(text) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let code = wait_limited(&mut child, RUN_LIMIT);
    Run {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: started.elapsed(),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut b = Vec::new();
        let _ = r.read_to_end(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    })
}

/// The exit code; kills the child and panics if it runs past `limit`.
fn wait_limited(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status
                .code()
                .unwrap_or_else(|| panic!("zkcli ended by a signal: {status:?}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zkcli still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A zkcli that runs while the test acts: its stdout line by line.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
    pub(crate) stderr: Option<thread::JoinHandle<String>>,
}

impl Running {
    pub(crate) fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zkcli starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Some(reader(child.stderr.take().unwrap()));
        Running {
            child,
            lines,
            stderr,
        }
    }

    pub(crate) fn line(&self, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no line from zkcli within {within:?}: {e}"))
    }

    /// Calls `act` every 100 ms until the process ends; its exit code, every
    /// line it printed, and its stderr.
    pub(crate) fn drive_until_exit(
        mut self,
        mut act: impl FnMut(u32),
    ) -> (i32, Vec<String>, String) {
        let deadline = Instant::now() + RUN_LIMIT;
        let mut i = 0;
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().expect("exited, not killed");
            }
            assert!(Instant::now() < deadline, "zkcli did not end");
            act(i);
            i += 1;
            thread::sleep(Duration::from_millis(100));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let lines = self.lines.iter().collect();
        (code, lines, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets a node's data every 100 ms on a thread of its own, until dropped
/// (for a watcher whose registration the test cannot see).
pub(crate) struct Changer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Changer {
    pub(crate) fn start(zk: zk_blocking::Client, path: &'static str) -> Changer {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut i = 0;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                zk.set_data(path, format!("c{i}"), None).unwrap();
                i += 1;
                thread::sleep(Duration::from_millis(100));
            }
        });
        Changer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Changer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}
