//! Interop with a real kazoo (2.11) process on the same server: kazoo writes and
//! our DataWatch, ChildrenWatch and TreeCache see every change; we write and
//! kazoo's own DataWatch sees every change (null data included).
//!
//! Needs `ZK_KAZOO_PYTHON`: a Python interpreter that can `import kazoo`, e.g.
//!
//! ```text
//! python3 -m venv /opt/kazoo-venv && /opt/kazoo-venv/bin/pip install kazoo==2.11.0
//! export ZK_KAZOO_PYTHON=/opt/kazoo-venv/bin/python
//! ```
//!
//! Without it the test FAILS (it never skips).

use std::process::Command;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Data, EventType};
use zk_tests::facade::{TokioZk, Zk};
use zk_tests::peer::LinePeer;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{DataUpdate, DataWatch, TreeCache, TreeEvent};

use super::support::patient_children_watch;

const WAIT: Duration = Duration::from_secs(30);

/// A line-driven kazoo: commands on stdin, `ok`/`err` answers and the kazoo
/// DataWatch's calls (`dw PATH DATA VERSION`) on stdout.
const DRIVER: &str = r#"
import sys, threading
from kazoo.client import KazooClient
from kazoo.recipe.watchers import DataWatch

lock = threading.Lock()
def say(*a):
    with lock:
        print(*a, flush=True)

def enc(b):
    return "None" if b is None else "hex:" + b.hex()

zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=30)
say("ready")
watches = []
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    cmd = parts[0]
    data = bytes.fromhex(parts[2]) if len(parts) > 2 else b""
    try:
        if cmd == "create":
            zk.create(parts[1], data)
        elif cmd == "set":
            zk.set(parts[1], data)
        elif cmd == "delete":
            zk.delete(parts[1])
        elif cmd == "watch":
            def reporter(path):
                def f(d, stat):
                    say("dw", path, enc(d), stat.version if stat else "None")
                return f
            watches.append(DataWatch(zk, parts[1], reporter(parts[1])))
        elif cmd == "quit":
            break
        say("ok", cmd)
    except Exception as e:
        say("err", cmd, repr(e))
zk.stop()
zk.close()
"#;

struct Kazoo {
    peer: LinePeer,
}

impl Kazoo {
    fn start(hosts: &str) -> Kazoo {
        let check = "import kazoo, kazoo.recipe.watchers; print('kazoo ok')";
        let (py, _) = zk_tests::peer::kazoo_python(check);
        let script =
            std::env::temp_dir().join(format!("zk-kazoo-driver-{}.py", std::process::id()));
        std::fs::write(&script, DRIVER).expect("write the kazoo driver");
        let mut cmd = Command::new(py);
        cmd.arg(&script).arg(hosts);
        let mut k = Kazoo {
            peer: LinePeer::spawn(cmd, "kazoo", "quit", Duration::from_secs(10)),
        };
        k.expect_line("ready", |l| l == "ready");
        k
    }

    /// The next line that satisfies `pred`; an `err` line on the way fails the test.
    fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let l = self
            .peer
            .line(WAIT, &|l| pred(l) || l.starts_with("err"))
            .unwrap_or_else(|| {
                panic!(
                    "kazoo: no {what} within {WAIT:?} (other lines: {:?})",
                    self.peer.backlog()
                )
            });
        assert!(pred(&l), "kazoo: {l} (waiting for {what})");
        l
    }

    fn cmd(&mut self, line: &str) {
        self.peer.send(line);
        let verb = line.split_whitespace().next().unwrap().to_string();
        self.expect_line(line, |l| l == format!("ok {verb}"));
    }

    /// kazoo's next DataWatch call on `path`: (data, version).
    fn next_dw(&mut self, path: &str) -> (String, String) {
        let prefix = format!("dw {path} ");
        let l = self.expect_line("a kazoo DataWatch call", |l| l.starts_with(&prefix));
        let mut it = l[prefix.len()..].split(' ');
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        )
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn next_data(w: &mut DataWatch) -> DataUpdate {
    w.recv_timeout(Some(WAIT))
        .expect("no DataWatch report")
        .expect("the DataWatch ended")
}

