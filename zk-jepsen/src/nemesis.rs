//! The nemesis: a schedule of faults drawn from the seed, applied one at a time, each healed
//! before the next, and everything healed before the end.

use crate::cluster::{Cluster, GROUPS, MEMBERS};
use crate::history::{Clock, FaultRecord, Recorder};
use crate::rng::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fault, as drawn (targets that depend on the moment, such as the leader, are resolved when
/// it is injected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Member cut off from the other two (a minority of one; the others are the majority).
    IsolateMember(usize),
    /// The current leader cut off from the others.
    IsolateLeader,
    /// Only the link between two members is cut: the third sees both (a bridge).
    Bridge(usize, usize),
    /// kill -9 of a member, restarted at the heal.
    KillMember(usize),
    /// kill -9 of the leader, restarted at the heal.
    KillLeader,
    /// SIGSTOP of a member, SIGCONT at the heal.
    PauseMember(usize),
    /// SIGSTOP of the leader, SIGCONT at the heal.
    PauseLeader,
    /// Every connection of a client group closed (they reconnect at once).
    CutClients(usize),
    /// A client group's connections forward nothing for longer than the session timeout:
    /// its sessions expire on the servers while the client, hearing nothing, suspends.
    StallClients(usize),
    /// SIGSTOP of a client process for longer than the session timeout, SIGCONT at the
    /// heal: an application's long GC pause. Its sessions expire on the servers while every
    /// thread of it is frozen, so when it continues its holders believe, until the client
    /// notices, that they still hold.
    PauseClientProcess(usize),
}

/// One planned fault: how long the quiet gap before it lasts, and how long it is held.
#[derive(Clone, Copy, Debug)]
pub struct Planned {
    /// Quiet time before it.
    pub gap: Duration,
    /// The fault.
    pub fault: Fault,
    /// How long it is held before the heal.
    pub hold: Duration,
}

/// The schedule for `seconds` of faults from `seed`. `client_pause` is how long a client
/// pause lasts (past the session timeout). A self-test starts with a pause of every client
/// group, so holders lose their sessions early.
pub fn schedule(seed: u64, seconds: u64, client_pause: Duration, selftest: bool) -> Vec<Planned> {
    let mut rng = Rng::new(seed ^ 0x006e_656d_6573_6973);
    let mut plan = Vec::new();
    let mut total = Duration::ZERO;
    if selftest {
        for g in 0..GROUPS {
            plan.push(Planned {
                gap: Duration::from_secs(3),
                fault: Fault::PauseClientProcess(g),
                hold: client_pause,
            });
        }
    }
    while total < Duration::from_secs(seconds) {
        let m = rng.range(0, MEMBERS as u64 - 1) as usize;
        let fault = match rng.range(0, 10) {
            0 => Fault::IsolateMember(m),
            1 => Fault::IsolateLeader,
            2 => Fault::Bridge(m, (m + 1) % MEMBERS),
            3 => Fault::KillMember(m),
            4 => Fault::KillLeader,
            5 => Fault::PauseMember(m),
            6 => Fault::PauseLeader,
            7 => Fault::CutClients(rng.range(0, GROUPS as u64 - 1) as usize),
            8 => Fault::StallClients(rng.range(0, GROUPS as u64 - 1) as usize),
            _ => Fault::PauseClientProcess(rng.range(0, GROUPS as u64 - 1) as usize),
        };
        let hold = match fault {
            Fault::CutClients(_) => Duration::ZERO,
            Fault::StallClients(_) | Fault::PauseClientProcess(_) => client_pause,
            _ => Duration::from_millis(rng.range(3_000, 12_000)),
        };
        let gap = Duration::from_millis(rng.range(2_000, 6_000));
        total += gap + hold;
        plan.push(Planned { gap, fault, hold });
    }
    plan
}

/// The schedule as text, one fault a line.
pub fn describe(plan: &[Planned]) -> String {
    plan.iter()
        .map(|p| {
            format!(
                "after {:>5} ms quiet: {:?} for {} ms\n",
                p.gap.as_millis(),
                p.fault,
                p.hold.as_millis()
            )
        })
        .collect()
}

/// Sleeps up to `d`, returning early (false) once `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    true
}

/// Applies `plan` until it ends or `until` passes; every fault is healed. Returns the number
/// of faults injected.
pub fn run(
    cluster: &mut Cluster,
    plan: &[Planned],
    until: Instant,
    clock: Clock,
    rec: &Arc<Recorder>,
    stop: &AtomicBool,
) -> usize {
    let mut injected = 0;
    for p in plan {
        if Instant::now() + p.gap >= until || !nap(p.gap, stop) {
            break;
        }
        // The previous fault is healed; let the ensemble settle so this one hits a
        // serving ensemble (and "the leader" names one).
        cluster.wait_healthy(Duration::from_secs(60));
        if Instant::now() >= until {
            break;
        }
        let start = clock.now();
        let what = inject(cluster, p.fault);
        println!("jepsen: nemesis at {:>7.1} s: {what}", start as f64 / 1e6);
        injected += 1;
        // A hold is cut short at the end of the campaign, never skipped: the heal always runs.
        let hold_end = (Instant::now() + p.hold).min(until.max(Instant::now()));
        nap(hold_end.saturating_duration_since(Instant::now()), stop);
        heal(cluster, p.fault, &what);
        rec.lock().faults.push(FaultRecord {
            start,
            end: clock.now(),
            what,
        });
    }
    heal_all(cluster);
    injected
}

