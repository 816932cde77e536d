//! zk-recipes' [`Barrier`] and [`DoubleBarrier`] against a real ZooKeeper 3.8
//! server, for every adapter: a barrier's waiters wake when it is removed (and
//! time out while it is up); 4 members of a double barrier, joining and
//! leaving staggered, all pass `enter` only after the last joined and finish
//! `leave` only after the last left. Module `kazoo`: the same with kazoo 2.11
//! members and barriers on the same paths (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{on_threads, remove_and_close, run, unique, Adapter, WAIT};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Barrier, DoubleBarrier};

fn barrier_wait_and_remove<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("barrier", Z::NAME);
    let (za, zb) = (Z::connect_to(&cs), Z::connect_to(&cs));
    let b = Barrier::new(za.as_async(), &path).unwrap();
    assert!(Z::exec(b.wait(None)).unwrap(), "no barrier: passes at once");
    Z::exec(b.create()).unwrap();
    assert!(zb.exists(&path).unwrap().is_some());
    let t = Instant::now();
    assert!(!Z::exec(b.wait(Some(Duration::from_millis(300)))).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(300));
    let other = Barrier::new(zb.as_async(), &path).unwrap();
    let waiter = thread::spawn(move || other.wait_blocking(Some(WAIT)).unwrap());
    thread::sleep(Duration::from_millis(200));
    assert!(!waiter.is_finished());
    assert!(Z::exec(b.remove()).unwrap());
    assert!(waiter.join().unwrap(), "the waiter did not wake");
    assert!(!Z::exec(b.remove()).unwrap(), "removed twice");
    za.close().unwrap();
    zb.close().unwrap();
}

/// The timeline of a double-barrier run: (what, member, when since t0).
type Log = Arc<Mutex<Vec<(String, usize, Duration)>>>;

/// Member `i` passes double barrier `b` on adapter `Z`: enters, stays `hold`,
/// leaves, noting on `log` (times since `t0`) when it joins, has entered,
/// leaves and has left.
fn pass<Z: Adapter>(b: &DoubleBarrier, (log, t0, i): (&Log, Instant, usize), hold: Duration) {
    let note = |what: &str| log.lock().unwrap().push((what.into(), i, t0.elapsed()));
    note("join");
    if Z::NAME == "blocking" {
        b.enter_blocking().unwrap();
    } else {
        Z::exec(b.enter()).unwrap();
    }
    note("entered");
    thread::sleep(hold);
    note("leave");
    Z::exec(b.leave()).unwrap();
    note("left");
}

/// Members `0..n` join `step` apart and leave `step` apart; returns the times
/// (since `t0`) each passed enter and finished leave, and the last join/leave start.
fn double_barrier<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("dbarrier", Z::NAME);
    let t0 = Instant::now();
    let log = Arc::new(Mutex::new(Vec::<(String, usize, Duration)>::new()));
    let step = Duration::from_millis(150);
    let (p, l) = (path.clone(), log.clone());
    on_threads::<Z, _>(&cs, 4, move |zk, i| {
        let b = DoubleBarrier::new(zk.as_async(), &p, 4, Some(&format!("m{i}"))).unwrap();
        thread::sleep(step * i as u32);
        pass::<Z>(&b, (&l, t0, i), step * (4 - i) as u32);
    });
    check_double_barrier_log(&log.lock().unwrap(), 4);
    let zk = Z::connect_to(&cs);
    assert!(zk.get_children(&path).unwrap().is_empty());
    remove_and_close(zk, &path);
}

