//! Session configuration: the connect string and every protocol policy knob.

use std::time::Duration;

use bytes::Bytes;

use crate::error::UsageError;
use crate::frame::DEFAULT_MAX_FRAME;
use crate::path::Chroot;

/// Default [`Config::max_outbound`]: 64 MiB.
pub const DEFAULT_MAX_OUTBOUND: usize = 64 << 20;

/// One server address as written in the connect string. Name resolution is the
/// adapter's job; the core only decides which entry to try and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for HostAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What happens after the session expires.
///
/// The default is [`NewSession`](ExpiryPolicy::NewSession), what kazoo and Curator
/// do: the application sees the state go to `Expired` (its ephemerals and watches
/// are gone, every pending request failed with `SessionExpired`) and then
/// `Connecting` again, and the same `Session` goes on with a new session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryPolicy {
    /// Expired is terminal; the caller may call `Session::restart` (the Java
    /// client's behaviour: a new `ZooKeeper` object is needed).
    Terminal,
    /// Report Expired, then open a new session at once (kazoo's and Curator's
    /// behaviour). The default.
    #[default]
    NewSession,
}

/// What happens to requests submitted while no connection is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueuePolicy {
    /// Hold them (up to `queue_limit`) and send them after the reconnect.
    #[default]
    Queue,
    /// Fail them at once with `ZkError::NotConnected`.
    FailFast,
}

/// Backoff after a full unsuccessful pass (round) over the host list. Inside a
/// round the hosts are tried one after another without delay; after the k-th
/// failed round in a row the next attempt waits `base * 2^(k-1)`, at most `max`,
/// plus the jitter.
///
/// The default (100 ms doubling, at most 1 s, 20 % jitter) waits at most 1 s
/// between rounds, like the Java client (which sleeps 1 s once it has tried every
/// server). So a client whose servers refuse connections quickly (an ensemble
/// restarting) tries again at least once a second and is back within about half
/// a second of the ensemble's recovery on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Upper bound on the delay, jitter included.
    pub max: Duration,
    /// Random spread, as a fraction of the delay (0.0 to 1.0): up to this fraction
    /// is added to the delay, except where that would pass `max`: there the delay
    /// is `max` less up to this fraction of `max` (so clients retrying at the cap
    /// still spread out).
    pub jitter: f64,
}

impl Default for Backoff {
    /// 100 ms, doubling per failed round, at most 1 s, jitter 0.2.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.2,
        }
    }
}

