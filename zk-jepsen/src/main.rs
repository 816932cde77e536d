//! `zk-jepsen`: a Jepsen-style campaign against a real three-member ZooKeeper ensemble.
//!
//! Clients on every adapter (zk-tokio, zk-smol, zk-blocking) do register operations on many
//! independent keys and use the recipes, while a nemesis drawn from the seed partitions the
//! members, kills and pauses them, and cuts or stalls client connections. Everything is
//! recorded and checked afterwards; see `docs/jepsen.md`.
//!
//! ```text
//! zk-jepsen [SECONDS] [--seed N] [--selftest] [--out DIR]
//! ```

mod check;
mod child;
mod cluster;
mod history;
mod nemesis;
mod procs;
mod rng;
mod serverlog;
mod workload;

use cluster::{Cluster, GROUPS};
use history::{Clock, History, Outcome, Recorder, RegOp, RegRecord, RegRet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workload::connect_retry;
use zk_client::{CreateMode, ErrorCode};

/// Command line.
struct Args {
    seconds: u64,
    seed: Option<u64>,
    selftest: bool,
    /// The sabotages of a self-test.
    sabotage: workload::Sabotage,
    out: PathBuf,
}

const USAGE: &str =
    "usage: zk-jepsen [SECONDS] [--seed N] [--selftest [--sabotage all|NAME,...]] [--out DIR]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 60,
        seed: None,
        selftest: false,
        sabotage: workload::Sabotage::all(),
        out: PathBuf::from("target/jepsen"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                args.seed = Some(v.parse().map_err(|_| format!("bad seed {v:?}"))?);
            }
            "--selftest" => args.selftest = true,
            "--sabotage" => {
                args.sabotage =
                    workload::Sabotage::parse(&it.next().ok_or("--sabotage needs a list")?)?
            }
            "--out" => args.out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            s => {
                args.seconds = s
                    .parse()
                    .map_err(|_| format!("unexpected argument {s:?}\n{USAGE}"))?
            }
        }
    }
    Ok(args)
}

/// Time after the nemesis stops (everything healed, the ensemble serving again) during which
/// the clients go on, before the final reads.
fn quiet(selftest: bool) -> Duration {
    Duration::from_secs(if selftest { 5 } else { 10 })
}

/// How long a client pause lasts: past the session timeout, so the sessions expire.
fn client_pause() -> Duration {
    workload::SESSION_TIMEOUT + Duration::from_secs(4)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--client") {
        match child::ChildArgs::parse(&argv) {
            Ok(a) => child::main(a),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_007)
            .unwrap_or(1)
    });
    std::process::exit(run(&args, seed));
}

/// Creates the campaign's nodes.
fn setup(zk: &zk_blocking::Client, root: &str) {
    for p in [
        "",
        "/r",
        "/lock",
        "/election",
        "/sem-fake",
        "/lock-resource",
        "/election-resource",
    ] {
        match zk.create(&format!("{root}{p}"), "0", CreateMode::Persistent) {
            Ok(_) => {}
            Err(e) if e.code() == ErrorCode::NodeExists => {}
            Err(e) => panic!("jepsen: cannot create {root}{p}: {e}"),
        }
    }
}

