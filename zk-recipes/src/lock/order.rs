//! The order of contenders: kazoo's (sequence numbers as signed integers, for
//! the names a lock waits for) and Curator's (`LockInternals`: every child, by
//! the text after the lock name, compared as Java compares strings).

use zk_client::{Error, Result};

use crate::common::contender_seq;

/// The contender children (matching `patterns`), sorted by sequence number as
/// a signed integer (ties, which ZooKeeper never makes, by name).
pub(crate) fn sorted_contenders(kids: Vec<String>, patterns: &[String]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = kids
        .into_iter()
        .filter_map(|k| contender_seq(&k, patterns).map(|s| (s, k)))
        .collect();
    v.sort();
    v
}

/// Curator's `LockInternals.getSortedChildren`: every child, ordered by the
/// text after the last occurrence of each of `names` in turn
/// (`standardFixForSorting`), compared as Java compares strings (UTF-16 code
/// units; the suffixes are ASCII digits, so bytes compare the same).
pub(crate) fn curator_sorted(kids: Vec<String>, names: &[&str]) -> Vec<String> {
    let mut v: Vec<(String, String)> = kids
        .into_iter()
        .map(|k| {
            let mut key = k.as_str();
            for n in names {
                key = fix_for_sorting(key, n);
            }
            (key.to_string(), k)
        })
        .collect();
    // A stable sort, as Java's `Collections.sort`, on the key alone.
    v.sort_by(|a, b| java_cmp(&a.0, &b.0));
    v.into_iter().map(|(_, k)| k).collect()
}

/// `StandardLockInternalsDriver.standardFixForSorting`.
pub(crate) fn fix_for_sorting<'a>(name: &'a str, lock_name: &str) -> &'a str {
    match name.rfind(lock_name) {
        Some(i) => &name[i + lock_name.len()..],
        None => name,
    }
}

/// Java's `String.compareTo` (UTF-16 code unit order).
pub(crate) fn java_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The sequence number a Curator node ends with (its last 10 digits; 0 if
/// none).
pub(crate) fn curator_seq(name: &str) -> i64 {
    name.len()
        .checked_sub(10)
        .and_then(|i| name.get(i..))
        .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// The sequence number of our own node (the text after our prefix).
pub(super) fn own_seq(node: &str, prefix: &str) -> Result<i64> {
    node.strip_prefix(prefix)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Malformed(format!("lock node {node:?} has no sequence number")))
}
