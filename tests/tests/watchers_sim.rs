//! zk-recipes' watchers through the whole zk-tokio stack against zk-proto's
//! simulated ensemble, on tokio's paused clock (see `virtual_time.rs`): random
//! fault schedules (writes from outside, cut connections, stopped members,
//! expired sessions, idle time), after which the last value a DataWatch reported
//! equals the simulator's, and a TreeCache equals the simulated tree node by node.
//! Along the way, every `Initialized` / `Resynced` the TreeCache reports must be
//! true: the mirror it stands for (its events replayed up to the marker) equals
//! the simulated tree as it was at some point of the schedule. Steps that let
//! the client run a little (`Yield`) or stop the server answering (`Stall`) let
//! a cut land while a full read has replies outstanding.
//!
//! The watchers' loops run as tokio tasks here (`Spawner::new(tokio::spawn)`),
//! so everything, the watchers included, follows the virtual clock.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use zk_proto::{Acl, CreateRequest, DeleteRequest, Request, SetDataRequest};
use zk_tests::sim::{now, start_all, stop_member, tokio_spawner};
use zk_tests::simnet::SimNet;
use zk_tokio::recipes::{DataUpdate, DataWatch, TreeCache, TreeCacheOptions, TreeEvent};
use zk_tokio::{Bytes, ClientBuilder, CreateMode, Data};

const ROOT: &str = "/t";
/// The node the DataWatch watches (created and deleted by the schedules).
const WATCHED: &str = "/t/k0";

/// One step of a fault schedule.
#[derive(Debug, Clone)]
enum Step {
    /// Set a node's data (if it exists).
    Set(u8, u8),
    /// Create a node (its parent first, if missing).
    Create(u8),
    /// Delete a node (and its children first).
    Delete(u8),
    /// Close every connection from the server side.
    Cut,
    /// Stop member `m`.
    Stop(u8),
    /// Start every member again.
    StartAll,
    /// Expire the watching client's session.
    Expire,
    /// Let virtual time pass.
    Wait(u16),
    /// Let the client's tasks run a few turns without time passing (a reconnect
    /// and part of a full read, say), so the next fault lands in the middle.
    Yield(u8),
    /// The servers stop reading their current connections: requests stay
    /// unanswered until the client gives up on the connection (read timeout).
    Stall,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..8, any::<u8>()).prop_map(|(n, v)| Step::Set(n, v)),
        3 => (0u8..8).prop_map(Step::Create),
        2 => (0u8..8).prop_map(Step::Delete),
        2 => Just(Step::Cut),
        1 => (0u8..3).prop_map(Step::Stop),
        1 => Just(Step::StartAll),
        1 => Just(Step::Expire),
        3 => (1u16..15_000).prop_map(Step::Wait),
        3 => (0u8..40).prop_map(Step::Yield),
        1 => Just(Step::Stall),
    ]
}

/// Node `n` of the schedule's little tree: `/t/k0`..`/t/k3`, and `/t/k0/j4`..
/// below the first (so deletes and re-creates reach two levels).
fn node(n: u8) -> String {
    if n < 4 {
        format!("{ROOT}/k{n}")
    } else {
        format!("{ROOT}/k0/j{n}")
    }
}

fn admin(net: &SimNet, req: Request) {
    let _ = net.with(|c| c.admin(req, now()));
}

fn create(net: &SimNet, path: &str, data: &str) {
    admin(
        net,
        Request::Create2(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent.flags(),
        }),
    );
}

fn delete(net: &SimNet, path: &str) {
    admin(
        net,
        Request::Delete(DeleteRequest {
            path: path.into(),
            version: -1,
        }),
    );
}

fn exists(net: &SimNet, path: &str) -> bool {
    net.with(|c| c.get(path).is_some())
}