/// Everything a [`Session`](crate::session::Session) needs to know up front.
/// Its `Debug` prints neither the resumed session's password nor the credentials.
///
/// Why: start from the connect string, change the few knobs an application
/// cares about, and the session's timers follow from them.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use zk_proto::{Config, ExpiryPolicy, QueuePolicy, Session};
///
/// let mut config = Config::from_connect_string("zk1:2181,zk2:2181/app").unwrap();
/// config.session_timeout = Duration::from_secs(30);
/// config.read_only = true; // accept a read-only server while there is no quorum
/// config.queue_policy = QueuePolicy::FailFast;
/// config.expiry_policy = ExpiryPolicy::Terminal;
/// config.request_timeout = Some(Duration::from_secs(5));
/// config.auth.push(("digest".into(), "alice:secret".into()));
/// // Debug output hides the credentials.
/// assert!(!format!("{config:?}").contains("secret"));
///
/// let now = Instant::now(); // clock-exception: a doc example needs a start instant
/// let session = Session::new(config, now);
/// // Two thirds of the session timeout; per attempt, the timeout over the host count.
/// assert_eq!(session.read_timeout(), Duration::from_secs(20));
/// assert_eq!(session.connect_timeout(), Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct Config {
    /// Servers, in connect-string order.
    pub hosts: Vec<HostAddr>,
    /// Prefix for every path.
    pub chroot: Chroot,
    /// Requested session timeout; the server clamps it.
    pub session_timeout: Duration,
    /// Accept read-only servers.
    pub read_only: bool,
    /// Seed for host shuffling and jitter (adapters seed it from the OS; tests fix it).
    pub seed: u64,
    /// Shuffle the hosts (on by default, as every client does to spread load).
    pub randomize_hosts: bool,
    /// Per-attempt connect (and handshake) timeout. Default: session timeout / number of hosts,
    /// at most 10 s and at least 100 ms.
    pub connect_timeout: Option<Duration>,
    /// Delay schedule after a full pass failed.
    pub backoff: Backoff,
    /// Give up after this many full rounds over the host list in a row in which no
    /// server was reached (kazoo's `connection_retry` `max_tries`): the session then
    /// becomes [`SessionState::Unreachable`](crate::SessionState::Unreachable), a
    /// terminal state. A server is reached when it answers the handshake; that
    /// starts the count again. `None` (the default): keep trying for ever.
    /// `Some(0)` is taken as `Some(1)`: one round is always tried.
    pub connect_max_rounds: Option<u32>,
    /// Requests held while disconnected.
    pub queue_limit: usize,
    /// Hold or fail requests while disconnected.
    pub queue_policy: QueuePolicy,
    /// Terminal or automatically renewed after expiry (default: a new session,
    /// [`ExpiryPolicy::NewSession`]).
    pub expiry_policy: ExpiryPolicy,
    /// A session to resume (id and password), like kazoo's `client_id`.
    pub resume: Option<(i64, Bytes)>,
    /// Credentials sent at each connect (scheme, auth).
    pub auth: Vec<(String, Bytes)>,
    /// SASL authentication run on every connection right after the handshake,
    /// before anything else is sent (kazoo's `sasl_options`). `None` by default.
    pub sasl: Option<crate::sasl::SaslConfig>,
    /// Largest frame (reply) accepted from a server, in bytes after the length prefix.
    /// Default [`DEFAULT_MAX_FRAME`]: the server's `jute.maxbuffer` plus room for a
    /// reply header and Stat, so the largest node a default server accepts can be read.
    ///
    /// A larger reply to the oldest outstanding request completes that request with
    /// [`ZkError::ReplyTooLarge`](crate::ZkError::ReplyTooLarge) and is skipped
    /// without being buffered; the connection stays up. Any other oversized frame
    /// (a notification, a ping, a reply for another xid, a claim over
    /// [`MAX_SKIPPABLE_FRAME`](crate::frame::MAX_SKIPPABLE_FRAME) or a negative
    /// length) drops the connection as malformed.
    pub max_frame: usize,
    /// Bound on the bytes encoded for the connection and not yet taken by
    /// `Session::poll_transmit` (default 64 MiB). While more are waiting,
    /// `Session::submit` fails with [`UsageError::OutboundFull`]; this bounds memory
    /// when the socket write is stuck. (Adapters should take bytes from
    /// `poll_transmit` only as fast as they can write them.)
    pub max_outbound: usize,
    /// How long `close` waits for the server's reply.
    pub close_timeout: Duration,
    /// Fail a request (and drop the connection) when no reply came in this long. Off by default.
    pub request_timeout: Option<Duration>,
    /// Give up on a session once no server was reached for the negotiated timeout while
    /// disconnected (the server has expired it by then). On by default.
    pub client_side_expiry: bool,
    /// Paths (in characters) per SetWatches frame; the Java client uses 128 KiB.
    pub set_watches_batch: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth: Vec<String> = self
            .auth
            .iter()
            .map(|(scheme, _)| format!("{scheme}:<redacted>"))
            .collect();
        f.debug_struct("Config")
            .field("hosts", &self.hosts)
            .field("chroot", &self.chroot)
            .field("session_timeout", &self.session_timeout)
            .field("read_only", &self.read_only)
            .field("seed", &self.seed)
            .field("randomize_hosts", &self.randomize_hosts)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff", &self.backoff)
            .field("connect_max_rounds", &self.connect_max_rounds)
            .field("queue_limit", &self.queue_limit)
            .field("queue_policy", &self.queue_policy)
            .field("expiry_policy", &self.expiry_policy)
            .field(
                "resume",
                &self
                    .resume
                    .as_ref()
                    .map(|(id, _)| format!("{id:#x} (password redacted)")),
            )
            .field("auth", &auth)
            .field("sasl", &self.sasl)
            .field("max_frame", &self.max_frame)
            .field("max_outbound", &self.max_outbound)
            .field("close_timeout", &self.close_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("client_side_expiry", &self.client_side_expiry)
            .field("set_watches_batch", &self.set_watches_batch)
            .finish()
    }
}

