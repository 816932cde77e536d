//! zk-recipes' watchers (DataWatch, ChildrenWatch, TreeCache) against real
//! ZooKeeper 3.8 servers, for every adapter (tokio, smol, blocking): each sees
//! every change a second client makes, in order; survives a cut connection, a
//! server restart and a session expiry; stops when told (and removes its server
//! watches). A TreeCache of 10,000 nodes under concurrent writes equals the
//! server's tree, node by node, once the writes stop.
//!
//! The watchers run on their default threads (the recipes need no runtime); the
//! adapters only drive the client. The simulated, virtual-time fault schedules
//! are in `watchers_sim.rs`. The kazoo interop test (module `kazoo`) needs
//! `ZK_KAZOO_PYTHON` (see there) and fails without it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Data, Error, ErrorCode, EventType, WatcherType};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::{shared_server, ZkServer};
use zk_tokio::recipes::{
    ChildrenUpdate, ChildrenWatch, ChildrenWatchOptions, DataUpdate, DataWatch, TreeCache,
    TreeCacheError, TreeCacheOptions, TreeEvent,
};

/// Bound of one wait for something that should come promptly.
const WAIT: Duration = Duration::from_secs(20);
/// How long "nothing more comes" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// Watchdog of one whole test.
const TEST_LIMIT: Duration = Duration::from_secs(240);

fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("w-", tag, Z::NAME)
}

fn connect<Z: Zk>(connect_string: &str) -> Z {
    // 30 s: a server restart on a loaded 2-core machine (SIGTERM, JVM start) can
    // take longer than 10 s, and the restart test is about surviving with the same
    // session, not about the session timeout.
    let b = ClientBuilder::new(connect_string)
        .session_timeout(Duration::from_secs(30))
        .connect_deadline(WAIT);
    Z::connect(&b).unwrap_or_else(|e| panic!("{}: connect to {connect_string}: {e:?}", Z::NAME))
}

fn next_data(w: &mut DataWatch, what: &str) -> DataUpdate {
    match w.recv_timeout(Some(WAIT)) {
        Ok(Some(u)) => u,
        Ok(None) => panic!("{what}: the DataWatch ended: {:?}", w.end_reason()),
        Err(_) => panic!("{what}: no DataWatch report within {WAIT:?}"),
    }
}

fn next_children(w: &mut ChildrenWatch, what: &str) -> ChildrenUpdate {
    match w.recv_timeout(Some(WAIT)) {
        Ok(Some(u)) => u,
        Ok(None) => panic!("{what}: the ChildrenWatch ended: {:?}", w.end_reason()),
        Err(_) => panic!("{what}: no ChildrenWatch report within {WAIT:?}"),
    }
}

fn data_is(u: &DataUpdate, want: Option<&str>) -> bool {
    u.data.as_ref().map(|d| d.to_vec()) == want.map(|s| s.as_bytes().to_vec())
}

fn assert_data(u: &DataUpdate, want: Option<&str>, event: Option<EventType>, what: &str) {
    assert!(
        data_is(u, want),
        "{what}: data {:?}, wanted {want:?}",
        u.data
    );
    assert_eq!(
        u.stat.is_some(),
        want.is_some(),
        "{what}: stat {:?}",
        u.stat
    );
    assert_eq!(
        u.event.as_ref().map(|e| e.event_type),
        event,
        "{what}: event"
    );
}

fn names(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// Waits until `cond` holds, polling; panics with `what` after `limit`.
fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reports until one satisfies `pred` (reports may coalesce while the client
/// reconnects); panics if none does within [`WAIT`].
fn data_until(w: &mut DataWatch, what: &str, pred: impl Fn(&DataUpdate) -> bool) -> DataUpdate {
    let t = Instant::now();
    loop {
        let u = next_data(w, what);
        if pred(&u) {
            return u;
        }
        assert!(t.elapsed() < WAIT, "{what}: last report {u:?}");
    }
}

fn children_until(w: &mut ChildrenWatch, what: &str, want: &Option<Vec<String>>) -> ChildrenUpdate {
    let t = Instant::now();
    loop {
        let u = next_children(w, what);
        if &u.children == want {
            return u;
        }
        assert!(t.elapsed() < WAIT, "{what}: last report {u:?}");
    }
}

/// The server's subtree at `root`: data and version of every node.
fn server_tree<Z: Zk>(zk: &Z, root: &str) -> BTreeMap<String, (Data, i32)> {
    let c = zk.as_async();
    let mut out = BTreeMap::new();
    let mut level = vec![root.to_string()];
    while !level.is_empty() {
        // Pipelined: every call goes out when made.
        let reads: Vec<_> = level
            .iter()
            .map(|p| (p.clone(), c.get_data(p), c.get_children(p)))
            .collect();
        let mut next = Vec::new();
        for (p, d, k) in reads {
            let d = zk_client::blocking::block_on(d, Some(WAIT)).expect("get_data hung");
            let k = zk_client::blocking::block_on(k, Some(WAIT)).expect("get_children hung");
            match (d, k) {
                (Ok((data, stat)), Ok(kids)) => {
                    out.insert(p.clone(), (data, stat.version));
                    for k in kids {
                        next.push(format!("{p}/{k}"));
                    }
                }
                (Err(Error::Server(ErrorCode::NoNode)), _)
                | (_, Err(Error::Server(ErrorCode::NoNode))) => {}
                (d, k) => panic!("reading {p}: {d:?} {k:?}"),
            }
        }
        level = next;
    }
    out
}

fn cache_tree(cache: &TreeCache) -> BTreeMap<String, (Data, i32)> {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, (d, s))| (p, (d, s.version)))
        .collect()
}

