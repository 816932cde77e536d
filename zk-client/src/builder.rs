//! Connection options with kazoo's names and defaults.

use std::time::Duration;

use bytes::Bytes;
use zk_proto::config::Backoff;
use zk_proto::{Acl, Config, ExpiryPolicy, QueuePolicy, Session};

use crate::client::{Client, ClientOptions};
use crate::core::Shared;
use crate::error::Result;

/// Builds a client. Every adapter's `connect` takes one.
///
/// The options have kazoo's names where kazoo has them (`KazooClient(hosts=...,
/// timeout=..., read_only=..., auth_data=..., connection_retry=...,
/// command_retry=..., default_acl=...)`); building touches no network.
///
/// ```
/// use std::time::Duration;
/// use zk_client::{ClientBuilder, ExpiryPolicy, QueuePolicy};
/// let builder = ClientBuilder::new("zk1:2181,zk2:2181,zk3:2181/app")
///     .session_timeout(Duration::from_secs(30))         // kazoo's timeout=30
///     .auth("digest", "alice:secret")                    // auth_data=[("digest", ...)]
///     .connection_retry(Duration::from_millis(100), Duration::from_secs(5), 0.3)
///     .queue_policy(QueuePolicy::FailFast, 0)            // fail calls made while disconnected
///     .expiry_policy(ExpiryPolicy::NewSession)           // the default, as in kazoo
///     .connect_deadline(Duration::from_secs(5));         // connect() gives up after 5 s
/// let config = builder.config().unwrap();
/// assert_eq!(config.hosts.len(), 3);
/// assert_eq!(config.chroot.root(), Some("/app"));
/// assert_eq!(config.session_timeout, Duration::from_secs(30));
/// // A bad connect string is refused before anything is sent:
/// assert!(matches!(
///     ClientBuilder::new("zk1:notaport").config(),
///     Err(zk_client::Error::InvalidArgument(_))
/// ));
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect_string: String,
    config_edits: Vec<ConfigEdit>,
    opts: ClientOptions,
    /// How long `connect` waits for a session before giving up.
    pub connect_deadline: Duration,
}

#[derive(Clone)]
enum ConfigEdit {
    SessionTimeout(Duration),
    Resume(i64, Bytes),
    Auth(String, Bytes),
    ReadOnly(bool),
    Randomize(bool),
    ConnectTimeout(Duration),
    Backoff(Backoff),
    Queue(QueuePolicy, usize),
    Expiry(ExpiryPolicy),
    RequestTimeout(Duration),
    Seed(u64),
    MaxFrame(usize),
    MaxRounds(Option<u32>),
    Sasl(zk_proto::sasl::SaslConfig),
}

/// Secrets (a resumed session's password, credentials) are not printed.
impl std::fmt::Debug for ConfigEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigEdit::SessionTimeout(t) => f.debug_tuple("SessionTimeout").field(t).finish(),
            ConfigEdit::Resume(id, _) => write!(f, "Resume({id:#x}, <redacted>)"),
            ConfigEdit::Auth(scheme, _) => write!(f, "Auth({scheme:?}, <redacted>)"),
            ConfigEdit::ReadOnly(b) => f.debug_tuple("ReadOnly").field(b).finish(),
            ConfigEdit::Randomize(b) => f.debug_tuple("Randomize").field(b).finish(),
            ConfigEdit::ConnectTimeout(t) => f.debug_tuple("ConnectTimeout").field(t).finish(),
            ConfigEdit::Backoff(b) => f.debug_tuple("Backoff").field(b).finish(),
            ConfigEdit::Queue(p, l) => f.debug_tuple("Queue").field(p).field(l).finish(),
            ConfigEdit::Expiry(p) => f.debug_tuple("Expiry").field(p).finish(),
            ConfigEdit::RequestTimeout(t) => f.debug_tuple("RequestTimeout").field(t).finish(),
            ConfigEdit::Seed(s) => f.debug_tuple("Seed").field(s).finish(),
            ConfigEdit::MaxFrame(m) => f.debug_tuple("MaxFrame").field(m).finish(),
            ConfigEdit::MaxRounds(r) => f.debug_tuple("MaxRounds").field(r).finish(),
            // SaslConfig's Debug redacts the password.
            ConfigEdit::Sasl(c) => f.debug_tuple("Sasl").field(c).finish(),
        }
    }
}

