//! What a campaign records: every client operation as an invocation and a completion with its
//! outcome (ok, a definite failure, or unknown), the recipes' acquisitions, claims and
//! protected writes, the sessions' state changes, and the faults.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

/// The worker number of the final reads.
pub const FINAL_WORKER: usize = usize::MAX;
/// Process ids of the final reads start here (one per member and key).
pub const FINAL_PROCESS: u64 = 1 << 62;

/// Microseconds since the campaign started.
pub type Micros = u64;

/// The campaign's clock: the machine's `CLOCK_MONOTONIC` from an epoch. It is one clock for
/// every process on the machine (the client processes get the epoch on their command line),
/// so their records and the nemesis's are ordered on one time line; it never jumps.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch_ns: u64,
}

/// `CLOCK_MONOTONIC` in nanoseconds.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock {
            epoch_ns: monotonic_ns(),
        }
    }

    /// The clock started at `epoch_ns` (another process's [`epoch_ns`](Clock::epoch_ns)).
    pub fn from_epoch(epoch_ns: u64) -> Clock {
        Clock { epoch_ns }
    }

    /// Its epoch, to hand to another process.
    pub fn epoch_ns(&self) -> u64 {
        self.epoch_ns
    }

    /// Microseconds since the start.
    pub fn now(&self) -> Micros {
        monotonic_ns().saturating_sub(self.epoch_ns) / 1000
    }
}

/// An operation on one register (a znode holding a number).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegOp {
    /// `get_data`, served by whichever member the session is on (may be stale).
    Read,
    /// `sync` then `get_data`: recorded as one operation from the sync's invocation.
    SyncRead,
    /// `create` with this value.
    Create(u64),
    /// `set_data` without a version.
    Set(u64),
    /// `set_data` with an expected version (compare-and-set).
    Cas(u64, i32),
    /// `delete`, with or without an expected version.
    Delete(Option<i32>),
}

/// What a register operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegRet {
    /// A read: the value and version, or no node.
    Value(Option<(u64, i32)>),
    /// Created.
    CreateOk,
    /// NodeExists.
    Exists,
    /// Set; the new version.
    SetOk(i32),
    /// NoNode.
    NoNode,
    /// BadVersion.
    BadVersion,
    /// Deleted.
    DeleteOk,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<R> {
    /// The server answered (a success or a definite failure such as BadVersion).
    Ok(R),
    /// It certainly did not happen (nothing was sent, or the server refused it).
    NotApplied(String),
    /// It may or may not have happened (ConnectionLoss, a timeout, an expiry in flight).
    Unknown(String),
}

impl<R> Outcome<R> {
    /// 0 ok, 1 not applied, 2 unknown (for counting).
    pub fn class(&self) -> usize {
        match self {
            Outcome::Ok(_) => 0,
            Outcome::NotApplied(_) => 1,
            Outcome::Unknown(_) => 2,
        }
    }
}

/// One register operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegRecord {
    /// The register.
    pub key: u32,
    /// The worker's current process: a new one after every unknown outcome, since the old
    /// one may still be in flight forever.
    pub process: u64,
    /// The worker (one session at a time, a new one after an expiry).
    pub worker: usize,
    /// The session it ran on (0 if none).
    pub session: i64,
    /// What was asked.
    pub op: RegOp,
    /// When it was invoked.
    pub invoke: Micros,
    /// When it completed (failed or unknown ones too).
    pub complete: Micros,
    /// How it ended.
    pub outcome: Outcome<RegRet>,
    /// The zxid the answer carries: a read's or write's `mzxid`.
    pub zxid: Option<i64>,
}

/// Which recipe an acquisition belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Recipe {
    /// `Lock`.
    Lock,
    /// `Election`.
    Election,
    /// `Semaphore`.
    Semaphore,
}

/// A lock, leadership or lease granted to a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Acquisition {
    /// The recipe.
    pub recipe: Recipe,
    /// Campaign-wide id.
    pub id: u64,
    /// The worker.
    pub worker: usize,
    /// The session that holds it.
    pub session: i64,
    /// Fencing token (the holder node's czxid; 0 for leases).
    pub token: i64,
    /// When the grant completed.
    pub acquired: Micros,
}

/// A holder's look at its status before acting: `held` means it believed it held.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    /// The acquisition.
    pub acq: u64,
    /// When it looked.
    pub t: Micros,
    /// Whether the status said held.
    pub held: bool,
}

