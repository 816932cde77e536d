//! Plain reads and session order, as ZooKeeper documents them: a read is served by the member
//! the session is connected to and may be stale, but a session never sees the ensemble go
//! back ("sequential consistency", "single system image": a client that reconnects is only
//! accepted by a member at least as new as what it has seen). With zxids that means, for each
//! session:
//!
//! * **plain reads**: once the session has seen zxid `S` anywhere (any key), a read of key `k`
//!   cannot return a version of `k` older than an acknowledged write of `k` at a zxid `<= S`;
//!   in particular it sees its own writes;
//! * **monotonic**: the versions of a key that a session sees (its reads and its writes'
//!   results) never go back in zxid.
//!
//! Sessions are told apart by session id: a worker whose session expired starts afresh.

use super::Verdict;
use crate::history::{History, Outcome, RegOp, RegRecord, RegRet};
use std::collections::{BTreeMap, HashMap};

/// Acknowledged writes' zxids per key (creates and sets; their results carry the zxid).
fn write_zxids(h: &History) -> HashMap<u32, Vec<i64>> {
    let mut m: HashMap<u32, Vec<i64>> = HashMap::new();
    for r in &h.regs {
        if let (Outcome::Ok(RegRet::CreateOk | RegRet::SetOk(_)), Some(z)) = (&r.outcome, r.zxid) {
            m.entry(r.key).or_default().push(z);
        }
    }
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

/// Each session's records in the order it made them.
fn sessions(h: &History) -> BTreeMap<(usize, i64), Vec<&RegRecord>> {
    let mut m: BTreeMap<(usize, i64), Vec<&RegRecord>> = BTreeMap::new();
    for r in &h.regs {
        if r.session != 0 && r.worker != crate::history::FINAL_WORKER {
            m.entry((r.worker, r.session)).or_default().push(r);
        }
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.invoke);
    }
    m
}

/// The zxid an ok record shows the session (a read's or a write's mzxid).
fn seen(r: &RegRecord) -> Option<i64> {
    match r.outcome {
        Outcome::Ok(RegRet::Value(Some(_)) | RegRet::CreateOk | RegRet::SetOk(_)) => r.zxid,
        _ => None,
    }
}

/// Plain reads never older than what the session has seen.
pub fn plain_reads(h: &History) -> Verdict {
    let writes = write_zxids(h);
    let sessions = sessions(h);
    let (mut anomalies, mut reads) = (Vec::new(), 0);
    for ((worker, session), records) in &sessions {
        let mut max_seen = i64::MIN;
        for r in records {
            if matches!(r.op, RegOp::Read | RegOp::SyncRead) {
                if let (Outcome::Ok(RegRet::Value(Some((v, _)))), Some(m)) = (&r.outcome, r.zxid) {
                    reads += 1;
                    let missed = writes
                        .get(&r.key)
                        .and_then(|zs| zs.iter().find(|&&z| z > m && z <= max_seen));
                    if let Some(z) = missed {
                        anomalies.push(format!(
                            "worker {worker} session {session:#x}: {:?} of key {} at {} returned {v} (mzxid {m:#x}) although the session had seen zxid {max_seen:#x} and key {} was written at zxid {z:#x}",
                            r.op, r.key, r.invoke, r.key
                        ));
                    }
                }
            }
            if let Some(z) = seen(r) {
                max_seen = max_seen.max(z);
            }
        }
    }
    Verdict {
        name: "plain reads: sequentially consistent per session (zxids)",
        histories: sessions.len(),
        anomalies,
        note: format!("{reads} reads"),
    }
}