/// Node-by-node comparison; panics listing the first differences.
fn assert_same_tree(
    what: &str,
    server: &BTreeMap<String, (Data, i32)>,
    cache: &BTreeMap<String, (Data, i32)>,
) {
    if server == cache {
        return;
    }
    let mut diffs = Vec::new();
    for (p, v) in server {
        match cache.get(p) {
            None => diffs.push(format!("missing {p}")),
            Some(c) if c != v => diffs.push(format!("{p}: cache {c:?}, server {v:?}")),
            _ => {}
        }
    }
    for p in cache.keys() {
        if !server.contains_key(p) {
            diffs.push(format!("stale {p}"));
        }
    }
    let n = diffs.len();
    diffs.truncate(10);
    panic!(
        "{what}: cache differs from the server ({} vs {} nodes), {n} differences: {diffs:?}",
        cache.len(),
        server.len()
    );
}

/// Waits until the cache equals the server's tree (changes settle).
fn cache_settles<Z: Zk>(what: &str, zk: &Z, cache: &TreeCache, root: &str) {
    let t = Instant::now();
    loop {
        let s = server_tree(zk, root);
        let c = cache_tree(cache);
        if s == c {
            return;
        }
        if t.elapsed() > WAIT {
            assert_same_tree(what, &s, &c);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn opts(persistent: bool) -> TreeCacheOptions {
    TreeCacheOptions {
        persistent_watch: persistent,
        ..TreeCacheOptions::default()
    }
}

// ============================================================================ DataWatch

fn data_watch_sequence<Z: Zk>() {
    let cs = shared_server().connect_string();
    let (zk, w) = (connect::<Z>(&cs), connect::<Z>(&cs));
    let p = unique::<Z>("data");
    let mut dw = DataWatch::new(zk.as_async(), &p).unwrap();
    assert_data(&next_data(&mut dw, "first"), None, None, "missing at first");
    w.create(&p, "a", CreateMode::Persistent).unwrap();
    let u = next_data(&mut dw, "created");
    assert_data(&u, Some("a"), Some(EventType::NodeCreated), "created");
    assert_eq!(u.stat.unwrap().version, 0);
    w.set_data(&p, "b", None).unwrap();
    let u = next_data(&mut dw, "changed");
    assert_data(&u, Some("b"), Some(EventType::NodeDataChanged), "changed");
    assert_eq!(u.stat.unwrap().version, 1);
    // Null and empty are different values.
    w.set_data(&p, Data::null(), None).unwrap();
    let u = next_data(&mut dw, "null");
    assert!(u.data.as_ref().unwrap().is_null(), "null data: {u:?}");
    w.set_data(&p, "", None).unwrap();
    let u = next_data(&mut dw, "empty");
    let d = u.data.as_ref().unwrap();
    assert!(!d.is_null() && d.is_empty(), "empty data: {u:?}");
    w.delete(&p, None).unwrap();
    assert_data(
        &next_data(&mut dw, "deleted"),
        None,
        Some(EventType::NodeDeleted),
        "deleted",
    );
    w.create(&p, "c", CreateMode::Persistent).unwrap();
    assert_data(
        &next_data(&mut dw, "re-created"),
        Some("c"),
        Some(EventType::NodeCreated),
        "re-created",
    );
    assert!(
        dw.recv_timeout(Some(QUIET)).is_err(),
        "a report nobody caused"
    );

    // The callback form sees the same sequence; false stops it; a panicking
    // callback stops only its own watch.
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let h = DataWatch::callback(zk.as_async(), &p, move |u| {
        let s = u.data.map(|d| String::from_utf8_lossy(&d).into_owned());
        let go_on = s.as_deref() != Some("stop");
        let _ = tx.send(s);
        go_on
    })
    .unwrap();
    let panics = Arc::new(AtomicUsize::new(0));
    let pc = panics.clone();
    let bad = DataWatch::callback(zk.as_async(), &p, move |_| {
        pc.fetch_add(1, Ordering::SeqCst);
        panic!("a callback that panics (expected by the test)");
    })
    .unwrap();
    let got = |what: &str| {
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what}: no callback"))
    };
    assert_eq!(got("first").as_deref(), Some("c"));
    w.set_data(&p, "d", None).unwrap();
    assert_eq!(got("d").as_deref(), Some("d"));
    w.delete(&p, None).unwrap();
    assert_eq!(got("deleted"), None);
    w.create(&p, "stop", CreateMode::Persistent).unwrap();
    assert_eq!(got("stop").as_deref(), Some("stop"));
    assert!(
        h.wait_finished(Some(WAIT)),
        "returning false did not stop it"
    );
    assert!(h.end_reason().is_none());
    w.set_data(&p, "after", None).unwrap();
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "called after returning false"
    );
    assert!(
        bad.wait_finished(Some(WAIT)),
        "a panicking callback kept running"
    );
    assert_eq!(panics.load(Ordering::SeqCst), 1);
    // The stream watch on the same path is unaffected by both.
    let u = data_until(&mut dw, "still watching", |u| data_is(u, Some("after")));
    assert_eq!(
        u.event.map(|e| e.event_type),
        Some(EventType::NodeDataChanged)
    );
    zk.close().unwrap();
    assert!(
        dw.recv_timeout(Some(WAIT)).unwrap().is_none(),
        "close ends it"
    );
    assert_eq!(dw.end_reason(), Some(Error::SessionClosed));
    w.close().unwrap();
}

/// Events per second through a DataWatch: each change is made only once the
/// previous one was reported (no coalescing), then a burst that coalesces.
fn data_watch_rate<Z: Zk>() {
    let cs = shared_server().connect_string();
    let (zk, w) = (connect::<Z>(&cs), connect::<Z>(&cs));
    let p = unique::<Z>("rate");
    w.create(&p, "0", CreateMode::Persistent).unwrap();
    let mut dw = DataWatch::new(zk.as_async(), &p).unwrap();
    assert!(data_is(&next_data(&mut dw, "first"), Some("0")));
    let n = 500;
    let t = Instant::now();
    for i in 1..=n {
        let v = i.to_string();
        w.set_data(&p, &v, None).unwrap();
        let u = next_data(&mut dw, "sequential");
        assert!(data_is(&u, Some(&v)), "sequential {i}: {u:?}");
        assert_eq!(u.stat.unwrap().version, i);
    }
    let seq_rate = n as f64 / t.elapsed().as_secs_f64();
    // A pipelined burst: the reader sees a coalesced subsequence ending with the last.
    let burst = 5_000;
    let c = w.as_async();
    let t = Instant::now();
    let sets: Vec<_> = (0..burst)
        .map(|i| c.set_data(&p, format!("b{i}"), None))
        .collect();
    for s in sets {
        zk_client::blocking::block_on(s, Some(WAIT))
            .unwrap()
            .unwrap();
    }
    let last = format!("b{}", burst - 1);
    let mut reports = 0;
    let mut prev = 0;
    loop {
        let u = next_data(&mut dw, "burst");
        reports += 1;
        let v = u.stat.unwrap().version;
        assert!(v > prev, "versions go forward: {prev} then {v}");
        prev = v;
        if data_is(&u, Some(&last)) {
            break;
        }
    }
    let burst_rate = burst as f64 / t.elapsed().as_secs_f64();
    println!(
        "[{}] DataWatch: {seq_rate:.0} changes/s reported one by one (set, then wait for the report); \
         a burst of {burst} pipelined sets at {burst_rate:.0}/s reached the last value in {reports} coalesced reports",
        Z::NAME
    );
    zk.close().unwrap();
    w.close().unwrap();
}

// ============================================================================ ChildrenWatch

fn children_watch_sequence<Z: Zk>() {
    let cs = shared_server().connect_string();
    let (zk, w) = (connect::<Z>(&cs), connect::<Z>(&cs));
    let p = unique::<Z>("kids");
    // A missing node ends the watch (kazoo), without a report.
    let mut gone = ChildrenWatch::new(zk.as_async(), &p).unwrap();
    assert_eq!(gone.recv_timeout(Some(WAIT)).unwrap(), None);
    assert_eq!(gone.end_reason(), Some(Error::Server(ErrorCode::NoNode)));

    w.create(&p, "", CreateMode::Persistent).unwrap();
    let mut cw = ChildrenWatch::new(zk.as_async(), &p).unwrap();
    let u = next_children(&mut cw, "first");
    assert_eq!(u.children, names(&[]));
    assert!(u.event.is_none());
    for (op, want) in [
        ("+b", &["b"][..]),
        ("+a", &["a", "b"]),
        ("+c", &["a", "b", "c"]),
        ("-b", &["a", "c"]),
        ("-a", &["c"]),
    ] {
        let child = format!("{p}/{}", &op[1..]);
        if op.starts_with('+') {
            w.create(&child, "", CreateMode::Persistent).unwrap();
        } else {
            w.delete(&child, None).unwrap();
        }
        let u = next_children(&mut cw, op);
        assert_eq!(u.children, names(want), "after {op}");
        assert_eq!(
            u.event.map(|e| e.event_type),
            Some(EventType::NodeChildrenChanged),
            "after {op}"
        );
        assert_eq!(u.stat.unwrap().num_children as usize, want.len());
    }
    // Data changes are not child changes.
    w.set_data(&p, "x", None).unwrap();
    assert!(cw.recv_timeout(Some(QUIET)).is_err());

    // wait_for_creation: keeps watching across a delete and re-create.
    let mut patient = ChildrenWatch::with_options(
        zk.as_async(),
        &p,
        ChildrenWatchOptions {
            wait_for_creation: true,
            ..ChildrenWatchOptions::default()
        },
    )
    .unwrap();
    assert_eq!(next_children(&mut patient, "first").children, names(&["c"]));
    w.delete_recursive(&p).unwrap();
    // The plain watch ends with the node (after reporting the last child going).
    let t = Instant::now();
    loop {
        match cw.recv_timeout(Some(WAIT)) {
            Ok(Some(u)) => assert_eq!(u.children, names(&[])),
            Ok(None) => break,
            Err(_) => panic!("the ChildrenWatch did not end with its node"),
        }
        assert!(t.elapsed() < WAIT);
    }
    assert_eq!(cw.end_reason(), Some(Error::Server(ErrorCode::NoNode)));
    children_until(&mut patient, "deleted", &None);
    w.create(&p, "", CreateMode::Persistent).unwrap();
    let u = children_until(&mut patient, "re-created", &names(&[]));
    assert_eq!(u.event.map(|e| e.event_type), Some(EventType::NodeCreated));
    w.create(&format!("{p}/z"), "", CreateMode::Persistent)
        .unwrap();
    children_until(&mut patient, "child of the new node", &names(&["z"]));

    // The callback form, and stop(): no call after it returns.
    let (tx, rx) = mpsc::channel();
    let h = ChildrenWatch::callback(zk.as_async(), &p, Default::default(), move |u| {
        let _ = tx.send(u.children);
        true
    })
    .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), names(&["z"]));
    w.create(&format!("{p}/y"), "", CreateMode::Persistent)
        .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), names(&["y", "z"]));
    h.stop();
    w.create(&format!("{p}/x"), "", CreateMode::Persistent)
        .unwrap();
    assert!(rx.recv_timeout(QUIET).is_err(), "called after stop()");
    zk.close().unwrap();
    w.close().unwrap();
}

