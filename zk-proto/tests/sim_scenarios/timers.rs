//! Timers: idle pings and the read timeout.

use std::time::{Duration, Instant};

use zk_proto::testing::net::{ClientFrame, SimNet};
use zk_proto::{DisconnectReason, OpCode, SessionState};

use super::helpers::{disconnect_reasons, get_data, ms, ok, scenario_with, wait_for, S};

pub(crate) fn ping_times(n: &SimNet, ci: usize) -> Vec<Instant> {
    n.client_frames(ci)
        .into_iter()
        .filter_map(|(t, _, f)| match f {
            ClientFrame::Request {
                op: OpCode::Ping, ..
            } => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn idle_pings_at_half_the_read_timeout() {
    scenario_with(
        1,
        6,
        |c| c.session_timeout = ms(12_000),
        |n, ci| {
            let connected = n.client(ci).entered(SessionState::Connected).unwrap();
            // Read timeout 8 s, ping after 4 s idle.
            assert_eq!(n.session(ci).read_timeout(), ms(8000));
            n.advance(13 * S);
            let pings = ping_times(n, ci);
            assert_eq!(
                pings.iter().map(|t| *t - connected).collect::<Vec<_>>(),
                [ms(4000), ms(8000), ms(12_000)]
            );
            // A request resets the idle clock.
            let before = n.now();
            ok(n, ci, get_data("/", false));
            n.advance(5 * S);
            let next = ping_times(n, ci).into_iter().find(|t| *t > before).unwrap();
            assert_eq!(next - before, ms(4000));
            assert_eq!(n.state(ci), SessionState::Connected);
        },
    );
}

#[test]
fn idle_pings_at_most_every_ten_seconds() {
    scenario_with(
        1,
        7,
        |c| c.session_timeout = ms(40_000),
        |n, ci| {
            let connected = n.client(ci).entered(SessionState::Connected).unwrap();
            n.advance(31 * S);
            let pings: Vec<Duration> = ping_times(n, ci).iter().map(|t| *t - connected).collect();
            assert_eq!(pings, [10 * S, 20 * S, 30 * S]);
        },
    );
}

/// Regression (found by `sim_model`, seed 7162928311949264775; fixed in 6b8ee9e).
/// Ping interval 2 s, read timeout 4 s. The server holds the idle ping sent at
/// c+2 s. At c+2.1 s the client sends auth (answered at once: `last_send` =
/// c+2.1 s, the connection stays alive). The ping reply comes at c+4.2 s; the bug
/// made `poll_timeout` return `last_send + 2 s` = c+4.1 s, 100 ms in the past.
#[test]
fn no_poll_timeout_in_the_past_after_a_late_ping_reply() {
    scenario_with(
        1,
        40,
        |c| c.session_timeout = ms(6000),
        |n, ci| {
            let c = n.client(ci).entered(SessionState::Connected).unwrap();
            n.set_hold(0, true);
            n.advance(c + ms(2050) - n.now());
            assert_eq!(ping_times(n, ci).len(), 1, "one ping, held by the server");
            n.advance(ms(50));
            let auth = n.add_auth(ci, "digest", b"u:p").unwrap();
            n.advance(c + ms(4199) - n.now());
            assert!(n.client(ci).completion(auth).is_some());
            assert_eq!(n.state(ci), SessionState::Connected);
            n.set_hold(0, false);
            n.advance(ms(5));
            assert_eq!(n.state(ci), SessionState::Connected);
        },
    );
}

#[test]
fn a_silent_connection_is_dead_after_the_read_timeout() {
    scenario_with(
        2,
        8,
        |c| c.session_timeout = ms(12_000),
        |n, ci| {
            let m = n.client_member(ci).unwrap();
            let last_recv = n.client(ci).entered(SessionState::Connected).unwrap();
            n.partition(m);
            wait_for(n, ci, SessionState::Suspended, 20 * S);
            assert_eq!(n.now() - last_recv, ms(8000));
            assert_eq!(disconnect_reasons(n, ci), [DisconnectReason::ReadTimeout]);
            // It reconnects elsewhere, same session.
            wait_for(n, ci, SessionState::Connected, 10 * S);
            assert_ne!(n.client_member(ci), Some(m));
        },
    );
}