impl ClientBuilder {
    /// Hosts as `"h1:2181,h2:2181/optional/chroot"`.
    ///
    /// With a chroot, every path the client sends is under it and every path it
    /// gets back (replies, watch events) has it stripped:
    ///
    /// ```
    /// let b = zk_client::ClientBuilder::new("127.0.0.1:2181/app/prod");
    /// assert_eq!(b.config().unwrap().chroot.root(), Some("/app/prod"));
    /// ```
    pub fn new(connect_string: &str) -> ClientBuilder {
        ClientBuilder {
            connect_string: connect_string.to_owned(),
            config_edits: Vec::new(),
            opts: ClientOptions::default(),
            connect_deadline: Duration::from_secs(15),
        }
    }

    fn edit(mut self, e: ConfigEdit) -> Self {
        self.config_edits.push(e);
        self
    }

    /// Requested session timeout (the server clamps it; default 10 s).
    pub fn session_timeout(self, t: Duration) -> Self {
        self.edit(ConfigEdit::SessionTimeout(t))
    }
    /// Resume a session from its id and password (kazoo's `client_id`).
    ///
    /// ```no_run
    /// # fn demo(old: &zk_client::Client) {
    /// let info = old.session().expect("a session");
    /// let builder = zk_client::ClientBuilder::new("127.0.0.1:2181")
    ///     .resume(info.id, info.password)
    ///     // If the session is gone by then, connect() fails with Error::SessionExpired
    ///     // (under the default NewSession policy it would open a new session instead).
    ///     .expiry_policy(zk_client::ExpiryPolicy::Terminal);
    /// # let _ = builder; }
    /// ```
    pub fn resume(self, id: i64, password: impl Into<Bytes>) -> Self {
        self.edit(ConfigEdit::Resume(id, password.into()))
    }
    /// Credentials sent at every connect (`("digest", "user:pass")`).
    pub fn auth(self, scheme: &str, credentials: impl Into<Bytes>) -> Self {
        self.edit(ConfigEdit::Auth(scheme.into(), credentials.into()))
    }
    /// SASL authentication on every connection, before anything else is sent
    /// (kazoo's `sasl_options`): `SaslConfig::digest_md5("bob", "secret")` for
    /// ZooKeeper's DigestLoginModule. A refusal ends the session as `AuthFailed`
    /// (`connect()` fails with `Error::SaslFailed` giving the host and the
    /// reason). Nodes of the user are `sasl:<user>` in ACLs.
    ///
    /// ```
    /// use zk_client::{ClientBuilder, SaslConfig};
    /// let b = ClientBuilder::new("127.0.0.1:2181").sasl(SaslConfig::digest_md5("bob", "secret"));
    /// assert!(b.config().unwrap().sasl.is_some());
    /// ```
    pub fn sasl(self, config: zk_proto::sasl::SaslConfig) -> Self {
        self.edit(ConfigEdit::Sasl(config))
    }
    /// [`sasl`](ClientBuilder::sasl) with DIGEST-MD5 (kazoo's
    /// `sasl_options={"mechanism": "DIGEST-MD5", "username": ..., "password": ...}`).
    ///
    /// ```
    /// use zk_client::{acl, ClientBuilder, Perms};
    /// let b = ClientBuilder::new("127.0.0.1:2181").sasl_digest_md5("bob", "secret");
    /// // Nodes only bob may touch:
    /// let bobs = vec![acl::make_acl("sasl", "bob", Perms::ALL)];
    /// # let _ = (b, bobs);
    /// ```
    pub fn sasl_digest_md5(self, username: &str, password: &str) -> Self {
        self.sasl(zk_proto::sasl::SaslConfig::digest_md5(username, password))
    }
    /// [`sasl`](ClientBuilder::sasl) with GSSAPI (Kerberos; the `gssapi` feature):
    /// kazoo's `sasl_options={"mechanism": "GSSAPI", "service": s, "principal": p}`
    /// is `sasl_gssapi(GssapiOptions::new().service_name(s).client_principal(p))`.
    /// The server is `zookeeper/<the host connected to>` unless the options say
    /// otherwise (see [`crate::gssapi`] for the Java client's equivalents); tickets
    /// and keys come from the Kerberos library's cache or client keytab. Missing
    /// credentials or an unknown principal end the session as `AuthFailed`:
    /// `connect()` fails with `Error::SaslFailed` and the library's reason.
    ///
    /// ```no_run
    /// use zk_client::{gssapi::GssapiOptions, ClientBuilder};
    /// // KRB5_CONFIG and KRB5_CLIENT_KTNAME (or a kinit'ed cache) set before the program starts.
    /// let builder = ClientBuilder::new("zk1.example.com:2181,zk2.example.com:2181")
    ///     .sasl_gssapi(GssapiOptions::new().client_principal("alice@EXAMPLE.COM"));
    /// // zk_tokio::connect(&builder).await?: each member is zookeeper/zkN.example.com.
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "gssapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "gssapi")))]
    pub fn sasl_gssapi(self, options: crate::gssapi::GssapiOptions) -> Self {
        self.sasl(options.sasl_config())
    }
    /// Accept read-only servers (default false).
    pub fn read_only(self, allowed: bool) -> Self {
        self.edit(ConfigEdit::ReadOnly(allowed))
    }
    /// Shuffle hosts (default true).
    pub fn randomize_hosts(self, on: bool) -> Self {
        self.edit(ConfigEdit::Randomize(on))
    }
    /// Per-attempt connect timeout (default: session timeout / hosts, within
    /// 100 ms ..= 10 s). A server that takes the connection but leaves the
    /// handshake unanswered is given up sooner: after 1 s, then 2, 4, 8 s for
    /// each such attempt in a row, never more than this
    /// (`zk_proto::Session::handshake_wait`).
    pub fn connect_timeout(self, t: Duration) -> Self {
        self.edit(ConfigEdit::ConnectTimeout(t))
    }
    /// Connection retry: delay after a full unsuccessful pass over the hosts,
    /// doubling up to `max_delay` (jitter included), with `jitter` as a fraction
    /// (kazoo's `connection_retry`). Default: 100 ms doubling to 1 s (the Java
    /// client's), so a client is back within about half a second of a recovered
    /// ensemble.
    ///
    /// ```
    /// use std::time::Duration;
    /// // kazoo's connection_retry=KazooRetry(max_tries=10, delay=0.5, max_delay=30, max_jitter=0.2):
    /// let b = zk_client::ClientBuilder::new("zk1:2181,zk2:2181")
    ///     .connection_retry(Duration::from_millis(500), Duration::from_secs(30), 0.2)
    ///     .connection_max_tries(Some(10));
    /// assert_eq!(b.config().unwrap().connect_max_rounds, Some(10));
    /// ```
    pub fn connection_retry(self, delay: Duration, max_delay: Duration, jitter: f64) -> Self {
        self.edit(ConfigEdit::Backoff(Backoff {
            base: delay,
            max: max_delay,
            jitter,
        }))
    }
    /// Stop after this many full rounds over the hosts without reaching any server
    /// (kazoo's `connection_retry` `max_tries`; `None`, the default, never stops): the
    /// state becomes `Unreachable` (kazoo's LOST) and calls fail with
    /// `Error::Unreachable`. `restart()` starts trying again.
    pub fn connection_max_tries(self, rounds: Option<u32>) -> Self {
        self.edit(ConfigEdit::MaxRounds(rounds))
    }
    /// Hold (up to `limit`) or fail requests made while disconnected.
    pub fn queue_policy(self, policy: QueuePolicy, limit: usize) -> Self {
        self.edit(ConfigEdit::Queue(policy, limit))
    }
    /// After an expiry: a new session at once (`NewSession`, the default, as kazoo
    /// and Curator do; the state goes Expired, then Connecting and Connected with
    /// a new id), or `Terminal` (Expired stays until `restart()`).
    ///
    /// ```
    /// use zk_client::{ClientBuilder, ExpiryPolicy};
    /// // The Java client's behaviour: an expired session is the end of this client.
    /// let b = ClientBuilder::new("127.0.0.1:2181").expiry_policy(ExpiryPolicy::Terminal);
    /// assert_eq!(b.config().unwrap().expiry_policy, ExpiryPolicy::Terminal);
    /// ```
    pub fn expiry_policy(self, p: ExpiryPolicy) -> Self {
        self.edit(ConfigEdit::Expiry(p))
    }
    /// Fail a request with Timeout when no reply came in this long (drops the connection).
    pub fn request_timeout(self, t: Duration) -> Self {
        self.edit(ConfigEdit::RequestTimeout(t))
    }
    /// Seed for host shuffling and jitter (default: from the OS).
    pub fn seed(self, seed: u64) -> Self {
        self.edit(ConfigEdit::Seed(seed))
    }
    /// Largest frame accepted from a server (default: the server's jute.maxbuffer,
    /// 0xfffff, plus 1 KiB for the reply header and Stat). A bigger reply fails its
    /// own call with `Error::ReplyTooLarge` and nothing else.
    pub fn max_frame(self, bytes: usize) -> Self {
        self.edit(ConfigEdit::MaxFrame(bytes))
    }
    /// ACL for creates that name none (default: open).
    pub fn default_acl(mut self, acl: Vec<Acl>) -> Self {
        self.opts.default_acl = acl;
        self
    }
    /// The retry policy for commands run through the adapters' `retry` helpers
    /// (kazoo's `command_retry`; default: 5 tries from 100 ms, doubling, 40 % jitter).
    ///
    /// ```
    /// use std::time::Duration;
    /// use zk_client::retry::RetryPolicy;
    /// let b = zk_client::ClientBuilder::new("127.0.0.1:2181").command_retry(RetryPolicy {
    ///     max_tries: Some(10),
    ///     deadline: Some(Duration::from_secs(20)),
    ///     ..RetryPolicy::default()
    /// });
    /// # let _ = b;
    /// ```
    pub fn command_retry(mut self, policy: crate::retry::RetryPolicy) -> Self {
        self.opts.command_retry = policy;
        self
    }
    /// Follow the ensemble's own membership (Curator's EnsembleTracker): the client
    /// watches `/zookeeper/config` and applies every new member list as
    /// [`Client::set_hosts`](crate::Client::set_hosts) would, so it spreads onto
    /// added members and never tries removed ones again. Default off.
    pub fn follow_ensemble(mut self, on: bool) -> Self {
        self.opts.follow_ensemble = on;
        self
    }
    /// How many events a persistent watch ([`Client::add_watch`](crate::Client::add_watch))
    /// keeps for a reader that has fallen behind (default 65,536). One more and the
    /// watch ends: it is removed (on the server too), its stream yields what it
    /// holds and then `None`, and [`WatchStream::overflowed`](crate::WatchStream::overflowed)
    /// says why. So an unread stream cannot grow without bound, and a slow reader
    /// learns it missed events instead of silently losing some; read the nodes again
    /// and add a new watch (TreeCache does this by itself).
    pub fn watch_backlog(mut self, events: usize) -> Self {
        self.opts.watch_backlog = events.max(1);
        self
    }
    /// How long `connect` waits for the first session (default 15 s).
    /// When it passes, `connect` fails with `Error::ConnectFailed` naming the last
    /// attempt's host and cause (or `Error::Timeout` if no attempt had failed yet).
    ///
    /// ```no_run
    /// # async fn demo() {
    /// use std::time::Duration;
    /// use zk_client::{ClientBuilder, Error};
    /// # async fn connect(_: &ClientBuilder) -> zk_client::Result<zk_client::Client> { unimplemented!() }
    /// let b = ClientBuilder::new("10.0.0.7:2181").connect_deadline(Duration::from_secs(3));
    /// match connect(&b).await { // zk_tokio::connect, zk_smol::connect, ...
    ///     Ok(_zk) => {}
    ///     Err(Error::ConnectFailed(cause)) => eprintln!("{cause}"), // "10.0.0.7:2181: connection refused ..."
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// # }
    /// ```
    pub fn connect_deadline(mut self, t: Duration) -> Self {
        self.connect_deadline = t;
        self
    }

