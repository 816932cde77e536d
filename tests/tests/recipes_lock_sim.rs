//! zk-recipes' Lock (and Election, a Lock underneath) through the whole zk-tokio stack against zk-proto's
//! simulated 3-member ensemble, on tokio's paused clock: three clients loop
//! acquire / hold / release, some acquisitions cancelled by a timeout (the
//! future dropped, also while disconnected), under random fault schedules (cut
//! connections, stopped members, expired sessions, idle time). Invariants:
//!
//! * never two holders whose sessions are both live (checked at every
//!   acquisition against the simulator's sessions);
//! * every acquisition that is not cancelled resolves, with the lock;
//! * no contender node survives: once everything is released and the members
//!   are back, the lock's directory empties (cancelled acquisitions included).
//!
//! The recipes' background work (the cleanup of dropped acquisitions) runs as
//! tokio tasks here (`LockOptions::spawner`), so everything follows the
//! virtual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use zk_tests::sim::{now, start_all, stop_member, tokio_spawner};
use zk_tests::simnet::SimNet;
use zk_tokio::recipes::{Election, Lock, LockOptions};
use zk_tokio::ClientBuilder;

const PATH: &str = "/t/lock";
const CLIENTS: usize = 3;

/// One fault of a schedule.
#[derive(Debug, Clone)]
enum Fault {
    /// Close every connection from the server side.
    Cut,
    /// Let the other tasks run `n` steps, then cut: with every wait a multiple
    /// of 50 ms, workers are often mid-request then (a create applied whose
    /// answer is lost, the case the prefix recovery exists for).
    CutAfterYields(u8),
    /// Stop member `m`.
    Stop(u8),
    /// Start every member again.
    StartAll,
    /// Expire client `k`'s session.
    Expire(u8),
    /// Let virtual time pass.
    Wait(u16),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        2 => Just(Fault::Cut),
        3 => (0u8..40).prop_map(Fault::CutAfterYields),
        1 => (0u8..3).prop_map(Fault::Stop),
        1 => Just(Fault::StartAll),
        2 => (0u8..CLIENTS as u8).prop_map(Fault::Expire),
        4 => (1u16..160).prop_map(|n| Fault::Wait(n * 50)),
    ]
}

/// One round of a worker: `Some(ms)`: cancel the acquisition after `ms` unless
/// it got the lock by then; `None`: wait for it. Then hold for `hold` ms.
#[derive(Debug, Clone)]
struct Round {
    cancel_after: Option<u16>,
    hold: u16,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop_oneof![2 => Just(None), 1 => (0u16..60).prop_map(|n| Some(n * 50))],
        (0u16..60).prop_map(|n| n * 50),
    )
        .prop_map(|(cancel_after, hold)| Round { cancel_after, hold })
}

/// Who holds the lock, by their own account: (worker, session id).
type Holders = Arc<Mutex<Vec<(usize, i64)>>>;

/// Worker `me` (session `mine`) holds the lock: nobody else may, unless one of
/// the two sessions is already gone on the servers.
fn enter(net: &SimNet, holders: &Holders, violations: &Mutex<Vec<String>>, me: usize, mine: i64) {
    let mut h = holders.lock().unwrap();
    net.with(|c| {
        if c.session_alive(mine) {
            for (w, s) in h.iter() {
                if *w != me && c.session_alive(*s) {
                    violations.lock().unwrap().push(format!(
                        "w{me} (session {mine:#x}) holds it while w{w} (session {s:#x}) does"
                    ));
                }
            }
        }
    });
    h.push((me, mine));
}

/// One contender's part: the network, its client, its number and rounds, and
/// the record of live holders and violations every contender shares.
struct Contender {
    net: SimNet,
    zk: zk_client::Client,
    me: usize,
    rounds: Vec<Round>,
    holders: Holders,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Contender {
    /// Options naming this contender `<prefix><me>`, on the test's spawner.
    fn options(&self, prefix: &str) -> LockOptions {
        LockOptions {
            identifier: Some(format!("{prefix}{}", self.me)),
            spawner: tokio_spawner(),
            ..LockOptions::default()
        }
    }
}

/// The same as [`worker`] through an Election: each round is one `run`, the
/// leader function is the critical section, and a cancelling round calls
/// `cancel()` after its time (which withdraws a waiting candidate only).
async fn candidate(c: Contender) -> usize {
    let e = Election::with_options(&c.zk, PATH, c.options("c")).unwrap();
    let me = c.me;
    let mut led = 0;
    for r in c.rounds {
        let canceller = r.cancel_after.map(|ms| {
            let e = e.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                e.cancel();
            })
        });
        let (n, h, v) = (c.net.clone(), c.holders.clone(), c.violations.clone());
        let hold = Duration::from_millis(r.hold as u64);
        let term = e.run(|l| async move {
            enter(&n, &h, &v, me, l.session_id());
            tokio::time::sleep(hold).await;
            h.lock().unwrap().retain(|(w, _)| *w != me);
        });
        let r = tokio::time::timeout(Duration::from_secs(3600), term)
            .await
            .unwrap_or_else(|_| panic!("c{me}: a run did not resolve in an hour"))
            .expect("a run failed");
        if let Some(c) = canceller {
            c.abort();
        }
        if r.is_some() {
            led += 1;
        }
    }
    led
}