/// The simulated subtree at [`ROOT`]: data and version by path.
fn sim_tree(net: &SimNet) -> BTreeMap<String, (Data, i32)> {
    net.with(|c| {
        c.paths()
            .into_iter()
            .filter(|p| p == ROOT || p.starts_with(&format!("{ROOT}/")))
            .filter_map(|p| c.get(&p).map(|(d, s)| (p, (Data::from(d), s.version))))
            .collect()
    })
}

fn cache_tree(cache: &TreeCache) -> BTreeMap<String, (Data, i32)> {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, (d, s))| (p, (d, s.version)))
        .collect()
}

fn sim_value(net: &SimNet) -> Option<(Data, i32)> {
    net.with(|c| c.get(WATCHED).map(|(d, s)| (Data::from(d), s.version)))
}

fn reported(u: &DataUpdate) -> Option<(Data, i32)> {
    u.data.clone().zip(u.stat.map(|s| s.version))
}

/// Replays a TreeCache's events into the mirror they stand for and checks, at
/// each `Initialized` / `Resynced`, that it is a tree the server really had.
struct Claims {
    mirror: BTreeMap<String, (Data, i32)>,
    /// Every state of the simulated tree so far.
    history: Vec<BTreeMap<String, (Data, i32)>>,
    markers: usize,
}

impl Claims {
    fn new(net: &SimNet) -> Claims {
        Claims {
            mirror: BTreeMap::new(),
            history: vec![sim_tree(net)],
            markers: 0,
        }
    }

    /// Called after each step that may change the simulated tree.
    fn record(&mut self, net: &SimNet) {
        let t = sim_tree(net);
        if self.history.last() != Some(&t) {
            self.history.push(t);
        }
    }

