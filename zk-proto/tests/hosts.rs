//! Host rotation and backoff (a black-box test: it needs a real start instant,
//! which zk-proto's own sources never read).

use std::time::{Duration, Instant};

use zk_proto::config::{Backoff, HostAddr};
use zk_proto::hosts::{HostList, Rebalance, Rng};

#[test]
#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
fn full_pass_then_backoff() {
    let mut rng = Rng::new(1);
    let t0 = Instant::now();
    let b = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
        jitter: 0.0,
    };
    let mut h = HostList::new(3, true, b, &mut rng);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (i, at) = h.next(t0, &mut rng);
        assert_eq!(at, t0);
        seen.push(i);
        h.on_failure();
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2]);
    let (_, at) = h.next(t0, &mut rng);
    assert_eq!(at, t0 + Duration::from_millis(100));
    for _ in 0..2 {
        h.on_failure();
        let _ = h.next(t0, &mut rng);
    }
    h.on_failure();
    let (_, at) = h.next(t0, &mut rng);
    assert_eq!(at, t0 + Duration::from_millis(200));
}

/// The delay after each failed round of `passes` rounds over 3 hosts.
fn round_delays(backoff: Backoff, seed: u64, passes: usize, t0: Instant) -> Vec<Duration> {
    let mut rng = Rng::new(seed);
    let mut h = HostList::new(3, true, backoff, &mut rng);
    let mut out = Vec::new();
    for _ in 0..passes {
        for i in 0..3 {
            let (_, at) = h.next(t0, &mut rng);
            if i == 0 && at > t0 {
                out.push(at - t0);
            }
            h.on_failure();
        }
    }
    out
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
fn default_backoff_is_at_most_one_second_jitter_included() {
    let t0 = Instant::now();
    let b = Backoff::default();
    assert_eq!(b.max, Duration::from_secs(1));
    for seed in 0..500 {
        let d = round_delays(b, seed, 40, t0);
        assert_eq!(d.len(), 39);
        assert!(d.iter().all(|d| *d <= b.max), "seed {seed}: {d:?}");
        // 100, 200, 400, 800 ms (plus up to 20 %), then the cap less up to 20 %.
        for (i, base) in [100u64, 200, 400, 800].into_iter().enumerate() {
            let base = Duration::from_millis(base);
            assert!(d[i] >= base && d[i] <= base * 6 / 5, "seed {seed}: {d:?}");
        }
        assert!(
            d[4..].iter().all(|d| *d >= Duration::from_millis(800)),
            "seed {seed}: {d:?}"
        );
    }
    // A max of `Duration::MAX` and a NaN jitter never panic.
    let odd = Backoff {
        base: Duration::MAX,
        max: Duration::MAX,
        jitter: f64::NAN,
    };
    assert!(round_delays(odd, 1, 4, t0)
        .iter()
        .all(|d| *d > Duration::ZERO));
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
fn failed_rounds_count_until_a_server_is_reached() {
    let t0 = Instant::now();
    let mut rng = Rng::new(2);
    let mut h = HostList::new(2, false, Backoff::default(), &mut rng);
    assert_eq!(h.failed_rounds(), 0);
    let (a, _) = h.next(t0, &mut rng);
    h.on_failure();
    assert_eq!(h.failed_rounds(), 0);
    let _ = h.next(t0, &mut rng);
    h.on_failure();
    assert_eq!(h.failed_rounds(), 1, "a round that just ended counts");
    let (_, at) = h.next(t0, &mut rng);
    assert!(at > t0);
    assert_eq!(h.failed_rounds(), 1);
    h.on_failure();
    let _ = h.next(t0, &mut rng);
    h.on_failure();
    assert_eq!(h.failed_rounds(), 2);
    h.on_connected(a);
    assert_eq!(h.failed_rounds(), 0);
    for _ in 0..2 {
        let _ = h.next(t0, &mut rng);
        h.on_failure();
    }
    assert_eq!(h.failed_rounds(), 1);
    h.reset();
    assert_eq!(h.failed_rounds(), 0);
    assert_eq!(h.next(t0, &mut rng).1, t0, "no delay after a reset");
}

fn addrs(names: &[&str]) -> Vec<HostAddr> {
    names
        .iter()
        .map(|n| HostAddr {
            host: (*n).into(),
            port: 2181,
        })
        .collect()
}

/// A list over `old`, on `old[current]`, updated to `new`: the decision, and the
/// hosts (names) the next `new.len()` failed attempts go to.
fn update_once(
    seed: u64,
    old: &[HostAddr],
    new: &[HostAddr],
    current: Option<usize>,
    t0: Instant,
) -> (Rebalance, Vec<String>, Instant) {
    let mut rng = Rng::new(seed);
    let mut h = HostList::new(old.len(), true, Backoff::default(), &mut rng);
    if let Some(c) = current {
        h.on_connected(c);
    }
    let d = h.update(old, new, current, true, &mut rng);
    let mut tried = Vec::new();
    for _ in 0..new.len() {
        let (i, at) = h.next(t0, &mut rng);
        assert_eq!(at, t0, "no delay inside the first round");
        tried.push(new[i].host.clone());
        h.on_failure();
    }
    let (_, after) = h.next(t0, &mut rng);
    (d, tried, after)
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
fn update_follows_the_java_rebalancing_rule() {
    let t0 = Instant::now();
    let abc = addrs(&["a", "b", "c"]);
    let abcd = addrs(&["a", "b", "c", "d"]);
    // Grown 3 → 4, on a server that stays: a quarter move, to the new host first.
    let mut moves = 0;
    for seed in 0..10_000 {
        let (d, tried, after) = update_once(seed, &abc, &abcd, Some((seed % 3) as usize), t0);
        match d {
            Rebalance::Move => {
                moves += 1;
                assert_eq!(tried[0], "d");
            }
            Rebalance::Stay(i) => assert_eq!(abcd[i], abc[(seed % 3) as usize]),
            Rebalance::Replaced => panic!("on a server"),
        }
        let mut sorted = tried.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "b", "c", "d"], "one round over the new list");
        assert!(after > t0, "then the backoff");
    }
    assert!((2350..=2650).contains(&moves), "{moves} of 10000 moved");
    // The same list: nobody moves.
    for seed in 0..1000 {
        let (d, _, _) = update_once(seed, &abc, &addrs(&["c", "a", "b"]), Some(1), t0);
        assert_eq!(d, Rebalance::Stay(2));
    }
    // Not on a server: replaced.
    let (d, _, _) = update_once(1, &abc, &abcd, None, t0);
    assert_eq!(d, Rebalance::Replaced);
    // Shrunk around the current server: stay.
    let (d, _, _) = update_once(1, &abcd, &abc, Some(0), t0);
    assert_eq!(d, Rebalance::Stay(0));
    // The current server left a list of 4 that became {a, b, e}: move; each
    // attempt picks an old host with probability k(o-n)/(n(o-k)) = 2/6.
    let abe = addrs(&["a", "b", "e"]);
    let mut first_new = 0;
    for seed in 0..9000 {
        let (d, tried, _) = update_once(seed, &abcd, &abe, Some(3), t0);
        assert_eq!(d, Rebalance::Move);
        if tried[0] == "e" {
            first_new += 1;
        }
    }
    assert!(
        (5700..=6300).contains(&first_new),
        "{first_new} of 9000 to e"
    );
    // The current server left and nothing is new: the old ones only.
    for seed in 0..100 {
        let (d, tried, _) = update_once(seed, &abcd, &abc, Some(3), t0);
        assert_eq!(d, Rebalance::Move);
        assert!(tried.iter().all(|h| h != "d"));
    }
}

/// The generator is SplitMix64 (its published test vector for seed 1234567), so
/// a seeded host order, and a simulated schedule, replays the same everywhere.
#[test]
fn rng_is_splitmix64() {
    let mut r = Rng::new(1234567);
    let got: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
    assert_eq!(
        got,
        [
            6457827717110365317,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ]
    );
}
