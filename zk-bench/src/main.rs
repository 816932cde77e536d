//! zk-bench: zk-tokio, zk-smol, zk-blocking, the `zookeeper-client` crate and a floor client
//! side by side against one real ZooKeeper started here (issue 7).
//!
//! The parent starts the server, prepares the nodes, then runs every (workload, client) pair
//! in a child process (this binary again, with `--child`), so the CPU time and peak RSS a row
//! reports are the client's alone. The children talk to the parent over stdin/stdout lines:
//! `CUT` (W4: cut the connection at the proxy), `CHANGE <µs>` (W4: restore done at that wall
//! clock time, change every node now), `RESULT <json>`.
//!
//! Setting `ZK_BENCH_WRAP` (e.g. `valgrind --tool=callgrind`) runs every child under that
//! command, for profiles of one client's workload.
//!
//! Rows may name a build too (`zk-tokio@base`, `zk-tokio@rec`; see `builds.rs`), to
//! compare two builds of the client in one run.
//!
//! `cargo run -p zk-bench --release -- [--runs N] [--quick] [--clients a,b] [--workloads W1,W2]
//!  [--w1 N] [--w2 N] [--w3 N] [--w4 N] [--w5 N] [--window N] [--size BYTES] [--idle SECS]`

mod builds;
mod clients;
mod floor;
mod floor_async;
mod proxy;
mod stats;
mod window;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use stats::{median, spread_pct, Measured};

/// The 100-byte node W1, W2 and W5 read.
pub const READ_NODE: &str = "/bench/r";

/// The clients, in table order.
pub const CLIENTS: &[&str] = &[
    "floor",
    "floor-tokio-ct",
    "floor-tokio-mt",
    "floor-tokio-mt-task",
    "floor-smol",
    "zk-tokio",
    "zk-tokio-mt",
    "zk-tokio-mt-task",
    "zk-tokio-natural",
    "zk-smol",
    "zk-smol-natural",
    "zk-blocking",
    "zk-blocking-async",
    "zookeeper-client",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    W1,
    W2,
    W3,
    W4,
    W5,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
    ];
    fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
        }
    }
    fn parse(s: &str) -> Option<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
    }
    fn what(self) -> &'static str {
        match self {
            Workload::W1 => "sequential getData",
            Workload::W2 => "pipelined getData",
            Workload::W3 => "pipelined 1 KiB creates",
            Workload::W4 => "watch restore",
            Workload::W5 => "many sessions",
        }
    }
}

/// What one child runs.
#[derive(Clone, Debug)]
pub struct Spec {
    pub client: String,
    pub workload: Workload,
    pub addr: SocketAddr,
    pub proxy: SocketAddr,
    /// Unique per child: W3's parent node.
    pub tag: String,
    pub n: usize,
    pub window: usize,
    pub size: usize,
    pub idle_secs: u64,
    pub clk_tck: u64,
}

impl Spec {
    fn to_args(&self) -> Vec<String> {
        vec![
            "--child".into(),
            self.client.clone(),
            self.workload.name().into(),
            self.addr.to_string(),
            self.proxy.to_string(),
            self.tag.clone(),
            self.n.to_string(),
            self.window.to_string(),
            self.size.to_string(),
            self.idle_secs.to_string(),
            self.clk_tck.to_string(),
        ]
    }

    fn from_args(a: &[String]) -> Option<Spec> {
        Some(Spec {
            client: a.first()?.clone(),
            workload: Workload::parse(a.get(1)?)?,
            addr: a.get(2)?.parse().ok()?,
            proxy: a.get(3)?.parse().ok()?,
            tag: a.get(4)?.clone(),
            n: a.get(5)?.parse().ok()?,
            window: a.get(6)?.parse().ok()?,
            size: a.get(7)?.parse().ok()?,
            idle_secs: a.get(8)?.parse().ok()?,
            clk_tck: a.get(9)?.parse().ok()?,
        })
    }
}

