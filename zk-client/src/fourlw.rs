//! Four-letter words: typed parses of the plain-text answers. The adapter opens
//! the connection, writes the four bytes and reads to EOF.

use std::collections::BTreeMap;

/// What `srvr` (and the first part of `stat`) reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerStats {
    /// The full version line, e.g. `3.8.0-...-1, built on ...`.
    pub version: String,
    /// Parsed major, minor, patch.
    pub version_tuple: Option<(u32, u32, u32)>,
    /// Latency min/avg/max in ms, as printed.
    pub latency: String,
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Open connections.
    pub connections: u64,
    /// Outstanding requests.
    pub outstanding: u64,
    /// Last zxid (hex as printed).
    pub zxid: String,
    /// standalone, leader, follower, observer, read-only.
    pub mode: String,
    /// Number of znodes.
    pub node_count: u64,
    /// Client lines (only from `stat`).
    pub clients: Vec<String>,
}

/// Parses `srvr` or `stat` output.
///
/// ```
/// let text = "Zookeeper version: 3.8.4-debian, built on 2024-01-01\nMode: follower\nNode count: 12\n";
/// let stats = zk_client::fourlw::parse_stat(text);
/// assert_eq!(stats.version_tuple, Some((3, 8, 4)));
/// assert_eq!((stats.mode.as_str(), stats.node_count), ("follower", 12));
/// ```
pub fn parse_stat(text: &str) -> ServerStats {
    let mut s = ServerStats::default();
    let mut in_clients = false;
    for line in text.lines() {
        if line.starts_with("Clients:") {
            in_clients = true;
            continue;
        }
        if in_clients {
            if line.trim().is_empty() {
                in_clients = false;
            } else {
                s.clients.push(line.trim().to_owned());
            }
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        let num = || v.parse::<u64>().unwrap_or(0);
        match k.trim() {
            "Zookeeper version" => {
                s.version = v.to_owned();
                s.version_tuple = parse_version(v);
            }
            "Latency min/avg/max" => s.latency = v.to_owned(),
            "Received" => s.received = num(),
            "Sent" => s.sent = num(),
            "Connections" => s.connections = num(),
            "Outstanding" => s.outstanding = num(),
            "Zxid" => s.zxid = v.to_owned(),
            "Mode" => s.mode = v.to_owned(),
            "Node count" => s.node_count = num(),
            _ => {}
        }
    }
    s
}

/// The server version from a `srvr` answer (what every adapter's `server_version` returns).
pub fn version_of_srvr(text: String) -> crate::Result<ServerVersion> {
    let stats = parse_stat(&text);
    match stats.version_tuple {
        Some((major, minor, patch)) => Ok(ServerVersion {
            major,
            minor,
            patch,
            full: stats.version,
        }),
        None => Err(crate::Error::Malformed(text)),
    }
}

/// A server's version: the numbers, and the full string `srvr` printed
/// (`3.8.0-debian--1, built on ...`), which names the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
    /// The whole version string.
    pub full: String,
}

impl ServerVersion {
    /// (major, minor, patch), for comparisons: `v.tuple() >= (3, 6, 0)`.
    ///
    /// ```
    /// let v = zk_client::fourlw::version_of_srvr("Zookeeper version: 3.9.2-x\n".into()).unwrap();
    /// assert!(v.tuple() >= (3, 6, 0)); // persistent watches are there
    /// ```
    pub fn tuple(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.patch)
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full)
    }
}

/// `3.8.0-...` → (3, 8, 0).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let core = v.split(['-', ',', ' ']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Parses `mntr`: `key<TAB>value` lines.
pub fn parse_mntr(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// `ruok`: whether the answer is `imok`.
pub fn parse_ruok(text: &str) -> bool {
    text.trim() == "imok"
}

/// `isro`: `Some(true)` for a read-only server, `Some(false)` read-write, `None` otherwise.
pub fn parse_isro(text: &str) -> Option<bool> {
    match text.trim() {
        "ro" => Some(true),
        "rw" => Some(false),
        _ => None,
    }
}

/// Whether `cmd` is a four-letter word the client may send (exactly 4 ASCII letters).
pub fn valid_command(cmd: &str) -> bool {
    cmd.len() == 4 && cmd.bytes().all(|b| b.is_ascii_lowercase())
}

/// [`valid_command`] as the adapters report it: `Error::InvalidArgument` naming `cmd`.
pub fn check_command(cmd: &str) -> crate::Result<()> {
    if valid_command(cmd) {
        Ok(())
    } else {
        Err(crate::Error::InvalidArgument(format!(
            "not a four-letter word: {cmd:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srvr() {
        let t = "Zookeeper version: 3.8.0-11+deb12u2-1, built on 2023-01-01 00:00 UTC\nLatency min/avg/max: 0/0.5/3\nReceived: 12\nSent: 11\nConnections: 1\nOutstanding: 0\nZxid: 0x1a\nMode: standalone\nNode count: 5\n";
        let s = parse_stat(t);
        assert_eq!(s.version_tuple, Some((3, 8, 0)));
        assert_eq!(s.mode, "standalone");
        assert_eq!(s.node_count, 5);
        assert_eq!(s.received, 12);
        assert_eq!(
            parse_mntr("zk_version\t3.8.0\nzk_avg_latency\t0\n")["zk_version"],
            "3.8.0"
        );
        assert!(parse_ruok("imok"));
        assert_eq!(parse_isro("ro"), Some(true));
        assert!(!valid_command("ruok\n"));
    }
}
