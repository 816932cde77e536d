//! Connection retry: rounds, giving up, backoff between rounds, recovery time.

use std::time::Duration;

use zk_proto::{AddWatchMode, CoarseState, RemovalReason, SessionState, UsageError, ZkError};

use super::helpers::{
    add_client, add_watch, attempts, connected_client, create, exists, expire_and_renew,
    failed_with, get_data, ms, net, net_down, no_violations, ok, scenario_with, submit, wait_for,
    S,
};
use super::limits::removal_reason;

#[test]
fn connect_max_rounds_gives_up_unreachable_and_restart_tries_again() {
    let mut n = net_down(3, 4);
    let ci = add_client(&mut n, &[0, 1, 2], |c| c.connect_max_rounds = Some(2));
    let (queued, qw) = submit(&mut n, ci, exists("/x", true));
    let auth = n.add_auth(ci, "digest", b"u:p").unwrap();
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 30 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    assert_eq!(n.state(ci).coarse(), CoarseState::Lost);
    // Two full rounds over the three hosts, then nothing more.
    assert_eq!(n.client(ci).connects.len(), 6);
    assert_eq!(
        n.client(ci).states(),
        [SessionState::Unreachable],
        "from Connecting straight to Unreachable"
    );
    failed_with(&n, ci, &[queued, auth], ZkError::Unreachable);
    assert_eq!(
        removal_reason(&n, ci, qw.unwrap()),
        Some(RemovalReason::NotSet(ZkError::Unreachable))
    );
    assert!(matches!(
        n.submit(ci, get_data("/", false)),
        Err(UsageError::SessionTerminated(ZkError::Unreachable))
    ));
    assert_eq!(n.session(ci).poll_timeout(), None, "no timer left");
    n.advance(60 * S);
    assert_eq!(n.client(ci).connects.len(), 6);

    // restart: at once, with a fresh count of rounds.
    n.restart(ci);
    assert_eq!(n.state(ci), SessionState::Connecting);
    assert_eq!(n.client(ci).connects.len(), 7);
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 30 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    assert_eq!(n.client(ci).connects.len(), 12);
    n.start_member(2);
    n.restart(ci);
    wait_for(&mut n, ci, SessionState::Connected, 10 * S);
    ok(&mut n, ci, create("/back", b"", 0));
    no_violations(&n);
}

#[test]
fn a_suspended_session_gives_up_after_its_rounds_and_ends_its_watches() {
    scenario_with(
        3,
        5,
        |c| {
            c.session_timeout = 30 * S;
            c.connect_max_rounds = Some(3);
        },
        |n, ci| {
            let sid = n.session(ci).session_id().unwrap();
            let (_, w) = submit(n, ci, add_watch("/p", AddWatchMode::Persistent));
            n.advance(ms(10));
            let connects = n.client(ci).connects.len();
            for m in 0..3 {
                n.stop_member(m);
            }
            assert!(n.run_until(|n| n.state(ci).is_terminal(), 30 * S));
            assert_eq!(n.state(ci), SessionState::Unreachable);
            assert!(
                n.client(ci).entered(SessionState::Unreachable).unwrap()
                    < n.client(ci).entered(SessionState::Suspended).unwrap() + 10 * S,
                "well before the session timeout"
            );
            assert_eq!(n.client(ci).connects.len() - connects, 9, "three rounds");
            assert_eq!(
                removal_reason(n, ci, w.unwrap()),
                Some(RemovalReason::SessionEnded(ZkError::Unreachable))
            );
            // The session may still live on the servers: it can be resumed elsewhere.
            assert_eq!(n.session(ci).credentials().map(|c| c.0), Some(sid));
        },
    );
}

#[test]
fn reaching_a_server_starts_the_count_of_rounds_again() {
    let mut n = net_down(3, 6);
    let ci = add_client(&mut n, &[0, 1, 2], |c| c.connect_max_rounds = Some(3));
    // Two failed rounds, then a server comes back.
    assert!(n.run_until(|n| n.client(ci).connects.len() >= 6, 30 * S));
    n.start_member(0);
    wait_for(&mut n, ci, SessionState::Connected, 10 * S);
    let connects = n.client(ci).connects.len();
    n.stop_member(0);
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 60 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    // Three whole rounds after the server was lost, not one.
    assert_eq!(n.client(ci).connects.len() - connects, 9);
    no_violations(&n);
}

#[test]
fn an_expired_handshake_answer_is_a_server_reached() {
    // The server answers the handshake "expired": a server was reached, so the
    // rounds start again; with the default policy a new session follows.
    let mut n = net(1, 7);
    let ci = connected_client(&mut n, &[0], |c| c.connect_max_rounds = Some(1));
    expire_and_renew(&mut n, ci);
    no_violations(&n);
}

#[test]
fn the_default_backoff_waits_at_most_a_second_between_rounds() {
    let mut n = net_down(3, 8);
    let c = n.config(&[0, 1, 2]);
    assert_eq!(c.backoff.max, S);
    assert_eq!(c.connect_max_rounds, None);
    let ci = n.add_client(c);
    n.advance(120 * S);
    let times: Vec<Duration> = attempts(&n, ci).into_iter().map(|a| a.0).collect();
    assert!(times.len() > 300, "{} attempts", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Refused in 2 ms; the gap after a round is the backoff plus that.
    let round_gaps: Vec<Duration> = gaps.iter().copied().filter(|g| *g > ms(2)).collect();
    assert!(round_gaps.iter().all(|g| *g <= S + ms(2)), "{round_gaps:?}");
    // At the cap the jitter goes below the second: clients spread out.
    let capped = &round_gaps[5..];
    assert!(capped.iter().all(|g| *g >= ms(800)), "{capped:?}");
    let distinct: std::collections::BTreeSet<_> = capped.iter().collect();
    assert!(distinct.len() > capped.len() / 2, "jittered: {capped:?}");
    assert_eq!(n.state(ci), SessionState::Connecting);
    no_violations(&n);
}

#[test]
fn a_client_is_back_within_about_half_a_second_of_a_recovered_ensemble() {
    let mut total = Duration::ZERO;
    let mut worst = Duration::ZERO;
    let runs = 200;
    for seed in 0..runs {
        let mut n = net_down(3, 100 + seed);
        let ci = add_client(&mut n, &[0, 1, 2], |c| c.seed = seed);
        // Long enough for the backoff to reach its cap; the recovery instant
        // varies with the seed.
        n.advance(20 * S + ms(seed * 37 % 1000));
        let back = n.now();
        for m in 0..3 {
            n.start_member(m);
        }
        wait_for(&mut n, ci, SessionState::Connected, 10 * S);
        let took = n.client(ci).entered(SessionState::Connected).unwrap() - back;
        total += took;
        worst = worst.max(took);
    }
    let mean = total / runs as u32;
    assert!(
        mean >= ms(300) && mean <= ms(600),
        "mean time back {mean:?}"
    );
    assert!(worst <= S + ms(10), "worst {worst:?}");
}
