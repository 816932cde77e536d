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