    /// The protocol configuration.
    pub fn config(&self) -> Result<Config> {
        let mut c = Config::from_connect_string(&self.connect_string)?;
        c.seed = crate::random_seed();
        for e in &self.config_edits {
            match e.clone() {
                ConfigEdit::SessionTimeout(t) => c.session_timeout = t,
                ConfigEdit::Resume(id, pw) => c.resume = Some((id, pw)),
                ConfigEdit::Auth(s, a) => c.auth.push((s, a)),
                ConfigEdit::ReadOnly(b) => c.read_only = b,
                ConfigEdit::Randomize(b) => c.randomize_hosts = b,
                ConfigEdit::ConnectTimeout(t) => c.connect_timeout = Some(t),
                ConfigEdit::Backoff(b) => c.backoff = b,
                ConfigEdit::Queue(p, l) => {
                    c.queue_policy = p;
                    c.queue_limit = l;
                }
                ConfigEdit::Expiry(p) => c.expiry_policy = p,
                ConfigEdit::RequestTimeout(t) => c.request_timeout = Some(t),
                ConfigEdit::Seed(s) => c.seed = s,
                ConfigEdit::MaxFrame(m) => c.max_frame = m,
                ConfigEdit::MaxRounds(r) => c.connect_max_rounds = r,
                ConfigEdit::Sasl(s) => c.sasl = Some(s),
            }
        }
        Ok(c)
    }