fn leader(cluster: &Cluster) -> Option<usize> {
    cluster.ensemble.leader()
}

/// The member a member fault hits: the one it names, else the current leader (`None`: there
/// is none).
fn member_of(cluster: &Cluster, fault: Fault) -> Option<usize> {
    match fault {
        Fault::IsolateMember(m) | Fault::KillMember(m) | Fault::PauseMember(m) => Some(m),
        _ => leader(cluster),
    }
}

/// Applies a member fault with `act` to the member it hits; `act` says what became of it.
/// The report names the member (`member N ...`), which [`heal`] reads back.
fn on_member(
    cluster: &mut Cluster,
    fault: Fault,
    verb: &str,
    act: impl FnOnce(&mut Cluster, usize) -> String,
) -> String {
    match member_of(cluster, fault) {
        Some(m) => format!("{fault:?}: member {m} {}", act(cluster, m)),
        None => format!("{fault:?}: no leader to {verb}"),
    }
}

/// Injects `fault`; returns what was done, with the actual target.
fn inject(cluster: &mut Cluster, fault: Fault) -> String {
    match fault {
        Fault::IsolateMember(_) | Fault::IsolateLeader => {
            on_member(cluster, fault, "isolate", |c, m| {
                c.ensemble.isolate(m);
                "isolated from the others".into()
            })
        }
        Fault::Bridge(a, b) => {
            cluster.ensemble.set_link(a, b, false);
            format!("{fault:?}: link {a}-{b} cut")
        }
        Fault::KillMember(_) | Fault::KillLeader => on_member(cluster, fault, "kill", |c, m| {
            c.ensemble.kill(m);
            "killed (-9)".into()
        }),
        Fault::PauseMember(_) | Fault::PauseLeader => on_member(cluster, fault, "pause", |c, m| {
            format!("SIGSTOP (sent: {})", c.ensemble.pause(m))
        }),
        Fault::CutClients(g) => {
            cluster.cut_clients(g);
            format!("{fault:?}: group {g}'s connections cut")
        }
        Fault::StallClients(g) => {
            cluster.black_hole_clients(g, true);
            format!("{fault:?}: group {g}'s connections black-holed")
        }
        Fault::PauseClientProcess(g) => {
            let pid = cluster.client_pids.get(g).copied().unwrap_or(0);
            let ok = crate::procs::signal(pid, rustix::process::Signal::STOP);
            format!("{fault:?}: client process {g} (pid {pid}) SIGSTOP (sent: {ok})")
        }
    }
}

/// Heals `fault` (`what` names the member it hit).
fn heal(cluster: &mut Cluster, fault: Fault, what: &str) {
    let member = what
        .split("member ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<usize>().ok());
    match fault {
        Fault::IsolateMember(_) | Fault::IsolateLeader | Fault::Bridge(..) => {
            cluster.ensemble.heal_links()
        }
        Fault::KillMember(_) | Fault::KillLeader => {
            if let Some(m) = member {
                cluster.ensemble.start_member(m);
            }
        }
        Fault::PauseMember(_) | Fault::PauseLeader => {
            if let Some(m) = member {
                cluster.ensemble.resume(m);
            }
        }
        Fault::CutClients(_) => {}
        Fault::StallClients(g) => {
            cluster.black_hole_clients(g, false);
            cluster.cut_clients(g);
        }
        Fault::PauseClientProcess(g) => {
            if let Some(&pid) = cluster.client_pids.get(g) {
                crate::procs::signal(pid, rustix::process::Signal::CONT);
            }
        }
    }
}

/// Heals everything that could still be broken.
pub fn heal_all(cluster: &mut Cluster) {
    cluster.ensemble.heal_links();
    for m in 0..MEMBERS {
        cluster.ensemble.resume(m);
        if !cluster.ensemble.is_running(m) {
            cluster.ensemble.start_member(m);
        }
    }
    for g in 0..GROUPS {
        cluster.black_hole_clients(g, false);
    }
    for &pid in &cluster.client_pids {
        crate::procs::signal(pid, rustix::process::Signal::CONT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_replayable_and_covers_the_time() {
        let pause = Duration::from_secs(9);
        let a = schedule(42, 600, pause, false);
        let b = schedule(42, 600, pause, false);
        assert_eq!(describe(&a), describe(&b));
        assert_ne!(describe(&a), describe(&schedule(43, 600, pause, false)));
        let total: Duration = a.iter().map(|p| p.gap + p.hold).sum();
        assert!(total >= Duration::from_secs(600));
        // Ten minutes draw every kind of fault.
        let kinds: std::collections::HashSet<std::mem::Discriminant<Fault>> =
            a.iter().map(|p| std::mem::discriminant(&p.fault)).collect();
        assert_eq!(kinds.len(), 10);
        let st = schedule(42, 10, pause, true);
        assert!(matches!(st[0].fault, Fault::PauseClientProcess(0)));
    }
}