    fn take(&mut self, cache: &mut TreeCache, persistent: bool) {
        while let Some(e) = cache.try_next_event() {
            match e {
                TreeEvent::NodeAdded { path, data, stat }
                | TreeEvent::NodeUpdated { path, data, stat } => {
                    self.mirror.insert(path, (data, stat.version));
                }
                TreeEvent::NodeRemoved { path, .. } => {
                    self.mirror.remove(&path);
                }
                TreeEvent::Initialized | TreeEvent::Resynced => {
                    self.markers += 1;
                    assert!(
                        self.history.contains(&self.mirror),
                        "{e:?} (persistent watch: {persistent}) claims a tree the server never had:\n  \
                         claimed {:?}\n  server had {:?}",
                        self.mirror,
                        self.history
                    );
                }
                TreeEvent::Overflow { dropped } => panic!("{dropped} events dropped"),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
}

async fn run_schedule(steps: Vec<Step>, persistent: bool) {
    let net = SimNet::new(3);
    create(&net, ROOT, "root");
    create(&net, WATCHED, "first");
    // A few more nodes that stay: a full read takes several turns.
    for i in 0..6 {
        create(&net, &format!("{ROOT}/s{i}"), "still");
        create(&net, &format!("{ROOT}/s{i}/t"), "still");
    }
    let mut claims = Claims::new(&net);
    let b = ClientBuilder::new(&net.connect_string(""))
        .session_timeout(Duration::from_secs(10))
        .connect_deadline(Duration::from_secs(60));
    let zk = zk_tokio::connect_with(&b, net.connector())
        .await
        .expect("connect to the simulated ensemble");
    let mut dw = DataWatch::with_spawner(&zk, WATCHED, &tokio_spawner()).unwrap();
    let mut cache = TreeCache::with_options(
        &zk,
        ROOT,
        TreeCacheOptions {
            persistent_watch: persistent,
            event_capacity: 100_000,
            spawner: tokio_spawner(),
            ..TreeCacheOptions::default()
        },
    )
    .unwrap();
    let mut last: Option<DataUpdate> = None;
    let take = |dw: &mut DataWatch, last: &mut Option<DataUpdate>| {
        while let Some(u) = dw.try_next() {
            *last = Some(u);
        }
    };
    for s in steps {
        match s {
            Step::Set(n, v) => {
                let p = node(n);
                admin(
                    &net,
                    Request::SetData(SetDataRequest {
                        path: p,
                        data: Some(Bytes::from(format!("v{v}"))),
                        version: -1,
                    }),
                );
            }
            Step::Create(n) => {
                let p = node(n);
                if n >= 4 && !exists(&net, WATCHED) {
                    create(&net, WATCHED, "again");
                }
                create(&net, &p, "new");
            }
            Step::Delete(n) => {
                let p = node(n);
                if n == 0 {
                    for j in 4..8 {
                        delete(&net, &node(j));
                    }
                }
                delete(&net, &p);
            }
            Step::Cut => {
                net.cut_all();
            }
            Step::Stop(m) => stop_member(&net, m as usize),
            Step::StartAll => start_all(&net),
            Step::Expire => {
                if let Some(s) = zk.session() {
                    net.with(|c| c.expire_session(s.id, now()));
                }
            }
            Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms as u64)).await,
            Step::Yield(n) => {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            }
            Step::Stall => {
                for m in 0..3 {
                    net.stall_member(m, true);
                }
            }
        }
        claims.record(&net);
        take(&mut dw, &mut last);
        claims.take(&mut cache, persistent);
    }
    start_all(&net);
    // Settle: everything converges within bounded virtual time.
    let want_value = sim_value(&net);
    let want_tree = sim_tree(&net);
    let mut settled = false;
    for _ in 0..3000 {
        take(&mut dw, &mut last);
        claims.take(&mut cache, persistent);
        let value_ok = last.as_ref().map(reported) == Some(want_value.clone());
        if value_ok && cache.is_initialized() && cache_tree(&cache) == want_tree {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        settled,
        "did not settle (persistent watch: {persistent}):\n  DataWatch last {:?}, simulator {:?}\n  cache {:?}\n  tree  {:?}\n  state {:?}",
        last.as_ref().map(reported),
        want_value,
        cache_tree(&cache),
        want_tree,
        zk.state()
    );
    assert!(dw.end_reason().is_none() && cache.error().is_none());
    assert!(claims.markers >= 1, "no Initialized reported");
    drop((dw, cache));
    let diag = zk.diagnostics();
    // Dropped watchers let go of their registrations.
    for _ in 0..1000 {
        let c = diag.counts();
        if c.watch_queues == 0 && c.session_watches == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = diag.counts();
    assert_eq!(
        (c.watch_queues, c.session_watches),
        (0, 0),
        "watch registrations left after the watchers were dropped"
    );
    tokio::time::timeout(Duration::from_secs(60), zk.close())
        .await
        .expect("close hung")
        .unwrap();
}

fn run(steps: Vec<Step>, persistent: bool) {
    zk_tests::sim::block_on_paused(run_schedule(steps, persistent));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: zk_tests::sim::proptest_cases(256),
        ..ProptestConfig::default()
    })]
    /// Random fault schedules: the DataWatch's last report is the simulator's
    /// final value, and the TreeCache (persistent recursive watch, what every
    /// 3.6+ server gets) equals the simulated tree.
    #[test]
    fn watchers_converge_under_fault_schedules(
        steps in proptest::collection::vec(step(), 1..30),
    ) {
        run(steps, true);
    }

    /// The same for the TreeCache's one-shot fallback (servers before 3.6).
    /// (It found a lost grandchild: see
    /// `one_shot_fallback_relists_a_recreated_node`.)
    #[test]
    fn one_shot_fallback_converges_under_fault_schedules(
        steps in proptest::collection::vec(step(), 1..30),
    ) {
        run(steps, false);
    }
}

