//! From a read-only server, probing the other hosts for a read-write one
//! (`isro` on a side connection, every 100 ms at first, backing off to 60 s), and
//! moving to the first that answers `rw`.

use std::time::{Duration, Instant};

use crate::time::later;

use super::{Action, ConnId, DisconnectReason, Link, Session};

pub(super) const PROBE_FIRST: Duration = Duration::from_millis(100);
const PROBE_MAX: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct Probe {
    pub(super) next_at: Instant,
    pub(super) interval: Duration,
    pub(super) turn: usize,
    pub(super) conn: Option<(ConnId, usize, Instant)>,
    pub(super) answer: Vec<u8>,
}

impl Session {
    pub(super) fn stop_probe(&mut self) {
        if let Some(p) = self.probe.take() {
            if let Some((conn, _, _)) = p.conn {
                self.actions.push_back(Action::Disconnect { conn });
            }
        }
    }

    pub(super) fn probe_timeout(&mut self, now: Instant) {
        let Link::Up { host: current, .. } = self.link else {
            return;
        };
        let Some(p) = &mut self.probe else {
            return;
        };
        match p.conn {
            Some((conn, _, deadline)) if now >= deadline => {
                self.actions.push_back(Action::Disconnect { conn });
                self.probe_finished(conn, now);
            }
            None if now >= p.next_at => {
                let turn = p.turn;
                p.turn += 1;
                if let Some(host) = self.hosts.probe_candidate(current, turn) {
                    let conn = ConnId(self.next_conn);
                    self.next_conn += 1;
                    let deadline = later(now, self.connect_timeout());
                    if let Some(p) = &mut self.probe {
                        p.conn = Some((conn, host, deadline));
                        p.answer.clear();
                    }
                    if let Some(addr) = self.config.hosts.get(host).cloned() {
                        self.actions.push_back(Action::Connect { conn, host: addr });
                    }
                }
            }
            _ => {}
        }
    }

    /// The probe connection ended: "rw" means move there.
    pub(super) fn probe_finished(&mut self, conn: ConnId, now: Instant) {
        let Some(p) = &mut self.probe else {
            return;
        };
        let Some((pc, host, _)) = p.conn else {
            return;
        };
        if pc != conn {
            return;
        }
        p.conn = None;
        if p.answer == b"rw" {
            self.probe = None;
            // Leave the read-only server for the read-write one.
            if matches!(self.link, Link::Up { .. }) {
                self.drop_link_then(now, DisconnectReason::LeavingReadOnly, true, Some(host));
            }
        } else {
            p.interval = (p.interval * 2).min(PROBE_MAX);
            p.next_at = later(now, p.interval);
        }
    }

    /// Connected to a read-only server: start looking for a read-write one
    /// (when there is another host to look at).
    pub(super) fn start_probe(&mut self, now: Instant) {
        if self.config.hosts.len() > 1 {
            self.probe = Some(Probe {
                next_at: later(now, PROBE_FIRST),
                interval: PROBE_FIRST,
                turn: 0,
                conn: None,
                answer: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::PROBE_FIRST;
    use crate::config::Config;
    use crate::session::test_peer::{hosts, Peer};
    use crate::session::{Action, SessionState};

    /// On a read-only server the session probes the others for a read-write one,
    /// the first time 100 ms after connecting, not before (an early timer call, say
    /// for a ping, starts nothing).
    #[test]
    fn the_read_only_probe_waits_for_its_interval() {
        let mut c = Config::new(hosts(2));
        c.read_only = true;
        let mut p = Peer::connected(c, true);
        assert_eq!(p.s.state(), SessionState::ConnectedReadOnly);
        let current = p.s.current_host().cloned();
        assert_eq!(p.s.poll_timeout(), Some(p.now + PROBE_FIRST));

        p.s.handle_timeout(p.now + PROBE_FIRST / 2);
        assert_eq!(p.s.poll_action(), None, "no probe before its time");

        p.s.handle_timeout(p.now + PROBE_FIRST);
        match p.s.poll_action() {
            Some(Action::Connect { host, .. }) => assert_ne!(Some(host), current),
            other => panic!("a probe of the other host, got {other:?}"),
        }
    }

    /// A probe that found no read-write server waits twice as long before the
    /// next: 200 ms after the first (100 ms) one failed, then 400 ms.
    #[test]
    fn the_probe_interval_doubles_after_each_miss() {
        let mut c = Config::new(hosts(2));
        c.read_only = true;
        let mut p = Peer::connected(c, true);
        let mut now = p.now + PROBE_FIRST;
        for wait in [2, 4] {
            p.s.handle_timeout(now);
            let Some(Action::Connect { conn: probe, .. }) = p.s.poll_action() else {
                panic!("no probe");
            };
            p.s.handle_connect_failed(probe, now);
            now += PROBE_FIRST * wait;
            assert_eq!(p.s.poll_timeout(), Some(now), "the next probe");
        }
    }

    /// A probe connection that gets no answer is given up at its deadline (the
    /// connect timeout), not before.
    #[test]
    fn an_unanswered_probe_is_given_up_at_its_deadline() {
        let (mut p, probe, t) = Peer::probing();
        let deadline = t + p.s.connect_timeout();
        p.s.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(p.s.poll_action(), None, "not given up before its deadline");
        p.s.handle_timeout(deadline);
        assert_eq!(p.s.poll_action(), Some(Action::Disconnect { conn: probe }));
    }

    /// Successive probes take the other hosts in turn, never the current one.
    #[test]
    fn probes_rotate_over_the_other_hosts() {
        let mut c = Config::new(hosts(3));
        c.read_only = true;
        let mut p = Peer::connected(c, true);
        let current = p.s.current_host().cloned();
        let mut now = p.now + PROBE_FIRST;
        let mut probed = Vec::new();
        for wait in [2, 4] {
            p.s.handle_timeout(now);
            let Some(Action::Connect { conn, host }) = p.s.poll_action() else {
                panic!("no probe");
            };
            probed.push(host);
            p.s.handle_connect_failed(conn, now);
            now += PROBE_FIRST * wait;
        }
        assert_ne!(probed[0], probed[1]);
        assert!(
            probed.iter().all(|h| Some(h) != current.as_ref()),
            "{probed:?}"
        );
    }

    /// The probe belongs to the connection it looks past: when the session's
    /// connection is lost, the probe's own connection is closed with it.
    #[test]
    fn losing_the_connection_closes_the_probes() {
        let mut c = Config::new(hosts(2));
        c.read_only = true;
        let mut p = Peer::connected(c, true);
        p.s.handle_timeout(p.now + PROBE_FIRST);
        let Some(Action::Connect { conn: probe, .. }) = p.s.poll_action() else {
            panic!("no probe");
        };
        p.s.handle_disconnected(p.conn, p.now + PROBE_FIRST);
        let actions: Vec<Action> = std::iter::from_fn(|| p.s.poll_action()).collect();
        assert!(
            actions.contains(&Action::Disconnect { conn: probe }),
            "{actions:?}"
        );
    }
}
