//! The parent's side of the client processes: one per adapter (this binary again, with
//! `--client`), started with the campaign's clock epoch, stopped through their stdin, their
//! records read back from their stdout into the campaign's history. The nemesis pauses them
//! with SIGSTOP and continues them with SIGCONT, by pid.

use crate::child::{ChildArgs, Line};
use crate::history::Recorder;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the client processes reported besides their records.
#[derive(Default, Debug)]
pub struct Report {
    /// Workers still running 60 s after the stop, over every process.
    pub hung: usize,
    /// Which, with their role and adapter.
    pub hung_workers: Vec<String>,
    /// Recipe calls that failed: (call, error) -> count.
    pub errors: BTreeMap<(String, String), usize>,
    /// Processes that did not end as they should (exit status, no final line, bad lines).
    pub failures: Vec<String>,
}

/// One client process.
struct Proc {
    group: usize,
    child: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
    /// Set by the reader once the process's `Done` line arrived.
    done: Arc<Mutex<bool>>,
}

/// The client processes.
pub struct Clients {
    procs: Vec<Proc>,
    report: Arc<Mutex<Report>>,
}

impl Clients {
    /// Starts one process per entry of `args`, their records going to `rec`.
    pub fn spawn(args: &[ChildArgs], rec: &Arc<Recorder>) -> std::io::Result<Clients> {
        let exe = std::env::current_exe()?;
        let report = Arc::new(Mutex::new(Report::default()));
        let mut procs = Vec::new();
        for a in args {
            let mut child = Command::new(&exe)
                .args(a.to_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdin = child.stdin.take();
            let stdout = child.stdout.take().expect("piped stdout");
            let (rec, report, group) = (rec.clone(), report.clone(), a.group);
            let done = Arc::new(Mutex::new(false));
            let done2 = done.clone();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Line>(&line) {
                        Ok(l) => absorb(l, &rec, &report, &done2),
                        Err(e) => lock(&report)
                            .failures
                            .push(format!("client process {group}: bad line ({e}): {line}")),
                    }
                }
            });
            procs.push(Proc {
                group: a.group,
                child,
                stdin,
                reader: Some(reader),
                done,
            });
        }
        Ok(Clients { procs, report })
    }

    /// The process ids, by group.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Tells every process to stop, waits for their records (up to `timeout`: each waits 60 s
    /// for its workers), and returns what they reported. A process that does not end in time
    /// is killed and reported.
    pub fn stop(mut self, timeout: Duration) -> Report {
        for p in &mut self.procs {
            // SIGCONT in case a fault left it stopped (the nemesis heals before this).
            signal(p.child.id(), rustix::process::Signal::CONT);
            if let Some(mut s) = p.stdin.take() {
                let _ = s.write_all(b"stop\n");
            }
        }
        let deadline = Instant::now() + timeout;
        for p in &mut self.procs {
            loop {
                match p.child.try_wait() {
                    Ok(Some(status)) => {
                        if !status.success() {
                            lock(&self.report)
                                .failures
                                .push(format!("client process {}: {status}", p.group));
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        lock(&self.report).failures.push(format!(
                            "client process {}: still running {} s after the stop; killed",
                            p.group,
                            timeout.as_secs()
                        ));
                        break;
                    }
                }
            }
            if let Some(r) = p.reader.take() {
                let _ = r.join();
            }
            if !*lock(&p.done) {
                lock(&self.report).failures.push(format!(
                    "client process {}: its records ended without the final line",
                    p.group
                ));
            }
        }
        std::mem::take(&mut *lock(&self.report))
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if matches!(p.child.try_wait(), Ok(None)) {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

/// Sends `sig` to process `pid`; false if it could not be sent.
pub fn signal(pid: u32, sig: rustix::process::Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::kill_process(p, sig).is_ok())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Files one line from a client process.
fn absorb(l: Line, rec: &Recorder, report: &Mutex<Report>, done: &Mutex<bool>) {
    match l {
        Line::Reg(r) => rec.lock().regs.push(r),
        Line::Acq(a) => rec.lock().acqs.push(a),
        Line::Claim(c) => rec.lock().claims.push(c),
        Line::Protected(p) => rec.lock().protected.push(p),
        Line::Event(e) => rec.lock().events.push(e),
        Line::Add(a) => rec.lock().adds.push(a),
        Line::Error { what, error, n } => {
            *lock(report).errors.entry((what, error)).or_default() += n
        }
        Line::Done { hung, hung_workers } => {
            let mut r = lock(report);
            r.hung += hung;
            r.hung_workers.extend(hung_workers);
            drop(r);
            *lock(done) = true;
        }
    }
}