struct Opts {
    runs: usize,
    clients: Vec<String>,
    workloads: Vec<Workload>,
    n: HashMap<&'static str, usize>,
    window: usize,
    size: usize,
    idle: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: zk-bench [--runs N] [--quick] [--clients floor,zk-tokio,...] [--workloads W1,W2,...]\n\
         \x20               [--w1 N] [--w2 N] [--w3 N] [--w4 N] [--w5 N] [--window N] [--size BYTES] [--idle SECS]"
    );
    std::process::exit(2)
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts {
        runs: 3,
        clients: CLIENTS.iter().map(|s| s.to_string()).collect(),
        workloads: Workload::ALL.to_vec(),
        n: HashMap::from([
            ("W1", 5_000),
            ("W2", 100_000),
            ("W3", 20_000),
            ("W4", 100_000),
            ("W5", 1_000),
        ]),
        window: 1000,
        size: 1024,
        idle: 3,
    };
    let mut runs_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        let num = |s: String| s.parse::<usize>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--runs" => {
                o.runs = num(val()).max(1);
                runs_given = true;
            }
            "--quick" => {
                o.n = HashMap::from([
                    ("W1", 500),
                    ("W2", 5_000),
                    ("W3", 1_000),
                    ("W4", 2_000),
                    ("W5", 100),
                ]);
                o.idle = 1;
                if !runs_given {
                    o.runs = 1;
                }
            }
            "--clients" => o.clients = val().split(',').map(str::to_string).collect(),
            "--workloads" => {
                o.workloads = val()
                    .split(',')
                    .map(|w| Workload::parse(w).unwrap_or_else(|| usage()))
                    .collect()
            }
            "--w1" | "--w2" | "--w3" | "--w4" | "--w5" => {
                let key = Workload::parse(&a[2..])
                    .map(|w| w.name())
                    .unwrap_or_else(|| usage());
                o.n.insert(key, num(val()));
            }
            "--window" => o.window = num(val()).max(1),
            "--size" => o.size = num(val()),
            "--idle" => o.idle = num(val()) as u64,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    for c in &o.clients {
        if !CLIENTS.contains(&builds::split(c).0) {
            eprintln!("unknown client {c}; known: {}", CLIENTS.join(", "));
            std::process::exit(2);
        }
    }
    o
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The floor client on the runtime `client` runs on: its ratios are to that floor's
/// numbers (the std blocking `floor` where the runtime has none, or for W4/W5). A row
/// of another build (`zk-smol@base`) has its client's floor.
fn own_floor(client: &str) -> &'static str {
    match builds::split(client).0 {
        "zk-tokio" | "zk-tokio-natural" | "zookeeper-client" => "floor-tokio-ct",
        "zk-tokio-mt" => "floor-tokio-mt",
        "zk-tokio-mt-task" => "floor-tokio-mt-task",
        "zk-smol" | "zk-smol-natural" => "floor-smol",
        _ => "floor",
    }
}

/// The runtime floors run W1-W3 only.
fn runs_workload(client: &str, w: Workload) -> bool {
    !client.starts_with("floor-") || matches!(w, Workload::W1 | Workload::W2 | Workload::W3)
}

