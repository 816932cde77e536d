//! Simulated time: it moves only in [`SimNet::step`], to the earliest of every
//! session's and the cluster's `poll_timeout` and the next delivery on the wire.

use std::time::{Duration, Instant};

use crate::time::later;

use super::SimNet;

/// Steps allowed at one instant before the net reports a livelock.
const SAME_INSTANT_LIMIT: u32 = 10_000;

impl SimNet {
    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time since the net was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The earliest pending timer or delivery.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let mut t = self.queue.keys().next().map(|k| k.0);
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.cluster.poll_timeout());
        for c in &self.clients {
            at(c.session.poll_timeout());
        }
        t
    }

    /// Advances to the next wakeup and processes everything due then. False when
    /// nothing is pending at all (or no progress could be made at one instant).
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_wakeup() else {
            return false;
        };
        let t = t.max(self.now);
        if t == self.now {
            self.same_instant += 1;
            if self.same_instant > SAME_INSTANT_LIMIT {
                self.violations
                    .push(format!("no progress at {:?}", self.now - self.start));
                return false;
            }
        } else {
            self.same_instant = 0;
        }
        self.now = t;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let d = entry.remove();
            self.deliver(d);
        }
        if self.cluster.poll_timeout().is_some_and(|x| x <= self.now) {
            self.cluster.handle_timeout(self.now);
            self.pump_server();
        }
        for ci in 0..self.clients.len() {
            if self.clients[ci]
                .session
                .poll_timeout()
                .is_some_and(|x| x <= self.now)
            {
                self.clients[ci].session.handle_timeout(self.now);
                self.drain_client(ci);
            }
        }
        true
    }

    /// Runs every step due up to `now + d`, then sets the clock there.
    pub fn advance(&mut self, d: Duration) {
        let target = later(self.now, d);
        while self.next_wakeup().is_some_and(|t| t <= target) {
            if !self.step() {
                break;
            }
        }
        self.now = self.now.max(target);
    }

    /// Steps until `cond` holds (true) or `max` of simulated time passed (false).
    pub fn run_until(&mut self, mut cond: impl FnMut(&SimNet) -> bool, max: Duration) -> bool {
        let deadline = later(self.now, max);
        loop {
            if cond(self) {
                return true;
            }
            match self.next_wakeup() {
                Some(t) if t <= deadline => {
                    if !self.step() {
                        return cond(self);
                    }
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return cond(self);
                }
            }
        }
    }
}
