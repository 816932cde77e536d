//! Host rotation and backoff (a black-box test: it needs a real start instant,
//! which zk-proto's own sources never read).

use std::time::{Duration, Instant};

use zk_proto::config::Backoff;
use zk_proto::hosts::{HostList, Rng};

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