/// A write to the resource a lock or leadership protects: `multi(check(holder node),
/// set_data(resource, token))`, so the server refuses it once the holder node is gone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Protected {
    /// The acquisition.
    pub acq: u64,
    /// Its token, written to the resource.
    pub token: i64,
    /// Invoked.
    pub invoke: Micros,
    /// Ok (with the write's zxid), refused by the check (fenced off) or unknown.
    pub outcome: Outcome<i64>,
}

/// A session state change seen by a worker's client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionEvent {
    /// The worker.
    pub worker: usize,
    /// When the listener saw it.
    pub t: Micros,
    /// The state (`Connected`, `Suspended`, `Expired`, ...).
    pub state: String,
}

/// One `Counter::add`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CounterAdd {
    /// The worker.
    pub worker: usize,
    /// Added.
    pub delta: i64,
    /// Invoked.
    pub invoke: Micros,
    /// How it ended (the value after, when ok).
    pub outcome: Outcome<i64>,
}

/// One fault of the nemesis, from injection to heal.
#[derive(Clone, Debug)]
pub struct FaultRecord {
    /// Injected.
    pub start: Micros,
    /// Healed.
    pub end: Micros,
    /// What it was, with its actual target.
    pub what: String,
}

/// Everything recorded in one campaign.
#[derive(Default, Debug)]
pub struct History {
    /// Register operations.
    pub regs: Vec<RegRecord>,
    /// Recipe grants.
    pub acqs: Vec<Acquisition>,
    /// Holders' status checks.
    pub claims: Vec<Claim>,
    /// Holders' protected writes.
    pub protected: Vec<Protected>,
    /// Session state changes.
    pub events: Vec<SessionEvent>,
    /// Counter adds.
    pub adds: Vec<CounterAdd>,
    /// The counter's value after the quiet period.
    pub counter_final: Option<i64>,
    /// The faults injected.
    pub faults: Vec<FaultRecord>,
    /// Session expiries from the members' logs: (session, when).
    pub server_expiries: Vec<(i64, Micros)>,
}

/// A shared, locked [`History`].
#[derive(Default, Debug)]
pub struct Recorder(Mutex<History>);

impl Recorder {
    /// The history, locked.
    pub fn lock(&self) -> MutexGuard<'_, History> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the history out.
    pub fn take(&self) -> History {
        std::mem::take(&mut *self.lock())
    }
}

impl History {
    /// Every record, one per line, in time order: what a failing campaign saves.
    pub fn dump(&self) -> String {
        let mut lines: Vec<(Micros, String)> = Vec::new();
        for f in &self.faults {
            lines.push((f.start, format!("nemesis start {}", f.what)));
            lines.push((f.end, format!("nemesis heal  {}", f.what)));
        }
        for r in &self.regs {
            lines.push((
                r.invoke,
                format!(
                    "reg key={} process={} worker={} session={:#x} {:?} -> {:?} zxid={:?} completed={}",
                    r.key, r.process, r.worker, r.session, r.op, r.outcome, r.zxid, r.complete
                ),
            ));
        }
        for a in &self.acqs {
            lines.push((
                a.acquired,
                format!(
                    "{:?} acquired id={} worker={} session={:#x} token={:#x}",
                    a.recipe, a.id, a.worker, a.session, a.token
                ),
            ));
        }
        for c in &self.claims {
            lines.push((c.t, format!("claim acq={} held={}", c.acq, c.held)));
        }
        for p in &self.protected {
            lines.push((
                p.invoke,
                format!(
                    "protected acq={} token={:#x} -> {:?}",
                    p.acq, p.token, p.outcome
                ),
            ));
        }
        for e in &self.events {
            lines.push((e.t, format!("session worker={} {}", e.worker, e.state)));
        }
        for a in &self.adds {
            lines.push((
                a.invoke,
                format!(
                    "counter worker={} add {} -> {:?}",
                    a.worker, a.delta, a.outcome
                ),
            ));
        }
        lines.sort_by_key(|(t, _)| *t);
        let mut out = String::new();
        for (t, line) in lines {
            let _ = writeln!(out, "{:>12} {line}", t);
        }
        if let Some(v) = self.counter_final {
            let _ = writeln!(out, "counter final value {v}");
        }
        out
    }
}