fn child_main(args: &[String]) {
    let Some(spec) = Spec::from_args(args) else {
        eprintln!("bad child arguments: {args:?}");
        std::process::exit(2);
    };
    let (client, build) = builds::split(&spec.client);
    if build == builds::Build::Recorded {
        builds::install_recording();
    }
    let spec = Spec {
        client: client.to_string(),
        ..spec
    };
    let m = match spec.client.as_str() {
        "floor" => clients::run_floor(&spec),
        "floor-tokio-ct" => clients::run_floor_tokio_ct(&spec),
        "floor-tokio-mt" => clients::run_floor_tokio_mt(&spec),
        "floor-tokio-mt-task" => clients::run_floor_tokio_mt_task(&spec),
        "floor-smol" => clients::run_floor_smol(&spec),
        "zk-tokio" => clients::run_zk_tokio(&spec),
        "zk-tokio-mt" => clients::run_zk_tokio_mt(&spec),
        "zk-tokio-mt-task" => clients::run_zk_tokio_mt_task(&spec),
        "zk-tokio-natural" => clients::run_zk_tokio_ct_natural(&spec),
        "zk-blocking-async" => clients::run_zk_blocking_async(&spec),
        "zk-smol" => clients::run_zk_smol(&spec),
        "zk-smol-natural" => clients::run_zk_smol_natural(&spec),
        "zk-blocking" => clients::run_zk_blocking(&spec),
        "zookeeper-client" => clients::run_zookeeper_client(&spec),
        other => {
            eprintln!("unknown client {other}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "RESULT {}",
        m.to_json(spec.workload.name(), &spec.client, 0)
    );
    let _ = out.flush();
    // Exit at once: tearing down 1,000 sessions or 100,000 watches is not part of the row.
    std::process::exit(0);
}

// ------------------------------------------------------------------ parent

/// The parent's own connections for setup, W4's changes and cleanup: a fresh floor session
/// per batch (an idle one would expire during the long workloads, as it never pings).
struct Admin {
    addr: SocketAddr,
}

impl Admin {
    fn run(&mut self, reqs: Vec<zk_proto::Request>) -> u64 {
        if reqs.is_empty() {
            return 0;
        }
        let (frames, offs) = floor::encode_all(reqs.into_iter(), 1);
        let mut f = floor::Floor::connect(self.addr, 30_000).expect("admin connection");
        match f.pipeline(&frames, &offs, 1000, || {}) {
            Ok((_, errors)) => errors,
            Err(e) => panic!("admin connection failed: {e}"),
        }
    }
}

fn run_child(
    exe: &std::path::Path,
    spec: &Spec,
    proxy: &proxy::Proxy,
    admin: &mut Admin,
) -> Measured {
    // `client@base` rows run in the baseline binary, with the client's own name (see builds.rs).
    let (exe, args) = match builds::split(&spec.client) {
        (client, builds::Build::Base) => {
            let base = Spec {
                client: client.to_string(),
                ..spec.clone()
            };
            (builds::base_exe(), base.to_args())
        }
        _ => (exe.to_path_buf(), spec.to_args()),
    };
    // ZK_BENCH_WRAP="valgrind --tool=callgrind" runs each child under a profiler.
    let wrap: Vec<String> = std::env::var("ZK_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut cmd = match wrap.split_first() {
        Some((prog, rest)) => {
            let mut c = Command::new(prog);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(args);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut result = None;
    let mut restore_ms = None;
    let limit = Duration::from_secs(600);
    loop {
        match rx.recv_timeout(limit) {
            Ok(line) if line == "CUT" => {
                proxy.cut_all();
                let _ = writeln!(stdin, "GO");
            }
            Ok(line) if line.starts_with("CHANGE ") => {
                let done_us: u64 = line[7..].trim().parse().unwrap_or(0);
                let accepted = proxy
                    .accepted()
                    .last()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0);
                restore_ms = Some(done_us.saturating_sub(accepted) as f64 / 1000.0);
                let _ = writeln!(stdin, "GO");
                let data = Bytes::from(format!("changed {}", spec.tag));
                let reqs = clients::w4_paths(spec.n)
                    .iter()
                    .map(|p| floor::set_data(p, data.clone()))
                    .collect();
                admin.run(reqs);
            }
            Ok(line) if line.starts_with("RESULT ") => {
                result = Measured::from_json(&line[7..]);
                break;
            }
            Ok(other) => eprintln!("child said: {other}"),
            Err(_) => break,
        }
    }
    if result.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let mut m = result.unwrap_or_else(|| Measured {
        error: Some("child gave no result".into()),
        ..Measured::default()
    });
    if let Some(r) = restore_ms {
        m.restore_ms = r;
    }
    m
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// One table row: the runs of one (workload, client).
struct Row {
    workload: Workload,
    client: String,
    runs: Vec<Measured>,
}

impl Row {
    fn ok_runs(&self) -> Vec<&Measured> {
        self.runs.iter().filter(|m| m.error.is_none()).collect()
    }
    fn med(&self, f: impl Fn(&Measured) -> f64) -> f64 {
        let v: Vec<f64> = self.ok_runs().into_iter().map(f).collect();
        median(&v)
    }
    fn spread(&self, f: impl Fn(&Measured) -> f64) -> f64 {
        let v: Vec<f64> = self.ok_runs().into_iter().map(f).collect();
        spread_pct(&v)
    }
}

fn ops_s(m: &Measured) -> f64 {
    if m.secs > 0.0 {
        m.ops as f64 / m.secs
    } else {
        0.0
    }
}

fn cpu_op(m: &Measured) -> f64 {
    if m.ops > 0 {
        m.cpu_us / m.ops as f64
    } else {
        0.0
    }
}

fn print_table(rows: &[Row]) {
    let header = [
        "workload",
        "client",
        "ops/s",
        "±%",
        "p50 µs",
        "p99 µs",
        "CPU µs/op",
        "±%",
        "peak RSS MiB",
        "vs floor",
        "ops/floor",
        "p50/floor",
        "CPU/floor",
        "notes",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let floor = rows
            .iter()
            .find(|f| f.workload == r.workload && f.client == own_floor(&r.client))
            .or_else(|| {
                rows.iter()
                    .find(|f| f.workload == r.workload && f.client == "floor")
            });
        let (fo, fp, fc) = floor
            .map(|f| (f.med(ops_s), f.med(|m| m.p50_us), f.med(cpu_op)))
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let floor_name = floor.map_or("-", |f| f.client.as_str());
        let ops = r.med(ops_s);
        let cpu = r.med(cpu_op);
        let mut notes = Vec::new();
        match r.workload {
            Workload::W4 => {
                notes.push(format!("restore {} ms", fmt_num(r.med(|m| m.restore_ms))));
                notes.push(format!(
                    "notified {}/{}",
                    fmt_num(r.med(|m| m.notified as f64)),
                    r.runs.first().map(|m| m.ops).unwrap_or(0)
                ));
            }
            Workload::W5 => notes.push(format!(
                "{} KiB/session; idle CPU {} µs/session",
                fmt_num(r.med(|m| m.kib_per_session)),
                fmt_num(r.med(|m| m.idle_cpu_us))
            )),
            _ => {}
        }
        let failed = r.runs.len() - r.ok_runs().len();
        if failed > 0 {
            let e = r
                .runs
                .iter()
                .find_map(|m| m.error.clone())
                .unwrap_or_default();
            let e: String = e.chars().take(60).collect();
            notes.push(format!("{failed}/{} runs failed: {e}", r.runs.len()));
        }
        lines.push(vec![
            format!("{} {}", r.workload.name(), r.workload.what()),
            r.client.clone(),
            fmt_num(ops),
            format!("{:.0}", r.spread(ops_s)),
            fmt_num(r.med(|m| m.p50_us)),
            fmt_num(r.med(|m| m.p99_us)),
            fmt_num(cpu),
            format!("{:.0}", r.spread(cpu_op)),
            format!("{:.1}", r.med(|m| m.peak_rss_kib as f64) / 1024.0),
            floor_name.to_string(),
            fmt_num(ops / fo),
            fmt_num(r.med(|m| m.p50_us) / fp),
            fmt_num(cpu / fc),
            notes.join("; "),
        ]);
    }
    let cols = header.len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = widths[c] - s.chars().count();
                if c < 2 || c == cols - 1 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let seps: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            println!("|-{}-|", seps.join("-|-"));
        }
    }
    for r in rows {
        let json = format!(
            "{{\"workload\":\"{}\",\"client\":\"{}\",\"runs\":{},\"ok_runs\":{},\"ops_per_s\":{:.1},\"ops_spread_pct\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"cpu_us_per_op\":{:.3},\"cpu_spread_pct\":{:.1},\"peak_rss_kib\":{:.0},\"restore_ms\":{:.2},\"notified\":{:.0},\"kib_per_session\":{:.2},\"idle_cpu_us\":{:.3}}}",
            r.workload.name(),
            r.client,
            r.runs.len(),
            r.ok_runs().len(),
            r.med(ops_s),
            r.spread(ops_s),
            r.med(|m| m.p50_us),
            r.med(|m| m.p99_us),
            r.med(cpu_op),
            r.spread(cpu_op),
            r.med(|m| m.peak_rss_kib as f64),
            r.med(|m| m.restore_ms),
            r.med(|m| m.notified as f64),
            r.med(|m| m.kib_per_session),
            r.med(|m| m.idle_cpu_us),
        );
        println!("{}", json.replace("NaN", "null"));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child_main(&args[1..]);
    }
    let opts = parse_opts(&args);
    let exe = std::env::current_exe().expect("current exe");
    let clk = clk_tck();

    eprintln!("zk-bench: starting ZooKeeper");
    let server = zk_tests::ServerOptions {
        extra_jvm_flags: vec!["-Xmx1g".into(), "-XX:TieredStopAtLevel=4".into()],
        ..Default::default()
    };
    let server = zk_tests::ZkServer::start_with(server);
    let proxy = proxy::Proxy::start(server.addr()).expect("proxy");
    let mut admin = Admin {
        addr: server.addr(),
    };
    let w4_n = opts.n["W4"];
    let mut setup = vec![
        floor::create("/bench", Bytes::new()),
        floor::create(READ_NODE, Bytes::from(vec![b'r'; 100])),
        floor::create("/bench/w3", Bytes::new()),
        floor::create("/bench/w4", Bytes::new()),
    ];
    if opts.workloads.contains(&Workload::W4) {
        setup.extend(
            clients::w4_paths(w4_n)
                .iter()
                .map(|p| floor::create(p, Bytes::from_static(b"w4"))),
        );
    }
    admin.run(setup);

    let mut seq = 0usize;
    let mut spec_for = |client: &str, w: Workload, n: usize| {
        seq += 1;
        Spec {
            client: client.into(),
            workload: w,
            addr: server.addr(),
            proxy: proxy.addr(),
            tag: format!("t{seq}"),
            n,
            window: opts.window,
            size: opts.size,
            idle_secs: opts.idle,
            clk_tck: clk,
        }
    };
    let run_one = |spec: &Spec, admin: &mut Admin| -> Measured {
        if spec.workload == Workload::W3 {
            admin.run(vec![floor::create(
                &format!("/bench/w3/{}", spec.tag),
                Bytes::new(),
            )]);
        }
        let m = run_child(&exe, spec, &proxy, admin);
        if spec.workload == Workload::W3 {
            let mut reqs: Vec<_> = clients::w3_paths(spec)
                .iter()
                .map(|p| floor::delete(p))
                .collect();
            reqs.push(floor::delete(&format!("/bench/w3/{}", spec.tag)));
            admin.run(reqs);
        }
        m
    };

    // Warm the server's JIT on every request path before anything is recorded.
    eprintln!("zk-bench: warming up the server");
    for (w, n) in [
        (Workload::W1, 2_000),
        (Workload::W2, 50_000),
        (Workload::W3, 10_000),
        (Workload::W1, 2_000),
    ] {
        let spec = spec_for("floor", w, n);
        run_one(&spec, &mut admin);
    }

    let mut rows: Vec<Row> = Vec::new();
    for &w in &opts.workloads {
        for c in opts.clients.iter().filter(|c| runs_workload(c, w)) {
            rows.push(Row {
                workload: w,
                client: c.clone(),
                runs: Vec::new(),
            });
        }
    }
    // Runs outermost, so drift on this shared machine hits every client alike.
    for run in 1..=opts.runs {
        for &w in &opts.workloads {
            for c in opts.clients.iter().filter(|c| runs_workload(c, w)) {
                let spec = spec_for(c, w, opts.n[w.name()]);
                let m = run_one(&spec, &mut admin);
                eprintln!("{}", m.to_json(w.name(), c, run));
                if let Some(r) = rows.iter_mut().find(|r| r.workload == w && &r.client == c) {
                    r.runs.push(m);
                }
            }
        }
    }
    print_table(&rows);
    drop(server);
}