/// A session's view of each key never goes back.
pub fn monotonic(h: &History) -> Verdict {
    let sessions = sessions(h);
    let mut anomalies = Vec::new();
    for ((worker, session), records) in &sessions {
        let mut last: HashMap<u32, (i64, u64)> = HashMap::new();
        for r in records {
            let Some(z) = seen(r) else { continue };
            if let Some(&(prev, at)) = last.get(&r.key) {
                if z < prev {
                    anomalies.push(format!(
                        "worker {worker} session {session:#x}: key {} went back from zxid {prev:#x} (at {at}) to {z:#x} ({:?} at {})",
                        r.key, r.op, r.invoke
                    ));
                }
            }
            let e = last.entry(r.key).or_insert((z, r.invoke));
            if z >= e.0 {
                *e = (z, r.invoke);
            }
        }
    }
    Verdict {
        name: "sessions: never go back in zxid, see their own writes",
        histories: sessions.len(),
        anomalies,
        note: String::new(),
    }
}

/// After the quiet period every member, asked after a sync, holds the same value for every
/// key. A difference is the servers' replicas diverging (no client is involved: each member
/// is read by a fresh session of its own).
pub fn replicas_agree(h: &History) -> Verdict {
    /// (member, what it holds) per key.
    type Held = (u64, Option<(u64, i32)>);
    let mut finals: BTreeMap<u32, Vec<Held>> = BTreeMap::new();
    for r in h
        .regs
        .iter()
        .filter(|r| r.worker == crate::history::FINAL_WORKER)
    {
        if let Outcome::Ok(RegRet::Value(v)) = r.outcome {
            let member = (r.process - crate::history::FINAL_PROCESS) >> 32;
            finals.entry(r.key).or_default().push((member, v));
        }
    }
    let anomalies: Vec<String> = finals
        .iter()
        .filter(|(_, vs)| vs.windows(2).any(|w| w[0].1 != w[1].1))
        .map(|(k, vs)| format!("key {k}: members hold {vs:?} (member, (value, version))"))
        .collect();
    Verdict {
        name: "servers: members agree on the final state",
        histories: finals.len(),
        anomalies,
        note: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(op: RegOp, key: u32, t: u64, ret: RegRet, zxid: i64) -> RegRecord {
        RegRecord {
            key,
            process: 1,
            worker: 1,
            session: 7,
            op,
            invoke: t,
            complete: t + 1,
            outcome: Outcome::Ok(ret),
            zxid: Some(zxid),
        }
    }

    #[test]
    fn a_read_older_than_the_sessions_own_write_is_an_anomaly() {
        let mut h = History::default();
        h.regs
            .push(rec(RegOp::Read, 1, 0, RegRet::Value(Some((5, 0))), 10));
        h.regs.push(rec(RegOp::Set(6), 1, 2, RegRet::SetOk(1), 20));
        h.regs
            .push(rec(RegOp::Read, 1, 4, RegRet::Value(Some((6, 1))), 20));
        assert!(plain_reads(&h).anomalies.is_empty());
        assert!(monotonic(&h).anomalies.is_empty());
        // A stale read (served from a cache) after the write.
        h.regs
            .push(rec(RegOp::Read, 1, 6, RegRet::Value(Some((5, 0))), 10));
        assert_eq!(plain_reads(&h).anomalies.len(), 1);
        assert_eq!(monotonic(&h).anomalies.len(), 1);
    }

    #[test]
    fn what_the_session_saw_on_another_key_counts() {
        let mut h = History::default();
        // Someone else wrote key 1 at zxid 20; our session then saw zxid 30 on key 2.
        let mut other = rec(RegOp::Set(9), 1, 0, RegRet::SetOk(1), 20);
        other.session = 8;
        other.worker = 2;
        h.regs.push(other);
        h.regs
            .push(rec(RegOp::Read, 2, 2, RegRet::Value(Some((3, 0))), 30));
        h.regs
            .push(rec(RegOp::Read, 1, 4, RegRet::Value(Some((5, 0))), 10));
        assert_eq!(plain_reads(&h).anomalies.len(), 1);
        // Another session that never saw past zxid 10 may read the old value.
        let mut h2 = History::default();
        h2.regs.push(h.regs[0].clone());
        h2.regs
            .push(rec(RegOp::Read, 1, 4, RegRet::Value(Some((5, 0))), 10));
        assert!(plain_reads(&h2).anomalies.is_empty());
    }
}
