//! SASL, sans I/O: a mechanism turns the server's challenges into responses; the
//! [`Session`](crate::Session) carries the tokens in `sasl` (102) packets right after
//! each connection's handshake, before anything else, and again on every reconnect.
//!
//! DIGEST-MD5 (RFC 2831) is what ZooKeeper's `DigestLoginModule` serves: the client
//! sends an empty token, the server a challenge (realm, nonce, qop), the client its
//! digest response, the server `rspauth`, which the client checks. Only the `auth`
//! quality of protection (authentication, no integrity or confidentiality layer) is
//! offered, as ZooKeeper's clients do.
//!
//! Mechanisms whose state lives elsewhere (GSSAPI: a security context inside the
//! system's Kerberos library) plug in as [`SaslMechanism::Custom`]: a
//! [`SaslClientFactory`] starts one [`SaslClient`] per connection, and the session
//! feeds it the server's tokens exactly as it feeds DIGEST-MD5. The factory is
//! handed the [`SaslTarget`] (service name and server host, the host being the one
//! this connection reached unless [`ServerHost::Named`] says otherwise), so the
//! naming policy stays here and the plug-in only turns it into its own name type.
//! The `zk-gssapi` crate is such a plug-in.
//!
//! kazoo's `sasl_options={"mechanism": "DIGEST-MD5", "username": u, "password": p}`
//! is [`SaslConfig::digest_md5`]`(u, p)`; kazoo's `service` is [`SaslConfig::service`].

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};

/// The SASL options of a session. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism and its credentials.
    pub mechanism: SaslMechanism,
    /// The server's service name (the Java client's `zookeeper.sasl.client.username`,
    /// default `zookeeper`): the first half of a Kerberos service principal
    /// `zookeeper/host`, and of DIGEST-MD5's digest URI.
    pub service: String,
    /// The host the server is named by.
    pub server_host: ServerHost,
}

/// Which host name the server is known by in the SASL exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerHost {
    /// The host of the connection's address, as written in the connect string (the
    /// Java client's GSSAPI default: `zookeeper/<the host it connected to>`). A
    /// reconnect to another member names that member.
    Connected,
    /// Always this name (DIGEST-MD5's fixed `zk-sasl-md5`, or a Kerberos host name
    /// that differs from the address the client dials).
    Named(String),
}

impl ServerHost {
    /// The name for a connection to `connected`.
    ///
    /// Why: a plug-in (or a log line) needs the name the server is known by on
    /// this connection, which is not always the address dialled.
    ///
    /// ```
    /// use zk_proto::sasl::ServerHost;
    ///
    /// assert_eq!(ServerHost::Connected.resolve("zk3.example"), "zk3.example");
    /// let fixed = ServerHost::Named("zk-sasl-md5".into());
    /// assert_eq!(fixed.resolve("zk3.example"), "zk-sasl-md5");
    /// ```
    pub fn resolve<'a>(&'a self, connected: &'a str) -> &'a str {
        match self {
            ServerHost::Connected => connected,
            ServerHost::Named(n) => n,
        }
    }
}

/// A SASL mechanism with its credentials.
#[derive(Clone)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// DIGEST-MD5 with a user name and password (ZooKeeper's `DigestLoginModule`).
    DigestMd5 {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// A mechanism implemented outside this crate (GSSAPI in `zk-gssapi`). Two
    /// configurations are equal when they share the same factory.
    Custom(Arc<dyn SaslClientFactory>),
}

impl PartialEq for SaslMechanism {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                SaslMechanism::DigestMd5 {
                    username: u1,
                    password: p1,
                },
                SaslMechanism::DigestMd5 {
                    username: u2,
                    password: p2,
                },
            ) => u1 == u2 && p1 == p2,
            (SaslMechanism::Custom(a), SaslMechanism::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for SaslMechanism {}

/// Who the client authenticates to on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslTarget<'a> {
    /// [`SaslConfig::service`].
    pub service: &'a str,
    /// [`SaslConfig::server_host`] resolved for this connection.
    pub host: &'a str,
}

/// Why a SASL exchange failed on the client's side, in words that name the cause
/// (an unknown principal, missing credentials, a token that does not verify) and
/// never a secret. The session reports it as [`Event::SaslFailed`](crate::Event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslError(pub String);

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SaslError {}

impl From<String> for SaslError {
    fn from(s: String) -> Self {
        SaslError(s)
    }
}

impl From<&str> for SaslError {
    fn from(s: &str) -> Self {
        SaslError(s.to_owned())
    }
}