// ============================================================================ faults

/// The three watchers over `root` = a node with data and children. The
/// DataWatch and ChildrenWatch of the root share client `zk`; the TreeCache has
/// its own client `zc`: on a 3.8 server, a one-shot watch on the root path from
/// the cache's own connection would replace its persistent watch (ZOOKEEPER-4466,
/// see the TreeCache docs).
struct Watchers<Z> {
    zk: Z,
    zc: Z,
    dw: DataWatch,
    cw: ChildrenWatch,
    cache: TreeCache,
}

fn start_watchers<Z: Zk>(cs: &str, w: &Z, root: &str, persistent: bool) -> Watchers<Z> {
    let (zk, zc) = (connect::<Z>(cs), connect::<Z>(cs));
    w.create(root, "v0", CreateMode::Persistent).unwrap();
    w.create(&format!("{root}/c1"), "x0", CreateMode::Persistent)
        .unwrap();
    let mut dw = DataWatch::new(zk.as_async(), root).unwrap();
    let mut cw = ChildrenWatch::new(zk.as_async(), root).unwrap();
    let cache = TreeCache::with_options(zc.as_async(), root, opts(persistent)).unwrap();
    assert!(data_is(&next_data(&mut dw, "first"), Some("v0")));
    assert_eq!(next_children(&mut cw, "first").children, names(&["c1"]));
    cache.wait_initialized(Some(WAIT)).unwrap();
    assert_eq!(cache.uses_persistent_watch(), Some(persistent));
    assert_eq!(cache.len(), 2);
    Watchers {
        zk,
        zc,
        dw,
        cw,
        cache,
    }
}

