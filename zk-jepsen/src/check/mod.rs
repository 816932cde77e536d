//! The checks over a recorded [`History`]: each gives how many histories it looked at and
//! the anomalies it found.

pub mod reads;
pub mod recipes;
pub mod register;

use crate::history::History;

/// One check's verdict.
#[derive(Debug)]
pub struct Verdict {
    /// What it checks.
    pub name: &'static str,
    /// Independent histories it looked at (keys, sessions, recipes).
    pub histories: usize,
    /// What it found wrong, one line each.
    pub anomalies: Vec<String>,
    /// Extra facts for the summary line (operations, inconclusive searches).
    pub note: String,
}

impl Verdict {
    /// The summary line.
    pub fn line(&self) -> String {
        format!(
            "{:<4} {:<62} {:>5} histories, {} anomalies{}",
            if self.anomalies.is_empty() {
                "ok"
            } else {
                "FAIL"
            },
            self.name,
            self.histories,
            self.anomalies.len(),
            if self.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.note)
            }
        )
    }
}

/// Every check, in the order they are printed.
pub fn all(h: &History, max_leases: usize) -> Vec<Verdict> {
    vec![
        register::linearizable(h),
        reads::plain_reads(h),
        reads::monotonic(h),
        reads::replicas_agree(h),
        recipes::exclusion(h, crate::history::Recipe::Lock, 1),
        recipes::fencing(h, crate::history::Recipe::Lock),
        recipes::expiry_learned(h),
        recipes::election(h),
        recipes::exclusion(h, crate::history::Recipe::Semaphore, max_leases),
        recipes::counter(h),
    ]
}
