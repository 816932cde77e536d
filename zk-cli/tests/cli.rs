//! zkcli end to end: the built binary against a real ZooKeeper 3.8 (the
//! zk-tests harness, which panics, never skips, when the server cannot start).
//! Each test works under a chroot of its own on the shared server, so the tests
//! run in parallel without seeing each other's nodes.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use zk_blocking::{ClientBuilder, Data};
use zk_tests::{shared_server, ZkServer};

const BIN: &str = env!("CARGO_BIN_EXE_zkcli");
/// No single zkcli run in these tests may take longer.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// The digest id of `alice:wrong` (base64 of SHA-1 of the credential), the
/// vector zk-proto's test server is checked against.
const ALICE_DIGEST: &str = "alice:9ussi3jBkbd4no1raUvxHSkUEN8=";

/// What one run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// A test's own corner of the server: `/zkcli-NAME`, empty, used as the chroot.
struct Env {
    /// `127.0.0.1:port/zkcli-NAME`.
    hosts: String,
    /// This test's scratch directory (the shell's history file goes there).
    dir: PathBuf,
    history: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Env {
    fn new(name: &str) -> Env {
        Env::on(&shared_server().connect_string(), name)
    }

    fn on(connect_string: &str, name: &str) -> Env {
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
    fn client(&self) -> zk_blocking::Client {
        zk_blocking::connect(&ClientBuilder::new(&self.hosts)).unwrap()
    }

    /// The binary with `-z` for this test and a clean environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = bare_command(&self.history);
        c.arg("-z").arg(&self.hosts).args(args);
        c
    }

    /// Runs `zkcli -z HOSTS ARGS...` to its end.
    fn run(&self, args: &[&str]) -> Run {
        run(self.command(args), None)
    }

    /// Runs it with `input` on stdin (the shell, reading lines from a pipe).
    fn run_input(&self, args: &[&str], input: &str) -> Run {
        run(self.command(args), Some(input))
    }
}

fn bare_command(history: &PathBuf) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("ZK_HOSTS")
        .env("ZKCLI_HISTORY", history)
        .env("NO_COLOR", "1");
    c
}

