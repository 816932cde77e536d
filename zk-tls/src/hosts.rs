//! TLS settings per server: one default and overrides for named hosts.
//!
//! An ensemble is not always uniform. While a cluster moves to its secure port,
//! some members serve TLS and some do not yet; members in two data centres may
//! carry certificates from two CAs, or one member sits behind a load balancer
//! whose certificate names something else. [`TlsHosts`] says, per host, whether
//! the connection is TLS and with which options; the adapters' `TlsConnector`s
//! look each dialled host up in it.
//!
//! The connect string can say it too, host by host, with a scheme prefix:
//! `tls://zk1:2281,tcp://zk2:2181,zk3:2281/app` (`tls://`: TLS with the given
//! options; `tcp://`: plain; no prefix: the default). [`TlsHosts::parse`] splits
//! such a string into the plain connect string the `ClientBuilder` takes and the
//! per-host table.

use std::fmt;

use crate::{TlsConfig, TlsError, TlsOptions};

/// ZooKeeper's client port when a connect string names none.
const DEFAULT_PORT: u16 = 2181;

/// Which hosts get TLS, and with which options. Built once (PEM files are read
/// when an entry is added), then cloned into a connector.
#[derive(Clone)]
pub struct TlsHosts {
    default: Option<TlsConfig>,
    /// `(host, port)` (host without IPv6 brackets) and its settings; `None`: plain TCP.
    per_host: Vec<((String, u16), Option<TlsConfig>)>,
}

impl fmt::Debug for TlsHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        m.entry(&"*", &self.default.as_ref().map(TlsConfig::options));
        for ((h, p), c) in &self.per_host {
            m.entry(
                &format_args!("{h}:{p}"),
                &c.as_ref().map(TlsConfig::options),
            );
        }
        m.finish()
    }
}

impl TlsHosts {
    /// TLS with `opts` for every host not named otherwise.
    pub fn new(opts: &TlsOptions) -> Result<TlsHosts, TlsError> {
        Ok(TlsHosts::from_config(TlsConfig::new(opts)?))
    }

    /// TLS with a built configuration for every host not named otherwise.
    pub fn from_config(config: TlsConfig) -> TlsHosts {
        TlsHosts {
            default: Some(config),
            per_host: Vec::new(),
        }
    }

    /// Plain TCP for every host not named otherwise (TLS only where an entry says).
    pub fn plain_by_default() -> TlsHosts {
        TlsHosts {
            default: None,
            per_host: Vec::new(),
        }
    }

    /// TLS with `opts` for `host` (`"zk1:2281"`; the port is 2181 if left out).
    /// A later entry for the same host replaces an earlier one.
    pub fn host(self, host: &str, opts: &TlsOptions) -> Result<TlsHosts, TlsError> {
        let config = TlsConfig::new(opts)?;
        self.entry(host, Some(config))
    }

    /// Plain TCP for `host`.
    pub fn plain_host(self, host: &str) -> Result<TlsHosts, TlsError> {
        self.entry(host, None)
    }

    fn entry(mut self, host: &str, config: Option<TlsConfig>) -> Result<TlsHosts, TlsError> {
        let key = host_key(host)?;
        self.per_host.retain(|(k, _)| *k != key);
        self.per_host.push((key, config));
        Ok(self)
    }