async fn worker(c: Contender) -> usize {
    let lock = Lock::with_options(&c.zk, PATH, c.options("w")).unwrap();
    let me = c.me;
    let mut acquired = 0;
    for r in c.rounds {
        let got = match r.cancel_after {
            Some(ms) => {
                match tokio::time::timeout(Duration::from_millis(ms as u64), lock.acquire()).await {
                    Ok(g) => Some(g.expect("an acquire failed")),
                    Err(_) => None, // cancelled: the future is dropped
                }
            }
            None => Some(
                tokio::time::timeout(Duration::from_secs(3600), lock.acquire())
                    .await
                    .unwrap_or_else(|_| panic!("w{me}: an acquire did not resolve in an hour"))
                    .expect("an acquire failed"),
            ),
        };
        let Some(g) = got else { continue };
        acquired += 1;
        if std::env::var("LOCK_SIM_TRACE").is_ok() {
            println!(
                "{:?} w{me} acquired token {} session {:#x}",
                tokio::time::Instant::now(),
                g.fencing_token(),
                g.session_id()
            );
        }
        enter(&c.net, &c.holders, &c.violations, me, g.session_id());
        tokio::time::sleep(Duration::from_millis(r.hold as u64)).await;
        c.holders.lock().unwrap().retain(|(w, _)| *w != me);
        tokio::time::timeout(Duration::from_secs(3600), g.release())
            .await
            .unwrap_or_else(|_| panic!("w{me}: a release did not resolve in an hour"))
            .expect("release failed");
    }
    acquired
}

async fn run_schedule(faults: Vec<Fault>, plans: Vec<Vec<Round>>, election: bool) -> usize {
    let net = SimNet::new(3);
    let b = ClientBuilder::new(&net.connect_string(""))
        .session_timeout(Duration::from_secs(10))
        .connect_deadline(Duration::from_secs(60));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(
            zk_tokio::connect_with(&b, net.connector())
                .await
                .expect("connect to the simulated ensemble"),
        );
    }
    let holders: Holders = Arc::default();
    let violations = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(i, rounds)| {
            let c = Contender {
                net: net.clone(),
                zk: clients[i].clone(),
                me: i,
                rounds,
                holders: holders.clone(),
                violations: violations.clone(),
            };
            if election {
                tokio::spawn(candidate(c))
            } else {
                tokio::spawn(worker(c))
            }
        })
        .collect();
    for f in faults {
        match f {
            Fault::Cut => {
                net.cut_all();
            }
            Fault::CutAfterYields(n) => {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                net.cut_all();
            }
            Fault::Stop(m) => stop_member(&net, m as usize),
            Fault::StartAll => start_all(&net),
            Fault::Expire(k) => {
                if let Some(s) = clients[k as usize].session() {
                    net.with(|c| c.expire_session(s.id, now()));
                }
            }
            Fault::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms as u64)).await,
        }
    }
    start_all(&net);
    let mut acquired = 0;
    for w in workers {
        // Each worker bounds its own waits; a panic there fails the case here.
        acquired += w.await.expect("a worker panicked");
    }
    assert!(acquired > 0, "nobody ever got the lock");
    let v = violations.lock().unwrap().clone();
    assert!(v.is_empty(), "two live holders: {v:?}");
    // No contender node survives: cancelled acquisitions are cleaned up in
    // the background once connected.
    let mut left = Vec::new();
    for _ in 0..1200 {
        left = net.with(|c| c.children(PATH)).unwrap_or_default();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "contender nodes left behind: {left:?}");
    for zk in clients {
        tokio::time::timeout(Duration::from_secs(60), zk.close())
            .await
            .expect("close hung")
            .unwrap();
    }
    acquired
}

fn run(faults: Vec<Fault>, plans: Vec<Vec<Round>>, election: bool) -> usize {
    zk_tests::sim::block_on_paused(run_schedule(faults, plans, election))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: zk_tests::sim::proptest_cases(64),
        ..ProptestConfig::default()
    })]
    /// Random fault schedules against three contending clients.
    #[test]
    fn lock_holds_under_fault_schedules(
        faults in proptest::collection::vec(fault(), 1..25),
        plans in proptest::collection::vec(proptest::collection::vec(round(), 1..6), CLIENTS),
    ) {
        run(faults, plans, false);
    }

    /// The same schedules against three Election candidates.
    #[test]
    fn election_holds_under_fault_schedules(
        faults in proptest::collection::vec(fault(), 1..25),
        plans in proptest::collection::vec(proptest::collection::vec(round(), 1..6), CLIENTS),
    ) {
        run(faults, plans, true);
    }
}

/// Each fault kind once, with cancellations while the connections are down.
#[test]
fn every_fault_once() {
    let plan = |c: Option<u16>| {
        vec![
            Round {
                cancel_after: None,
                hold: 2000,
            },
            Round {
                cancel_after: c,
                hold: 100,
            },
            Round {
                cancel_after: None,
                hold: 500,
            },
        ]
    };
    for election in [false, true] {
        let t = std::time::Instant::now();
        let n = run(
            vec![
                Fault::Wait(500),
                Fault::Cut,
                Fault::Wait(100),
                Fault::Expire(0),
                Fault::Stop(0),
                Fault::Stop(1),
                Fault::Wait(3000),
                Fault::StartAll,
                Fault::Cut,
                Fault::Expire(1),
                Fault::Wait(12_000),
            ],
            vec![plan(Some(10)), plan(Some(700)), plan(None)],
            election,
        );
        println!(
            "every_fault_once (election: {election}): {n} terms in {:?} (wall clock)",
            t.elapsed()
        );
    }
}