#[test]
fn kazoo_writes_we_watch_we_write_kazoo_watches() {
    let cs = shared_server().connect_string();
    let mut kz = Kazoo::start(&cs);
    let zk = TokioZk::connect(&ClientBuilder::new(&cs)).unwrap();
    let base = format!("/kazoo-interop-{}", std::process::id());
    zk.ensure_path(&base).unwrap();

    // kazoo writes, our watchers see every change in order.
    let p = format!("{base}/a");
    let mut dw = DataWatch::new(zk.as_async(), &p).unwrap();
    let mut cw = patient_children_watch(zk.as_async(), &p);
    // Its own client: on 3.8 a one-shot watch on the root path from the cache's
    // connection would replace its persistent watch (ZOOKEEPER-4466).
    let zc = TokioZk::connect(&ClientBuilder::new(&cs)).unwrap();
    let mut cache = TreeCache::new(zc.as_async(), &p).unwrap();
    cache.wait_initialized(Some(WAIT)).unwrap();
    assert!(next_data(&mut dw).data.is_none());
    assert_eq!(cw.recv_timeout(Some(WAIT)).unwrap().unwrap().children, None);
    kz.cmd(&format!("create {p} {}", hex("k0")));
    let u = next_data(&mut dw);
    assert_eq!(u.data, Some(Data::new("k0")));
    assert_eq!(u.event.map(|e| e.event_type), Some(EventType::NodeCreated));
    assert_eq!(
        cw.recv_timeout(Some(WAIT)).unwrap().unwrap().children,
        Some(vec![])
    );
    for v in ["k1", "k2"] {
        kz.cmd(&format!("set {p} {}", hex(v)));
        assert_eq!(next_data(&mut dw).data, Some(Data::new(v)));
    }
    // kazoo writes b"" for an empty value: empty, not null.
    kz.cmd(&format!("set {p}"));
    let u = next_data(&mut dw);
    assert!(!u.data.as_ref().unwrap().is_null() && u.data.unwrap().is_empty());
    kz.cmd(&format!("create {p}/c1 {}", hex("x")));
    assert_eq!(
        cw.recv_timeout(Some(WAIT)).unwrap().unwrap().children,
        Some(vec!["c1".to_string()])
    );
    kz.cmd(&format!("create {p}/c2"));
    assert_eq!(
        cw.recv_timeout(Some(WAIT)).unwrap().unwrap().children,
        Some(vec!["c1".to_string(), "c2".to_string()])
    );
    // The cache is another client: delete c2 only once it has read it (else the
    // delete can beat its read, and a node it never saw is not an add and a remove).
    let t = Instant::now();
    while cache.get(&format!("{p}/c2")).is_none() {
        assert!(t.elapsed() < WAIT, "the cache never saw {p}/c2");
        std::thread::sleep(Duration::from_millis(5));
    }
    kz.cmd(&format!("delete {p}/c2"));
    assert_eq!(
        cw.recv_timeout(Some(WAIT)).unwrap().unwrap().children,
        Some(vec!["c1".to_string()])
    );
    kz.cmd(&format!("set {p}/c1 {}", hex("y")));
    // The cache saw it all, in order.
    let mut seen = Vec::new();
    let t = Instant::now();
    while cache.get(&format!("{p}/c1")).map(|(d, _)| d) != Some(Data::new("y")) {
        assert!(t.elapsed() < WAIT, "the cache did not catch up: {seen:?}");
        if let Ok(Some(e)) = cache.recv_event_timeout(Some(Duration::from_millis(50))) {
            seen.push(e);
        }
    }
    while let Some(e) = cache.try_next_event() {
        seen.push(e);
    }
    let kinds: Vec<String> = seen
        .iter()
        .map(|e| match e {
            TreeEvent::NodeAdded { path, .. } => format!("+{}", &path[p.len()..]),
            TreeEvent::NodeUpdated { path, .. } => format!("~{}", &path[p.len()..]),
            TreeEvent::NodeRemoved { path, .. } => format!("-{}", &path[p.len()..]),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds[0], "Initialized");
    assert_eq!(kinds.last().map(String::as_str), Some("~/c1"), "{kinds:?}");
    assert!(
        kinds.contains(&"+/c2".to_string()) && kinds.contains(&"-/c2".to_string()),
        "{kinds:?}"
    );
    assert_eq!(cache.len(), 2);
    drop((dw, cw, cache));
    zc.close().unwrap();

    // We write, kazoo's DataWatch sees every change (null as None).
    let q = format!("{base}/b");
    kz.cmd(&format!("watch {q}"));
    assert_eq!(kz.next_dw(&q), ("None".into(), "None".into()));
    zk.create(&q, "r0", CreateMode::Persistent).unwrap();
    assert_eq!(kz.next_dw(&q), (format!("hex:{}", hex("r0")), "0".into()));
    zk.set_data(&q, "r1", None).unwrap();
    assert_eq!(kz.next_dw(&q), (format!("hex:{}", hex("r1")), "1".into()));
    zk.set_data(&q, Data::null(), None).unwrap();
    assert_eq!(kz.next_dw(&q), ("None".into(), "2".into()));
    zk.delete(&q, None).unwrap();
    assert_eq!(kz.next_dw(&q), ("None".into(), "None".into()));
    zk.create(&q, "r2", CreateMode::Persistent).unwrap();
    assert_eq!(kz.next_dw(&q), (format!("hex:{}", hex("r2")), "0".into()));
    drop(kz);
    zk.delete_recursive(&base).unwrap();
    zk.close().unwrap();
}