/// Starts a [`SaslClient`] for each connection (a mechanism plug-in).
///
/// Why: to add a mechanism this crate does not have (GSSAPI, a token scheme)
/// without touching the session; implement these two traits and pass the
/// factory to [`SaslConfig::custom`].
///
/// ```
/// use std::sync::Arc;
///
/// use bytes::Bytes;
/// use zk_proto::sasl::{
///     SaslClient, SaslClientFactory, SaslConfig, SaslError, SaslExchange, SaslTarget,
/// };
///
/// /// A toy mechanism: sends a token naming the target, accepts the server's "ok".
/// #[derive(Debug)]
/// struct Token;
/// #[derive(Debug)]
/// struct TokenClient;
///
/// impl SaslClientFactory for Token {
///     fn mechanism_name(&self) -> &'static str {
///         "X-TOKEN"
///     }
///     fn start(&self, target: SaslTarget<'_>) -> Result<(Box<dyn SaslClient>, Bytes), SaslError> {
///         let first = format!("{}/{}", target.service, target.host);
///         Ok((Box::new(TokenClient), Bytes::from(first)))
///     }
/// }
/// impl SaslClient for TokenClient {
///     fn step(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, SaslError> {
///         match challenge {
///             b"ok" => Ok(None),
///             _ => Err("the server refused the token".into()),
///         }
///     }
/// }
///
/// let config = SaslConfig::custom(Arc::new(Token));
/// assert_eq!(config.mechanism_name(), "X-TOKEN");
/// // Custom mechanisms name the server by the host the connection reached.
/// let (mut x, first) = SaslExchange::start(&config, "zk2.example", String::new()).unwrap();
/// assert_eq!(first, "zookeeper/zk2.example");
/// assert_eq!(x.step(b"ok"), Ok(None));
/// assert!(x.is_complete());
/// // Nothing may follow a completed exchange.
/// assert!(x.step(b"ok").is_err());
/// ```
///
/// The factory is shared by every connection of a session (and by its clones), so
/// it holds only options; whatever state a connection's exchange needs lives in
/// the client it returns. It must not block on the network for long: the session
/// calls it from the adapter's I/O loop right after a handshake (a Kerberos ticket
/// request to a KDC is the one round trip GSSAPI makes here, as the Java client's
/// does).
pub trait SaslClientFactory: Send + Sync + fmt::Debug {
    /// The mechanism's SASL name (`"GSSAPI"`), for messages.
    fn mechanism_name(&self) -> &'static str;

    /// A client for one connection to `target`, and the first token to send (empty
    /// when the mechanism has no initial response). An error ends the session as
    /// `AuthFailed` with the error's words.
    fn start(&self, target: SaslTarget<'_>) -> Result<(Box<dyn SaslClient>, Bytes), SaslError>;
}

/// One connection's exchange of a [`SaslClientFactory`]'s mechanism.
pub trait SaslClient: Send + fmt::Debug {
    /// The server's next token: `Ok(Some(token))` to send, `Ok(None)` when the
    /// exchange is complete (the server has nothing more to say), `Err` when it
    /// failed.
    fn step(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, SaslError>;
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("service", &self.service)
            .field("server_host", &self.server_host)
            .finish()
    }
}

impl fmt::Debug for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslMechanism::DigestMd5 { username, .. } => f
                .debug_struct("DigestMd5")
                .field("username", username)
                .field("password", &format_args!("<redacted>"))
                .finish(),
            // The factory's own Debug is bound by the same rule: no secrets.
            SaslMechanism::Custom(c) => f.debug_tuple("Custom").field(c).finish(),
        }
    }
}

