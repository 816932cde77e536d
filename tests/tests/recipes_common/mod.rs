//! Shared by the `recipes_*` suites: a watchdog, unique paths, running a
//! recipe's futures on each adapter's own executor, and a line-driven kazoo
//! 2.11 process for the interop tests (`ZK_KAZOO_PYTHON`; fails without it).
#![allow(dead_code)]

pub mod locks;

use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateOptions};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::peer::LinePeer;
use zk_tests::server::shared_server;

/// Bound of one wait for something that should come promptly.
pub const WAIT: Duration = Duration::from_secs(30);
/// Watchdog of one whole test.
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Runs `body` on a thread of its own; fails if it panics or hangs.
pub fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

/// Runs a kazoo interop test under [`run`]: `body` gets the shared server's
/// connect string, kazoo and a zk-tokio client started on it (in that order), and
/// a path of its own from `tag`.
pub fn run_with_kazoo(name: &str, tag: &'static str, body: fn(String, Kazoo, TokioZk, String)) {
    run(name, move || {
        let cs = shared_server().connect_string();
        let kz = Kazoo::start(&cs);
        let zk = TokioZk::connect_to(&cs);
        let path = unique(tag, "tokio");
        body(cs, kz, zk, path)
    })
}

/// A kazoo interop test: `#[test] fn $name()` running `body` under
/// [`run_with_kazoo`] with paths tagged `$tag`.
#[allow(unused_macros)]
macro_rules! kazoo_test {
    ($name:ident, $tag:literal, $body:path) => {
        #[test]
        fn $name() {
            $crate::recipes_common::run_with_kazoo(stringify!($name), $tag, $body)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use kazoo_test;

/// A path of its own for each test.
pub fn unique(tag: &str, adapter: &str) -> String {
    zk_tests::unique_path("r-", tag, adapter)
}

/// A test's start: the shared server's connect string, a path of the test's
/// own (tagged `tag`), and a client on adapter `Z`.
pub fn fresh<Z: Adapter>(tag: &str) -> (String, String, Z) {
    let cs = shared_server().connect_string();
    let path = unique(tag, Z::NAME);
    let zk = Z::connect_to(&cs);
    (cs, path, zk)
}

/// A test's end: deletes its own (empty) node `path` and closes `zk`.
pub fn remove_and_close<Z: Zk>(zk: Z, path: &str) {
    zk.delete(path, None).unwrap();
    zk.close().unwrap();
}

/// `n` clients on `cs`, each with a session of `session`.
pub fn clients<Z: Adapter>(cs: &str, n: usize, session: Duration) -> Vec<Z> {
    (0..n).map(|_| Z::connect_for(cs, session)).collect()
}

/// Closes every client of a test.
pub fn close_all<Z: Zk>(zs: Vec<Z>) {
    for z in zs {
        z.close().unwrap();
    }
}

/// Waits until `cond` holds, polling; panics with `what` after `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// An adapter, and the executor its users run futures on.
pub trait Adapter: Zk {
    /// Runs `f` to completion on the adapter's executor (tokio's runtime,
    /// smol's `block_on`, or the calling thread for zk-blocking).
    fn exec<F: Future>(f: F) -> F::Output;

    /// Connects with a session timeout of `session`.
    fn connect_for(cs: &str, session: Duration) -> Self {
        let b = ClientBuilder::new(cs)
            .session_timeout(session)
            .connect_deadline(WAIT);
        Self::connect(&b).unwrap_or_else(|e| panic!("{}: connect to {cs}: {e:?}", Self::NAME))
    }

    /// Connects with a 10 s session.
    fn connect_to(cs: &str) -> Self {
        Self::connect_for(cs, Duration::from_secs(10))
    }
}

fn tokio_rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(zk_tests::facade::multi_thread_runtime)
}

impl Adapter for TokioZk {
    fn exec<F: Future>(f: F) -> F::Output {
        tokio_rt().block_on(f)
    }
}

impl Adapter for SmolZk {
    fn exec<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }
}

impl Adapter for BlockingZk {
    fn exec<F: Future>(f: F) -> F::Output {
        zk_client::blocking::block_on(f, None).expect("no timeout")
    }
}

/// A recipe call the adapter's way: `blocking` (the `_blocking` twin) on
/// zk-blocking, the future `call` makes on the adapter's executor otherwise.
pub fn either<Z: Adapter, T, F: Future<Output = T>>(
    blocking: impl FnOnce() -> T,
    call: impl FnOnce() -> F,
) -> T {
    if Z::NAME == "blocking" {
        blocking()
    } else {
        Z::exec(call())
    }
}

/// Persistent directories (and their parents), made before a test: a lock's
/// directory (a container could be swept while empty), a probes directory.
pub fn make_dirs<Z: Zk>(zk: &Z, dirs: &[&str]) {
    for d in dirs {
        zk.create_with(
            d,
            b"".as_slice(),
            &CreateOptions {
                make_parents: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
}

/// Adds this holder's ephemeral probe under `probes`: its path, and how many
/// holders' probes there are now (this one included).
pub fn probe<Z: Zk>(zk: &Z, probes: &str) -> (String, usize) {
    let me = zk
        .create(
            &format!("{probes}/rust-"),
            b"".as_slice(),
            zk_client::CreateMode::EphemeralSequential,
        )
        .unwrap();
    (me, zk.get_children(probes).unwrap().len())
}

/// Runs `body` on `n` threads at once, each with a client of its own on
/// `cs` (closed after) and its number (0..n); their results in order. Each
/// must finish without failing.
pub fn on_threads<Z: Adapter, T: Send + 'static>(
    cs: &str,
    n: usize,
    body: impl Fn(&Z, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let body = std::sync::Arc::new(body);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (cs, body) = (cs.to_string(), body.clone());
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let r = body(&zk, i);
                zk.close().unwrap();
                r
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("a Rust thread failed"))
        .collect()
}

/// Watches a critical section from inside, for the exclusion tests: how many
/// are in it, the most at once, how often more than one was, whether the
/// fencing tokens of those entering only rose, and how many entries in all.
pub struct Section {
    inside: AtomicUsize,
    peak: AtomicUsize,
    overlaps: AtomicUsize,
    last_token: std::sync::atomic::AtomicI64,
    token_drops: AtomicUsize,
    entries: AtomicUsize,
}

impl Default for Section {
    fn default() -> Section {
        Section {
            inside: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            overlaps: AtomicUsize::new(0),
            last_token: std::sync::atomic::AtomicI64::new(i64::MIN),
            token_drops: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
        }
    }
}

impl Section {
    /// Enters; counts an overlap if another was inside. How many are inside
    /// now, this one included.
    pub fn enter(&self) -> usize {
        let n = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        if n > 1 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        n
    }

    /// Enters holding fencing token `token`; counts a drop if it is not above
    /// the last one seen.
    pub fn enter_with(&self, token: i64) -> usize {
        let n = self.enter();
        if self.last_token.swap(token, Ordering::SeqCst) >= token {
            self.token_drops.fetch_add(1, Ordering::SeqCst);
        }
        n
    }

    /// Leaves; counts the entry.
    pub fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
        self.entries.fetch_add(1, Ordering::SeqCst);
    }

    /// The most inside at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// How many entered while another was inside.
    pub fn overlaps(&self) -> usize {
        self.overlaps.load(Ordering::SeqCst)
    }

    /// How many entered with a fencing token not above the one before.
    pub fn token_drops(&self) -> usize {
        self.token_drops.load(Ordering::SeqCst)
    }

    /// Entries (left again) in all.
    pub fn entries(&self) -> usize {
        self.entries.load(Ordering::SeqCst)
    }
}

// ============================================================================ kazoo

/// A kazoo process driven line by line: each command is a piece of Python run
/// with `zk` (a started KazooClient), `objs` (a dict the snippets share) and
/// `say(text)` (prints an `ev` line) in scope; the snippet sets `result`.
/// Answers are `ok <id> <json>` or `err <id> <json repr>`; background commands
/// answer the same way when they finish.
const DRIVER: &str = r#"
import sys, json, threading, time, traceback
from kazoo.client import KazooClient
import kazoo.exceptions

out_lock = threading.Lock()
def emit(*a):
    with out_lock:
        print(*a, flush=True)

def say(text):
    emit("ev", json.dumps(text))

zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=30)
objs = {}
ns = {"zk": zk, "objs": objs, "say": say, "time": time, "threading": threading,
      "kazoo": kazoo}

def run(cid, code):
    env = dict(ns)
    try:
        exec(code, env)
        emit("ok", cid, json.dumps(env.get("result"), default=repr))
    except Exception as e:
        emit("err", cid, json.dumps(type(e).__name__ + ": " + repr(e)))

emit("ready")
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        continue
    kind, cid, code = line.split(" ", 2)
    code = json.loads(code)
    if kind == "quit":
        break
    if kind == "bg":
        threading.Thread(target=run, args=(cid, code), daemon=True).start()
    else:
        run(cid, code)
zk.stop()
zk.close()
"#;

/// The Python from `ZK_KAZOO_PYTHON`, checked to import kazoo 2.11.
pub fn kazoo_python() -> String {
    let (py, v) = zk_tests::peer::kazoo_python(
        "import kazoo.client, importlib.metadata as m; print(m.version('kazoo'))",
    );
    assert!(
        v.starts_with("2.11"),
        "kazoo {v} at {py}; these tests expect 2.11"
    );
    py
}

/// A JSON string literal (for Python snippets and expected answers), by
/// serde_json: quotes, backslashes and control characters escaped, the rest
/// as it is.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string is JSON")
}

