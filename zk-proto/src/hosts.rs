//! Which server to try next, and not before when.

use std::time::{Duration, Instant};

use crate::config::{Backoff, HostAddr};
use crate::time::later;

/// A tiny seeded PRNG (SplitMix64): determinism in tests, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (for `p` in 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// The host rotation: shuffled once, then round robin. After a full pass
/// without a session the next attempt waits, growing per pass.
///
/// After [`update`](HostList::update) decided to move the session, the next
/// attempts first follow the rebalancing order (the Java client's "reconfig
/// mode"), then the rotation resumes.
///
/// Why: to see (or test) which server a session tries next and how long it
/// waits after a round of failures, with the same seeded arithmetic it uses.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use zk_proto::config::Backoff;
/// use zk_proto::hosts::{HostList, Rng};
///
/// let now = Instant::now(); // clock-exception: a doc example needs a start instant
/// let mut rng = Rng::new(7);
/// let backoff = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1), jitter: 0.0 };
/// let mut hosts = HostList::new(3, false, backoff, &mut rng);
/// assert_eq!(hosts.order(), &[0, 1, 2]);
///
/// // Inside a round, each failure moves on to the next host at once.
/// for expected in 0..3 {
///     assert_eq!(hosts.next(now, &mut rng), (expected, now));
///     hosts.on_failure();
/// }
/// assert_eq!(hosts.failed_rounds(), 1);
/// // After a failed round: wait `base`, then double per round (at most `max`).
/// assert_eq!(hosts.next(now, &mut rng), (0, now + Duration::from_millis(100)));
///
/// // A session established resets the count.
/// hosts.on_connected(0);
/// assert_eq!(hosts.failed_rounds(), 0);
/// assert_eq!(hosts.next(now, &mut rng), (1, now));
///
/// // Shuffled (the default in Config), the order depends only on the seed.
/// let a = HostList::new(5, true, backoff, &mut Rng::new(1));
/// let b = HostList::new(5, true, backoff, &mut Rng::new(1));
/// assert_eq!(a.order(), b.order());
/// ```
#[derive(Debug, Clone)]
pub struct HostList {
    order: Vec<usize>,
    cursor: usize,
    failed_in_pass: usize,
    passes: u32,
    backoff: Backoff,
    migration: Option<Migration>,
}

/// What [`HostList::update`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebalance {
    /// No server to weigh (not connected): the new list simply replaces the old.
    Replaced,
    /// Stay on the current server, which is at this index of the new list.
    Stay(usize),
    /// Leave the current server: the next attempts follow the rebalancing order.
    Move,
}

/// The hosts to try after a move: each attempt takes one of `new` (hosts that
/// were not in the old list) with probability `prob_new`, else one of `old`,
/// each list in rotation order; once one list is used up, the other; once both
/// are, the plain rotation resumes.
#[derive(Debug, Clone)]
struct Migration {
    old: Vec<usize>,
    new: Vec<usize>,
    next_old: usize,
    next_new: usize,
    prob_new: f64,
}

impl Migration {
    fn pick(&mut self, rng: &mut Rng) -> Option<usize> {
        let take_new = rng.chance(self.prob_new);
        if self.next_new < self.new.len() && (take_new || self.next_old >= self.old.len()) {
            self.next_new += 1;
            return Some(self.new[self.next_new - 1]);
        }
        if self.next_old < self.old.len() {
            self.next_old += 1;
            return Some(self.old[self.next_old - 1]);
        }
        None
    }
}

impl HostList {
    /// A rotation over `n` hosts. A rotation over none keeps one (dangling) index,
    /// 0, as [`update`](HostList::update) does for an empty list: nothing a
    /// caller does with it panics (a `Session` with no hosts never asks it).
    pub fn new(n: usize, shuffle: bool, backoff: Backoff, rng: &mut Rng) -> HostList {
        let mut order: Vec<usize> = (0..n.max(1)).collect();
        if shuffle {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
        }
        HostList {
            order,
            cursor: 0,
            failed_in_pass: 0,
            passes: 0,
            backoff,
            migration: None,
        }
    }

    /// Replaces the list `old` by `new` (the Java client's
    /// `StaticHostProvider.updateServerList`): the new list is shuffled (when
    /// `shuffle`) and becomes the rotation. `current` is the index in `old` of the
    /// server the session is on, if it is on one.
    ///
    /// On a server, whether to leave it so the ensemble's load stays even:
    ///
    /// * the current server is not in the new list: move;
    /// * the list grew (from `o` to `n` hosts) and the server is in it: move with
    ///   probability `1 - o/n`, and then to one of the hosts new to the list;
    /// * the list kept its size or shrank and the server is in it: stay.
    ///
    /// After a move from a server that left a list that did not grow, each attempt
    /// goes to a host that was already in the old list with probability
    /// `k (o - n) / (n (o - k))` (`k`: hosts of the new list that were in the old
    /// one), else to a host new to the list; after a move in a list that grew, to
    /// the new hosts first. So every server ends up with `1/n` of the clients on
    /// average, while as few clients as needed move.
    ///
    /// The rounds already failed (for the backoff) are kept; a partial round starts over.
    pub fn update(
        &mut self,
        old: &[HostAddr],
        new: &[HostAddr],
        current: Option<usize>,
        shuffle: bool,
        rng: &mut Rng,
    ) -> Rebalance {
        // Like `new`, an empty list keeps one (dangling) index rather than none.
        let mut order: Vec<usize> = (0..new.len().max(1)).collect();
        if shuffle {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
        }
        self.order = order;
        self.cursor = 0;
        self.failed_in_pass = 0;
        self.migration = None;
        let Some(mine) = current.and_then(|c| old.get(c)) else {
            return Rebalance::Replaced;
        };
        let here = new.iter().position(|h| h == mine);
        let (was, fresh): (Vec<usize>, Vec<usize>) = self
            .order
            .iter()
            .partition(|&&i| new.get(i).is_some_and(|h| old.contains(h)));
        let (o, n, k) = (old.len(), new.len(), was.len());
        let prob_new = if n > o {
            match here {
                Some(i) if rng.unit() >= 1.0 - o as f64 / n as f64 => {
                    self.attempting(i);
                    return Rebalance::Stay(i);
                }
                _ => 1.0,
            }
        } else {
            if let Some(i) = here {
                self.attempting(i);
                return Rebalance::Stay(i);
            }
            // Our server left; `o > k` since it was one of the old ones.
            let den = (n * o.saturating_sub(k)) as f64;
            let prob_old = if den > 0.0 {
                (k * (o - n)) as f64 / den
            } else {
                0.0
            };
            1.0 - prob_old.clamp(0.0, 1.0)
        };
        self.migration = Some(Migration {
            old: was,
            new: fresh,
            next_old: 0,
            next_new: 0,
            prob_new,
        });
        Rebalance::Move
    }