/// Syncs `path` until it works (the ensemble may still settle); false after 30 s.
fn sync_retry(zk: &zk_blocking::Client, path: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match zk.sync(path) {
            Ok(_) => return true,
            Err(e) if Instant::now() > deadline => {
                eprintln!("jepsen: final sync of {path} failed: {e}");
                return false;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// After the quiet period: on each member, a fresh session pinned to it reads every key after a
/// sync (so the members' final states can be compared); then the counter.
fn final_reads(cluster: &Cluster, rec: &Recorder, clock: Clock, root: &str) {
    let keys: std::collections::BTreeSet<u32> = rec.lock().regs.iter().map(|r| r.key).collect();
    for m in 0..cluster::MEMBERS {
        let b = workload::builder(&cluster.ensemble.client_addr(m).to_string());
        let Some(zk) = connect_retry(|| zk_blocking::connect(&b)) else {
            continue;
        };
        let session = zk.session().map_or(0, |s| s.id);
        // Without a sync a member's reads may lag; they then say nothing of its final state.
        let synced = sync_retry(&zk, &format!("{root}/r"));
        for &key in &keys {
            let invoke = clock.now();
            let read = if synced {
                zk.get_data(&workload::key_path(root, key))
            } else {
                Err(zk_client::Error::ConnectionLoss)
            };
            let (outcome, zxid) = match read {
                Ok((data, stat)) => {
                    let v = std::str::from_utf8(&data)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(u64::MAX);
                    (
                        Outcome::Ok(RegRet::Value(Some((v, stat.version)))),
                        Some(stat.mzxid),
                    )
                }
                Err(e) if e.code() == ErrorCode::NoNode => (Outcome::Ok(RegRet::Value(None)), None),
                Err(e) => (Outcome::Unknown(e.to_string()), None),
            };
            rec.lock().regs.push(RegRecord {
                key,
                process: history::FINAL_PROCESS + ((m as u64) << 32) + key as u64,
                worker: history::FINAL_WORKER,
                session,
                op: RegOp::SyncRead,
                invoke,
                complete: clock.now(),
                outcome,
                zxid,
            });
        }
    }
    let b = workload::builder(&cluster.direct_connect_string());
    let Some(zk) = connect_retry(|| zk_blocking::connect(&b)) else {
        return;
    };
    let counter = zk_recipes::Counter::<i64>::new(zk.as_async(), &format!("{root}/counter"));
    if !sync_retry(&zk, &format!("{root}/counter")) {
        eprintln!("jepsen: the counter's final read: no sync succeeded");
        return;
    }
    if let Ok(c) = counter {
        rec.lock().counter_final = c.value_blocking().ok();
    }
}

/// Operation counts for the summary.
fn stats(h: &History) -> String {
    let mut n = [0usize; 3];
    h.regs.iter().for_each(|r| n[r.outcome.class()] += 1);
    h.protected.iter().for_each(|p| n[p.outcome.class()] += 1);
    h.adds.iter().for_each(|a| n[a.outcome.class()] += 1);
    let [ok, fail, unknown] = n;
    let expiries = h.events.iter().filter(|e| e.state == "Expired").count();
    let suspensions = h.events.iter().filter(|e| e.state == "Suspended").count();
    format!(
        "{} operations ({ok} ok, {fail} failed, {unknown} unknown): {} register ops, {} protected writes, {} counter adds; {} grants, {} status checks; {suspensions} suspensions, {expiries} expiries",
        ok + fail + unknown,
        h.regs.len(),
        h.protected.len(),
        h.adds.len(),
        h.acqs.len(),
        h.claims.len()
    )
}

fn run(args: &Args, seed: u64) -> i32 {
    let mode = if args.selftest {
        "self-test (sabotaged clients)"
    } else {
        "campaign"
    };
    println!("jepsen: {mode}, seed {seed}, {} s of faults", args.seconds);
    if args.selftest {
        println!("jepsen: sabotage: {}", args.sabotage.names().join(","));
    }
    let plan = nemesis::schedule(seed, args.seconds, client_pause(), args.selftest);
    let mut cluster = Cluster::start();
    println!(
        "jepsen: ensemble up ({:?}), members linked through fault proxies",
        cluster.member_addrs()
    );
    let clock = Clock::start();
    let wall_start = SystemTime::now();
    let rec = Arc::new(Recorder::default());
    let root = format!("/jepsen-{seed}-{}", std::process::id());
    let admin = connect_retry(|| {
        zk_blocking::connect(&workload::builder(&cluster.direct_connect_string()))
    })
    .expect("jepsen: no session on the fresh ensemble");
    setup(&admin, &root);
    drop(admin);
    let spec: Vec<child::ChildArgs> = (0..GROUPS)
        .map(|group| child::ChildArgs {
            group,
            connect: cluster.connect_string(group),
            root: root.clone(),
            seed,
            epoch_ns: clock.epoch_ns(),
            sabotage: if args.selftest {
                args.sabotage.names().join(",")
            } else {
                String::new()
            },
        })
        .collect();
    let clients =
        procs::Clients::spawn(&spec, &rec).expect("jepsen: cannot start the client processes");
    cluster.client_pids = clients.pids();
    println!(
        "jepsen: client processes {} ({}), {} sessions each",
        child::ADAPTERS.join(", "),
        cluster
            .client_pids
            .iter()
            .map(|p| format!("pid {p}"))
            .collect::<Vec<_>>()
            .join(", "),
        workload::roles().len()
    );
    // Let every session open before the first fault.
    std::thread::sleep(Duration::from_secs(2));
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let never = AtomicBool::new(false);
    let injected = nemesis::run(&mut cluster, &plan, until, clock, &rec, &never);
    let healthy = cluster.wait_healthy(Duration::from_secs(120));
    println!(
        "jepsen: {injected} faults injected and healed; ensemble {}; quiet for {} s",
        if healthy {
            "serving"
        } else {
            "NOT serving again within 120 s"
        },
        quiet(args.selftest).as_secs()
    );
    std::thread::sleep(quiet(args.selftest));
    let report = clients.stop(Duration::from_secs(90));
    final_reads(&cluster, &rec, clock, &root);
    let mut history = rec.take();
    for m in 0..cluster::MEMBERS {
        let log = cluster.ensemble.member_dir(m).join("server.log");
        history
            .server_expiries
            .extend(serverlog::expiries(&log, wall_start));
    }
    let verdicts = check::all(&history, workload::MAX_LEASES);
    println!("jepsen: {}", stats(&history));
    for ((what, error), n) in &report.errors {
        println!("jepsen: recipe call {what} failed {n} times with: {error}");
    }
    let hung = report.hung;
    let hung_workers = report.hung_workers.join(", ");
    let failures = report.failures;
    let mut report = String::new();
    for v in &verdicts {
        println!("{}", v.line());
        let _ = writeln!(report, "{}", v.line());
        for a in v.anomalies.iter().take(if args.selftest { 3 } else { 20 }) {
            println!("     {a}");
        }
        for a in &v.anomalies {
            let _ = writeln!(report, "     {a}");
        }
    }
    let mut anomalies: usize = verdicts.iter().map(|v| v.anomalies.len()).sum();
    let diverged = verdicts
        .iter()
        .any(|v| v.name.starts_with("servers:") && !v.anomalies.is_empty());
    let histories: usize = verdicts.iter().map(|v| v.histories).sum();
    if hung > 0 {
        println!(
            "FAIL workers: {hung} still running 60 s after the stop (hung call?): {hung_workers}"
        );
        let _ = writeln!(report, "FAIL workers: {hung} hung: {hung_workers}");
        anomalies += 1;
    }
    for f in &failures {
        println!("FAIL {f}");
        let _ = writeln!(report, "FAIL {f}");
        anomalies += 1;
    }
    if !healthy {
        println!("FAIL ensemble: not serving again 120 s after every fault was healed");
        anomalies += 1;
    }
    println!("{histories} histories checked, {anomalies} anomalies");
    let save = anomalies > 0 || args.selftest;
    if save {
        let _ = std::fs::create_dir_all(&args.out);
        let file = args.out.join(format!(
            "{}-{seed}-{}.txt",
            if args.selftest { "selftest" } else { "history" },
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ));
        let mut text = format!(
            "zk-jepsen {mode}: seed {seed}, {} s\nreplay: bash scripts/jepsen.sh {} --seed {seed}{}\n\n== verdicts\n{report}\n== nemesis schedule (planned)\n{}\n== faults (executed)\n",
            args.seconds,
            args.seconds,
            if args.selftest {
                format!(" --selftest --sabotage {}", args.sabotage.names().join(","))
            } else {
                String::new()
            },
            nemesis::describe(&plan)
        );
        for f in &history.faults {
            let _ = writeln!(text, "{:>12} .. {:>12} {}", f.start, f.end, f.what);
        }
        text.push_str("\n== history (µs since start)\n");
        text.push_str(&history.dump());
        match std::fs::write(&file, text) {
            Ok(()) => println!(
                "jepsen: history and nemesis schedule saved to {}",
                file.display()
            ),
            Err(e) => println!("jepsen: cannot save {}: {e}", file.display()),
        }
        if !args.selftest {
            // The servers' own account, for anomalies that are theirs.
            for m in 0..cluster::MEMBERS {
                let log = cluster.ensemble.member_dir(m).join("server.log");
                let to = file.with_extension(format!("member{m}.log"));
                if std::fs::copy(&log, &to).is_ok() {
                    println!("jepsen: member {m}'s server log saved to {}", to.display());
                }
            }
        }
    }
    if args.selftest {
        // Each sabotage must be caught by the checks made for it (`workload::SABOTAGES`).
        let expected = args.sabotage.expected_catches();
        let missed: Vec<&str> = verdicts
            .iter()
            .filter(|v| expected.iter().any(|p| v.name.starts_with(p)) && v.anomalies.is_empty())
            .map(|v| v.name)
            .collect();
        let caught: Vec<&str> = verdicts
            .iter()
            .filter(|v| !v.anomalies.is_empty())
            .map(|v| v.name)
            .collect();
        println!(
            "selftest: sabotage {}; checks that failed: {}",
            args.sabotage.names().join(","),
            caught.join("; ")
        );
        if missed.is_empty() {
            println!("selftest: every check made for these sabotages caught them");
            0
        } else {
            println!(
                "selftest: FAILED: these checks missed the sabotage: {}",
                missed.join("; ")
            );
            1
        }
    } else if anomalies > 0 && diverged {
        // The servers' replicas disagree: ZooKeeper lost or invented transactions, and what
        // the clients saw of them says nothing about the clients.
        println!(
            "jepsen: INCONCLUSIVE: the servers' replicas diverged (ZooKeeper's own fault: no client is involved in that check), so the client checks' anomalies may be the servers'; replay with: bash scripts/jepsen.sh {} --seed {seed}",
            args.seconds
        );
        3
    } else if anomalies > 0 {
        println!(
            "jepsen: FAILED; replay with: bash scripts/jepsen.sh {} --seed {seed}",
            args.seconds
        );
        1
    } else {
        0
    }
}