/// A list of strings in `json.dumps` form.
pub fn js_list(v: &[&str]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| js(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A kazoo process.
pub struct Kazoo {
    peer: LinePeer,
}

impl Kazoo {
    /// Starts kazoo on `hosts`.
    pub fn start(hosts: &str) -> Kazoo {
        let py = kazoo_python();
        static N: AtomicU64 = AtomicU64::new(0);
        let script = std::env::temp_dir().join(format!(
            "zk-recipes-kazoo-{}-{}.py",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&script, DRIVER).expect("write the kazoo driver");
        let mut cmd = Command::new(py);
        cmd.arg(&script).arg(hosts);
        let mut k = Kazoo {
            peer: LinePeer::spawn(cmd, "kazoo", "quit 0 \"\"", Duration::from_secs(10)),
        };
        k.line("ready", WAIT, |l| l == "ready");
        k
    }

    fn line(&mut self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.peer.line(limit, &pred).unwrap_or_else(|| {
            panic!(
                "kazoo: no {what} within {limit:?} (other lines: {:?})",
                self.peer.backlog()
            )
        })
    }

    fn send(&mut self, kind: &str, code: &str) -> u64 {
        let id = self.peer.next_id();
        self.peer.send(&format!("{kind} {id} {}", js(code)));
        id
    }

    /// Runs `code` and returns `result` as JSON text; panics on an exception.
    pub fn run(&mut self, code: &str) -> String {
        match self.try_run(code) {
            Ok(v) => v,
            Err(e) => panic!("kazoo raised {e} running:\n{code}"),
        }
    }

    /// Runs `code`: `Ok(result as JSON)` or `Err(exception)`.
    pub fn try_run(&mut self, code: &str) -> Result<String, String> {
        let id = self.send("run", code);
        self.peer
            .answer(id, WAIT)
            .unwrap_or_else(|| panic!("kazoo: no answer within {WAIT:?} to:\n{code}"))
    }

    /// Starts `code` on a thread of kazoo's; [`finished`](Kazoo::finished) waits for it.
    pub fn spawn(&mut self, code: &str) -> u64 {
        self.send("bg", code)
    }

    /// The answer of a background command, if it came within `limit`.
    pub fn finished(&mut self, id: u64, limit: Duration) -> Option<Result<String, String>> {
        self.peer.answer(id, limit)
    }

    /// The next `say(...)` text that satisfies `pred`.
    pub fn event(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let l = self.line(what, WAIT, |l| {
            l.strip_prefix("ev ").is_some_and(|t| pred(&unjs(t)))
        });
        unjs(&l[3..])
    }
}

/// The text of a JSON string literal (simple escapes only).
fn unjs(s: &str) -> String {
    let s = s.trim();
    let inner = s.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
    let Some(inner) = inner else {
        return s.to_string();
    };
    let mut o = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => o.push('\n'),
                Some(c) => o.push(c),
                None => {}
            }
        } else {
            o.push(c);
        }
    }
    o
}