/// Nobody entered before the last member joined; nobody left before the last
/// member started leaving.
fn check_double_barrier_log(log: &[(String, usize, Duration)], n: usize) {
    let times =
        |kind: &str| -> Vec<Duration> { log.iter().filter(|e| e.0 == kind).map(|e| e.2).collect() };
    let (joins, entered, leaves, left) = (
        times("join"),
        times("entered"),
        times("leave"),
        times("left"),
    );
    assert_eq!(
        (joins.len(), entered.len(), leaves.len(), left.len()),
        (n, n, n, n),
        "{log:?}"
    );
    let last_join = joins.iter().max().unwrap();
    let last_leave = leaves.iter().max().unwrap();
    assert!(
        entered.iter().all(|t| t >= last_join),
        "entered early: {log:?}"
    );
    assert!(left.iter().all(|t| t >= last_leave), "left early: {log:?}");
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [barrier_wait_and_remove, double_barrier]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_share_barriers, "kazoo-barrier", body);

    fn body(cs: String, mut kz: Kazoo, zk: TokioZk, base: String) {
        // Barrier: kazoo puts it up, ours waits, kazoo takes it down.
        let p = format!("{base}/b");
        kz.run(&format!(
            "objs['b'] = zk.Barrier({})\nobjs['b'].create()",
            js(&p)
        ));
        let ours = Barrier::new(zk.as_async(), &p).unwrap();
        assert!(!TokioZk::exec(ours.wait(Some(Duration::from_millis(200)))).unwrap());
        let o = ours.clone();
        let waiter = thread::spawn(move || o.wait_blocking(Some(WAIT)).unwrap());
        thread::sleep(Duration::from_millis(200));
        kz.run("result = objs['b'].remove()");
        assert!(waiter.join().unwrap());
        // Ours puts it up, kazoo waits, ours takes it down.
        TokioZk::exec(ours.create()).unwrap();
        let bg = kz.spawn("result = objs['b'].wait(30)");
        assert!(kz.finished(bg, Duration::from_millis(300)).is_none());
        assert!(TokioZk::exec(ours.remove()).unwrap());
        assert_eq!(kz.finished(bg, WAIT), Some(Ok("true".into())));

        // DoubleBarrier of 4: kazoo members 0 and 2, ours 1 and 3, joining and
        // leaving 150 ms apart; kazoo logs with time.monotonic(), we with
        // Instant, both against the moment of the kazoo command.
        let p = format!("{base}/db");
        let step = 0.15;
        let t0 = Instant::now();
        kz.run("objs['t0'] = time.monotonic()\nobjs['log'] = []");
        // kazoo's t0 is up to this much after ours.
        let rtt = t0.elapsed();
        let kazoo_member = |i: usize| {
            format!(
                "def m():\n    b = zk.DoubleBarrier({p}, 4, identifier='py{i}')\n    time.sleep({step} * {i})\n    objs['log'].append(('join', {i}, time.monotonic() - objs['t0']))\n    b.enter()\n    objs['log'].append(('entered', {i}, time.monotonic() - objs['t0']))\n    time.sleep({step} * (4 - {i}))\n    objs['log'].append(('leave', {i}, time.monotonic() - objs['t0']))\n    b.leave()\n    objs['log'].append(('left', {i}, time.monotonic() - objs['t0']))\n\
                 m()\nresult = 'done'",
                p = js(&p)
            )
        };
        let k0 = kz.spawn(&kazoo_member(0));
        let k2 = kz.spawn(&kazoo_member(2));
        let log = Arc::new(Mutex::new(Vec::<(String, usize, Duration)>::new()));
        // Ours are members 1 and 3.
        let (p2, l) = (p.clone(), log.clone());
        on_threads::<TokioZk, _>(&cs, 2, move |z, k| {
            let i = 2 * k + 1;
            let b = DoubleBarrier::new(z.as_async(), &p2, 4, Some(&format!("rs{i}"))).unwrap();
            let at = |d: f64| t0 + Duration::from_secs_f64(d);
            sleep_until(at(step * i as f64));
            let hold = Duration::from_secs_f64(step * (4 - i) as f64);
            pass::<TokioZk>(&b, (&l, t0, i), hold);
        });
        assert_eq!(kz.finished(k0, WAIT), Some(Ok(js("done"))));
        assert_eq!(kz.finished(k2, WAIT), Some(Ok(js("done"))));
        let kazoo_log = kz.run("result = [[k, i, t] for (k, i, t) in objs['log']]");
        let mut all = log.lock().unwrap().clone();
        // In our time frame a kazoo time is between t and t + rtt: take the
        // side that can only hide a violation shorter than rtt, never invent one.
        all.extend(parse_log(&kazoo_log).into_iter().map(|(k, i, t)| {
            let t = if k == "entered" || k == "left" {
                t + rtt
            } else {
                t
            };
            (k, i, t)
        }));
        check_double_barrier_log(&all, 4);
        assert!(zk.get_children(&p).unwrap().is_empty());
        drop(kz);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    }

    fn sleep_until(t: Instant) {
        let now = Instant::now();
        if t > now {
            thread::sleep(t - now);
        }
    }

    /// `[["join", 0, 0.0012], ...]` as JSON from kazoo.
    fn parse_log(s: &str) -> Vec<(String, usize, Duration)> {
        s.trim_start_matches('[')
            .trim_end_matches(']')
            .split("], [")
            .map(|e| {
                let e = e.trim_matches(|c| c == '[' || c == ']');
                let mut it = e.split(", ");
                let kind = it.next().unwrap().trim_matches('"').to_string();
                let i = it.next().unwrap().parse().unwrap();
                let t: f64 = it.next().unwrap().parse().unwrap();
                (kind, i, Duration::from_secs_f64(t.max(0.0)))
            })
            .collect()
    }
}