/// A fixed schedule of each fault kind, both TreeCache modes.
#[test]
fn every_fault_once() {
    for persistent in [true, false] {
        run(
            vec![
                Step::Set(0, 1),
                Step::Create(5),
                Step::Cut,
                Step::Set(0, 2),
                Step::Set(5, 3),
                Step::Wait(3000),
                Step::Stop(0),
                Step::Delete(0),
                Step::Wait(5000),
                Step::Expire,
                Step::Create(0),
                Step::Set(0, 4),
                Step::Create(6),
                Step::Wait(100),
                Step::StartAll,
                Step::Set(6, 5),
            ],
            persistent,
        );
    }
}

/// Full reads cut short: the servers stop answering while the first read is
/// under way (the client gives up on the connection), and a cut lands at every
/// point of the read after a reconnection. Before the fix the failed reads
/// counted as done: `Initialized` with an empty mirror, or nodes removed and
/// `Resynced` while disconnected (the claims check in `run` fails).
#[test]
fn a_full_read_cut_short_claims_nothing() {
    for persistent in [true, false] {
        run(vec![Step::Stall, Step::Wait(1)], persistent);
        for n in 0..30 {
            run(
                vec![Step::Wait(1), Step::Cut, Step::Yield(n), Step::Cut],
                persistent,
            );
            run(
                vec![Step::Wait(1), Step::Cut, Step::Yield(n), Step::Stall],
                persistent,
            );
        }
    }
}

/// The schedule that found the one-shot fallback's lost grandchild: `/t/k0` is
/// deleted and created again, with a child, before the cache reads it; the
/// children of the new `/t/k0` must be listed (and watched) afresh.
#[test]
fn one_shot_fallback_relists_a_recreated_node() {
    for _ in 0..20 {
        run(vec![Step::Wait(1), Step::Delete(0), Step::Create(4)], false);
        run(vec![Step::Wait(1), Step::Delete(0), Step::Create(5)], false);
    }
}

/// A TreeCache whose persistent watch overflows the client's `watch_backlog`
/// (a burst of changes delivered before the cache's loop runs) watches again and
/// rebuilds: it reports `Resynced` and ends equal to the simulated tree. What
/// `ClientBuilder::watch_backlog`'s docs say TreeCache does by itself.
#[test]
fn tree_cache_rebuilds_after_its_persistent_watch_overflows() {
    zk_tests::sim::block_on_paused(async {
        let net = SimNet::new(1);
        create(&net, ROOT, "root");
        create(&net, WATCHED, "first");
        let b = ClientBuilder::new(&net.connect_string("")).watch_backlog(4);
        let zk = zk_tokio::connect_with(&b, net.connector()).await.unwrap();
        let mut cache = TreeCache::with_options(
            &zk,
            ROOT,
            TreeCacheOptions {
                spawner: tokio_spawner(),
                ..TreeCacheOptions::default()
            },
        )
        .unwrap();
        loop {
            match cache.next_event().await {
                Some(zk_tokio::recipes::TreeEvent::Initialized) => break,
                Some(_) => {}
                None => panic!("the cache ended: {:?}", cache.error()),
            }
        }
        assert_eq!(cache.uses_persistent_watch(), Some(true));
        // 50 changes in one delivery: far past the backlog of 4.
        net.with(|c| {
            for i in 0..50u8 {
                c.admin(
                    Request::SetData(SetDataRequest {
                        path: WATCHED.into(),
                        data: Some(Bytes::from(format!("v{i}"))),
                        version: -1,
                    }),
                    now(),
                )
                .unwrap();
            }
        });
        let resynced = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match cache.next_event().await {
                    Some(zk_tokio::recipes::TreeEvent::Resynced) => return,
                    Some(_) => {}
                    None => panic!("the cache ended: {:?}", cache.error()),
                }
            }
        })
        .await;
        assert!(resynced.is_ok(), "no Resynced after the overflow");
        for _ in 0..100 {
            if cache_tree(&cache) == sim_tree(&net) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(cache_tree(&cache), sim_tree(&net));
        assert_eq!(&cache.get(WATCHED).unwrap().0[..], b"v49");
        drop(cache);
        zk.close().await.unwrap();
    });
}