impl<Z: Zk> Watchers<Z> {
    fn sessions(&self) -> (i64, i64) {
        (self.zk.session().unwrap().id, self.zc.session().unwrap().id)
    }

    fn close(self) {
        let Watchers {
            zk,
            zc,
            dw,
            cw,
            cache,
        } = self;
        drop((dw, cw, cache));
        zk.close().unwrap();
        zc.close().unwrap();
    }
}

/// Changes to the watched subtree (round `round`), made by `w`.
fn make_changes<Z: Zk>(w: &Z, root: &str, round: u32) {
    w.set_data(root, format!("v{round}"), None).unwrap();
    w.create(&format!("{root}/n{round}"), "new", CreateMode::Persistent)
        .unwrap();
    w.set_data(&format!("{root}/c1"), format!("x{round}"), None)
        .unwrap();
    if round > 1 {
        w.delete(&format!("{root}/n{}", round - 1), None).unwrap();
    }
}

/// Every watcher caught up with [`make_changes`] of `round`.
fn check_changes<Z: Zk>(what: &str, w: &Z, root: &str, ws: &mut Watchers<Z>, round: u32) {
    let v = format!("v{round}");
    data_until(&mut ws.dw, what, |u| data_is(u, Some(&v)));
    let mut want = vec!["c1".to_string(), format!("n{round}")];
    want.sort();
    children_until(&mut ws.cw, what, &Some(want));
    cache_settles(what, w, &ws.cache, root);
}

fn survives_cut<Z: Zk>(persistent: bool) {
    let proxy = Proxy::start(shared_server().addr());
    let w = connect::<Z>(&shared_server().connect_string());
    let root = unique::<Z>("cut");
    let mut ws = start_watchers(&proxy.connect_string(), &w, &root, persistent);
    let sids = ws.sessions();
    for round in 1..=3 {
        // Nothing reaches the watching clients while the changes are made, then
        // their connections are cut: they reconnect to the same sessions.
        proxy.black_hole(true);
        make_changes(&w, &root, round);
        proxy.cut_all();
        proxy.black_hole(false);
        let what = format!("[{}] cut {round}", Z::NAME);
        check_changes(&what, &w, &root, &mut ws, round);
        // And changes after the reconnection arrive through the restored watches.
        let after = format!("after{round}");
        w.set_data(&format!("{root}/c1"), &after, None).unwrap();
        w.create(
            &format!("{root}/n{round}/deep"),
            "d",
            CreateMode::Persistent,
        )
        .unwrap();
        w.set_data(&root, &after, None).unwrap();
        data_until(&mut ws.dw, &what, |u| data_is(u, Some(&after)));
        cache_settles(&format!("{what}, after"), &w, &ws.cache, &root);
        w.delete(&format!("{root}/n{round}/deep"), None).unwrap();
        w.set_data(&root, format!("v{round}"), None).unwrap();
    }
    // The rebuilds reported the differences and a Resynced each.
    let mut resynced = 0;
    while let Some(e) = ws.cache.try_next_event() {
        if e == TreeEvent::Resynced {
            resynced += 1;
        }
    }
    assert!(resynced >= 1, "no Resynced after three reconnections");
    assert_eq!(ws.sessions(), sids, "the sessions survived");
    ws.close();
    w.close().unwrap();
}

/// Events waiting in the cache's queue, after `QUIET` of nothing new.
fn drain_events(cache: &mut TreeCache) -> Vec<TreeEvent> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = cache.recv_event_timeout(Some(QUIET)) {
        out.push(e);
    }
    out
}

