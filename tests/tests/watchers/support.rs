//! The suite's harness: bounds, the watchdog, unique paths, connecting, reading a
//! watcher's next update, and comparing a TreeCache with the server's tree.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Data, Error, ErrorCode, EventType};
use zk_tests::facade::Zk;
use zk_tokio::recipes::{
    ChildrenUpdate, ChildrenWatch, ChildrenWatchOptions, DataUpdate, DataWatch, TreeCache,
    TreeCacheOptions,
};

/// Bound of one wait for something that should come promptly.
pub(crate) const WAIT: Duration = Duration::from_secs(20);
/// How long "nothing more comes" is watched for.
pub(crate) const QUIET: Duration = Duration::from_millis(300);
/// Watchdog of one whole test.
const TEST_LIMIT: Duration = Duration::from_secs(240);

pub(crate) fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

pub(crate) fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("w-", tag, Z::NAME)
}

pub(crate) fn connect<Z: Zk>(connect_string: &str) -> Z {
    // 30 s: a server restart on a loaded 2-core machine (SIGTERM, JVM start) can
    // take longer than 10 s, and the restart test is about surviving with the same
    // session, not about the session timeout.
    let b = ClientBuilder::new(connect_string)
        .session_timeout(Duration::from_secs(30))
        .connect_deadline(WAIT);
    Z::connect(&b).unwrap_or_else(|e| panic!("{}: connect to {connect_string}: {e:?}", Z::NAME))
}

pub(crate) fn next_data(w: &mut DataWatch, what: &str) -> DataUpdate {
    match w.recv_timeout(Some(WAIT)) {
        Ok(Some(u)) => u,
        Ok(None) => panic!("{what}: the DataWatch ended: {:?}", w.end_reason()),
        Err(_) => panic!("{what}: no DataWatch report within {WAIT:?}"),
    }
}

pub(crate) fn next_children(w: &mut ChildrenWatch, what: &str) -> ChildrenUpdate {
    match w.recv_timeout(Some(WAIT)) {
        Ok(Some(u)) => u,
        Ok(None) => panic!("{what}: the ChildrenWatch ended: {:?}", w.end_reason()),
        Err(_) => panic!("{what}: no ChildrenWatch report within {WAIT:?}"),
    }
}

pub(crate) fn data_is(u: &DataUpdate, want: Option<&str>) -> bool {
    u.data.as_ref().map(|d| d.to_vec()) == want.map(|s| s.as_bytes().to_vec())
}

pub(crate) fn assert_data(
    u: &DataUpdate,
    want: Option<&str>,
    event: Option<EventType>,
    what: &str,
) {
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

pub(crate) fn names(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// Waits until `cond` holds, polling; panics with `what` after `limit`.
pub(crate) fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reports until one satisfies `pred` (reports may coalesce while the client
/// reconnects); panics if none does within [`WAIT`].
pub(crate) fn data_until(
    w: &mut DataWatch,
    what: &str,
    pred: impl Fn(&DataUpdate) -> bool,
) -> DataUpdate {
    let t = Instant::now();
    loop {
        let u = next_data(w, what);
        if pred(&u) {
            return u;
        }
        assert!(t.elapsed() < WAIT, "{what}: last report {u:?}");
    }
}

pub(crate) fn children_until(
    w: &mut ChildrenWatch,
    what: &str,
    want: &Option<Vec<String>>,
) -> ChildrenUpdate {
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
pub(crate) fn server_tree<Z: Zk>(zk: &Z, root: &str) -> BTreeMap<String, (Data, i32)> {
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

pub(crate) fn cache_tree(cache: &TreeCache) -> BTreeMap<String, (Data, i32)> {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, (d, s))| (p, (d, s.version)))
        .collect()
}

/// Node-by-node comparison; panics listing the first differences.
pub(crate) fn assert_same_tree(
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
pub(crate) fn cache_settles<Z: Zk>(what: &str, zk: &Z, cache: &TreeCache, root: &str) {
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

pub(crate) fn opts(persistent: bool) -> TreeCacheOptions {
    TreeCacheOptions {
        persistent_watch: persistent,
        ..TreeCacheOptions::default()
    }
}

pub(crate) fn create_many<Z: Zk>(w: &Z, paths: &[String]) {
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

/// A ChildrenWatch of `path` that waits for the node to be created (and keeps
/// watching across its deletion and re-creation).
pub(crate) fn patient_children_watch(client: &zk_client::Client, path: &str) -> ChildrenWatch {
    ChildrenWatch::with_options(
        client,
        path,
        ChildrenWatchOptions {
            wait_for_creation: true,
            ..ChildrenWatchOptions::default()
        },
    )
    .unwrap()
}