impl SaslConfig {
    /// DIGEST-MD5 as `username` with `password`, against service `zookeeper` on
    /// `zk-sasl-md5` (what every ZooKeeper server with `DigestLoginModule` expects).
    ///
    /// Why: to authenticate to a server configured with a JAAS `DigestLoginModule`,
    /// set it as [`Config::sasl`](crate::Config::sasl); the session runs the
    /// exchange on every connection.
    ///
    /// ```
    /// use zk_proto::sasl::{SaslConfig, SaslMechanism, ServerHost};
    /// use zk_proto::Config;
    ///
    /// let sasl = SaslConfig::digest_md5("bob", "s3cret");
    /// assert_eq!(sasl.mechanism_name(), "DIGEST-MD5");
    /// assert_eq!(sasl.service, "zookeeper");
    /// assert_eq!(sasl.server_host, ServerHost::Named("zk-sasl-md5".into()));
    /// assert!(matches!(&sasl.mechanism, SaslMechanism::DigestMd5 { username, .. } if username == "bob"));
    /// // Debug output never shows the password.
    /// assert!(!format!("{sasl:?}").contains("s3cret"));
    ///
    /// let mut config = Config::from_connect_string("zk1:2181").unwrap();
    /// config.sasl = Some(sasl);
    /// ```
    pub fn digest_md5(username: &str, password: &str) -> SaslConfig {
        SaslConfig {
            mechanism: SaslMechanism::DigestMd5 {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            service: "zookeeper".to_owned(),
            server_host: ServerHost::Named("zk-sasl-md5".to_owned()),
        }
    }

    /// A plug-in mechanism against service `zookeeper` on the host each connection
    /// reached (the Java client's GSSAPI defaults).
    pub fn custom(factory: Arc<dyn SaslClientFactory>) -> SaslConfig {
        SaslConfig {
            mechanism: SaslMechanism::Custom(factory),
            service: "zookeeper".to_owned(),
            server_host: ServerHost::Connected,
        }
    }

    /// The mechanism's SASL name.
    pub fn mechanism_name(&self) -> &'static str {
        match &self.mechanism {
            SaslMechanism::DigestMd5 { .. } => "DIGEST-MD5",
            SaslMechanism::Custom(c) => c.mechanism_name(),
        }
    }
}

/// Where a DIGEST-MD5 exchange is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// The empty first token is out; the challenge comes next.
    AwaitChallenge,
    /// Our response is out; `rspauth` (this value) comes next.
    AwaitRspauth(String),
    /// Authenticated.
    Done,
    /// Failed.
    Failed,
}

/// One SASL exchange (one connection's).
///
/// Why: the session drives this itself; run it by hand to check credentials or a
/// mechanism against known tokens. Here RFC 2831's own example (service `imap`),
/// whose response and `rspauth` values are published:
///
/// ```
/// use zk_proto::sasl::{SaslConfig, SaslExchange, SaslMechanism, ServerHost};
///
/// let config = SaslConfig {
///     mechanism: SaslMechanism::DigestMd5 { username: "chris".into(), password: "secret".into() },
///     service: "imap".into(),
///     server_host: ServerHost::Named("elwood.innosoft.com".into()),
/// };
/// let (mut x, first) = SaslExchange::start(&config, "10.0.0.1", "OA6MHXh6VqTrRk".into()).unwrap();
/// assert!(first.is_empty()); // DIGEST-MD5 has no initial response
///
/// let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
/// let response = x.step(challenge).unwrap().expect("a response to send");
/// let response = std::str::from_utf8(&response).unwrap();
/// assert!(response.contains("response=d388dad90d4bbd760a152321f2143af7"));
/// assert!(!x.is_complete());
///
/// // The server proves it knows the password too.
/// assert_eq!(x.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd"), Ok(None));
/// assert!(x.is_complete());
/// ```
pub struct SaslExchange {
    inner: Inner,
}

enum Inner {
    Digest {
        username: String,
        password: String,
        service: String,
        server_host: String,
        cnonce: String,
        stage: Stage,
    },
    Custom {
        client: Box<dyn SaslClient>,
        complete: bool,
        failed: bool,
    },
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Digest {
                username, stage, ..
            } => f
                .debug_struct("SaslExchange")
                .field("mechanism", &"DIGEST-MD5")
                .field("username", username)
                .field("stage", stage)
                .finish_non_exhaustive(),
            Inner::Custom {
                client,
                complete,
                failed,
            } => f
                .debug_struct("SaslExchange")
                .field("client", client)
                .field("complete", complete)
                .field("failed", failed)
                .finish(),
        }
    }
}

impl SaslExchange {
    /// Starts an exchange for a connection to `connected_host`: the exchange and the
    /// first token to send. `cnonce` is the DIGEST-MD5 client nonce (random,
    /// printable, no `"`); other mechanisms ignore it. A plug-in that cannot start
    /// (no credentials, an unknown principal) fails here.
    pub fn start(
        config: &SaslConfig,
        connected_host: &str,
        cnonce: String,
    ) -> Result<(SaslExchange, Bytes), SaslError> {
        let host = config.server_host.resolve(connected_host);
        match &config.mechanism {
            SaslMechanism::DigestMd5 { username, password } => Ok((
                SaslExchange {
                    inner: Inner::Digest {
                        username: username.clone(),
                        password: password.clone(),
                        service: config.service.clone(),
                        server_host: host.to_owned(),
                        cnonce,
                        stage: Stage::AwaitChallenge,
                    },
                },
                // DIGEST-MD5 has no initial response: empty.
                Bytes::new(),
            )),
            SaslMechanism::Custom(factory) => {
                let (client, token) = factory.start(SaslTarget {
                    service: &config.service,
                    host,
                })?;
                Ok((
                    SaslExchange {
                        inner: Inner::Custom {
                            client,
                            complete: false,
                            failed: false,
                        },
                    },
                    token,
                ))
            }
        }
    }

