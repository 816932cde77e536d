//! zk-recipes' [`Counter`] against a real ZooKeeper 3.8 server, for every
//! adapter: 10 clients adding concurrently lose no add (every intermediate value
//! is seen exactly once as some add's `pre`), in the ASCII int and float forms
//! and the 4-byte Curator form (with its seeded node and range check). Module
//! `kazoo`: kazoo 2.11 Counters and ours add to the same nodes concurrently and
//! the totals add up, read by both, in all three encodings (`ZK_KAZOO_PYTHON`;
//! fails without it). `lost_reply_then_lagging_member`: an add whose reply was
//! lost, re-checked on a member that lags, is applied once (a 3-member ensemble
//! whose leader's links to its followers are delayed).

mod recipes_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{fresh, on_threads, remove_and_close, run, unique, Adapter, WAIT};
use zk_client::{ClientBuilder, CreateMode, Data};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tests::{four_letter_word, Ensemble, ServerOptions};
use zk_tokio::recipes::{Change, Counter, CounterValue};

fn add<Z: Adapter, T: CounterValue>(c: &Counter<T>, d: T) -> Change<T> {
    if Z::NAME == "blocking" {
        c.add_blocking(d).unwrap()
    } else {
        Z::exec(c.add(d)).unwrap()
    }
}

fn concurrent_adds<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("counter", Z::NAME);
    let p = path.clone();
    // Each worker's values before its adds.
    let mut pres: Vec<i64> = on_threads::<Z, _>(&cs, 10, move |zk, _| {
        let c = Counter::<i64>::new(zk.as_async(), &p).unwrap();
        (0..30)
            .map(|_| {
                let ch = add::<Z, _>(&c, 1);
                assert_eq!(ch.post, ch.pre + 1);
                ch.pre
            })
            .collect::<Vec<_>>()
    })
    .concat();
    pres.sort();
    assert_eq!(
        pres,
        (0..300).collect::<Vec<i64>>(),
        "an add was lost or doubled"
    );
    let zk = Z::connect_to(&cs);
    assert_eq!(zk.get_data(&path).unwrap().0, Data::new("300"));
    let c = Counter::<i64>::new(zk.as_async(), &path).unwrap();
    assert_eq!(Z::exec(c.value()).unwrap(), 300);
    assert_eq!(add::<Z, _>(&c, -301).post, -1);
    assert_eq!(zk.get_data(&path).unwrap().0, Data::new("-1"));
    remove_and_close(zk, &path);
}

fn encodings<Z: Adapter>() {
    let (_, base, zk) = fresh::<Z>("counter-enc");
    // Float: Python's repr on the node.
    let f = Counter::with_default(zk.as_async(), &format!("{base}/f"), 1.0f64).unwrap();
    assert_eq!(Z::exec(f.value()).unwrap(), 1.0);
    assert_eq!(zk.get_data(&format!("{base}/f")).unwrap().0, Data::new(""));
    assert_eq!(add::<Z, _>(&f, 2.5).post, 3.5);
    assert_eq!(
        zk.get_data(&format!("{base}/f")).unwrap().0,
        Data::new("3.5")
    );
    add::<Z, _>(&f, 1e16);
    assert_eq!(
        zk.get_data(&format!("{base}/f")).unwrap().0,
        Data::new("1.0000000000000004e+16")
    );
    // An int counter refuses float data (kazoo's ValueError).
    let i = Counter::<i64>::new(zk.as_async(), &format!("{base}/f")).unwrap();
    assert!(Z::exec(i.value()).is_err());
    // Curator form: the node is created holding the default, 4 bytes BE.
    let c = Counter::<i32>::with_default(zk.as_async(), &format!("{base}/c"), 7).unwrap();
    assert_eq!(add::<Z, _>(&c, -10).post, -3);
    assert_eq!(
        zk.get_data(&format!("{base}/c")).unwrap().0,
        Data::new(vec![0xff, 0xff, 0xff, 0xfd])
    );
    assert!(Z::exec(c.add(i32::MAX)).is_ok());
    assert!(Z::exec(c.add(i32::MAX)).is_err(), "left the 4-byte range");
    // An empty node (kazoo made it) reads as the default.
    zk.create(&format!("{base}/e"), "", CreateMode::Persistent)
        .unwrap();
    let e = Counter::<i32>::with_default(zk.as_async(), &format!("{base}/e"), 4).unwrap();
    assert_eq!(Z::exec(e.value()).unwrap(), 4);
    zk.delete_recursive(&base).unwrap();
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [concurrent_adds, encodings]);

// ============================================================================ lagging member

/// How late the leader's proposals, commits and answers reach each follower.
/// Below the client's first handshake wait (1 s), so that the revalidation of
/// the session on a follower, answered by the leader over the same slow link,
/// is not given up.
const LAG: Duration = Duration::from_millis(500);