/// Which full read of a TreeCache the connection is lost in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WalkCut {
    /// The first one.
    First,
    /// The one after a reconnection; the session survives.
    Resync,
    /// The one after a reconnection; while partitioned, the session expires and
    /// the tree changes, so the read after the partition is on a new session.
    ResyncNewSession,
}

/// A connection lost while the cache's full read has replies outstanding (see
/// [`WalkCut`]). While the network stays partitioned the cache claims nothing it
/// does not hold: no `Initialized` (`wait_initialized` times out), no node
/// removed, no `Resynced`; once the connection is back, the read is done again
/// and the mirror equals the tree a separate client reads from the server, with
/// only the server's own changes reported. kazoo's TreeCache removes a node only
/// on NoNode, a delete event or close.
fn cut_during_walk<Z: Zk>(persistent: bool, cut: WalkCut) {
    let first = cut == WalkCut::First;
    let proxy = Proxy::start(shared_server().addr());
    let w = connect::<Z>(&shared_server().connect_string());
    let root = unique::<Z>(if persistent { "walk" } else { "walk1" });
    let mut paths = vec![root.clone()];
    for i in 0..40 {
        paths.push(format!("{root}/n{i:02}"));
    }
    create_many(&w, &paths);
    let truth = server_tree(&w, &root);
    assert_eq!(truth.len(), 41);
    let zk = connect::<Z>(&proxy.connect_string());
    let what = format!("[{}] (persistent watch: {persistent}, {cut:?})", Z::NAME);
    let mut cache;
    if first {
        // The first full read: ~1,000 bytes of its replies (a few of its 82
        // reads) get through, then the partition.
        proxy.partition_after(1000);
        cache = TreeCache::with_options(zk.as_async(), &root, opts(persistent)).unwrap();
        eventually(WAIT, "the partition", || !zk.state().is_connected());
        let during = drain_events(&mut cache);
        assert!(
            during
                .iter()
                .all(|e| matches!(e, TreeEvent::NodeAdded { .. })),
            "{what}: only nodes read may be reported while partitioned ({} of 41 held): {during:?}",
            cache.len()
        );
        assert!(
            !cache.is_initialized(),
            "{what}: initialized while its first read was cut: {} of 41 nodes, events {during:?}",
            cache.len()
        );
        assert_eq!(
            cache.wait_initialized(Some(QUIET)),
            Err(TreeCacheError::Timeout),
            "{what}: wait_initialized during the partition"
        );
        proxy.black_hole(false);
    } else {
        cache = TreeCache::with_options(zk.as_async(), &root, opts(persistent)).unwrap();
    }
    cache
        .wait_initialized(Some(WAIT))
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert_same_tree(&what, &truth, &cache_tree(&cache));
    let events = drain_events(&mut cache);
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == TreeEvent::Initialized)
            .count(),
        1,
        "{what}: {events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TreeEvent::NodeRemoved { .. })),
        "{what}: removed nodes of a tree that never changed: {events:?}"
    );
    if first {
        drop(cache);
        zk.close().unwrap();
        w.close().unwrap();
        return;
    }

    // The full read after a reconnection: the connection is cut, the client
    // reconnects, and the partition starts ~1,000 bytes into the replies.
    proxy.partition_after(1000);
    proxy.cut_all();
    eventually(WAIT, "the partition", || {
        proxy.is_black_holed() && !zk.state().is_connected()
    });
    let during = drain_events(&mut cache);
    assert!(
        during.is_empty(),
        "{what}: events while partitioned (a tree that never changed): {during:?}"
    );
    assert_same_tree(&format!("{what} partitioned"), &truth, &cache_tree(&cache));
    let old_session = zk.session().expect("a session").id;
    if cut == WalkCut::ResyncNewSession {
        expire(&zk, &shared_server().connect_string());
        w.delete(&format!("{root}/n00"), None).unwrap();
        w.create(&format!("{root}/n40"), "new", CreateMode::Persistent)
            .unwrap();
        // The connection attempt held in the black hole carries the old session:
        // a fresh one learns at once that it expired.
        proxy.cut_all();
    }
    proxy.black_hole(false);
    let t = Instant::now();
    let mut after = Vec::new();
    while !after.contains(&TreeEvent::Resynced) {
        assert!(t.elapsed() < WAIT, "{what}: no Resynced: {after:?}");
        if let Ok(Some(e)) = cache.recv_event_timeout(Some(QUIET)) {
            after.push(e);
        }
    }
    if cut == WalkCut::ResyncNewSession {
        assert_ne!(zk.session().map(|s| s.id), Some(old_session), "{what}");
        let (n00, n40) = (format!("{root}/n00"), format!("{root}/n40"));
        assert!(
            after.len() == 3
                && after[..2]
                    .iter()
                    .any(|e| matches!(e, TreeEvent::NodeRemoved { path, .. } if *path == n00))
                && after[..2]
                    .iter()
                    .any(|e| matches!(e, TreeEvent::NodeAdded { path, .. } if *path == n40)),
            "{what}: only the server's changes, then Resynced: {after:?}"
        );
    } else {
        assert_eq!(zk.session().map(|s| s.id), Some(old_session), "{what}");
        assert_eq!(
            after,
            [TreeEvent::Resynced],
            "{what}: a tree that never changed"
        );
    }
    assert_same_tree(
        &format!("{what} resynced"),
        &server_tree(&w, &root),
        &cache_tree(&cache),
    );
    drop(cache);
    zk.close().unwrap();
    w.close().unwrap();
}