    /// Whether the server has been authenticated to us and we to it.
    pub fn is_complete(&self) -> bool {
        match &self.inner {
            Inner::Digest { stage, .. } => *stage == Stage::Done,
            Inner::Custom { complete, .. } => *complete,
        }
    }

    /// The server's next token: `Ok(Some(token))` to send, `Ok(None)` when the
    /// exchange is complete, `Err(reason)` when it failed.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, SaslError> {
        match &mut self.inner {
            Inner::Digest { .. } => {
                let r = self.step_digest(challenge);
                if r.is_err() {
                    if let Inner::Digest { stage, .. } = &mut self.inner {
                        *stage = Stage::Failed;
                    }
                }
                r.map_err(SaslError)
            }
            Inner::Custom {
                client,
                complete,
                failed,
            } => {
                if *failed {
                    return Err("a SASL token after the exchange failed".into());
                }
                if *complete {
                    return Err("a SASL token after the exchange completed".into());
                }
                let r = client.step(challenge);
                match &r {
                    Ok(None) => *complete = true,
                    Ok(Some(_)) => {}
                    Err(_) => *failed = true,
                }
                r
            }
        }
    }

    fn step_digest(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, String> {
        let Inner::Digest {
            username,
            password,
            service,
            server_host,
            cnonce,
            stage,
        } = &mut self.inner
        else {
            return Err("not a DIGEST-MD5 exchange".to_string());
        };
        match std::mem::replace(stage, Stage::Failed) {
            Stage::AwaitChallenge => {
                let text = std::str::from_utf8(challenge)
                    .map_err(|_| "the DIGEST-MD5 challenge is not UTF-8".to_string())?;
                let fields = parse_directives(text)?;
                let get = |k: &str| {
                    fields
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.as_str())
                };
                let nonce = get("nonce").ok_or("the DIGEST-MD5 challenge has no nonce")?;
                let qop_offered = get("qop").unwrap_or("auth");
                if !qop_offered.split(',').any(|q| q.trim() == "auth") {
                    return Err(format!(
                        "the server offers qop {qop_offered:?}, not \"auth\""
                    ));
                }
                let algorithm = get("algorithm").unwrap_or("");
                if !algorithm.eq_ignore_ascii_case("md5-sess") {
                    return Err(format!(
                        "the server's DIGEST-MD5 algorithm is {algorithm:?}, not md5-sess"
                    ));
                }
                let realm = get("realm").unwrap_or(server_host).to_owned();
                let utf8 = get("charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
                let digest_uri = format!("{service}/{server_host}");
                let d = Digest5 {
                    username,
                    realm: &realm,
                    password,
                    nonce,
                    cnonce,
                    nc: "00000001",
                    qop: "auth",
                    digest_uri: &digest_uri,
                    utf8,
                };
                let response = d.response("AUTHENTICATE");
                let rspauth = d.response("");
                let mut out = String::new();
                if utf8 {
                    out.push_str("charset=utf-8,");
                }
                out.push_str(&format!(
                    "username={},realm={},nonce={},nc=00000001,cnonce={},digest-uri={},\
                     maxbuf=65536,response={response},qop=auth",
                    quote(username),
                    quote(&realm),
                    quote(nonce),
                    quote(cnonce),
                    quote(&digest_uri),
                ));
                *stage = Stage::AwaitRspauth(rspauth);
                Ok(Some(Bytes::from(out.into_bytes())))
            }
            Stage::AwaitRspauth(expected) => {
                let text = std::str::from_utf8(challenge)
                    .map_err(|_| "the server's DIGEST-MD5 reply is not UTF-8".to_string())?;
                let fields = parse_directives(text)?;
                let got = fields
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("rspauth"))
                    .map(|(_, v)| v.as_str())
                    .ok_or("the server's DIGEST-MD5 reply has no rspauth")?;
                if !got.eq_ignore_ascii_case(&expected) {
                    return Err(
                        "the server's rspauth does not match: it does not know our password"
                            .to_string(),
                    );
                }
                *stage = Stage::Done;
                Ok(None)
            }
            Stage::Done => Err("a SASL token after the exchange completed".to_string()),
            Stage::Failed => Err("a SASL token after the exchange failed".to_string()),
        }
    }
}

