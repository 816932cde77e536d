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
//! kazoo's `sasl_options={"mechanism": "DIGEST-MD5", "username": u, "password": p}`
//! is [`SaslConfig::digest_md5`]`(u, p)`; kazoo's `service` and `hostname` are
//! [`SaslConfig::service`] and [`SaslConfig::server_host`].

use std::fmt;

use bytes::Bytes;
use md5::{Digest, Md5};

/// The SASL options of a session. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism and its credentials.
    pub mechanism: SaslMechanism,
    /// The server's service name (the Java client's `zookeeper.sasl.client.username`,
    /// default `zookeeper`).
    pub service: String,
    /// The host part of the digest URI: ZooKeeper's DIGEST-MD5 server is always
    /// `zk-sasl-md5`.
    pub server_host: String,
}

/// A SASL mechanism with its credentials.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// DIGEST-MD5 with a user name and password (ZooKeeper's `DigestLoginModule`).
    DigestMd5 {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mech = match &self.mechanism {
            SaslMechanism::DigestMd5 { username, .. } => {
                format!("DIGEST-MD5 {{ username: {username:?}, password: <redacted> }}")
            }
        };
        f.debug_struct("SaslConfig")
            .field("mechanism", &format_args!("{mech}"))
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
        }
    }
}

impl SaslConfig {
    /// DIGEST-MD5 as `username` with `password`, against service `zookeeper` on
    /// `zk-sasl-md5` (what every ZooKeeper server with `DigestLoginModule` expects).
    pub fn digest_md5(username: &str, password: &str) -> SaslConfig {
        SaslConfig {
            mechanism: SaslMechanism::DigestMd5 {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            service: "zookeeper".to_owned(),
            server_host: "zk-sasl-md5".to_owned(),
        }
    }

    /// The mechanism's SASL name.
    pub fn mechanism_name(&self) -> &'static str {
        match self.mechanism {
            SaslMechanism::DigestMd5 { .. } => "DIGEST-MD5",
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
#[derive(Clone)]
pub struct SaslExchange {
    config: SaslConfig,
    cnonce: String,
    stage: Stage,
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslExchange")
            .field("config", &self.config)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl SaslExchange {
    /// Starts an exchange; `cnonce` is the client's nonce (random, printable, no `"`).
    pub fn new(config: &SaslConfig, cnonce: String) -> SaslExchange {
        SaslExchange {
            config: config.clone(),
            cnonce,
            stage: Stage::AwaitChallenge,
        }
    }

    /// The first token to send (DIGEST-MD5 has no initial response: empty).
    pub fn initial(&self) -> Bytes {
        Bytes::new()
    }

    /// Whether the server has been authenticated to us and we to it.
    pub fn is_complete(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The server's next token: `Ok(Some(token))` to send, `Ok(None)` when the
    /// exchange is complete, `Err(reason)` when it failed.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, String> {
        let r = self.step_inner(challenge);
        if r.is_err() {
            self.stage = Stage::Failed;
        }
        r
    }

    fn step_inner(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, String> {
        let SaslMechanism::DigestMd5 { username, password } = &self.config.mechanism;
        match std::mem::replace(&mut self.stage, Stage::Failed) {
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
                let realm = get("realm").unwrap_or(&self.config.server_host).to_owned();
                let utf8 = get("charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
                let digest_uri = format!("{}/{}", self.config.service, self.config.server_host);
                let d = Digest5 {
                    username,
                    realm: &realm,
                    password,
                    nonce,
                    cnonce: &self.cnonce,
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
                    quote(&self.cnonce),
                    quote(&digest_uri),
                ));
                self.stage = Stage::AwaitRspauth(rspauth);
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
                self.stage = Stage::Done;
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
            server_host: "elwood.innosoft.com".into(),
        };
        let mut x = SaslExchange::new(&cfg, "OA6MHXh6VqTrRk".into());
        assert!(x.initial().is_empty());
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
        let mut x = SaslExchange::new(&cfg, "OA6MHXh6VqTrRk".into());
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
        let x = SaslExchange::new(&c, "n".into());
        assert!(!format!("{x:?}").contains("hunter2-secret"));
    }
}