    /// Creates the core and the client handle on the system clock; the adapter
    /// then drives `Shared`'s I/O.
    pub fn build(&self) -> Result<(Client, std::sync::Arc<Shared>)> {
        self.build_on(std::sync::Arc::new(crate::clock::SystemClock))
    }

    /// [`build`](ClientBuilder::build) on a clock of the adapter's (tokio's, or a
    /// [`ManualClock`](crate::ManualClock) in tests).
    pub fn build_on(
        &self,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Result<(Client, std::sync::Arc<Shared>)> {
        let config = self.config()?;
        let shared = Shared::new(Session::new(config, clock.now()), clock);
        if self.opts.follow_ensemble {
            shared.follow_ensemble();
        }
        shared.set_watch_backlog(self.opts.watch_backlog);
        Ok((
            Client::from_shared(shared.clone(), self.opts.clone()),
            shared,
        ))
    }

    /// [`build_on`](ClientBuilder::build_on) for an adapter's `connect_with`: keeps
    /// `connector` with the client (what it dials every connection and
    /// four-letter word with) and registers the adapter's runtime hooks.
    pub fn build_for_adapter(
        &self,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
        connector: std::sync::Arc<dyn std::any::Any + Send + Sync>,
        runtime: std::sync::Arc<dyn crate::runtime::Runtime>,
    ) -> Result<(Client, std::sync::Arc<Shared>)> {
        let (client, shared) = self.build_on(clock)?;
        shared.set_adapter_data(connector);
        shared.set_runtime(runtime);
        Ok((client, shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let secret = "s3cr3t-Pa55word";
        let b = ClientBuilder::new("127.0.0.1:2181")
            .auth("digest", format!("bob:{secret}"))
            .sasl_digest_md5("bob", secret)
            .resume(0x1234, secret.as_bytes().to_vec());
        for dbg in [format!("{b:?}"), format!("{:?}", b.config().unwrap())] {
            assert!(!dbg.contains(secret), "{dbg}");
            assert!(dbg.contains("redacted"), "{dbg}");
        }
        let info = crate::SessionInfo {
            id: 7,
            password: Bytes::from(secret.as_bytes().to_vec()),
            timeout: None,
            last_zxid: 0,
        };
        let dbg = format!("{info:?}");
        assert!(!dbg.contains(secret) && !dbg.contains("115, 51"), "{dbg}");
        let session = zk_proto::Session::new(b.config().unwrap(), std::time::Instant::now());
        let dbg = format!("{session:?}");
        assert!(!dbg.contains(secret), "{dbg}");
    }
}