/// The inputs of a DIGEST-MD5 response (RFC 2831 2.1.2.1).
struct Digest5<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: &'a str,
    qop: &'a str,
    digest_uri: &'a str,
    utf8: bool,
}

impl Digest5<'_> {
    /// `response-value` for A2 = `method:digest-uri` (`AUTHENTICATE` for the
    /// client's response, empty for the server's `rspauth`).
    fn response(&self, method: &str) -> String {
        let mut a1 = Md5::new();
        a1.update(self.text(self.username));
        a1.update(b":");
        a1.update(self.text(self.realm));
        a1.update(b":");
        a1.update(self.text(self.password));
        let mut a1 = a1.finalize().to_vec();
        a1.extend_from_slice(format!(":{}:{}", self.nonce, self.cnonce).as_bytes());
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(
            format!("{method}:{}", self.digest_uri).as_bytes(),
        ));
        let kd = format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            self.nonce, self.nc, self.cnonce, self.qop
        );
        hex(&Md5::digest(kd.as_bytes()))
    }

    /// A credential's bytes: with `charset=utf-8`, ISO 8859-1 when every character
    /// fits in it (RFC 2831), else UTF-8.
    fn text(&self, s: &str) -> Vec<u8> {
        if self.utf8 && s.chars().all(|c| (c as u32) < 256) {
            s.chars().map(|c| c as u8).collect()
        } else {
            s.as_bytes().to_vec()
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `"value"` with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `name=value, name="quoted, value"` into pairs (RFC 2831 `#(directive)`).
fn parse_directives(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("malformed SASL directive {:?}", name.trim()));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted SASL value".into()),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted SASL value".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.push((name.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4's example (IMAP): response and rspauth.
    #[test]
    fn rfc2831_example() {
        let d = Digest5 {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            digest_uri: "imap/elwood.innosoft.com",
            utf8: false,
        };
        assert_eq!(
            d.response("AUTHENTICATE"),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(d.response(""), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn exchange_against_the_rfc_server() {
        let cfg = SaslConfig {
            mechanism: SaslMechanism::DigestMd5 {
                username: "chris".into(),
                password: "secret".into(),
            },
            service: "imap".into(),
            server_host: ServerHost::Named("elwood.innosoft.com".into()),
        };
        let start = |cfg| SaslExchange::start(cfg, "127.0.0.1", "OA6MHXh6VqTrRk".into()).unwrap();
        let (mut x, first) = start(&cfg);
        assert!(first.is_empty());
        let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
        let resp = x.step(challenge).unwrap().unwrap();
        let resp = std::str::from_utf8(&resp).unwrap();
        assert!(
            resp.contains("response=d388dad90d4bbd760a152321f2143af7"),
            "{resp}"
        );
        assert!(
            resp.contains(r#"digest-uri="imap/elwood.innosoft.com""#),
            "{resp}"
        );
        assert!(resp.contains(r#"username="chris""#), "{resp}");
        assert!(!x.is_complete());
        assert_eq!(
            x.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd").unwrap(),
            None
        );
        assert!(x.is_complete());
        // A wrong rspauth fails.
        let (mut x, _) = start(&cfg);
        x.step(challenge).unwrap();
        assert!(x.step(b"rspauth=00000000000000000000000000000000").is_err());
        assert!(!x.is_complete());
    }

    #[test]
    fn directives() {
        let d = parse_directives(r#"a=1, b="x,\"y\"" ,c=z"#).unwrap();
        assert_eq!(
            d,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x,\"y\"".into()),
                ("c".into(), "z".into())
            ]
        );
        assert!(parse_directives("novalue").is_err());
        assert!(parse_directives(r#"a="open"#).is_err());
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = SaslConfig::digest_md5("bob", "hunter2-secret");
        for s in [format!("{c:?}"), format!("{:?}", c.mechanism)] {
            assert!(!s.contains("hunter2-secret") && s.contains("bob"), "{s}");
        }
        let (x, _) = SaslExchange::start(&c, "h", "n".into()).unwrap();
        assert!(!format!("{x:?}").contains("hunter2-secret"));
    }
}