fn restart_server() -> &'static Mutex<ZkServer> {
    static S: OnceLock<Mutex<ZkServer>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(ZkServer::start()))
}

fn survives_restart<Z: Zk>() {
    let mut server = restart_server().lock().unwrap_or_else(|p| p.into_inner());
    let cs = server.connect_string();
    let w = connect::<Z>(&cs);
    let root = unique::<Z>("restart");
    let mut ws = start_watchers(&cs, &w, &root, true);
    let sids = ws.sessions();
    for round in 1..=2 {
        server.restart();
        let what = format!("[{}] restart {round}", Z::NAME);
        make_changes(&w, &root, round);
        check_changes(&what, &w, &root, &mut ws, round);
    }
    assert_eq!(ws.sessions(), sids, "the sessions survived");
    ws.close();
    w.close().unwrap();
}

/// Expires `zk`'s session from outside: another client resumes it and closes it.
fn expire<Z: Zk>(zk: &Z, cs: &str) {
    let info = zk.session().unwrap();
    let other = Z::connect(
        &ClientBuilder::new(cs)
            .resume(info.id, info.password.clone())
            .connect_deadline(WAIT),
    )
    .unwrap_or_else(|e| panic!("resume the session: {e:?}"));
    other.close().unwrap();
}

fn survives_expiry<Z: Zk>(persistent: bool) {
    let cs = shared_server().connect_string();
    // The watching clients go through a proxy, so that they cannot take their
    // sessions back while another client resumes and closes them.
    let proxy = Proxy::start(shared_server().addr());
    let w = connect::<Z>(&cs);
    let root = unique::<Z>("expiry");
    let mut ws = start_watchers(&proxy.connect_string(), &w, &root, persistent);
    let new_sessions = |ws: &Watchers<Z>, before: (i64, i64), both: bool| {
        eventually(WAIT, "new sessions", || {
            let new = |z: &Z, old: i64| {
                z.session().is_some_and(|s| s.id != old) && z.state().is_connected()
            };
            new(&ws.zk, before.0) && (!both || new(&ws.zc, before.1))
        })
    };
    for round in 1..=2 {
        let before = ws.sessions();
        proxy.black_hole(true);
        expire(&ws.zk, &cs);
        expire(&ws.zc, &cs);
        // Changes while the sessions are gone.
        make_changes(&w, &root, round);
        proxy.cut_all();
        proxy.black_hole(false);
        new_sessions(&ws, before, true);
        let what = format!("[{}] expiry {round}", Z::NAME);
        check_changes(&what, &w, &root, &mut ws, round);
    }
    // kazoo's allow_session_lost=False: such a watch ends at a session loss.
    let mut strict = ChildrenWatch::with_options(
        ws.zk.as_async(),
        &root,
        ChildrenWatchOptions {
            allow_session_lost: false,
            ..ChildrenWatchOptions::default()
        },
    )
    .unwrap();
    next_children(&mut strict, "strict first");
    let before = ws.sessions();
    proxy.black_hole(true);
    expire(&ws.zk, &cs);
    proxy.cut_all();
    proxy.black_hole(false);
    new_sessions(&ws, before, false);
    let t = Instant::now();
    loop {
        match strict.recv_timeout(Some(WAIT)) {
            Ok(None) => break,
            Ok(Some(_)) => assert!(t.elapsed() < WAIT),
            Err(_) => panic!("allow_session_lost=false kept watching after an expiry"),
        }
    }
    assert_eq!(strict.end_reason(), Some(Error::SessionExpired));
    // The others carry on in the new session.
    make_changes(&w, &root, 3);
    check_changes("after the strict watch ended", &w, &root, &mut ws, 3);
    ws.close();
    w.close().unwrap();
}

fn stops_when_told<Z: Zk>() {
    let cs = shared_server().connect_string();
    let w = connect::<Z>(&cs);
    let root = unique::<Z>("stop");
    let ws = start_watchers(&cs, &w, &root, true);
    let oneshot = TreeCache::with_options(ws.zk.as_async(), &root, opts(false)).unwrap();
    oneshot.wait_initialized(Some(WAIT)).unwrap();
    let (zk, zc) = (ws.zk.as_async().clone(), ws.zc.as_async().clone());
    let check = |c: &zk_client::Client, path: &str, kind| {
        zk_client::blocking::block_on(c.check_watches(path, kind), Some(WAIT))
            .expect("check_watches hung")
    };
    for kind in [WatcherType::Data, WatcherType::Children] {
        check(&zk, &root, kind)
            .unwrap_or_else(|e| panic!("no {kind:?} watch while watching: {e:?}"));
        check(&zk, &format!("{root}/c1"), kind)
            .unwrap_or_else(|e| panic!("no {kind:?} watch on a child while watching: {e:?}"));
    }
    check(&zc, &root, WatcherType::Any).unwrap_or_else(|e| panic!("no persistent watch: {e:?}"));
    let (dz, dc) = (zk.diagnostics(), zc.diagnostics());
    assert!(dz.counts().session_watches > 0 && dc.counts().session_watches > 0);
    let Watchers {
        zk: zk_facade,
        zc: zc_facade,
        dw,
        cw,
        cache,
    } = ws;
    drop((dw, cw, cache));
    oneshot.stop();
    // Every registration is gone, locally and on the server.
    eventually(WAIT, "local watch registrations released", || {
        let (a, b) = (dz.counts(), dc.counts());
        a.watch_queues == 0
            && a.session_watches == 0
            && b.watch_queues == 0
            && b.session_watches == 0
    });
    for (c, path) in [
        (&zk, root.clone()),
        (&zk, format!("{root}/c1")),
        (&zc, root.clone()),
    ] {
        eventually(WAIT, "server watches removed", || {
            matches!(
                check(c, &path, WatcherType::Any),
                Err(Error::Server(ErrorCode::NoWatcher))
            )
        });
    }
    zk_facade.close().unwrap();
    zc_facade.close().unwrap();
    w.close().unwrap();
}

