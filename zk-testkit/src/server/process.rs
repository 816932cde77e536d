//! One JVM process and its watchdog, which kills the JVM and removes its directory when
//! this test process ends, however it ends.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Instant;

use super::{POLL, STOP_TIMEOUT};

/// The watchdog, run as `sh -c WATCHDOG zk-tests-watchdog <java pid> <dir> [<parent dir>]` with
/// its stdin a pipe from this process. The line `dismiss` ends it quietly (the harness stopped the
/// JVM itself); EOF means this process is gone: kill the JVM, wait (at most 2 s) until it is dead
/// or a zombie (init may reap orphans slowly), remove its directory and, if given, the parent
/// directory once it is empty.
pub(crate) const WATCHDOG: &str = r#"while read -r line; do
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

pub(crate) struct Running {
    pub(crate) java: Child,
    /// `None` once dismissed.
    pub(crate) watchdog: Option<Child>,
    pub(crate) reaped: bool,
}

impl Running {
    /// Tells the watchdog to exit without touching anything, and reaps it.
    pub(crate) fn dismiss_watchdog(&mut self) {
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
    pub(crate) fn shutdown(&mut self, graceful: bool) {
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

    pub(crate) fn has_exited(&mut self) -> bool {
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

pub(crate) fn send_sigterm(pid: u32) -> bool {
    send_signal(pid, "TERM")
}

/// `kill -<signal> <pid>`; whether it succeeded.
pub(crate) fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts the [`WATCHDOG`] of process `pid`, which removes `dir` (and `parent` once empty) when
/// this test process ends. Its own process group too, so a Ctrl-C that kills the tests does not
/// kill the watchdog before it has cleaned up.
pub(crate) fn spawn_watchdog(pid: u32, dir: &Path, parent: Option<&Path>) -> io::Result<Child> {
    let parent = parent.map(|p| p.display().to_string()).unwrap_or_default();
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("zk-tests-watchdog")
        .arg(pid.to_string())
        .arg(dir)
        .arg(parent)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}
