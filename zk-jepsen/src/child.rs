//! A client process: one adapter's sessions (every role of [`workload::roles`]) in a process
//! of their own, so the nemesis can SIGSTOP it like a long GC pause of an application. It runs
//! until its stdin says `stop` (or closes), then writes everything it recorded to stdout, one
//! JSON [`Line`] each, ending with [`Line::Done`].
//!
//! ```text
//! zk-jepsen --client GROUP --connect HOSTS --root PATH --seed N --epoch NS [--sabotage LIST]
//! ```

use crate::history::{
    Acquisition, Claim, Clock, CounterAdd, Protected, Recorder, RegRecord, SessionEvent,
};
use crate::workload::{self, Conn, Ctx, Sabotage};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Adapter of each client group (and process): 0 zk-tokio, 1 zk-smol, 2 zk-blocking.
pub const ADAPTERS: [&str; 3] = ["zk-tokio", "zk-smol", "zk-blocking"];

/// One line a client process writes to its parent.
#[derive(Serialize, Deserialize, Debug)]
pub enum Line {
    /// A register operation.
    Reg(RegRecord),
    /// A grant.
    Acq(Acquisition),
    /// A status look.
    Claim(Claim),
    /// A protected write.
    Protected(Protected),
    /// A session state change.
    Event(SessionEvent),
    /// A counter add.
    Add(CounterAdd),
    /// A recipe call that failed `n` times with `error`.
    Error {
        /// The call.
        what: String,
        /// The error.
        error: String,
        /// How often.
        n: usize,
    },
    /// The end: `hung` workers were still running 60 s after the stop.
    Done {
        /// Workers that never returned.
        hung: usize,
        /// Which (ids, and what they were), among those that had started.
        hung_workers: Vec<String>,
    },
}

/// What the parent passes on the command line.
pub struct ChildArgs {
    /// The client group (and adapter).
    pub group: usize,
    /// Connect string (the group's proxies).
    pub connect: String,
    /// The campaign's root znode.
    pub root: String,
    /// The campaign's seed.
    pub seed: u64,
    /// The parent's clock epoch.
    pub epoch_ns: u64,
    /// Sabotaged clients (self-test): a list for [`Sabotage::parse`], empty for none.
    pub sabotage: String,
}

impl ChildArgs {
    /// The arguments, for the parent's command line.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--client".to_string(),
            self.group.to_string(),
            "--connect".to_string(),
            self.connect.clone(),
            "--root".to_string(),
            self.root.clone(),
            "--seed".to_string(),
            self.seed.to_string(),
            "--epoch".to_string(),
            self.epoch_ns.to_string(),
        ];
        if !self.sabotage.is_empty() {
            v.push("--sabotage".to_string());
            v.push(self.sabotage.clone());
        }
        v
    }

    /// Parses what [`to_args`](ChildArgs::to_args) made (`args` without the program name).
    pub fn parse(args: &[String]) -> Result<ChildArgs, String> {
        let mut c = ChildArgs {
            group: 0,
            connect: String::new(),
            root: String::new(),
            seed: 0,
            epoch_ns: 0,
            sabotage: String::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--client" => c.group = val()?.parse().map_err(|_| "bad --client")?,
                "--connect" => c.connect = val()?,
                "--root" => c.root = val()?,
                "--seed" => c.seed = val()?.parse().map_err(|_| "bad --seed")?,
                "--epoch" => c.epoch_ns = val()?.parse().map_err(|_| "bad --epoch")?,
                "--sabotage" => c.sabotage = val()?,
                s => return Err(format!("client: unexpected argument {s:?}")),
            }
        }
        if c.group >= ADAPTERS.len() {
            return Err(format!("client: no group {}", c.group));
        }
        Ok(c)
    }
}

