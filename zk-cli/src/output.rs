//! How results are written: human text by default, or one JSON document per
//! command with `--json`. Node data in JSON is a UTF-8 string when it is valid
//! UTF-8, else base64, with an `encoding` field saying which (`null` for null data).

use std::io::{self, IsTerminal, Write};

use serde_json::{json, Map, Value};
use zk_blocking::{Data, Stat, WatchedEvent};

/// Where results go, and in which form.
pub struct Printer {
    json: bool,
    out: Box<dyn Write>,
    /// End raw data with a newline (on a terminal, and in the shell).
    data_newline: bool,
}

impl Printer {
    /// Writes to stdout.
    pub fn stdout(json: bool) -> Printer {
        Printer {
            json,
            out: Box::new(io::stdout()),
            data_newline: io::stdout().is_terminal(),
        }
    }

    /// For the shell: data always ends its line, so the next output starts one.
    pub fn end_data_lines(&mut self) {
        self.data_newline = true;
    }

    /// Whether to write JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// One JSON document on a line.
    pub fn doc(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// A line of text.
    pub fn line(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(s.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Text as it is, with a newline added if it has none at the end.
    pub fn text(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(s.as_bytes())?;
        if !s.is_empty() && !s.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Bytes exactly as they are.
    pub fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)
    }

    /// Node data for a human: the bytes as they are, then a newline if stdout is
    /// a terminal, in the shell, or if `more` follows (so the prompt, or the
    /// Stat, starts a line).
    pub fn data(&mut self, d: &Data, more: bool) -> io::Result<()> {
        self.raw(d)?;
        if (self.data_newline || more) && !d.is_empty() {
            self.raw(b"\n")?;
        }
        Ok(())
    }

    /// A Stat, one `name = value` line per field.
    pub fn stat(&mut self, s: &Stat) -> io::Result<()> {
        for (name, value) in stat_lines(s) {
            self.line(&format!("{name} = {value}"))?;
        }
        Ok(())
    }

    /// Flushes what was written.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The Stat's fields as zkCli names and prints them.
pub fn stat_lines(s: &Stat) -> Vec<(&'static str, String)> {
    vec![
        ("cZxid", format!("{:#x}", s.czxid)),
        ("ctime", format_time(s.ctime)),
        ("mZxid", format!("{:#x}", s.mzxid)),
        ("mtime", format_time(s.mtime)),
        ("pZxid", format!("{:#x}", s.pzxid)),
        ("cversion", s.cversion.to_string()),
        ("dataVersion", s.version.to_string()),
        ("aclVersion", s.aversion.to_string()),
        ("ephemeralOwner", format!("{:#x}", s.ephemeral_owner)),
        ("dataLength", s.data_length.to_string()),
        ("numChildren", s.num_children.to_string()),
    ]
}

/// A Stat as JSON, with the Java client's field names.
pub fn stat_json(s: &Stat) -> Value {
    json!({
        "czxid": s.czxid,
        "mzxid": s.mzxid,
        "pzxid": s.pzxid,
        "ctime": s.ctime,
        "mtime": s.mtime,
        "version": s.version,
        "cversion": s.cversion,
        "aversion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner,
        "dataLength": s.data_length,
        "numChildren": s.num_children,
    })
}

/// Adds `data` and `encoding` for `d` to a JSON object.
pub fn put_data(obj: &mut Map<String, Value>, d: &Data) {
    let (data, encoding) = data_json(d);
    obj.insert("data".into(), data);
    obj.insert("encoding".into(), encoding);
}

/// `(data, encoding)`: `("text", "utf8")`, `("aGk=", "base64")` or `(null, null)`.
pub fn data_json(d: &Data) -> (Value, Value) {
    match d.as_option() {
        None => (Value::Null, Value::Null),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (json!(s), json!("utf8")),
            Err(_) => (json!(base64(b)), json!("base64")),
        },
    }
}

/// A watch event as JSON.
pub fn event_json(e: &WatchedEvent) -> Value {
    json!({ "type": format!("{:?}", e.event_type), "path": e.path })
}

/// A watch event for a human: `NodeDataChanged /path`.
pub fn event_line(e: &WatchedEvent) -> String {
    format!("{:?} {}", e.event_type, e.path)
}

/// Standard base64 with padding.
pub fn base64(b: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Milliseconds since the epoch as UTC, `2024-05-01T12:34:56.789Z`.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
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
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x80]), "//4AgA==");
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_time(1_714_566_896_789), "2024-05-01T12:34:56.789Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn data_forms() {
        assert_eq!(data_json(&Data::null()), (Value::Null, Value::Null));
        assert_eq!(data_json(&Data::new("")), (json!(""), json!("utf8")));
        assert_eq!(data_json(&Data::new("hé")), (json!("hé"), json!("utf8")));
        assert_eq!(
            data_json(&Data::new(vec![0xffu8, 0])),
            (json!("/wA="), json!("base64"))
        );
    }
}
