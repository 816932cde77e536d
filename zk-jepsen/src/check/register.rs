//! Per-key linearizability of writes, compare-and-sets, creates, deletes and reads after
//! `sync`, with stateright's `LinearizabilityTester` over a model of a znode (value and data
//! version). Keys are independent, so each is its own small history. Plain reads are not in
//! it: ZooKeeper serves them from the member the session is on, which may lag (see
//! [`reads`](super::reads)).

use super::Verdict;
use crate::history::{History, Outcome, RegOp, RegRecord, RegRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Search steps allowed per key before the key is reported inconclusive (the tester's search
/// is exhaustive; a key's history is kept small so this is rarely reached).
pub const STEP_BUDGET: u64 = 4_000_000;

/// A znode as a register: its value and data version, or absent. `steps` counts the search's
/// steps across every clone, to bound it.
#[derive(Clone, Debug)]
pub struct Znode {
    node: Option<(u64, i32)>,
    steps: Arc<AtomicU64>,
}

impl Znode {
    /// An absent node, with a fresh step count.
    pub fn absent() -> Znode {
        Znode {
            node: None,
            steps: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl SequentialSpec for Znode {
    type Op = RegOp;
    type Ret = RegRet;

    fn invoke(&mut self, op: &RegOp) -> RegRet {
        match (op, self.node) {
            (RegOp::Read | RegOp::SyncRead, node) => RegRet::Value(node),
            (RegOp::Create(_), Some(_)) => RegRet::Exists,
            (RegOp::Create(v), None) => {
                self.node = Some((*v, 0));
                RegRet::CreateOk
            }
            (RegOp::Set(_) | RegOp::Cas(..) | RegOp::Delete(_), None) => RegRet::NoNode,
            (RegOp::Set(v), Some((_, version))) => {
                self.node = Some((*v, version + 1));
                RegRet::SetOk(version + 1)
            }
            (RegOp::Cas(v, expected), Some((_, version))) => {
                if *expected != version {
                    RegRet::BadVersion
                } else {
                    self.node = Some((*v, version + 1));
                    RegRet::SetOk(version + 1)
                }
            }
            (RegOp::Delete(Some(expected)), Some((_, version))) if *expected != version => {
                RegRet::BadVersion
            }
            (RegOp::Delete(_), Some(_)) => {
                self.node = None;
                RegRet::DeleteOk
            }
        }
    }

    fn is_valid_step(&mut self, op: &RegOp, ret: &RegRet) -> bool {
        if self.steps.fetch_add(1, Ordering::Relaxed) >= STEP_BUDGET {
            return false;
        }
        &self.invoke(op) == ret
    }
}

/// The verdict on one key's history.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable,
    /// The search ran out of steps.
    Inconclusive,
}

/// Checks one key's records (plain reads and operations that certainly did not happen are
/// left out; unknown ones stay in flight for ever, so they may or may not take effect).
pub fn check_key(records: &[&RegRecord]) -> KeyVerdict {
    enum Ev<'a> {
        Invoke(&'a RegRecord),
        Return(&'a RegRecord, &'a RegRet),
    }
    let mut events: Vec<(u64, u8, Ev)> = Vec::new();
    for r in records {
        if r.op == RegOp::Read {
            continue;
        }
        match &r.outcome {
            Outcome::NotApplied(_) => {}
            Outcome::Unknown(_) => events.push((r.invoke, 0, Ev::Invoke(r))),
            Outcome::Ok(ret) => {
                events.push((r.invoke, 0, Ev::Invoke(r)));
                events.push((r.complete, 1, Ev::Return(r, ret)));
            }
        }
    }
    // Invocations before returns at the same instant: such operations count as concurrent.
    events.sort_by_key(|(t, kind, _)| (*t, *kind));
    let init = Znode::absent();
    let steps = init.steps.clone();
    let mut tester = LinearizabilityTester::new(init);
    for (_, _, ev) in &events {
        let r = match ev {
            Ev::Invoke(r) => tester.on_invoke(r.process, r.op.clone()).map(|_| ()),
            Ev::Return(r, ret) => tester.on_return(r.process, (*ret).clone()).map(|_| ()),
        };
        if let Err(e) = r {
            // A malformed history is the recorder's bug; say so rather than pass.
            eprintln!("jepsen: invalid history: {e}");
            return KeyVerdict::NotLinearizable;
        }
    }
    if tester.is_consistent() {
        KeyVerdict::Linearizable
    } else if steps.load(Ordering::Relaxed) >= STEP_BUDGET {
        KeyVerdict::Inconclusive
    } else {
        KeyVerdict::NotLinearizable
    }
}

/// Every key, each on its own.
pub fn linearizable(h: &History) -> Verdict {
    let mut by_key: BTreeMap<u32, Vec<&RegRecord>> = BTreeMap::new();
    for r in &h.regs {
        by_key.entry(r.key).or_default().push(r);
    }
    let (mut anomalies, mut inconclusive, mut ops) = (Vec::new(), 0, 0);
    for (key, records) in &by_key {
        ops += records.len();
        match check_key(records) {
            KeyVerdict::Linearizable => {}
            KeyVerdict::Inconclusive => inconclusive += 1,
            KeyVerdict::NotLinearizable => anomalies.push(format!(
                "key {key}: no linearization of its {} operations (grep 'reg key={key} ' in the history)",
                records.len()
            )),
        }
    }
    Verdict {
        name: "registers: writes, CAS, create/delete, sync reads linearizable",
        histories: by_key.len(),
        anomalies,
        note: format!("{ops} operations, {inconclusive} keys inconclusive"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        process: u64,
        op: RegOp,
        invoke: u64,
        complete: u64,
        outcome: Outcome<RegRet>,
    ) -> RegRecord {
        RegRecord {
            key: 0,
            process,
            worker: process as usize,
            session: 1,
            op,
            invoke,
            complete,
            outcome,
            zxid: None,
        }
    }

    #[test]
    fn a_read_after_an_acknowledged_write_must_see_it() {
        let w = rec(1, RegOp::Create(5), 0, 10, Outcome::Ok(RegRet::CreateOk));
        let good = rec(
            2,
            RegOp::SyncRead,
            20,
            30,
            Outcome::Ok(RegRet::Value(Some((5, 0)))),
        );
        let stale = rec(2, RegOp::SyncRead, 20, 30, Outcome::Ok(RegRet::Value(None)));
        assert_eq!(check_key(&[&w, &good]), KeyVerdict::Linearizable);
        assert_eq!(check_key(&[&w, &stale]), KeyVerdict::NotLinearizable);
        // Overlapping, the stale read may come first.
        let early = rec(2, RegOp::SyncRead, 5, 30, Outcome::Ok(RegRet::Value(None)));
        assert_eq!(check_key(&[&w, &early]), KeyVerdict::Linearizable);
    }

    #[test]
    fn unknown_writes_may_or_may_not_happen_and_failed_ones_do_not() {
        let c = rec(1, RegOp::Create(1), 0, 1, Outcome::Ok(RegRet::CreateOk));
        let u = rec(
            2,
            RegOp::Set(7),
            2,
            3,
            Outcome::Unknown("ConnectionLoss".into()),
        );
        let n = rec(
            3,
            RegOp::Set(8),
            2,
            3,
            Outcome::NotApplied("NotConnected".into()),
        );
        let saw7 = rec(
            4,
            RegOp::SyncRead,
            10,
            11,
            Outcome::Ok(RegRet::Value(Some((7, 1)))),
        );
        let saw1 = rec(
            4,
            RegOp::SyncRead,
            10,
            11,
            Outcome::Ok(RegRet::Value(Some((1, 0)))),
        );
        let saw8 = rec(
            4,
            RegOp::SyncRead,
            10,
            11,
            Outcome::Ok(RegRet::Value(Some((8, 1)))),
        );
        assert_eq!(check_key(&[&c, &u, &n, &saw7]), KeyVerdict::Linearizable);
        assert_eq!(check_key(&[&c, &u, &n, &saw1]), KeyVerdict::Linearizable);
        assert_eq!(check_key(&[&c, &u, &n, &saw8]), KeyVerdict::NotLinearizable);
    }

    #[test]
    fn compare_and_set_follows_versions() {
        let c = rec(1, RegOp::Create(1), 0, 1, Outcome::Ok(RegRet::CreateOk));
        let cas_ok = rec(1, RegOp::Cas(2, 0), 2, 3, Outcome::Ok(RegRet::SetOk(1)));
        let cas_again = rec(2, RegOp::Cas(3, 0), 4, 5, Outcome::Ok(RegRet::SetOk(1)));
        let cas_bad = rec(2, RegOp::Cas(3, 0), 4, 5, Outcome::Ok(RegRet::BadVersion));
        assert_eq!(
            check_key(&[&c, &cas_ok, &cas_bad]),
            KeyVerdict::Linearizable
        );
        // Two compare-and-sets from version 0, one after the other, cannot both succeed.
        assert_eq!(
            check_key(&[&c, &cas_ok, &cas_again]),
            KeyVerdict::NotLinearizable
        );
    }
}