// ============================================================================ TreeCache at size

fn create_many<Z: Zk>(w: &Z, paths: &[String]) {
    let c = w.as_async();
    for chunk in paths.chunks(1000) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|p| c.create(p, p.as_bytes(), CreateMode::Persistent))
            .collect();
        for f in calls {
            zk_client::blocking::block_on(f, Some(WAIT))
                .expect("create hung")
                .expect("create");
        }
    }
}

fn big_tree<Z: Zk>(persistent: bool) {
    let cs = shared_server().connect_string();
    let zk = connect::<Z>(&cs);
    let w = connect::<Z>(&cs);
    let root = unique::<Z>(if persistent { "big" } else { "big1" });
    let mut paths = vec![root.clone()];
    for d in 0..100 {
        paths.push(format!("{root}/d{d:02}"));
    }
    for d in 0..100 {
        for k in 0..99 {
            paths.push(format!("{root}/d{d:02}/k{k:02}"));
        }
    }
    assert_eq!(paths.len(), 10_001);
    create_many(&w, &paths);

    // A build on a quiet tree, timed.
    let t = Instant::now();
    let quiet = TreeCache::with_options(zk.as_async(), &root, opts(persistent)).unwrap();
    quiet
        .wait_initialized(Some(Duration::from_secs(120)))
        .unwrap();
    let build = t.elapsed();
    assert_eq!(quiet.len(), 10_001);
    drop(quiet);

    // A build while another client writes: sets, creates and deletes.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (wr, r2) = (writing.clone(), root.clone());
    let writer = {
        let w2 = connect::<Z>(&cs);
        thread::spawn(move || {
            let c = w2.as_async().clone();
            let mut i = 0u64;
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            while wr.load(Ordering::SeqCst) || i < 3000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let (d, k) = (rng % 100, (rng >> 8) % 120);
                let p = format!("{r2}/d{d:02}/k{k:02}");
                let f = match (rng >> 20) % 4 {
                    0 | 1 => zk_client::blocking::block_on(
                        c.set_data(&p, format!("s{i}"), None),
                        Some(WAIT),
                    )
                    .map(|r| r.map(|_| ())),
                    2 => zk_client::blocking::block_on(
                        c.create(&p, format!("c{i}"), CreateMode::Persistent),
                        Some(WAIT),
                    )
                    .map(|r| r.map(|_| ())),
                    _ => zk_client::blocking::block_on(c.delete(&p, None), Some(WAIT)),
                };
                match f {
                    Some(Ok(()))
                    | Some(Err(Error::Server(ErrorCode::NoNode | ErrorCode::NodeExists))) => {}
                    other => panic!("writer: {p}: {other:?}"),
                }
                i += 1;
            }
            w2.close().unwrap();
            i
        })
    };
    let t = Instant::now();
    let mut cache = TreeCache::with_options(
        zk.as_async(),
        &root,
        TreeCacheOptions {
            event_capacity: 1_000,
            ..opts(persistent)
        },
    )
    .unwrap();
    cache
        .wait_initialized(Some(Duration::from_secs(120)))
        .unwrap();
    let busy_build = t.elapsed();
    thread::sleep(Duration::from_millis(500));
    writing.store(false, Ordering::SeqCst);
    let writes = writer.join().expect("writer panicked");
    // A marker written last: once the cache has it, it has applied everything before.
    let marker = format!("{root}/marker");
    w.create(&marker, "end", CreateMode::Persistent).unwrap();
    eventually(WAIT, "the marker reaches the cache", || {
        cache.get(&marker).is_some()
    });
    let t = Instant::now();
    let server = server_tree(&w, &root);
    let walk = t.elapsed();
    assert_same_tree(
        &format!("[{}] big tree (persistent watch: {persistent})", Z::NAME),
        &server,
        &cache_tree(&cache),
    );
    // Children lists agree too.
    for d in 0..100 {
        let p = format!("{root}/d{d:02}");
        let mut kids = w.get_children(&p).unwrap();
        kids.sort();
        assert_eq!(cache.children(&p).unwrap(), kids, "children of {p}");
    }
    // Events came through the bounded queue, with an explicit overflow marker.
    let mut overflow = 0;
    let mut events = 0;
    while let Some(e) = cache.try_next_event() {
        events += 1;
        if let TreeEvent::Overflow { dropped } = e {
            overflow += dropped;
        }
    }
    println!(
        "[{}] TreeCache (persistent watch: {persistent}): 10,001 nodes built in {build:?} quiet, \
         {busy_build:?} under writes; {writes} concurrent writes; {} nodes equal the server's \
         (server walk {walk:?}); {events} events queued, {overflow} dropped past the queue bound",
        Z::NAME,
        server.len()
    );
    drop(cache);
    zk.close().unwrap();
    w.close().unwrap();
}