/// Runs `cmd` to its end (killing it after [`RUN_LIMIT`]), collecting its output.
fn run(mut cmd: Command, input: Option<&str>) -> Run {
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
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
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

    fn line(&self, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no line from zkcli within {within:?}: {e}"))
    }

    /// Calls `act` every 100 ms until the process ends; its exit code, every
    /// line it printed, and its stderr.
    fn drive_until_exit(mut self, mut act: impl FnMut(u32)) -> (i32, Vec<String>, String) {
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
struct Changer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Changer {
    fn start(zk: zk_blocking::Client, path: &'static str) -> Changer {
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

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn create_then_get() {
    let env = Env::new("create-get");
    let r = env.run(&["create", "/x", "hi"]).ok();
    assert_eq!(r.stdout, "/x\n");
    // Raw bytes to a pipe: no newline added.
    let r = env.run(&["get", "/x"]).ok();
    assert_eq!(r.stdout, "hi");
    assert_eq!(r.stderr, "");
    let r = env.run(&["get", "-s", "/x"]).ok();
    let l = lines(&r.stdout);
    assert_eq!(l[0], "hi");
    assert_eq!(l.len(), 12, "{l:?}");
    for want in [
        "dataVersion = 0",
        "dataLength = 2",
        "numChildren = 0",
        "aclVersion = 0",
    ] {
        assert!(l.contains(&want), "{want} in {l:?}");
    }
    assert!(l[1].starts_with("cZxid = 0x"), "{l:?}");
    assert!(
        l[2].starts_with("ctime = 20") && l[2].ends_with('Z'),
        "{l:?}"
    );
    // The same node seen by the library.
    let (data, _) = env.client().get_data("/x").unwrap();
    assert_eq!(data, "hi");
    // $ZK_HOSTS stands in for -z.
    let mut c = bare_command(&env.history);
    c.env("ZK_HOSTS", &env.hosts).args(["get", "/x"]);
    assert_eq!(run(c, None).ok().stdout, "hi");
    // A second create is NodeExists.
    let r = env.run(&["create", "/x", "again"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr, "zkcli: NodeExists: /x\n");
}

#[test]
fn get_of_a_missing_node_is_exit_1() {
    let env = Env::new("missing");
    let r = env.run(&["get", "/missing"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "zkcli: NoNode: /missing\n");
    for args in [
        &["stat", "/missing"][..],
        &["ls", "/missing"],
        &["delete", "/missing"],
        &["delete", "-r", "/missing"],
        &["set", "/missing", "x"],
        &["getacl", "/missing"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert_eq!(r.stderr, "zkcli: NoNode: /missing\n", "{args:?}");
    }
}

#[test]
fn ls_sorted_recursive_and_with_stat() {
    let env = Env::new("ls");
    for p in ["/b", "/a", "/c", "/c/z", "/c/y", "/c/y/deep"] {
        env.run(&["create", p, "d"]).ok();
    }
    assert_eq!(env.run(&["ls", "/"]).ok().stdout, "a\nb\nc\n");
    assert_eq!(env.run(&["ls", "/c"]).ok().stdout, "y\nz\n");
    assert_eq!(
        env.run(&["ls", "-R", "/"]).ok().stdout,
        "/\n/a\n/b\n/c\n/c/y\n/c/y/deep\n/c/z\n"
    );
    assert_eq!(
        env.run(&["ls", "-R", "/c"]).ok().stdout,
        "/c\n/c/y\n/c/y/deep\n/c/z\n"
    );
    let r = env.run(&["ls", "-s", "/c"]).ok();
    let l = lines(&r.stdout);
    assert_eq!(&l[..2], ["y", "z"]);
    assert!(l.contains(&"numChildren = 2"), "{l:?}");
    // An empty node lists nothing.
    assert_eq!(env.run(&["ls", "/a"]).ok().stdout, "");
}

#[test]
fn tree_draws_the_subtree() {
    let env = Env::new("tree");
    for p in [
        "/app",
        "/app/config",
        "/app/config/db",
        "/app/locks",
        "/zeta",
    ] {
        env.run(&["create", p]).ok();
    }
    let want = "/\n\
                ├── app\n\
                │   ├── config\n\
                │   │   └── db\n\
                │   └── locks\n\
                └── zeta\n";
    assert_eq!(env.run(&["tree"]).ok().stdout, want);
    assert_eq!(
        env.run(&["tree", "/app"]).ok().stdout,
        "/app\n├── config\n│   └── db\n└── locks\n"
    );
    let j = env.run(&["--json", "tree", "/app"]).ok().json();
    assert_eq!(j["path"], "/app");
    assert_eq!(j["children"][0]["name"], "config");
    assert_eq!(j["children"][0]["children"][0]["path"], "/app/config/db");
    assert_eq!(j["children"][1]["name"], "locks");
    assert_eq!(j["children"][1]["children"], serde_json::json!([]));
    let r = env.run(&["tree", "/nope"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NoNode: /nope\n"));
}

#[test]
fn set_with_versions() {
    let env = Env::new("set");
    env.run(&["create", "/v", "one"]).ok();
    let r = env.run(&["set", "-v", "5", "/v", "two"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr, "zkcli: BadVersion: /v\n");
    assert_eq!(env.run(&["get", "/v"]).ok().stdout, "one");
    env.run(&["set", "-v", "0", "/v", "two"]).ok();
    assert_eq!(env.run(&["get", "/v"]).ok().stdout, "two");
    // Version 0 is gone now.
    assert_eq!(env.run(&["set", "-v", "0", "/v", "three"]).code, 1);
    // No version: any.
    let r = env.run(&["set", "-s", "/v", "three"]).ok();
    assert!(lines(&r.stdout).contains(&"dataVersion = 2"), "{r:?}");
    let j = env.run(&["--json", "set", "/v", "four"]).ok().json();
    assert_eq!(j["path"], "/v");
    assert_eq!(j["stat"]["version"], 3);
    assert_eq!(j["stat"]["dataLength"], 4);
}

#[test]
fn create_modes_and_parents() {
    let env = Env::new("modes");
    let r = env.run(&["create", "/deep/er/node", "x"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "zkcli: NoNode: /deep/er/node\n")
    );
    assert_eq!(
        env.run(&["create", "--parents", "/deep/er/node", "x"])
            .ok()
            .stdout,
        "/deep/er/node\n"
    );
    assert_eq!(env.run(&["get", "/deep/er/node"]).ok().stdout, "x");
    // Sequential: the server's suffix is in the printed path.
    let seq = env.run(&["create", "-s", "/seq-", "s"]).ok().stdout;
    let name = seq.trim_end().strip_prefix("/seq-").expect("printed path");
    assert!(
        name.len() == 10 && name.bytes().all(|b| b.is_ascii_digit()),
        "{seq:?}"
    );
    // Ephemeral: gone once the creating zkcli has ended (it closes its session).
    assert_eq!(env.run(&["create", "-e", "/eph"]).ok().stdout, "/eph\n");
    assert_eq!(env.run(&["stat", "/eph"]).code, 1);
    env.run(&["create", "-c", "/box"]).ok();
    env.run(&["create", "-t", "60000", "/ttl", "t"]).ok();
    env.run(&["create", "-s", "-t", "60000", "/ttlseq-"]).ok();
    assert_eq!(env.run(&["get", "/ttl"]).ok().stdout, "t");
    // Conflicting flags are usage errors.
    for args in [
        &["create", "-c", "-e", "/bad"][..],
        &["create", "-e", "-t", "10", "/bad"],
        &["create", "-c", "-s", "/bad"],
    ] {
        assert_eq!(env.run(args).code, 2, "{args:?}");
    }
    // Under a chroot the nodes are where the chroot says.
    let root =
        zk_blocking::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
    let (d, _) = root.get_data("/zkcli-modes/deep/er/node").unwrap();
    assert_eq!(d, "x");
}

#[test]
fn delete_plain_versioned_and_recursive() {
    let env = Env::new("delete");
    for p in ["/d", "/d/a", "/d/a/b", "/lone"] {
        env.run(&["create", p]).ok();
    }
    let r = env.run(&["delete", "/d"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NotEmpty: /d\n"));
    let r = env.run(&["delete", "-v", "3", "/lone"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "zkcli: BadVersion: /lone\n")
    );
    assert_eq!(env.run(&["delete", "-v", "0", "/lone"]).ok().stdout, "");
    env.run(&["delete", "-r", "/d"]).ok();
    assert_eq!(env.run(&["ls", "/"]).ok().stdout, "");
    // -v and -r together make no sense.
    assert_eq!(env.run(&["delete", "-r", "-v", "1", "/x"]).code, 2);
}

#[test]
fn usage_errors_are_exit_2() {
    let env = Env::new("usage");
    for args in [
        &["ls", "--bogus", "/"][..],
        &["get"],
        &["frobnicate"],
        &["set", "/x"],
        &["set", "-v", "notanumber", "/x", "d"],
        &["--timeout", "soon", "ls", "/"],
        &["--auth", "nocolon", "ls", "/"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("error:"), "{args:?}: {r:?}");
    }
    // Found bad after parsing: still usage.
    env.run(&["create", "/n"]).ok();
    let r = env.run(&["setacl", "/n", "world:anyone:rz"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown permission 'z'"), "{r:?}");
    let r = env.run(&["get", "no-slash"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.starts_with("zkcli: InvalidPath: no-slash"),
        "{r:?}"
    );
    assert_eq!(env.run(&["4lw", "toolong"]).code, 2);
    // --help is not an error.
    let r = env.run(&["--help"]).ok();
    assert!(r.stdout.contains("Exit codes"), "{r:?}");
}

#[test]
fn unreachable_server_is_exit_3_within_seconds() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let history = std::env::temp_dir().join("zkcli-test-unreachable-history");
    let hosts = format!("127.0.0.1:{port}");
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--timeout", "2s", "ls", "/"]);
    let r = run(c, None);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(8), "{r:?}");
    // The message names the host and the last attempt's cause.
    assert!(
        r.stderr
            .starts_with(&format!("zkcli: cannot connect to {hosts}: "))
            && r.stderr.contains("refused"),
        "{r:?}"
    );
    // --connect-timeout bounds the wait by itself; --json says it as a document.
    let mut c = bare_command(&history);
    c.args([
        "-z",
        &hosts,
        "--connect-timeout",
        "1s",
        "--json",
        "get",
        "/x",
    ]);
    let r = run(c, None);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(6), "{r:?}");
    assert_eq!(r.json()["error"]["kind"], "ConnectionFailed");
    assert_eq!(r.json()["error"]["exit_code"], 3);
    // So does the shell, and a four-letter word (no session needed, no server there).
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--timeout", "1s"]);
    assert_eq!(run(c, Some("ls /\n")).code, 3);
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--timeout", "1s", "4lw", "ruok"]);
    let r = run(c, None);
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn losing_the_server_mid_watch_is_exit_3() {
    let mut server = ZkServer::start();
    let env = Env::on(&server.connect_string(), "lost");
    env.run(&["create", "/w"]).ok();
    let watching = Running::start(env.command(&["--timeout", "4s", "watch", "/w"]));
    // Let it register, then take the server away.
    thread::sleep(Duration::from_millis(500));
    server.kill();
    let started = Instant::now();
    let (code, out, err) = watching.drive_until_exit(|_| {});
    assert_eq!(code, 3, "stdout {out:?} stderr {err:?}");
    assert!(err.starts_with("zkcli: SessionExpired: /w"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn json_documents_have_the_fields() {
    let env = Env::new("json");
    let j = env.run(&["--json", "create", "/j", "hello"]).ok().json();
    assert_eq!(j["path"], "/j");
    assert_eq!(j["stat"]["version"], 0);
    let r = env.run(&["get", "--json", "/j"]).ok();
    let j = r.json();
    assert_eq!(j["path"], "/j");
    assert_eq!(j["data"], "hello");
    assert_eq!(j["encoding"], "utf8");
    let stat = j["stat"].as_object().unwrap();
    for f in [
        "czxid",
        "mzxid",
        "pzxid",
        "ctime",
        "mtime",
        "version",
        "cversion",
        "aversion",
        "ephemeralOwner",
        "dataLength",
        "numChildren",
    ] {
        assert!(stat[f].is_i64(), "{f} in {stat:?}");
    }
    assert_eq!(stat["dataLength"], 5);
    env.run(&["create", "/j/k1"]).ok();
    env.run(&["create", "/j/k0"]).ok();
    let j = env.run(&["--json", "ls", "/j"]).ok().json();
    assert_eq!(
        j,
        serde_json::json!({"path": "/j", "children": ["k0", "k1"]})
    );
    let j = env.run(&["--json", "ls", "-R", "-s", "/j"]).ok().json();
    assert_eq!(j["paths"], serde_json::json!(["/j", "/j/k0", "/j/k1"]));
    assert_eq!(j["stat"]["numChildren"], 2);
    let j = env.run(&["--json", "stat", "/j"]).ok().json();
    assert_eq!(j["stat"]["numChildren"], 2);
    let j = env.run(&["--json", "delete", "/j/k0"]).ok().json();
    assert_eq!(j["deleted"], true);
    let j = env.run(&["--json", "sync", "/j"]).ok().json();
    assert_eq!(j["path"], "/j");
    let j = env.run(&["--json", "whoami"]).ok().json();
    assert_eq!(j["identities"][0]["scheme"], "ip");
    let j = env.run(&["--json", "config"]).ok().json();
    assert!(j.get("data").is_some() && j["stat"].is_object(), "{j}");
    // Errors are documents too (and the message still goes to stderr).
    let r = env.run(&["--json", "get", "/nope"]);
    assert_eq!(r.code, 1);
    let e = r.json();
    assert_eq!(e["error"]["kind"], "NoNode");
    assert_eq!(e["error"]["code"], -101);
    assert_eq!(e["error"]["path"], "/nope");
    assert_eq!(r.stderr, "zkcli: NoNode: /nope\n");
}

#[test]
fn null_empty_and_binary_data_in_json() {
    let env = Env::new("nulls");
    env.run(&["create", "/null"]).ok();
    env.run(&["create", "/empty", ""]).ok();
    let zk = env.client();
    zk.create(
        "/bin",
        [0xffu8, 0x00, 0x10],
        zk_blocking::CreateMode::Persistent,
    )
    .unwrap();
    // What was written is what the library reads back.
    assert!(zk.get_data("/null").unwrap().0.is_null());
    assert_eq!(zk.get_data("/empty").unwrap().0, Data::new(""));
    let null = env.run(&["--json", "get", "/null"]).ok().json();
    assert_eq!(null["data"], Value::Null);
    assert_eq!(null["encoding"], Value::Null);
    let empty = env.run(&["--json", "get", "/empty"]).ok().json();
    assert_eq!(empty["data"], "");
    assert_eq!(empty["encoding"], "utf8");
    let bin = env.run(&["--json", "get", "/bin"]).ok().json();
    assert_eq!(bin["data"], "/wAQ");
    assert_eq!(bin["encoding"], "base64");
    // Human output of both is nothing at all.
    assert_eq!(env.run(&["get", "/null"]).ok().stdout, "");
    assert_eq!(env.run(&["get", "/empty"]).ok().stdout, "");
}

#[test]
fn watch_count_sees_another_clients_change() {
    let env = Env::new("watch");
    env.run(&["create", "/w", "0"]).ok();
    let zk = env.client();
    let watching = Running::start(env.command(&["watch", "--count", "1", "/w"]));
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.set_data("/w", format!("v{i}"), None).unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, ["NodeDataChanged /w"]);
}

#[test]
fn recursive_watch_streams_json_events() {
    let env = Env::new("watch-r");
    env.run(&["create", "/tree"]).ok();
    let zk = env.client();
    let watching = Running::start(env.command(&["--json", "watch", "-r", "-n", "2", "/tree"]));
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.create(
            &format!("/tree/c{i}"),
            "",
            zk_blocking::CreateMode::Persistent,
        )
        .unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out.len(), 2, "{out:?}");
    for line in &out {
        let e: Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["type"], "NodeCreated", "{e}");
        assert!(e["path"].as_str().unwrap().starts_with("/tree/c"), "{e}");
    }
}

#[test]
fn get_w_prints_the_data_then_the_change() {
    let env = Env::new("get-w");
    env.run(&["create", "/g", "old"]).ok();
    let zk = env.client();
    let watching = Running::start(env.command(&["get", "-w", "/g"]));
    // The data first; only then change it, so "old" is what was read.
    assert_eq!(watching.line(Duration::from_secs(20)), "old");
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.set_data("/g", format!("new{i}"), None).unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out[0], "NodeDataChanged /g", "{out:?}");
    assert!(out[1].starts_with("new"), "{out:?}");
    // A delete: the event, and no data after it.
    let watching = Running::start(env.command(&["get", "-w", "/g"]));
    assert!(watching.line(Duration::from_secs(20)).starts_with("new"));
    zk.delete("/g", None).unwrap();
    let (code, out, _) = watching.drive_until_exit(|_| {});
    assert_eq!((code, out), (0, vec!["NodeDeleted /g".to_string()]));
    // --json: one document, the change in it. (Nothing is printed before the
    // change, so the test cannot wait for the read: it changes the data until
    // zkcli ends, and a change before the read only makes the read newer.)
    env.run(&["create", "/g", "old"]).ok();
    let watching = Running::start(env.command(&["--json", "get", "-w", "/g"]));
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.set_data("/g", format!("json{i}"), None).unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out.len(), 1, "{out:?}");
    let j: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(j["path"], "/g");
    assert!(
        j["data"].is_string() && j["stat"]["version"].is_i64(),
        "{j}"
    );
    assert_eq!(j["change"]["type"], "NodeDataChanged");
    assert_eq!(j["change"]["path"], "/g");
    assert!(
        j["change"]["data"].as_str().unwrap().starts_with("json"),
        "{j}"
    );
    assert_eq!(j["change"]["encoding"], "utf8");
    assert!(
        j["change"]["stat"]["version"].as_i64() > j["stat"]["version"].as_i64(),
        "{j}"
    );
}

#[test]
fn four_letter_words() {
    let env = Env::new("4lw");
    let r = env.run(&["4lw", "ruok"]).ok();
    assert_eq!(r.stdout, "imok\n");
    let r = env.run(&["4lw", "srvr"]).ok();
    assert!(r.stdout.contains("Mode: standalone"), "{r:?}");
    let j = env.run(&["--json", "4lw", "ruok"]).ok().json();
    assert_eq!(j, serde_json::json!({"command": "ruok", "output": "imok"}));
    let r = env.run(&["4lw", "zzzz"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no answer"), "{r:?}");
}

#[test]
fn setacl_getacl_round_trip() {
    let env = Env::new("acl");
    env.run(&["create", "/a", "x"]).ok();
    assert_eq!(
        env.run(&["getacl", "/a"]).ok().stdout,
        "world:anyone:cdrwa\n"
    );
    let acl = "world:anyone:rw,ip:127.0.0.1:cdrwa";
    env.run(&["setacl", "/a", acl]).ok();
    assert_eq!(
        env.run(&["getacl", "/a"]).ok().stdout,
        "world:anyone:rw\nip:127.0.0.1:cdrwa\n"
    );
    let j = env.run(&["--json", "getacl", "/a"]).ok().json();
    assert_eq!(j["acl"][0]["scheme"], "world");
    assert_eq!(j["acl"][0]["id"], "anyone");
    assert_eq!(j["acl"][0]["perms"], "rw");
    assert_eq!(j["acl"][1]["id"], "127.0.0.1");
    assert_eq!(j["stat"]["aversion"], 1);
    // The ACL version is checked.
    let r = env.run(&["setacl", "-v", "0", "/a", "world:anyone:r"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: BadVersion: /a\n"));
    env.run(&["setacl", "-v", "1", "/a", "world:anyone:r"]).ok();
    // Read-only for everyone now.
    let r = env.run(&["set", "/a", "y"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NoAuth: /a\n"));
    // create --acl sets it at once.
    env.run(&["create", "--acl", "world:anyone:cr", "/b"]).ok();
    assert_eq!(env.run(&["getacl", "/b"]).ok().stdout, "world:anyone:cr\n");
}

#[test]
fn addauth_and_a_digest_acl() {
    let env = Env::new("digest");
    let acl = format!("digest:{ALICE_DIGEST}:cdrwa");
    env.run(&["create", "--acl", &acl, "/secret", "s3cret"])
        .ok();
    // Without credentials: NoAuth.
    let r = env.run(&["get", "/secret"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NoAuth: /secret\n"));
    // Wrong credentials: NoAuth too.
    assert_eq!(
        env.run(&["--auth", "digest:alice:right", "get", "/secret"])
            .code,
        1
    );
    // --auth at connect.
    let r = env
        .run(&["--auth", "digest:alice:wrong", "get", "/secret"])
        .ok();
    assert_eq!(r.stdout, "s3cret");
    // The owner sees the full digest id (others would see it masked).
    let r = env
        .run(&["--auth", "digest:alice:wrong", "getacl", "/secret"])
        .ok();
    assert_eq!(r.stdout, format!("{acl}\n"));
    // addauth in the shell: the same session then reads and writes.
    let r = env.run_input(
        &[],
        "get /secret\naddauth digest alice:wrong\nwhoami\nget /secret\nset /secret new\nget /secret\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("zkcli: NoAuth: /secret"), "{r:?}");
    let out = lines(&r.stdout);
    assert!(out.contains(&"digest: alice"), "{out:?}");
    assert!(out.contains(&"s3cret") && out.contains(&"new"), "{out:?}");
    // One-shot addauth checks the credential and exits 0.
    env.run(&["addauth", "digest", "alice:wrong"]).ok();
}

#[test]
fn shell_reads_lines_from_a_pipe_and_goes_on_after_errors() {
    let env = Env::new("shell-pipe");
    let r = env.run_input(
        &[],
        "create /p 'two words'\nget /nope\nbogus\nget /p\nls /\nexit\nls /never\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r.stdout);
    assert!(out.contains(&"/p"), "{out:?}");
    assert!(out.contains(&"two words"), "{out:?}");
    assert!(out.contains(&"p"), "{out:?}");
    assert!(r.stderr.contains("zkcli: NoNode: /nope"), "{r:?}");
    assert!(
        r.stderr.contains("unrecognized subcommand 'bogus'"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("/never"), "exit stops the shell: {r:?}");
    // --json holds for every line: one document each, errors included.
    let r = env.run_input(&["--json"], "get /p\nget /nope\nls /\n");
    assert_eq!(r.code, 0, "{r:?}");
    let docs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3, "{r:?}");
    assert_eq!(docs[0]["data"], "two words");
    assert_eq!(docs[1]["error"]["kind"], "NoNode");
    assert_eq!(docs[2]["children"], serde_json::json!(["p"]));
    // End of input leaves with 0 as well; help lists the commands.
    let r = env.run_input(&[], "help\n");
    assert_eq!(r.code, 0);
    for c in ["ls", "getacl", "4lw", "quit"] {
        assert!(r.stdout.contains(c), "{c} in {r:?}");
    }
}

#[test]
fn interactive_shell_through_a_pty() {
    let env = Env::new("shell-pty");
    let _ = std::fs::remove_file(&env.history);
    let mut cmd = env.command(&[]);
    cmd.env("TERM", "xterm");
    let mut s = rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn in a pty");
    s.exp_string("]> ").expect("the prompt");
    s.send_line("create /x hi").unwrap();
    s.exp_regex(r"[\r\n]/x\r?\n")
        .expect("create prints the path");
    s.exp_string("]> ").unwrap();
    s.send_line("get /x").unwrap();
    s.exp_regex(r"[\r\n]hi\r?\n").expect("get prints the data");
    s.exp_string("]> ").unwrap();
    s.send_line("get /nope").unwrap();
    s.exp_string("zkcli: NoNode: /nope").expect("errors print");
    s.exp_string("]> ").expect("and the shell goes on");
    // Ctrl-C ends a watch and gives the prompt back.
    s.send_line("create /w").unwrap();
    s.exp_string("]> ").unwrap();
    s.send_line("watch /w").unwrap();
    let changer = Changer::start(env.client(), "/w");
    s.exp_string("NodeDataChanged /w")
        .expect("the watch prints events");
    drop(changer);
    s.send_control('c').unwrap();
    s.exp_string("]> ")
        .expect("Ctrl-C stops the watch, not the shell");
    s.send_line("4lw ruok").unwrap();
    s.exp_string("imok").unwrap();
    s.exp_string("]> ").unwrap();
    s.send_line("quit").unwrap();
    s.exp_eof().expect("quit ends the shell");
    match s.process().wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("{other:?}"),
    }
    let history = std::fs::read_to_string(&env.history).expect("history was saved");
    for line in ["create /x hi", "get /x", "get /nope", "quit"] {
        assert!(history.lines().any(|l| l == line), "{line} in {history:?}");
    }
    // The node is really there.
    assert_eq!(env.client().get_data("/x").unwrap().0, "hi");

    // Ctrl-D leaves with 0 too.
    let mut cmd = env.command(&[]);
    cmd.env("TERM", "xterm");
    let mut s = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    s.exp_string("]> ").unwrap();
    s.send_line("get /x").unwrap();
    s.exp_regex(r"[\r\n]hi\r?\n").unwrap();
    s.exp_string("]> ").unwrap();
    s.send_control('d').unwrap();
    s.exp_eof().expect("Ctrl-D ends the shell");
    match s.process().wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("{other:?}"),
    }

    // A one-shot watch on a terminal: Ctrl-C is its normal end, exit 0.
    let mut cmd = env.command(&["watch", "/w"]);
    cmd.env("TERM", "xterm");
    let mut s = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    let changer = Changer::start(env.client(), "/w");
    s.exp_string("NodeDataChanged /w").unwrap();
    drop(changer);
    s.send_control('c').unwrap();
    s.exp_eof().unwrap();
    match s.process().wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("{other:?}"),
    }
}

/// A server with a TLS port (certificates made now) and a SASL DIGEST-MD5 user,
/// and the CA's PEM in a file.
fn secure_server() -> &'static (ZkServer, PathBuf) {
    static S: std::sync::OnceLock<(ZkServer, PathBuf)> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let ca = zk_tests::certs::TestCa::new("zkcli tests CA");
        let leaf = ca.leaf(&["127.0.0.1", "localhost"], "zk-server");
        let server = ZkServer::start_with(zk_tests::server::ServerOptions {
            tls: Some(zk_tests::server::TlsServerOptions::new(
                &leaf.cert,
                &leaf.key,
                ca.pem(),
                zk_tests::server::ClientAuth::Want,
            )),
            sasl_users: vec![("bob".into(), "bobsecret".into())],
            ..Default::default()
        });
        let dir = std::env::temp_dir().join(format!("zkcli-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, ca.pem()).unwrap();
        (server, file)
    })
}

#[test]
fn tls_commands_and_four_letter_words() {
    let (server, ca) = secure_server();
    let env = Env::on(&server.connect_string(), "tls");
    let secure = format!("{}/zkcli-tls", server.secure_connect_string());
    let ca = ca.to_str().unwrap();
    let tls = |args: &[&str]| {
        let mut all = vec!["-z", secure.as_str(), "--ca", ca];
        all.extend_from_slice(args);
        env.run(&all)
    };
    tls(&["create", "/x", "over tls"]).ok();
    assert_eq!(tls(&["get", "/x"]).ok().stdout.trim_end(), "over tls");
    assert_eq!(tls(&["4lw", "ruok"]).ok().stdout, "imok\n");
    // The node is there for a plain client too: the same server.
    assert_eq!(env.run(&["get", "/x"]).ok().stdout.trim_end(), "over tls");

    // A plain client on the TLS port, and a CA that did not sign the server: exit 3,
    // within the connect timeout, naming the cause.
    let r = env.run(&["-z", &secure, "--connect-timeout", "3s", "ls", "/"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    let other = zk_tests::certs::TestCa::new("not the server's CA");
    let other_file = env.dir.join("other-ca.pem");
    std::fs::write(&other_file, other.pem()).unwrap();
    let r = env.run(&[
        "-z",
        &secure,
        "--ca",
        other_file.to_str().unwrap(),
        "--connect-timeout",
        "3s",
        "ls",
        "/",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("not signed by a trusted CA"), "{r:?}");
    // A name the certificate lacks fails; not checking the name passes.
    let r = tls(&[
        "--tls-server-name",
        "zk.example.invalid",
        "--connect-timeout",
        "3s",
        "ls",
        "/",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("wrong host name"), "{r:?}");
    tls(&[
        "--tls-server-name",
        "zk.example.invalid",
        "--no-hostname-check",
        "ls",
        "/",
    ])
    .ok();
}

#[test]
fn sasl_digest_md5_login() {
    let (server, _) = secure_server();
    let env = Env::on(&server.connect_string(), "sasl");
    let mut c = env.command(&["--json", "--sasl-user", "bob", "whoami"]);
    c.env("ZK_SASL_PASSWORD", "bobsecret");
    let r = run(c, None).ok();
    let j = r.json();
    let ids = j["identities"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["scheme"] == "sasl" && i["user"] == "bob"),
        "{j}"
    );
    assert!(!r.stdout.contains("bobsecret") && !r.stderr.contains("bobsecret"));
    // A wrong password: exit 1 (the server's refusal), the reason named.
    let mut c = env.command(&["--sasl-user", "bob", "ls", "/"]);
    c.env("ZK_SASL_PASSWORD", "not-it");
    let r = run(c, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("SASL"), "{r:?}");
    assert!(!r.stderr.contains("not-it"), "{r:?}");
}

/// `--sasl-gssapi` against a real MIT KDC and a Kerberos ZooKeeper server: the
/// Kerberos settings reach zkcli the way they reach any Kerberos program, through
/// its environment (set on the child only).
#[cfg(feature = "gssapi")]
#[test]
fn sasl_gssapi_login() {
    let kdc = zk_testkit::Kdc::start("EXAMPLE.COM");
    let server = ZkServer::start_with(zk_tests::server::ServerOptions {
        kerberos: Some(kdc.kerberos_server("localhost")),
        ..Default::default()
    });
    let alice = kdc.add_keytab("alice");
    let hosts = format!("localhost:{}", server.port());
    let history = std::env::temp_dir().join(format!("zkcli-krb-{}", std::process::id()));
    // Each run gets a ticket cache of its own (the library stores the tickets it
    // gets from the client keytab there).
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let krb = |c: &mut Command, keytab: &std::path::Path| {
        let n = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ccache = kdc.dir().join(format!("zkcli-ccache-{n}"));
        c.env("KRB5_CONFIG", kdc.krb5_conf())
            .env("KRB5_CLIENT_KTNAME", keytab)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    };
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--sasl-gssapi", "--json", "whoami"]);
    krb(&mut c, &alice);
    let r = run(c, None).ok();
    let j = r.json();
    assert!(
        j["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["scheme"] == "sasl" && i["user"] == "alice@EXAMPLE.COM"),
        "{j}"
    );
    // No credentials for the client: exit 1 at once, the cause named.
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--sasl-gssapi", "ls", "/"]);
    krb(&mut c, &kdc.dir().join("no-such.keytab"));
    let r = run(c, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("SASL"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    // A service the KDC does not know.
    let mut c = bare_command(&history);
    c.args([
        "-z",
        &hosts,
        "--sasl-gssapi",
        "--sasl-service",
        "zk",
        "ls",
        "/",
    ]);
    krb(&mut c, &alice);
    let r = run(c, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("zk/localhost"), "{r:?}");
}

/// Issue 23: `--trace` prints each request's span on stderr as it ends (the
/// operation and path, the server that answered, the latency, the result);
/// stdout stays the command's.
#[test]
fn trace_prints_each_request_on_stderr() {
    let env = Env::new("trace");
    env.run(&["create", "/t", "x"]).ok();
    let r = env.run(&["--trace", "get", "/t"]).ok();
    assert_eq!(r.stdout, "x");
    let port = shared_server().connect_string();
    let ok = format!("trace: getData /t {port} ");
    assert!(
        lines(&r.stderr)
            .iter()
            .any(|l| l.starts_with(&ok) && l.ends_with("ms ok")),
        "{r:?}"
    );
    let r = env.run(&["--trace", "get", "/missing"]);
    assert_eq!(r.code, 1, "{r:?}");
    let failed = format!("trace: getData /missing {port} ");
    assert!(
        lines(&r.stderr)
            .iter()
            .any(|l| l.starts_with(&failed) && l.ends_with("ms NoNode (-101)")),
        "{r:?}"
    );
    // Without --trace, nothing of it.
    let r = env.run(&["get", "/t"]).ok();
    assert_eq!(r.stderr, "");
}
