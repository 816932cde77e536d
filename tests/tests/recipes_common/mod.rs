//! Shared by the `recipes_*` suites: a watchdog, unique paths, running a
//! recipe's futures on each adapter's own executor, and a line-driven kazoo
//! 2.11 process for the interop tests (`ZK_KAZOO_PYTHON`; fails without it).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::ClientBuilder;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};

/// Bound of one wait for something that should come promptly.
pub const WAIT: Duration = Duration::from_secs(30);
/// Watchdog of one whole test.
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Runs `body` on a thread of its own; fails if it panics or hangs.
pub fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
        })
        .expect("spawn the test body");
    match rx.recv_timeout(TEST_LIMIT) {
        Ok(Ok(())) => {}
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{name}: WATCHDOG: the test did not finish within {TEST_LIMIT:?}"),
    }
}

/// A path of its own for each test.
pub fn unique(tag: &str, adapter: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "/r-{tag}-{adapter}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
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
    let py = std::env::var("ZK_KAZOO_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ZK_KAZOO_PYTHON is not set: this interop test needs a Python with kazoo 2.11, e.g.\n  \
             export ZK_KAZOO_PYTHON=$(bash scripts/ensure-kazoo.sh)"
        )
    });
    let out = Command::new(&py)
        .args([
            "-c",
            "import kazoo.client, importlib.metadata as m; print(m.version('kazoo'))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("ZK_KAZOO_PYTHON={py}: cannot run it: {e}"));
    assert!(
        out.status.success(),
        "ZK_KAZOO_PYTHON={py} cannot import kazoo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        v.starts_with("2.11"),
        "kazoo {v} at {py}; these tests expect 2.11"
    );
    py
}

/// A JSON string literal (for Python snippets and expected answers).
pub fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
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
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    backlog: VecDeque<String>,
    next_id: u64,
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
        let mut child = Command::new(py)
            .arg(&script)
            .arg(hosts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kazoo");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut k = Kazoo {
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
            next_id: 0,
        };
        k.line("ready", WAIT, |l| l == "ready");
        k
    }

    fn line(&mut self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.try_line(limit, &pred).unwrap_or_else(|| {
            panic!(
                "kazoo: no {what} within {limit:?} (other lines: {:?})",
                self.backlog
            )
        })
    }

    fn try_line(&mut self, limit: Duration, pred: &dyn Fn(&str) -> bool) -> Option<String> {
        if let Some(i) = self.backlog.iter().position(|l| pred(l)) {
            return self.backlog.remove(i);
        }
        let t = Instant::now();
        loop {
            let left = limit.checked_sub(t.elapsed())?;
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return Some(l),
                Ok(l) => self.backlog.push_back(l),
                Err(_) => return None,
            }
        }
    }

    fn send(&mut self, kind: &str, code: &str) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        writeln!(self.stdin, "{kind} {id} {}", js(code)).expect("write to kazoo");
        id
    }

    fn answer(&mut self, id: u64, limit: Duration) -> Option<Result<String, String>> {
        let (ok, err) = (format!("ok {id} "), format!("err {id} "));
        let l = self.try_line(limit, &|l: &str| l.starts_with(&ok) || l.starts_with(&err))?;
        Some(match l.strip_prefix(&ok) {
            Some(v) => Ok(v.to_string()),
            None => Err(l[err.len()..].to_string()),
        })
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
        self.answer(id, WAIT)
            .unwrap_or_else(|| panic!("kazoo: no answer within {WAIT:?} to:\n{code}"))
    }

    /// Starts `code` on a thread of kazoo's; [`finished`](Kazoo::finished) waits for it.
    pub fn spawn(&mut self, code: &str) -> u64 {
        self.send("bg", code)
    }

    /// The answer of a background command, if it came within `limit`.
    pub fn finished(&mut self, id: u64, limit: Duration) -> Option<Result<String, String>> {
        self.answer(id, limit)
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

impl Drop for Kazoo {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit 0 \"\"");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}
