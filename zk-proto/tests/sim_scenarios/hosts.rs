//! Host choice: the seeded shuffled order, connect timeouts, backoff after a failed pass.

use std::time::Duration;

use zk_proto::{DisconnectReason, SessionState};

use super::helpers::{
    add_client, attempts, connected_to, create, disconnect_reasons, ms, net, net_down,
    no_violations, ok, wait_for, S,
};

#[test]
fn hosts_are_tried_in_a_seeded_shuffled_order() {
    let first_pass = |seed: u64| {
        let mut n = net_down(5, 1);
        let ci = add_client(&mut n, &[0, 1, 2, 3, 4], |c| c.seed = seed);
        n.run_until(|n| n.client(ci).connects.len() >= 5, 10 * S);
        let hosts: Vec<String> = attempts(&n, ci).into_iter().map(|a| a.1).take(5).collect();
        no_violations(&n);
        hosts
    };
    let mut orders = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let order = first_pass(seed);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["m0", "m1", "m2", "m3", "m4"],
            "one pass visits each host once"
        );
        assert_eq!(order, first_pass(seed), "same seed, same order");
        orders.insert(order);
    }
    assert!(
        orders.len() > 4,
        "the order depends on the seed: {orders:?}"
    );
}

/// A link whose round trip (2.4 s) is longer than the first handshake waits
/// (1 s, then 2 s): the waits double until one is long enough, and the session
/// comes back on its server with its id; the abandoned handshakes, read by the
/// server before the next one, never take the session from the live connection.
#[test]
fn a_slow_handshake_connects_once_the_wait_has_doubled_past_it() {
    let mut n = net(1, 11);
    let ci = add_client(&mut n, &[0], |c| c.session_timeout = 30 * S);
    wait_for(&mut n, ci, SessionState::Connected, 5 * S);
    let sid = n.session(ci).session_id();
    n.set_latency(ms(1200), ms(1200));
    n.reset_session_conn(ci);
    let lost = n.now();
    wait_for(&mut n, ci, SessionState::Connected, 30 * S);
    let back = n.now() - lost;
    let reasons = disconnect_reasons(&n, ci);
    assert_eq!(
        reasons[1..],
        [
            DisconnectReason::HandshakeTimeout,
            DisconnectReason::HandshakeTimeout
        ],
        "{reasons:?}"
    );
    // A connect takes a round trip (2.4 s) here. Given up at 2.4 + 1 s, then
    // (the backoff used up meanwhile) at once again, given up 2.4 + 2 s later,
    // then answered 2.4 + 2.4 s after the third start.
    let starts: Vec<Duration> = n
        .client(ci)
        .connects
        .iter()
        .filter(|c| c.0 >= lost)
        .map(|c| c.0 - lost)
        .collect();
    assert_eq!(starts, [ms(0), ms(3400), ms(7800)]);
    assert_eq!(back, ms(12600));
    assert_eq!(n.session(ci).session_id(), sid);
    assert!(!n.client(ci).states().contains(&SessionState::Expired));
    assert_eq!(
        n.session(ci).handshake_wait(),
        S,
        "an answer resets the wait"
    );
    ok(&mut n, ci, create("/slow", b"", 0));
    no_violations(&n);
}

#[test]
fn each_attempt_has_its_own_connect_timeout() {
    let mut n = net(3, 2);
    for m in 0..3 {
        n.partition(m);
    }
    let ci = add_client(&mut n, &[0, 1, 2], |c| c.session_timeout = ms(9000));
    n.run_until(|n| n.client(ci).connects.len() >= 3, 30 * S);
    let times: Vec<Duration> = attempts(&n, ci).into_iter().map(|a| a.0).collect();
    // 9000 ms / 3 hosts.
    assert_eq!(times, [ms(0), ms(3000), ms(6000)]);
    assert!(disconnect_reasons(&n, ci)
        .iter()
        .all(|r| *r == DisconnectReason::ConnectTimeout));
    assert_eq!(n.state(ci), SessionState::Connecting);
    no_violations(&n);
}

#[test]
fn a_full_failed_pass_backs_off() {
    let mut n = net_down(3, 3);
    let ci = add_client(&mut n, &[0, 1, 2], |_| {});
    n.run_until(|n| n.client(ci).connects.len() >= 9, 30 * S);
    let times: Vec<Duration> = attempts(&n, ci).into_iter().map(|a| a.0).collect();
    // Refused after one round trip (2 ms); no delay inside a pass.
    assert_eq!(&times[..3], [ms(0), ms(2), ms(4)]);
    let gap1 = times[3] - times[2];
    assert!(gap1 >= ms(102) && gap1 <= ms(122), "first backoff {gap1:?}");
    assert_eq!(times[4] - times[3], ms(2));
    let gap2 = times[6] - times[5];
    assert!(
        gap2 >= ms(202) && gap2 <= ms(242),
        "second backoff doubles: {gap2:?}"
    );
    // Once a member is back, the client gets in.
    n.start_member(1);
    connected_to(&mut n, ci, 1, 10 * S);
    no_violations(&n);
}
