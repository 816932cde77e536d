//! TreeCache initial build of a 10,000-node subtree: ours (zk-tokio, multi-thread
//! runtime) beside kazoo's TreeCache in the same run, against one throwaway server.
//! Time to Initialized, and resident memory per cached node (RSS growth of the
//! process over the build divided by the node count; each client runs in its own
//! process so the numbers do not mix).
//!
//! `cargo run -p zk-bench --release --bin treecache` (kazoo's python from
//! ZK_KAZOO_PYTHON, or `bash scripts/ensure-kazoo.sh` makes one).

use std::process::Command;
use std::time::{Duration, Instant};

const NODES: usize = 10_000;
const ROOT: &str = "/treebench";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const KAZOO: &str = r#"
import sys, time, threading, resource
from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent
def rss():
    for l in open('/proc/self/status'):
        if l.startswith('VmRSS:'): return int(l.split()[1])
zk = KazooClient(hosts=sys.argv[1]); zk.start()
before = rss()
done = threading.Event()
def on(ev):
    if ev.event_type == TreeEvent.INITIALIZED: done.set()
t = time.monotonic()
c = TreeCache(zk, sys.argv[2]); c.listen(on); c.start()
if not done.wait(600): sys.exit("kazoo TreeCache did not initialize")
took = time.monotonic() - t
print("%f %d" % (took, rss() - before))
c.close(); zk.stop()
"#;

fn ours(hosts: &str) -> (f64, i64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let zk = zk_tokio::connect(&zk_client::ClientBuilder::new(hosts))
            .await
            .unwrap();
        let before = rss_kib() as i64;
        let t = Instant::now();
        let cache = zk_recipes::TreeCache::new(&zk, ROOT).unwrap();
        let ok =
            tokio::task::block_in_place(|| cache.wait_initialized(Some(Duration::from_secs(600))));
        assert!(ok.is_ok(), "TreeCache did not initialize: {ok:?}");
        let took = t.elapsed().as_secs_f64();
        assert_eq!(cache.len(), NODES + 1);
        let grew = rss_kib() as i64 - before;
        drop(cache);
        zk.close().await.unwrap();
        (took, grew)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ours") {
        let (t, kib) = ours(&args[2]);
        println!("{t} {kib}");
        return;
    }
    let server = zk_tests::ZkServer::start();
    let hosts = server.connect_string();
    let zk = zk_blocking::connect(&zk_client::ClientBuilder::new(&hosts)).unwrap();
    zk.create(ROOT, "", zk_client::CreateMode::Persistent)
        .unwrap();
    // 100 parents with 99 leaves each, under the root: 10,001 nodes.
    for i in 0..100 {
        zk.create(
            &format!("{ROOT}/n{i:03}"),
            "",
            zk_client::CreateMode::Persistent,
        )
        .unwrap();
    }
    let pending: Vec<_> = (0..NODES - 100)
        .map(|i| {
            zk.create_async(
                &format!("{ROOT}/n{:03}/c{i}", i % 100),
                vec![b'x'; 100],
                zk_client::CreateMode::Persistent,
            )
        })
        .collect();
    for w in pending {
        w.wait().unwrap();
    }
    zk.close().unwrap();
    let run = |cmd: &mut Command| -> (f64, f64) {
        let out = cmd.output().expect("run a child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s.split_whitespace();
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        )
    };
    let me = std::env::current_exe().unwrap();
    let python = std::env::var("ZK_KAZOO_PYTHON")
        .expect("set ZK_KAZOO_PYTHON (bash scripts/ensure-kazoo.sh prints one)");
    println!("| client | build 10,001 nodes (s) | RSS growth (KiB) | bytes per node |");
    println!("|---|---|---|---|");
    for run_no in 1..=3 {
        let (t, kib) = run(Command::new(&me).args(["--ours", &hosts]));
        println!(
            "| zk-recipes TreeCache (zk-tokio, run {run_no}) | {t:.3} | {kib:.0} | {:.0} |",
            kib * 1024.0 / 10_001.0
        );
        let (t, kib) = run(Command::new(&python).args(["-c", KAZOO, &hosts, ROOT]));
        println!(
            "| kazoo 2.11 TreeCache (run {run_no}) | {t:.3} | {kib:.0} | {:.0} |",
            kib * 1024.0 / 10_001.0
        );
    }
}