/// Starts the group's workers on its adapter; returns the threads (tokio's tasks run on `rt`).
fn start_workers(
    a: &ChildArgs,
    ctx: &Arc<Ctx>,
    rt: &tokio::runtime::Runtime,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    let roles = workload::roles();
    for (i, role) in roles.iter().copied().enumerate() {
        let id = a.group * roles.len() + i;
        let (ctx, connect) = (ctx.clone(), a.connect.clone());
        ctx.running.fetch_add(1, Ordering::SeqCst);
        match a.group {
            0 => {
                rt.spawn(async move {
                    let b = workload::builder(&connect);
                    let mut conn = None;
                    for _ in 0..120 {
                        match zk_tokio::connect(&b).await {
                            Ok(c) => {
                                conn = Some(c);
                                break;
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                        }
                    }
                    match conn {
                        Some(c) => workload::run_role(Conn::Tokio(c), ctx, id, role).await,
                        None => {
                            ctx.running.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                });
            }
            1 => threads.push(std::thread::spawn(move || {
                let b = workload::builder(&connect);
                match workload::connect_retry(|| smol::block_on(zk_smol::connect(&b))) {
                    Some(c) => smol::block_on(workload::run_role(Conn::Smol(c), ctx, id, role)),
                    None => {
                        ctx.running.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })),
            _ => threads.push(std::thread::spawn(move || {
                let b = workload::builder(&connect);
                match workload::connect_retry(|| zk_blocking::connect(&b)) {
                    Some(c) => futures_lite::future::block_on(workload::run_role(
                        Conn::Blocking(c),
                        ctx,
                        id,
                        role,
                    )),
                    None => {
                        ctx.running.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })),
        }
    }
    threads
}

/// The client process's main: runs the workers until told to stop, then reports. Never
/// returns (a hung worker must not keep the process).
pub fn main(a: ChildArgs) -> ! {
    let rec = Arc::new(Recorder::default());
    let ctx = Arc::new(Ctx {
        clock: Clock::from_epoch(a.epoch_ns),
        rec: rec.clone(),
        stop: AtomicBool::new(false),
        root: a.root.clone(),
        sab: if a.sabotage.is_empty() {
            Sabotage::default()
        } else {
            Sabotage::parse(&a.sabotage).unwrap_or_else(|e| {
                eprintln!("jepsen client: {e}");
                std::process::exit(2)
            })
        },
        seed: a.seed,
        // Acquisition ids are campaign-wide: the group in the high bits.
        next_acq: AtomicU64::new((a.group as u64) << 32),
        running: AtomicUsize::new(0),
        live: Mutex::new(std::collections::BTreeSet::new()),
        cancels: Mutex::new(Vec::new()),
        errors: Mutex::new(std::collections::BTreeMap::new()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("jepsen client: tokio runtime");
    let _threads = start_workers(&a, &ctx, &rt);
    // Until the parent says stop, or goes away.
    let mut line = String::new();
    let stdin = std::io::stdin();
    while stdin.lock().read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "stop" {
        line.clear();
    }
    ctx.stop.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.running.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        ctx.cancel_all();
        std::thread::sleep(Duration::from_millis(200));
    }
    let hung = ctx.running.load(Ordering::SeqCst);
    let h = rec.take();
    let mut lines: Vec<Line> = Vec::new();
    lines.extend(h.regs.into_iter().map(Line::Reg));
    lines.extend(h.acqs.into_iter().map(Line::Acq));
    lines.extend(h.claims.into_iter().map(Line::Claim));
    lines.extend(h.protected.into_iter().map(Line::Protected));
    lines.extend(h.events.into_iter().map(Line::Event));
    lines.extend(h.adds.into_iter().map(Line::Add));
    for ((what, error), n) in ctx.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        lines.push(Line::Error {
            what: what.to_string(),
            error: error.clone(),
            n: *n,
        });
    }
    let roles = workload::roles();
    let hung_workers = ctx
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|&w| {
            format!(
                "worker {w} ({:?} on {})",
                roles[w % roles.len()],
                ADAPTERS[a.group]
            )
        })
        .collect();
    lines.push(Line::Done { hung, hung_workers });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in &lines {
        match serde_json::to_string(l) {
            Ok(s) => {
                let _ = writeln!(out, "{s}");
            }
            Err(e) => eprintln!("jepsen client: cannot encode {l:?}: {e}"),
        }
    }
    let _ = out.flush();
    std::process::exit(0)
}
