//! [`NonBlockingLease`] and [`MultiNonBlockingLease`]: kazoo's time-bounded
//! leases, byte for byte (the JSON `lease_holder` node and its date format).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::{join, retrying};
use crate::lock::Lock;

const VERSION: i64 = 1;
const HOLDER: &str = "lease_holder";

/// The host name (kazoo's default identity is `socket.gethostname()`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A lease obtained, or not, by [`NonBlockingLease::obtain`].
///
/// kazoo's `NonBlockingLease`: a lease on `path` for `duration`, obtained only
/// if nobody else holds an unexpired one; it never waits for one to expire and
/// cannot be released (it expires).
///
/// # Layout (kazoo 2.11)
///
/// * `<path>` persistent; `<path>/lease_holder` **persistent** (it outlives
///   its holder until the lease ends), its data UTF-8 JSON exactly as Python's
///   `json.dumps` writes it: `{"version": 1, "holder": "<identity>", "end":
///   "2026-11-24T17:45:33"}` (keys in that order, `", "` and `": "`,
///   non-ASCII as `\uXXXX`), `end` the **naive UTC** time `%Y-%m-%dT%H:%M:%S`
///   (no fraction, no zone).
/// * The decision is made under a kazoo [`Lock`] on `<path>` itself (contender
///   nodes `<hex>__lock__<seq>` next to `lease_holder`), whose identifier is the
///   lease identity.
///
/// Under the lock: a `lease_holder` of another version means "give up" (a
/// newer format takes over); one held by another identity that has not ended
/// means "not obtained"; otherwise (ended, or ours: renewal) it is replaced by
/// one ending `now + duration`. Clocks of all parties must roughly agree (kazoo
/// says the same); [`obtain_at`](NonBlockingLease::obtain_at) takes the time
/// explicitly.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::NonBlockingLease;
/// let lease = NonBlockingLease::obtain(&zk, "/app/cron", Duration::from_secs(60), Some("host-a")).await?;
/// if lease.obtained() {
///     // run the job: nobody else will for the next minute
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "check obtained()"]
pub struct NonBlockingLease {
    obtained: bool,
    holder: Option<String>,
    end: Option<SystemTime>,
}

impl NonBlockingLease {
    /// Tries to obtain the lease on `path` for `duration` as `identifier`
    /// (`None`: the host name), at the system clock's time.
    #[allow(clippy::disallowed_methods)]
    pub async fn obtain(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
    ) -> Result<NonBlockingLease> {
        Self::obtain_with(client, path, duration, identifier, &SystemTime::now).await
    }

    /// [`obtain`](NonBlockingLease::obtain) with `now` as the current time
    /// (kazoo's `utcnow` parameter).
    pub async fn obtain_at(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
        now: SystemTime,
    ) -> Result<NonBlockingLease> {
        Self::obtain_with(client, path, duration, identifier, &move || now).await
    }

    /// The clock is read once the lease's lock is held, as kazoo does: a wait
    /// for the lock must not shorten the lease being written, nor let an
    /// expired one look alive.
    async fn obtain_with(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
        clock: &(dyn Fn() -> SystemTime + Sync),
    ) -> Result<NonBlockingLease> {
        zk_proto::path::validate_path(path, false)?;
        let ident = identifier.map_or_else(hostname, str::to_owned);
        retrying(client, || attempt(client, path, duration, &ident, clock)).await
    }

    /// [`obtain`](NonBlockingLease::obtain) from a thread.
    pub fn obtain_blocking(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
    ) -> Result<NonBlockingLease> {
        zk_client::blocking::block_on(Self::obtain(client, path, duration, identifier), None)
            .unwrap_or(Err(Error::Timeout))
    }

    /// Whether the lease was obtained (kazoo's `bool(lease)`).
    pub fn obtained(&self) -> bool {
        self.obtained
    }

    /// Who holds the lease now: us if obtained, else the holder found (if
    /// its record could be read).
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// When the holder's lease ends (whole seconds, UTC).
    pub fn end(&self) -> Option<SystemTime> {
        self.end
    }
}