    /// An attempt to `host` is under way (or a session is on it): the next one
    /// goes to the host after it in the rotation.
    pub fn attempting(&mut self, host: usize) {
        if let Some(pos) = self.order.iter().position(|&h| h == host) {
            self.cursor = (pos + 1) % self.order.len();
        }
    }

    /// The try order (host indices).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The next host to try and the earliest time to try it. Each failure moves
    /// on to another host, so a host that just failed is tried last.
    pub fn next(&mut self, now: Instant, rng: &mut Rng) -> (usize, Instant) {
        if let Some(m) = &mut self.migration {
            if let Some(host) = m.pick(rng) {
                self.attempting(host);
                return (host, now);
            }
            // Every host was tried: back to the rotation (and its backoff).
            self.migration = None;
        }
        let host = self.order[self.cursor % self.order.len()];
        self.cursor = (self.cursor + 1) % self.order.len();
        let delay = if self.failed_in_pass >= self.order.len() {
            self.failed_in_pass = 0;
            self.passes = self.passes.saturating_add(1);
            self.delay(rng)
        } else {
            Duration::ZERO
        };
        (host, later(now, delay))
    }

    fn delay(&self, rng: &mut Rng) -> Duration {
        let exp = self.passes.saturating_sub(1).min(16);
        let max = self.backoff.max;
        let d = self.backoff.base.saturating_mul(1u32 << exp).min(max);
        let spread = self.backoff.jitter.clamp(0.0, 1.0) * rng.unit();
        // Not `mul_f64`, which panics when `d` is near `Duration::MAX` (the extra is
        // then dropped: `d` is "never" already) or the jitter is NaN.
        let part = |of: Duration| {
            Duration::try_from_secs_f64(spread * of.as_secs_f64()).unwrap_or(Duration::ZERO)
        };
        let total = d.saturating_add(part(d));
        if total <= max {
            total
        } else {
            // `max` bounds the jitter too: at the cap the spread goes below it.
            max.saturating_sub(part(max))
        }
    }

    /// Full rounds over the list that failed in a row with no server reached
    /// (a round that just ended counts at once).
    pub fn failed_rounds(&self) -> u32 {
        let ended = u32::from(self.failed_in_pass >= self.order.len());
        self.passes.saturating_add(ended)
    }

    /// Forgets failed attempts and rounds: the next attempt is not delayed (a restart).
    pub fn reset(&mut self) {
        self.failed_in_pass = 0;
        self.passes = 0;
        self.migration = None;
    }

    /// An attempt failed (refused, timed out, closed before the handshake completed).
    pub fn on_failure(&mut self) {
        self.failed_in_pass += 1;
    }

    /// A session was established: the next failure starts a fresh pass.
    pub fn on_connected(&mut self, host: usize) {
        self.failed_in_pass = 0;
        self.passes = 0;
        self.migration = None;
        self.attempting(host);
    }

    /// A host other than `current`, for the read-only probe, rotating.
    pub fn probe_candidate(&mut self, current: usize, offset: usize) -> Option<usize> {
        let others: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&h| h != current)
            .collect();
        if others.is_empty() {
            None
        } else {
            Some(others[offset % others.len()])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_depends_on_seed() {
        let orders: std::collections::BTreeSet<Vec<usize>> = (0..20)
            .map(|s| {
                HostList::new(5, true, Backoff::default(), &mut Rng::new(s))
                    .order()
                    .to_vec()
            })
            .collect();
        assert!(orders.len() > 5);
        assert_eq!(
            HostList::new(5, false, Backoff::default(), &mut Rng::new(3)).order(),
            &[0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn an_empty_rotation_does_not_panic() {
        let mut rng = Rng::new(7);
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now(); // clock-exception: a test's start instant
        let mut h = HostList::new(0, true, Backoff::default(), &mut rng);
        for _ in 0..3 {
            let (host, _) = h.next(now, &mut rng);
            assert_eq!(host, 0);
            h.on_failure();
        }
        assert_eq!(h.probe_candidate(0, 1), None);
    }

    /// Once a host is being tried (or a session is on it), the next attempt goes
    /// to the host after it in the rotation, wrapping at the end.
    #[test]
    fn the_next_attempt_follows_the_host_attempted() {
        let mut rng = Rng::new(7);
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now(); // clock-exception: a test's start instant
        let mut h = HostList::new(4, false, Backoff::default(), &mut rng);
        h.attempting(2);
        assert_eq!(h.next(now, &mut rng).0, 3);
        h.attempting(3);
        assert_eq!(h.next(now, &mut rng).0, 0);
        h.on_connected(1);
        assert_eq!(h.next(now, &mut rng).0, 2);
    }
}