impl Config {
    /// A config for the hosts with defaults for everything else.
    pub fn new(hosts: Vec<HostAddr>) -> Config {
        Config {
            hosts,
            chroot: Chroot::none(),
            session_timeout: Duration::from_secs(10),
            read_only: false,
            seed: 0x5eed,
            randomize_hosts: true,
            connect_timeout: None,
            backoff: Backoff::default(),
            connect_max_rounds: None,
            queue_limit: 10_000,
            queue_policy: QueuePolicy::Queue,
            expiry_policy: ExpiryPolicy::NewSession,
            resume: None,
            auth: Vec::new(),
            sasl: None,
            max_frame: DEFAULT_MAX_FRAME,
            max_outbound: DEFAULT_MAX_OUTBOUND,
            close_timeout: Duration::from_secs(2),
            request_timeout: None,
            client_side_expiry: true,
            set_watches_batch: 128 * 1024,
        }
    }

    /// Parses `"h1:2181,h2:2181,[::1]:2181/chroot"` (port defaults to 2181).
    pub fn from_connect_string(s: &str) -> Result<Config, UsageError> {
        let (hosts, chroot) = parse_connect_string(s)?;
        let mut c = Config::new(hosts);
        c.chroot = chroot;
        Ok(c)
    }
}

/// Splits a connect string into hosts and chroot.
///
/// Why: to accept the same connect strings as the Java client and kazoo, and to
/// see the host list and chroot a session will use before starting it.
///
/// ```
/// use zk_proto::config::{parse_connect_string, HostAddr};
/// use zk_proto::{Config, UsageError};
///
/// let (hosts, chroot) = parse_connect_string("zk1:2181, zk2, [::1]:2182/apps/billing").unwrap();
/// assert_eq!(
///     hosts,
///     [
///         HostAddr { host: "zk1".into(), port: 2181 },
///         HostAddr { host: "zk2".into(), port: 2181 }, // the default port
///         HostAddr { host: "::1".into(), port: 2182 },
///     ]
/// );
/// assert_eq!(hosts[2].to_string(), "[::1]:2182");
/// assert_eq!(chroot.root(), Some("/apps/billing"));
///
/// // No suffix (or `/`): no chroot.
/// assert_eq!(parse_connect_string("zk1:2181/").unwrap().1.root(), None);
///
/// // Config::from_connect_string is this plus defaults for everything else.
/// let config = Config::from_connect_string("zk1,zk2/app").unwrap();
/// assert_eq!(config.hosts.len(), 2);
/// assert_eq!(config.chroot.prefix("/x"), "/app/x");
///
/// for bad in ["", "zk1:port", "[::1", "zk1/app/", "zk1:0", "zk 1:2181"] {
///     assert!(matches!(
///         parse_connect_string(bad),
///         Err(UsageError::InvalidConnectString(_) | UsageError::InvalidPath { .. })
///     ));
/// }
/// ```
pub fn parse_connect_string(s: &str) -> Result<(Vec<HostAddr>, Chroot), UsageError> {
    let bad = |why: &str| UsageError::InvalidConnectString(format!("{s:?}: {why}"));
    let (list, chroot) = match s.find('/') {
        Some(i) => (&s[..i], Chroot::new(&s[i..])?),
        None => (s, Chroot::none()),
    };
    let mut hosts = Vec::new();
    for item in list.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(|| bad("unclosed ["))?;
            let host = &rest[..end];
            let after = &rest[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => 2181,
                None => return Err(bad("junk after ]")),
            };
            (host, port)
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None => (item, 2181),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host.contains(char::is_whitespace) {
            return Err(bad("space in a host name"));
        }
        if port == 0 {
            // Nothing listens on port 0: say so now, not after every attempt fails.
            return Err(bad("port 0"));
        }
        hosts.push(HostAddr {
            host: host.to_owned(),
            port,
        });
    }
    if hosts.is_empty() {
        return Err(bad("no hosts"));
    }
    Ok((hosts, chroot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_strings() {
        let (h, c) = parse_connect_string("h1:2181,h2:2182,[::1]:2183/app/x").unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(
            h[1],
            HostAddr {
                host: "h2".into(),
                port: 2182
            }
        );
        assert_eq!(
            h[2],
            HostAddr {
                host: "::1".into(),
                port: 2183
            }
        );
        assert_eq!(c.root(), Some("/app/x"));
        let (h, c) = parse_connect_string("localhost").unwrap();
        assert_eq!(h[0].port, 2181);
        assert_eq!(c.root(), None);
        assert!(parse_connect_string("").is_err());
        assert!(parse_connect_string("h:abc").is_err());
        assert!(parse_connect_string("h:1/bad/").is_err());
        assert!(parse_connect_string("[::1").is_err());
    }
}