/// An add whose reply is lost, re-checked on a member that lags, is applied
/// exactly once, on every adapter (one ensemble, the adapters in turn).
///
/// The schedule: the leader's links to both followers are delayed by [`LAG`],
/// so a write commits only once a follower's acknowledgement is back, [`LAG`]
/// after it was proposed, and reaches the followers [`LAG`] after that. The
/// client is on the leader (through a proxy) with a follower second in its
/// list. While its `setData` waits for the quorum, the proxy goes: the reply
/// is lost (ConnectionLoss, outcome unknown) and the client moves to the
/// follower, whose revalidation of the session the leader answers before the
/// write commits. Re-read there at once, the node still has the old version:
/// without a `sync` first the Counter takes the write for not applied, adds
/// again once the follower has caught up, and the node ends at 2. With the
/// `sync` (answered over the same link, after the write's commit) it sees the
/// new version and reports the outcome unknown: the node holds 1.
#[test]
fn lost_reply_then_lagging_member() {
    run("lost_reply_then_lagging_member", || {
        let ens = Ensemble::start_partitionable(3, ServerOptions::default());
        let leader = ens.leader().expect("a leader");
        let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        // One at a time, so that the leader keeps a quorum.
        for &f in &followers {
            ens.delay_link(f, leader, LAG);
            // It leaves (its link was cut) and rejoins, which takes a few
            // round trips of the delayed link.
            let t = Instant::now();
            while ens.mode(f).as_deref() == Some("follower") && t.elapsed() < LAG * 10 {
                thread::sleep(Duration::from_millis(10));
            }
            assert!(
                ens.wait_for_mode(f, "follower", Duration::from_secs(60)),
                "member {f} did not rejoin through its delayed link:\n{}",
                ens.log_tail(f)
            );
        }
        assert_eq!(ens.leader(), Some(leader), "the leader changed");
        let runs = [
            lost_reply_on_lagging_member::<TokioZk>(&ens, leader, followers[0]),
            lost_reply_on_lagging_member::<SmolZk>(&ens, leader, followers[1]),
            lost_reply_on_lagging_member::<BlockingZk>(&ens, leader, followers[0]),
        ];
        let wrong: Vec<&String> = runs.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    })
}

/// One adapter's run: `Ok` with what it did, `Err` with what went wrong.
fn lost_reply_on_lagging_member<Z: Adapter>(
    ens: &Ensemble,
    leader: usize,
    follower: usize,
) -> Result<String, String> {
    let path = unique("counter-lag", Z::NAME);
    let leader_addr = ens.client_addr(leader);
    let truth = Z::connect_for(&leader_addr.to_string(), Duration::from_secs(20));
    // Every write now waits for a follower: the lag is in place.
    truth.create(&path, "", CreateMode::Persistent).unwrap();
    let t = Instant::now();
    truth.set_data(&path, "0", None).unwrap();
    let commit = t.elapsed();
    assert!(commit >= LAG, "a write committed in {commit:?}: no lag");

    let proxy = Proxy::start(leader_addr);
    let hosts = format!("{},{}", proxy.connect_string(), ens.client_addr(follower));
    let b = ClientBuilder::new(&hosts)
        .randomize_hosts(false)
        .session_timeout(Duration::from_secs(20))
        .connect_deadline(WAIT);
    let zk = Z::connect(&b).unwrap();
    let session = zk.session().unwrap().id;
    let c = Arc::new(Counter::<i64>::new(zk.as_async(), &path).unwrap());
    assert_eq!(Z::exec(c.value()).unwrap(), 0);
    // The follower must hold whatever the client has seen (else it refuses the
    // session and the client goes round its list).
    thread::sleep(LAG * 4);

    let adder = {
        let c = c.clone();
        thread::spawn(move || {
            if Z::NAME == "blocking" {
                c.add_blocking(1)
            } else {
                Z::exec(c.add(1))
            }
        })
    };
    // The add's setData is at the leader, unanswered (a read or a ping is
    // answered at once; only a write waits for the quorum): lose its reply.
    let waited = write_outstanding(leader_addr, session);
    drop(proxy);
    let result = adder.join().expect("the adder panicked");
    let on = zk.current_host().map(|h| h.port);
    let value = truth.get_data(&path).unwrap().0;
    truth.delete(&path, None).unwrap();
    truth.close().unwrap();
    zk.close().unwrap();

    let report = format!(
        "[{}] setData outstanding at the leader {waited:?} after the add began; \
         the add returned {result:?} on port {on:?} (follower {}); the node holds {value:?}",
        Z::NAME,
        ens.client_addr(follower).port()
    );
    println!("{report}");
    if value != Data::new("1") {
        return Err(format!("{report}: the delta was not applied exactly once"));
    }
    // The schedule happened: the reply was lost (so the add cannot know it
    // landed: outcome unknown) and the check ran on the follower.
    let hit = result.as_ref().is_err_and(|e| e.outcome_unknown())
        && on == Some(ens.client_addr(follower).port());
    if !hit {
        return Err(format!("{report}: not the schedule this test is about"));
    }
    Ok(report)
}

