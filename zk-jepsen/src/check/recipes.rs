//! The recipes' promises, checked on the holders' own claims: a holder "claims" the lock (or
//! leadership, or lease) when its acquisition completes and each time its status check says
//! held, right before a protected action. A tenure runs from the grant to its last claim.
//!
//! A grant whose holder never found it held is no tenure. A client process stopped between
//! the servers' answer and the holder seeing it returns from `acquire` when it runs again,
//! its session perhaps expired and its node gone meanwhile (and the next contender granted):
//! the grant is then recorded at a time when it no longer holds, with an older token than
//! the grants since. A holder looks before every protected action and finds it lost, so it
//! never acts on that grant: it is a moment of a stale view, not a second holder.

use super::Verdict;
use crate::history::{Acquisition, History, Outcome, Recipe};
use std::collections::{BTreeMap, HashMap};

/// Each acquisition of `recipe` its holder found held at least once, with its tenure
/// `[acquired, last held claim]`.
fn tenures(h: &History, recipe: Recipe) -> Vec<(&Acquisition, u64)> {
    let mut last: HashMap<u64, u64> = HashMap::new();
    for c in h.claims.iter().filter(|c| c.held) {
        let e = last.entry(c.acq).or_insert(c.t);
        *e = (*e).max(c.t);
    }
    let mut v: Vec<(&Acquisition, u64)> = h
        .acqs
        .iter()
        .filter(|a| a.recipe == recipe && last.contains_key(&a.id))
        .map(|a| {
            (
                a,
                last.get(&a.id)
                    .copied()
                    .unwrap_or(a.acquired)
                    .max(a.acquired),
            )
        })
        .collect();
    v.sort_by_key(|(a, _)| a.acquired);
    v
}

/// Never more than `max` tenures of `recipe` at once.
pub fn exclusion(h: &History, recipe: Recipe, max: usize) -> Verdict {
    let t = tenures(h, recipe);
    let mut anomalies = Vec::new();
    // Tenures sorted by start; at each start, count the earlier ones still running.
    for (i, (a, _)) in t.iter().enumerate() {
        let overlapping: Vec<String> = t[..i]
            .iter()
            .filter(|(b, end)| *end > a.acquired && b.worker != a.worker)
            .map(|(b, end)| format!("acq {} (worker {}, {}..{end})", b.id, b.worker, b.acquired))
            .collect();
        if overlapping.len() >= max {
            anomalies.push(format!(
                "{recipe:?}: acq {} (worker {}, session {:#x}) granted at {} while {} still claimed: {}",
                a.id,
                a.worker,
                a.session,
                a.acquired,
                overlapping.len(),
                overlapping.join(", ")
            ));
        }
    }
    let name = match recipe {
        Recipe::Lock => "lock: never two holders at once",
        Recipe::Election => "election: never two leaders at once",
        Recipe::Semaphore => "semaphore: never more holders than leases",
    };
    Verdict {
        name,
        histories: 1,
        anomalies,
        note: format!("{} grants found held", t.len()),
    }
}

/// Tokens strictly increase in grant order, and the protected resource's accepted writes
/// carry non-decreasing tokens in zxid order.
pub fn fencing(h: &History, recipe: Recipe) -> Verdict {
    let t = tenures(h, recipe);
    let mut anomalies = Vec::new();
    for w in t.windows(2) {
        let (a, b) = (w[0].0, w[1].0);
        if b.token <= a.token {
            anomalies.push(format!(
                "{recipe:?}: acq {} (token {:#x}) granted at {} after acq {} (token {:#x}) at {}",
                b.id, b.token, b.acquired, a.id, a.token, a.acquired
            ));
        }
    }
    let of: HashMap<u64, Recipe> = h.acqs.iter().map(|a| (a.id, a.recipe)).collect();
    let mut accepted: Vec<(i64, i64, u64)> = h
        .protected
        .iter()
        .filter(|p| of.get(&p.acq) == Some(&recipe))
        .filter_map(|p| match p.outcome {
            Outcome::Ok(z) => Some((z, p.token, p.acq)),
            _ => None,
        })
        .collect();
    accepted.sort_unstable();
    for w in accepted.windows(2) {
        if w[1].1 < w[0].1 {
            anomalies.push(format!(
                "{recipe:?}: resource written with token {:#x} (acq {}) at zxid {:#x} after token {:#x} (acq {}) at zxid {:#x}",
                w[1].1, w[1].2, w[1].0, w[0].1, w[0].2, w[0].0
            ));
        }
    }
    Verdict {
        name: match recipe {
            Recipe::Lock => "lock: fencing tokens increase (grants, resource writes)",
            _ => "fencing tokens increase",
        },
        histories: 1,
        anomalies,
        note: format!("{} protected writes accepted", accepted.len()),
    }
}

