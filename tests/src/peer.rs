//! A helper process driven line by line: kazoo's Python driver and Curator's JVM
//! peer for the interop suites. What every such peer needs is written here once:
//! starting it with piped stdin and stdout, a thread that turns its stdout into
//! lines, waiting for the line a test wants while keeping the others for later,
//! numbered commands answered `ok <id> <text>` / `err <id> <text>`, and a clean
//! exit (asked first, killed after a grace period).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A running peer process.
pub struct LinePeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Lines read while waiting for another kind, in order.
    backlog: VecDeque<String>,
    next_id: u64,
    /// The line that asks the peer to leave, and how long it gets to.
    quit: String,
    grace: Duration,
}

impl LinePeer {
    /// Starts `cmd` (stdin and stdout piped, stderr the test's); `what` names it
    /// in panics. On drop the peer is sent `quit` and killed if still there after
    /// `grace`.
    pub fn spawn(mut cmd: Command, what: &str, quit: &str, grace: Duration) -> LinePeer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        LinePeer {
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
            next_id: 0,
            quit: quit.to_string(),
            grace,
        }
    }

    /// The first line that satisfies `pred`, from those kept earlier and then from
    /// new ones, within `limit`; the lines that do not are kept, in order.
    pub fn line(&mut self, limit: Duration, pred: &dyn Fn(&str) -> bool) -> Option<String> {
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

    /// The lines kept so far (for a panic message).
    pub fn backlog(&self) -> &VecDeque<String> {
        &self.backlog
    }

    /// Writes one line to the peer's stdin.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the peer");
    }

    /// A fresh command id (1, 2, ...).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The answer to command `id` (`ok <id> <text>` or `err <id> <text>`), if it
    /// came within `limit`.
    pub fn answer(&mut self, id: u64, limit: Duration) -> Option<Result<String, String>> {
        let (ok, err) = (format!("ok {id} "), format!("err {id} "));
        let l = self.line(limit, &|l: &str| l.starts_with(&ok) || l.starts_with(&err))?;
        Some(match l.strip_prefix(&ok) {
            Some(v) => Ok(v.to_string()),
            None => Err(l[err.len()..].to_string()),
        })
    }

    /// Kills the process at once.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LinePeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", self.quit);
        let t = Instant::now();
        while t.elapsed() < self.grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

/// The Python interpreter `ZK_KAZOO_PYTHON` names, checked by running `check`
/// with it (it must succeed); returns it and what `check` printed (trimmed).
/// Without one the test fails, saying how to get it: it never skips.
pub fn kazoo_python(check: &str) -> (String, String) {
    let py = std::env::var("ZK_KAZOO_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ZK_KAZOO_PYTHON is not set: this interop test needs a Python with kazoo 2.11, e.g.\n  \
             export ZK_KAZOO_PYTHON=$(bash scripts/ensure-kazoo.sh)"
        )
    });
    let out = Command::new(&py)
        .args(["-c", check])
        .output()
        .unwrap_or_else(|e| panic!("ZK_KAZOO_PYTHON={py}: cannot run it: {e}"));
    assert!(
        out.status.success(),
        "ZK_KAZOO_PYTHON={py} cannot import kazoo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (py, said)
}