/// Waits until the member at `addr` has held a request of `session` unanswered
/// for 50 ms (its `cons` line's `queued=`), and returns how long that took.
fn write_outstanding(addr: SocketAddr, session: i64) -> Duration {
    let t = Instant::now();
    let sid = format!("sid=0x{session:x},");
    let mut since: Option<Instant> = None;
    loop {
        let cons = four_letter_word(addr, "cons", Duration::from_secs(2)).unwrap_or_default();
        let queued = cons
            .lines()
            .find(|l| l.contains(&sid))
            .and_then(|l| l.split("queued=").nth(1))
            .and_then(|q| q.split(',').next())
            .and_then(|q| q.parse::<u32>().ok())
            .unwrap_or(0);
        if queued == 0 {
            since = None;
        } else if since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_millis(50) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < WAIT,
            "no request of session {session:#x} outstanding at {addr}:\n{cons}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

// ============================================================================ kazoo

/// 4 kazoo threads and 4 of ours add to one node at once; the total is exact
/// and both read it. Int, float and Curator (`support_curator=True`) forms.
mod kazoo {
    use super::*;
    use recipes_common::{js, kazoo_test, Kazoo, WAIT};

    const ADDS: usize = 150;

    fn kazoo_adds(kz: &mut Kazoo, path: &str, args: &str, delta: &str) -> u64 {
        kz.spawn(&format!(
            "def work():\n    c = zk.Counter({p}{args})\n    for _ in range({ADDS}):\n        c += {delta}\n\
             ts = [threading.Thread(target=work) for _ in range(4)]\n\
             [t.start() for t in ts]\n[t.join() for t in ts]\nresult = 'done'",
            p = js(path)
        ))
    }

    fn ours_add<T: CounterValue>(zk: &TokioZk, path: &str, default: T, delta: T) {
        let ws: Vec<_> = (0..4)
            .map(|_| {
                let c = Counter::with_default(zk.as_async(), path, default).unwrap();
                thread::spawn(move || {
                    for _ in 0..ADDS {
                        TokioZk::exec(c.add(delta)).unwrap();
                    }
                })
            })
            .collect();
        for w in ws {
            w.join().unwrap();
        }
    }

    kazoo_test!(kazoo_and_ours_add_up, "kazoo-counter", body);

    fn body(_: String, mut kz: Kazoo, zk: TokioZk, base: String) {
        let total = 8 * ADDS;

        // Ints (ASCII).
        let p = format!("{base}/int");
        let k = kazoo_adds(&mut kz, &p, "", "1");
        ours_add(&zk, &p, 0i64, 1);
        assert_eq!(kz.finished(k, WAIT), Some(Ok(js("done"))));
        let ours = Counter::<i64>::new(zk.as_async(), &p).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), total as i64);
        assert_eq!(
            kz.run(&format!("result = zk.Counter({}).value", js(&p))),
            total.to_string()
        );

        // Floats (Python repr), +0.5 each.
        let p = format!("{base}/float");
        let k = kazoo_adds(&mut kz, &p, ", default=0.0", "0.5");
        ours_add(&zk, &p, 0.0f64, 0.5);
        assert_eq!(kz.finished(k, WAIT), Some(Ok(js("done"))));
        let ours = Counter::<f64>::new(zk.as_async(), &p).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), total as f64 / 2.0);
        assert_eq!(
            kz.run(&format!(
                "result = zk.Counter({}, default=0.0).value",
                js(&p)
            )),
            format!("{:.1}", total as f64 / 2.0)
        );

        // Curator's 4 bytes, going negative: -1 each.
        let p = format!("{base}/curator");
        let k = kazoo_adds(&mut kz, &p, ", support_curator=True", "-1");
        ours_add(&zk, &p, 0i32, -1);
        assert_eq!(kz.finished(k, WAIT), Some(Ok(js("done"))));
        let ours = Counter::<i32>::new(zk.as_async(), &p).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), -(total as i32));
        assert_eq!(
            kz.run(&format!(
                "result = zk.Counter({}, support_curator=True).value",
                js(&p)
            )),
            format!("-{total}")
        );
        // kazoo made this node empty; we read the default, kazoo reads ours.
        let p = format!("{base}/empty");
        kz.run(&format!(
            "result = zk.Counter({}, default=5, support_curator=True).value",
            js(&p)
        ));
        assert_eq!(zk.get_data(&p).unwrap().0, Data::new(""));
        let ours = Counter::<i32>::with_default(zk.as_async(), &p, 5).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), 5);
        TokioZk::exec(ours.add(-8)).unwrap();
        assert_eq!(
            kz.run(&format!(
                "result = zk.Counter({}, support_curator=True).value",
                js(&p)
            )),
            "-3"
        );
        drop(kz);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    }
}