/// How late after the servers expired a session a holder may still claim it without it
/// counting: the log's times are another clock read to the millisecond, and a follower cut off
/// from its leader answers its clients' pings for up to `syncLimit` ticks while the leader,
/// hearing nothing of them, may expire their sessions (ZooKeeper's own timing, not the
/// client's). A holder frozen past its session timeout claims seconds late.
pub const SERVER_EXPIRY_SLACK_US: u64 = 1_000_000;

/// A holder whose session expired knows it before its next protected action:
///
/// * no held claim after its client reported the session expired;
/// * no held claim later than [`SERVER_EXPIRY_SLACK_US`] after the servers expired it (the
///   leader's log), for the sessions whose clients did learn of their expiry; an expiry that a
///   leader cut off from the others (or stopped) logged but never committed does not count: the
///   session must have had nothing accepted by the servers after it.
pub fn expiry_learned(h: &History) -> Verdict {
    let mut expiries: HashMap<usize, Vec<u64>> = HashMap::new();
    for e in h.events.iter().filter(|e| e.state == "Expired") {
        expiries.entry(e.worker).or_default().push(e.t);
    }
    for v in expiries.values_mut() {
        v.sort_unstable();
    }
    let mut server: HashMap<i64, Vec<u64>> = HashMap::new();
    for &(session, t) in &h.server_expiries {
        server.entry(session).or_default().push(t);
    }
    // When each session last did something the servers accepted (a grant, a protected write,
    // a register operation): a logged expiry followed by that was never committed (a leader
    // SIGSTOPped past the session timeout expires every session when it runs again, though
    // the others have elected a new leader meanwhile).
    let mut last_alive: HashMap<i64, u64> = HashMap::new();
    let mut alive = |session: i64, t: u64| {
        let e = last_alive.entry(session).or_insert(t);
        *e = (*e).max(t);
    };
    let session_of: HashMap<u64, i64> = h.acqs.iter().map(|a| (a.id, a.session)).collect();
    for a in &h.acqs {
        alive(a.session, a.acquired);
    }
    for p in &h.protected {
        if let (Outcome::Ok(_), Some(&session)) = (&p.outcome, session_of.get(&p.acq)) {
            alive(session, p.invoke);
        }
    }
    for r in &h.regs {
        if matches!(r.outcome, Outcome::Ok(_)) && r.session != 0 {
            alive(r.session, r.invoke);
        }
    }
    let acqs: HashMap<u64, &Acquisition> = h.acqs.iter().map(|a| (a.id, a)).collect();
    let mut anomalies = Vec::new();
    let mut expired_holders = std::collections::HashSet::new();
    let mut late_checked = 0;
    for c in h.claims.iter() {
        let Some(a) = acqs.get(&c.acq) else { continue };
        let Some(ts) = expiries.get(&a.worker) else {
            continue;
        };
        // The client's report of this session's expiry: its first after the grant.
        let Some(&reported) = ts.iter().find(|&&te| te > a.acquired) else {
            continue;
        };
        if reported < c.t {
            expired_holders.insert(a.id);
            if c.held {
                anomalies.push(format!(
                    "{:?}: acq {} (worker {}, session {:#x}) claimed held at {} after its session expired at {reported}",
                    a.recipe, a.id, a.worker, a.session, c.t
                ));
            }
            continue;
        }
        // Before the client knew: the servers' last expiry of the session before the report,
        // if nothing of the session was accepted after it.
        let last = last_alive.get(&a.session).copied().unwrap_or(0);
        let Some(expired) = server.get(&a.session).and_then(|v| {
            v.iter()
                .copied()
                .filter(|&t| t <= reported + SERVER_EXPIRY_SLACK_US && t > last)
                .max()
        }) else {
            continue;
        };
        late_checked += 1;
        if c.held && c.t > expired + SERVER_EXPIRY_SLACK_US {
            anomalies.push(format!(
                "{:?}: acq {} (worker {}, session {:#x}) claimed held at {}, {} ms after the servers expired its session (leader's log, at {expired}); its client reported the expiry at {reported}",
                a.recipe,
                a.id,
                a.worker,
                a.session,
                c.t,
                (c.t - expired) / 1000
            ));
        }
    }
    Verdict {
        name: "holders: learn of their session's expiry before acting",
        histories: acqs.len(),
        anomalies,
        note: format!(
            "{} tenures outlived their session; {} servers' expiries logged, {late_checked} claims checked against them",
            expired_holders.len(),
            h.server_expiries.len()
        ),
    }
}