async fn attempt(
    client: &Client,
    path: &str,
    duration: Duration,
    ident: &str,
    clock: &(dyn Fn() -> SystemTime + Sync),
) -> Result<NonBlockingLease> {
    client.ensure_path(path).await?;
    let lock = Lock::new(client, path, ident)?;
    let guard = lock.acquire().await?;
    let r = decide(client, path, duration, ident, clock()).await;
    let _ = guard.release().await;
    r
}

async fn decide(
    client: &Client,
    path: &str,
    duration: Duration,
    ident: &str,
    now: SystemTime,
) -> Result<NonBlockingLease> {
    let holder_path = join(path, HOLDER);
    match client.get_data(&holder_path).await {
        Ok((raw, _)) => {
            let rec = Record::decode(&raw)?;
            if rec.version != Some(VERSION as f64) {
                return Ok(NonBlockingLease {
                    obtained: false,
                    holder: rec.holder,
                    end: None,
                });
            }
            let end = rec
                .end
                .as_deref()
                .and_then(parse_time)
                .ok_or_else(|| Error::Malformed(format!("lease end {:?}", rec.end)))?;
            if rec.holder.as_deref() != Some(ident) && now < end {
                return Ok(NonBlockingLease {
                    obtained: false,
                    holder: rec.holder,
                    end: Some(end),
                });
            }
            match client.delete(&holder_path, None).await {
                Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Server(ErrorCode::NoNode)) => {}
        Err(e) => return Err(e),
    }
    let end = format_time(now + duration);
    let data = encode(ident, &end);
    match client
        .create(&holder_path, data.as_bytes(), CreateMode::Persistent)
        .await
    {
        Ok(_) => {}
        // Ours from an earlier try whose answer was lost.
        Err(Error::Server(ErrorCode::NodeExists)) => {
            let (raw, _) = client.get_data(&holder_path).await?;
            if raw[..] != *data.as_bytes() {
                return Err(Error::Server(ErrorCode::NodeExists));
            }
        }
        Err(e) => return Err(e),
    }
    Ok(NonBlockingLease {
        obtained: true,
        holder: Some(ident.to_owned()),
        end: parse_time(&end),
    })
}

/// kazoo's `MultiNonBlockingLease`: tries `<path>/0`, `<path>/1`, ...
/// `<path>/<count-1>` in order and stops at the first lease obtained, so at
/// most `count` holders at a time.
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// let l = zk_recipes::MultiNonBlockingLease::obtain_blocking(zk, 3, "/app/slots", Duration::from_secs(30), None)?;
/// if let Some(slot) = l.slot() { println!("slot {slot}"); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "check obtained()"]
pub struct MultiNonBlockingLease {
    slot: Option<usize>,
}

impl MultiNonBlockingLease {
    /// Tries the `count` leases under `path` in order.
    #[allow(clippy::disallowed_methods)]
    pub async fn obtain(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
    ) -> Result<MultiNonBlockingLease> {
        Self::obtain_with(client, count, path, duration, identifier, &SystemTime::now).await
    }

    /// [`obtain`](MultiNonBlockingLease::obtain) at the time `now`.
    pub async fn obtain_at(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
        now: SystemTime,
    ) -> Result<MultiNonBlockingLease> {
        Self::obtain_with(client, count, path, duration, identifier, &move || now).await
    }

    async fn obtain_with(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
        clock: &(dyn Fn() -> SystemTime + Sync),
    ) -> Result<MultiNonBlockingLease> {
        for n in 0..count {
            let l = NonBlockingLease::obtain_with(
                client,
                &format!("{path}/{n}"),
                duration,
                identifier,
                clock,
            )
            .await?;
            if l.obtained() {
                return Ok(MultiNonBlockingLease { slot: Some(n) });
            }
        }
        Ok(MultiNonBlockingLease { slot: None })
    }

    /// [`obtain`](MultiNonBlockingLease::obtain) from a thread.
    pub fn obtain_blocking(
        client: &Client,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: Option<&str>,
    ) -> Result<MultiNonBlockingLease> {
        zk_client::blocking::block_on(
            Self::obtain(client, count, path, duration, identifier),
            None,
        )
        .unwrap_or(Err(Error::Timeout))
    }

    /// Whether one of the leases was obtained.
    pub fn obtained(&self) -> bool {
        self.slot.is_some()
    }

    /// Which one (`<path>/<slot>`).
    pub fn slot(&self) -> Option<usize> {
        self.slot
    }
}

// ------------------------------------------------------------------ the record

/// Python's `json.dumps({"version": 1, "holder": ident, "end": end})`.
fn encode(ident: &str, end: &str) -> String {
    format!(
        "{{\"version\": {VERSION}, \"holder\": {}, \"end\": {}}}",
        json_str(ident),
        json_str(end)
    )
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    o.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The fields of a `lease_holder` record we need.
#[derive(Debug, Default, PartialEq)]
struct Record {
    version: Option<f64>,
    holder: Option<String>,
    end: Option<String>,
}

impl Record {
    fn decode(raw: &[u8]) -> Result<Record> {
        let bad = || Error::Malformed(format!("lease record {:?}", String::from_utf8_lossy(raw)));
        let text = std::str::from_utf8(raw).map_err(|_| bad())?;
        let mut p = Json {
            s: text.as_bytes(),
            i: 0,
        };
        let mut rec = Record::default();
        p.ws();
        p.eat(b'{').ok_or_else(bad)?;
        p.ws();
        if p.peek() == Some(b'}') {
            return Ok(rec);
        }
        loop {
            p.ws();
            let key = p.string().ok_or_else(bad)?;
            p.ws();
            p.eat(b':').ok_or_else(bad)?;
            p.ws();
            match p.peek() {
                Some(b'"') => {
                    let v = p.string().ok_or_else(bad)?;
                    match key.as_str() {
                        "holder" => rec.holder = Some(v),
                        "end" => rec.end = Some(v),
                        _ => {}
                    }
                }
                _ => {
                    let v = p.scalar().ok_or_else(bad)?;
                    if key == "version" {
                        rec.version = v.parse().ok();
                    }
                }
            }
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(rec),
                _ => return Err(bad()),
            }
        }
    }
}

/// Just enough JSON for a flat object of strings and scalars.
struct Json<'a> {
    s: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn scalar(&mut self) -> Option<String> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if !b",} \t\r\n".contains(&c)) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.next()? {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let ch = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xd800) << 10) + (lo.checked_sub(0xdc00)?)
                            } else {
                                hi
                            };
                            char::from_u32(cp)?
                        }
                        _ => return None,
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                c => out.push(c),
            }
        }
    }
}

