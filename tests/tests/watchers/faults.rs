//! The three watchers through faults: a cut connection (also during a TreeCache's
//! walk), a server restart, a session expiry; and stopping when told.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use zk_client::{ClientBuilder, CreateMode, Error, ErrorCode, WatcherType};
use zk_tests::facade::Zk;
use zk_tests::proxy::Proxy;
use zk_tests::server::{shared_server, ZkServer};
use zk_tokio::recipes::{
    ChildrenWatch, ChildrenWatchOptions, DataWatch, TreeCache, TreeCacheError, TreeEvent,
};

use super::support::{
    assert_same_tree, cache_settles, cache_tree, children_until, connect, create_many, data_is,
    data_until, eventually, names, next_children, next_data, opts, server_tree, unique, QUIET,
    WAIT,
};

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
    pub(crate) fn sessions(&self) -> (i64, i64) {
        (self.zk.session().unwrap().id, self.zc.session().unwrap().id)
    }

    pub(crate) fn close(self) {
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

pub(crate) fn survives_cut<Z: Zk>(persistent: bool) {
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
pub(crate) enum WalkCut {
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
pub(crate) fn cut_during_walk<Z: Zk>(persistent: bool, cut: WalkCut) {
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

pub(crate) fn survives_restart<Z: Zk>() {
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

pub(crate) fn survives_expiry<Z: Zk>(persistent: bool) {
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

pub(crate) fn stops_when_told<Z: Zk>() {
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