    /// Splits a connect string whose hosts may carry `tls://` or `tcp://` into the
    /// plain connect string (chroot kept) and the table: `tls://` hosts get `opts`,
    /// `tcp://` hosts plain TCP, the others `opts` if `tls_by_default`, else plain.
    ///
    /// ```no_run
    /// use zk_tls::{TlsHosts, TlsOptions};
    /// let opts = TlsOptions::new().ca_file("/etc/zookeeper/ca.pem");
    /// let (hosts, tls) =
    ///     TlsHosts::parse("tls://zk1:2281,tcp://zk2:2181,zk3:2281/app", &opts, true).unwrap();
    /// assert_eq!(hosts, "zk1:2281,zk2:2181,zk3:2281/app");
    /// assert!(tls.for_host("zk1", 2281).is_some());
    /// assert!(tls.for_host("zk2", 2181).is_none()); // plain
    /// assert!(tls.for_host("zk3", 2281).is_some()); // the default
    /// ```
    pub fn parse(
        connect_string: &str,
        opts: &TlsOptions,
        tls_by_default: bool,
    ) -> Result<(String, TlsHosts), TlsError> {
        let config = TlsConfig::new(opts)?;
        let mut table = if tls_by_default {
            TlsHosts::from_config(config.clone())
        } else {
            TlsHosts::plain_by_default()
        };
        let mut plain = Vec::new();
        for part in connect_string.split(',') {
            let part = part.trim();
            let (scheme, rest) = match part.find("://") {
                Some(i) => (Some(part[..i].to_ascii_lowercase()), &part[i + 3..]),
                None => (None, part),
            };
            // The chroot follows the last host: `zk3:2281/app`.
            let host = rest.split('/').next().unwrap_or(rest);
            match scheme.as_deref() {
                None => {}
                Some("tls") => table = table.entry(host, Some(config.clone()))?,
                Some("tcp") => table = table.entry(host, None)?,
                Some(other) => {
                    return Err(TlsError::Config(format!(
                        "unknown scheme {other}:// in the connect string (tls:// or tcp://)"
                    )))
                }
            }
            plain.push(rest);
        }
        Ok((plain.join(","), table))
    }

    /// The TLS settings for a dialled host, or `None` for plain TCP.
    pub fn for_host(&self, host: &str, port: u16) -> Option<&TlsConfig> {
        let host = unbracket(host);
        match self
            .per_host
            .iter()
            .find(|((h, p), _)| *p == port && h.eq_ignore_ascii_case(host))
        {
            Some((_, c)) => c.as_ref(),
            None => self.default.as_ref(),
        }
    }
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn host_key(s: &str) -> Result<(String, u16), TlsError> {
    let bad = || TlsError::Config(format!("not a host or host:port: {s:?}"));
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // [v6] or [v6]:port
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match s.rsplit_once(':') {
            // More than one ':' without brackets: a bare IPv6 address.
            Some((h, _)) if h.contains(':') => (s, None),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => DEFAULT_PORT,
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(host_key("zk1:2281").unwrap(), ("zk1".into(), 2281));
        assert_eq!(host_key("zk1").unwrap(), ("zk1".into(), 2181));
        assert_eq!(host_key("[::1]:2281").unwrap(), ("::1".into(), 2281));
        assert_eq!(host_key("[::1]").unwrap(), ("::1".into(), 2181));
        assert_eq!(host_key("::1").unwrap(), ("::1".into(), 2181));
        assert!(host_key("zk1:port").is_err());
        assert!(host_key(":2181").is_err());
        assert!(host_key("[::1]x").is_err());
    }

    #[test]
    fn entries_override_the_default_and_each_other() {
        let t = TlsHosts::plain_by_default()
            .plain_host("a:1")
            .unwrap()
            .plain_host("A:1")
            .unwrap();
        assert_eq!(t.per_host.len(), 1, "same host, case aside: one entry");
        assert!(t.for_host("b", 1).is_none());
        assert!(t.for_host("[::1]", 2181).is_none());
    }

    #[test]
    fn unknown_scheme_is_an_error() {
        let opts = TlsOptions::new().danger_accept_invalid_certs_for_tests();
        let e = TlsHosts::parse("ssl://zk1:2281", &opts, false).unwrap_err();
        assert!(e.to_string().contains("ssl://"), "{e}");
        let (plain, t) = TlsHosts::parse("zk1:2181,tls://[::1]:2281/x", &opts, false).unwrap();
        assert_eq!(plain, "zk1:2181,[::1]:2281/x");
        assert!(t.for_host("zk1", 2181).is_none());
        assert!(t.for_host("::1", 2281).is_some());
        assert!(t.for_host("[::1]", 2281).is_some());
    }
}