/// Elections: one leader per term (the term is the leader node's czxid, its fencing token),
/// never two leaders at once, terms increasing.
pub fn election(h: &History) -> Verdict {
    let mut by_term: BTreeMap<i64, Vec<&Acquisition>> = BTreeMap::new();
    for a in h.acqs.iter().filter(|a| a.recipe == Recipe::Election) {
        by_term.entry(a.token).or_default().push(a);
    }
    let mut anomalies: Vec<String> = by_term
        .iter()
        .filter(|(_, v)| {
            v.iter()
                .map(|a| a.session)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        })
        .map(|(term, v)| format!("term {term:#x} has {} leaders", v.len()))
        .collect();
    anomalies.extend(exclusion(h, Recipe::Election, 1).anomalies);
    anomalies.extend(fencing(h, Recipe::Election).anomalies);
    Verdict {
        name: "election: one leader per term, never two at once",
        histories: 1,
        anomalies,
        note: format!("{} terms", by_term.len()),
    }
}

/// The counter's final value lies between the sum of acknowledged adds and that plus the
/// unknown ones (adds are positive).
pub fn counter(h: &History) -> Verdict {
    let (mut acked, mut unknown, mut n) = (0i64, 0i64, 0);
    for a in &h.adds {
        n += 1;
        match a.outcome {
            Outcome::Ok(_) => acked += a.delta,
            Outcome::Unknown(_) => unknown += a.delta,
            Outcome::NotApplied(_) => {}
        }
    }
    let anomalies = match h.counter_final {
        None => vec!["no final value was read".to_string()],
        Some(v) if v < acked || v > acked + unknown => vec![format!(
            "final value {v} outside [{acked}, {}] (acknowledged adds {acked}, unknown {unknown})",
            acked + unknown
        )],
        Some(_) => Vec::new(),
    };
    Verdict {
        name: "counter: acked <= final <= acked + unknown",
        histories: 1,
        anomalies,
        note: format!(
            "{n} adds, acked sum {acked}, unknown sum {unknown}, final {}",
            h.counter_final.map_or("none".into(), |v| v.to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Claim, Protected, SessionEvent};

    fn acq(id: u64, worker: usize, token: i64, at: u64) -> Acquisition {
        Acquisition {
            recipe: Recipe::Lock,
            id,
            worker,
            session: worker as i64,
            token,
            acquired: at,
        }
    }

    /// The holder of acquisition `acq` looked at `t` and found it `held` (or not).
    fn claim(acq: u64, t: u64, held: bool) -> Claim {
        Claim { acq, t, held }
    }

    /// `worker`'s session reported expired at `t`.
    fn expired(worker: usize, t: u64) -> SessionEvent {
        SessionEvent {
            worker,
            t,
            state: "Expired".into(),
        }
    }

    #[test]
    fn overlapping_tenures_and_falling_tokens_are_anomalies() {
        let mut h = History::default();
        h.acqs.push(acq(0, 1, 10, 0));
        h.claims.push(claim(0, 50, true));
        h.acqs.push(acq(1, 2, 20, 60));
        h.claims.push(claim(1, 70, true));
        assert!(exclusion(&h, Recipe::Lock, 1).anomalies.is_empty());
        assert!(fencing(&h, Recipe::Lock).anomalies.is_empty());
        // The first holder claims again after the second was granted.
        h.claims.push(claim(0, 65, true));
        assert_eq!(exclusion(&h, Recipe::Lock, 1).anomalies.len(), 1);
        assert!(exclusion(&h, Recipe::Lock, 2).anomalies.is_empty());
        h.protected.push(Protected {
            acq: 1,
            token: 20,
            invoke: 71,
            outcome: Outcome::Ok(100),
        });
        h.protected.push(Protected {
            acq: 0,
            token: 10,
            invoke: 66,
            outcome: Outcome::Ok(101),
        });
        assert_eq!(fencing(&h, Recipe::Lock).anomalies.len(), 1);
    }

    /// A grant seen after a pause, never found held (its session expired during the pause),
    /// is no tenure; found held once, it is, and overlaps.
    #[test]
    fn a_grant_never_found_held_is_no_tenure() {
        let mut h = History::default();
        h.acqs.push(acq(0, 1, 20, 100));
        h.claims.push(claim(0, 150, true));
        h.claims.push(claim(0, 300, true));
        // Worker 2's older grant, seen at 200 after its process ran again; it looks at 210
        // and finds it lost.
        h.acqs.push(acq(1, 2, 10, 200));
        h.claims.push(claim(1, 210, false));
        assert!(exclusion(&h, Recipe::Lock, 1).anomalies.is_empty());
        assert!(fencing(&h, Recipe::Lock).anomalies.is_empty());
        h.claims.push(claim(1, 220, true));
        assert_eq!(exclusion(&h, Recipe::Lock, 1).anomalies.len(), 1);
        assert_eq!(fencing(&h, Recipe::Lock).anomalies.len(), 1);
    }

    #[test]
    fn a_held_claim_after_expiry_is_an_anomaly() {
        let mut h = History::default();
        h.acqs.push(acq(0, 1, 10, 0));
        h.events.push(expired(1, 30));
        h.claims.push(claim(0, 20, true));
        h.claims.push(claim(0, 40, false));
        assert!(expiry_learned(&h).anomalies.is_empty());
        h.claims.push(claim(0, 45, true));
        assert_eq!(expiry_learned(&h).anomalies.len(), 1);
    }

    #[test]
    fn a_held_claim_after_the_servers_expired_the_session_is_an_anomaly() {
        let mut h = History::default();
        h.acqs.push(acq(0, 1, 10, 0));
        // Frozen from 1 s; the servers expire the session at 7 s; the client, running again
        // at 11 s, claims at once and only then reports the expiry.
        h.server_expiries.push((1, 7_000_000));
        h.claims.push(claim(0, 900_000, true));
        h.events.push(expired(1, 11_000_500));
        assert!(expiry_learned(&h).anomalies.is_empty());
        h.claims.push(claim(0, 11_000_000, true));
        assert_eq!(expiry_learned(&h).anomalies.len(), 1);
        // Within the slack it does not count; an expiry the client never learned of neither.
        h.claims.pop();
        h.claims.push(claim(0, 7_500_000, true));
        assert!(expiry_learned(&h).anomalies.is_empty());
        h.claims.push(claim(0, 11_000_000, true));
        assert_eq!(expiry_learned(&h).anomalies.len(), 1);
        // A grant to the same session after the logged expiry: that expiry never took effect
        // (a stopped leader's), so it does not count.
        h.acqs.push(acq(1, 1, 11, 8_000_000));
        assert!(expiry_learned(&h).anomalies.is_empty());
        h.acqs.pop();
        h.events.clear();
        assert!(expiry_learned(&h).anomalies.is_empty());
    }

    #[test]
    fn counter_bounds() {
        let mut h = History::default();
        let add = |delta, outcome| crate::history::CounterAdd {
            worker: 0,
            delta,
            invoke: 0,
            outcome,
        };
        h.adds.push(add(2, Outcome::Ok(2)));
        h.adds.push(add(3, Outcome::Unknown("lost".into())));
        h.adds.push(add(4, Outcome::NotApplied("no".into())));
        for (v, ok) in [(2, true), (5, true), (1, false), (6, false)] {
            h.counter_final = Some(v);
            assert_eq!(counter(&h).anomalies.is_empty(), ok, "final {v}");
        }
    }
}