// ------------------------------------------------------------------ dates

/// `%Y-%m-%dT%H:%M:%S` of a UTC time (seconds truncated, as strftime does).
fn format_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_else(|e| -(e.duration().as_secs_f64().ceil() as i64));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The UTC time of `%Y-%m-%dT%H:%M:%S` text (strptime's rules: 1 or 2 digit
/// fields after the year).
fn parse_time(s: &str) -> Option<SystemTime> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let mut t = time.splitn(3, ':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 61 {
        return None;
    }
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_like_strftime() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_542_333) + Duration::from_millis(999);
        assert_eq!(format_time(t), "2026-11-24T17:45:33");
        assert_eq!(
            parse_time("2026-11-24T17:45:33"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_542_333))
        );
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00"
        );
        for secs in [
            0u64,
            59,
            86_399,
            951_868_799,
            4_102_444_800,
            253_402_300_799,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_time(&format_time(t)), Some(t), "{secs}");
        }
        assert_eq!(parse_time("2026-13-01T00:00:00"), None);
        assert_eq!(parse_time("2026-11-24 17:45:33"), None);
    }

    #[test]
    fn records_like_json_dumps() {
        assert_eq!(
            encode("lease-holder", "2026-11-24T17:45:33"),
            r#"{"version": 1, "holder": "lease-holder", "end": "2026-11-24T17:45:33"}"#
        );
        assert_eq!(json_str("a\"b\\c\né😀"), r#""a\"b\\c\n\u00e9\ud83d\ude00""#);
        let r = Record::decode(encode("hé😀\"x", "2026-01-02T03:04:05").as_bytes()).unwrap();
        assert_eq!(
            r,
            Record {
                version: Some(1.0),
                holder: Some("hé😀\"x".into()),
                end: Some("2026-01-02T03:04:05".into())
            }
        );
        let r = Record::decode(br#"{"end":"x","version":2.0,"holder":"h"}"#).unwrap();
        assert_eq!(r.version, Some(2.0));
        assert!(Record::decode(b"nope").is_err());
    }
}