fn tree_limit<Z: Zk>() {
    let cs = shared_server().connect_string();
    let zk = connect::<Z>(&cs);
    let root = unique::<Z>("limit");
    let paths: Vec<String> = std::iter::once(root.clone())
        .chain((0..10).map(|i| format!("{root}/n{i}")))
        .collect();
    create_many(&zk, &paths);
    let mut cache = TreeCache::with_options(
        zk.as_async(),
        &root,
        TreeCacheOptions {
            max_nodes: 5,
            ..TreeCacheOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        cache.wait_initialized(Some(WAIT)),
        Err(TreeCacheError::TooManyNodes { limit: 5 })
    );
    assert_eq!(cache.len(), 0, "a cache over its limit empties itself");
    // The event stream ends.
    let t = Instant::now();
    while cache.recv_event_timeout(Some(WAIT)).unwrap().is_some() {
        assert!(t.elapsed() < WAIT);
    }
    zk.close().unwrap();
}

// ============================================================================

macro_rules! watchers {
    ($m:ident, $z:ty) => {
        mod $m {
            use super::*;
            fn name(t: &str) -> String {
                format!("{}::{t}", <$z as Zk>::NAME)
            }
            #[test]
            fn data_watch_sequence() {
                run(
                    &name("data_watch_sequence"),
                    super::data_watch_sequence::<$z>,
                )
            }
            #[test]
            fn data_watch_rate() {
                run(&name("data_watch_rate"), super::data_watch_rate::<$z>)
            }
            #[test]
            fn children_watch_sequence() {
                run(
                    &name("children_watch_sequence"),
                    super::children_watch_sequence::<$z>,
                )
            }
            #[test]
            fn survives_cut() {
                run(&name("survives_cut"), || super::survives_cut::<$z>(true))
            }
            #[test]
            fn survives_cut_oneshot_watches() {
                run(&name("survives_cut_oneshot_watches"), || {
                    super::survives_cut::<$z>(false)
                })
            }
            #[test]
            fn cut_during_first_read() {
                run(&name("cut_during_first_read"), || {
                    super::cut_during_walk::<$z>(true, super::WalkCut::First)
                })
            }
            #[test]
            fn cut_during_first_read_oneshot_watches() {
                run(&name("cut_during_first_read_oneshot_watches"), || {
                    super::cut_during_walk::<$z>(false, super::WalkCut::First)
                })
            }
            #[test]
            fn cut_during_resync() {
                run(&name("cut_during_resync"), || {
                    super::cut_during_walk::<$z>(true, super::WalkCut::Resync)
                })
            }
            #[test]
            fn cut_during_resync_oneshot_watches() {
                run(&name("cut_during_resync_oneshot_watches"), || {
                    super::cut_during_walk::<$z>(false, super::WalkCut::Resync)
                })
            }
            #[test]
            fn cut_during_resync_new_session() {
                run(&name("cut_during_resync_new_session"), || {
                    super::cut_during_walk::<$z>(true, super::WalkCut::ResyncNewSession)
                })
            }
            #[test]
            fn cut_during_resync_new_session_oneshot_watches() {
                run(
                    &name("cut_during_resync_new_session_oneshot_watches"),
                    || super::cut_during_walk::<$z>(false, super::WalkCut::ResyncNewSession),
                )
            }
            #[test]
            fn survives_restart() {
                run(&name("survives_restart"), super::survives_restart::<$z>)
            }
            #[test]
            fn survives_expiry() {
                run(&name("survives_expiry"), || {
                    super::survives_expiry::<$z>(true)
                })
            }
            #[test]
            fn survives_expiry_oneshot_watches() {
                run(&name("survives_expiry_oneshot_watches"), || {
                    super::survives_expiry::<$z>(false)
                })
            }
            #[test]
            fn stops_when_told() {
                run(&name("stops_when_told"), super::stops_when_told::<$z>)
            }
            #[test]
            fn big_tree() {
                run(&name("big_tree"), || super::big_tree::<$z>(true))
            }
            #[test]
            fn tree_limit() {
                run(&name("tree_limit"), super::tree_limit::<$z>)
            }
        }
    };
}

watchers!(tokio, TokioZk);
watchers!(smol, SmolZk);
watchers!(blocking, BlockingZk);

/// The one-shot fallback at size, once (it is adapter-independent above the client).
#[test]
fn big_tree_oneshot_watches() {
    run("big_tree_oneshot_watches", || big_tree::<TokioZk>(false))
}

// ============================================================================ kazoo

/// Interop with a real kazoo (2.11) process on the same server: kazoo writes and
/// our DataWatch, ChildrenWatch and TreeCache see every change; we write and
/// kazoo's own DataWatch sees every change (null data included).
///
/// Needs `ZK_KAZOO_PYTHON`: a Python interpreter that can `import kazoo`, e.g.
///
/// ```text
/// python3 -m venv /opt/kazoo-venv && /opt/kazoo-venv/bin/pip install kazoo==2.11.0
/// export ZK_KAZOO_PYTHON=/opt/kazoo-venv/bin/python
/// ```
///
/// Without it the test FAILS (it never skips).
mod kazoo {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use zk_client::{ClientBuilder, CreateMode, Data, EventType};
    use zk_tests::facade::{TokioZk, Zk};
    use zk_tests::peer::LinePeer;
    use zk_tests::server::shared_server;
    use zk_tokio::recipes::{
        ChildrenWatch, ChildrenWatchOptions, DataUpdate, DataWatch, TreeCache, TreeEvent,
    };

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
        let mut cw = ChildrenWatch::with_options(
            zk.as_async(),
            &p,
            ChildrenWatchOptions {
                wait_for_creation: true,
                ..ChildrenWatchOptions::default()
            },
        )
        .unwrap();
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
}
