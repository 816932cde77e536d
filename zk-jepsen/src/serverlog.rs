//! The servers' own account of session expiries: the leader logs `Expiring session 0x..,
//! timeout of ..ms exceeded` when its session tracker expires a session. The members run with
//! `-Duser.timezone=UTC`, so a line's time of day maps onto the campaign clock through the wall
//! clock read when the campaign clock started (to the millisecond).

use crate::history::Micros;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;

/// `(session, when)` for every expiry in the log at `path`, in campaign time (`wall_start` is
/// the wall clock when the campaign clock read 0). Lines before the start are left out.
pub fn expiries(path: &Path, wall_start: SystemTime) -> Vec<(i64, Micros)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let start_ms = wall_start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        % DAY_MS;
    text.lines()
        .filter_map(|line| {
            let session = line.split("Expiring session 0x").nth(1)?;
            let hex: String = session
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            let session = u64::from_str_radix(&hex, 16).ok()? as i64;
            let at = time_of_day_ms(line)?;
            // Lines from before the start would land near the end of the day: left out.
            let delta = (at - start_ms).rem_euclid(DAY_MS);
            (delta < DAY_MS / 2).then_some((session, delta as Micros * 1000))
        })
        .collect()
}

/// `HH:MM:SS.mmm` at the start of a log line, in ms since midnight.
fn time_of_day_ms(line: &str) -> Option<i64> {
    let t = line.get(..12)?;
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    if t.as_bytes().get(2) != Some(&b':') || t.as_bytes().get(8) != Some(&b'.') {
        return None;
    }
    Some(((num(0..2)? * 60 + num(3..5)?) * 60 + num(6..8)?) * 1000 + num(9..12)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_expiry_line_maps_onto_the_campaign_clock() {
        let dir = std::env::temp_dir().join(format!("zk-jepsen-serverlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("server.log");
        std::fs::write(
            &log,
            "14:20:30.000 [main] INFO x - started\n\
             14:20:38.646 [SessionTracker] INFO org.apache.zookeeper.server.ZooKeeperServer - Expiring session 0x300000816070005, timeout of 6000ms exceeded\n\
             14:20:20.000 [SessionTracker] INFO org.apache.zookeeper.server.ZooKeeperServer - Expiring session 0x1, timeout of 6000ms exceeded\n",
        )
        .unwrap();
        // The campaign started at 14:20:30.000 UTC on some day.
        let start = UNIX_EPOCH + Duration::from_millis(20_000 * DAY_MS as u64 + 51_630_000);
        assert_eq!(expiries(&log, start), vec![(0x300000816070005, 8_646_000)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
