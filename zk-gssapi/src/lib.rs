//! SASL GSSAPI (Kerberos V5, RFC 4752) for the `zk-*` ZooKeeper clients.
//!
//! ZooKeeper servers configured with a JAAS `Server` section using Java's
//! `Krb5LoginModule` authenticate clients by Kerberos through SASL's GSSAPI
//! mechanism. This crate is that mechanism as a [`zk_proto::sasl`] plug-in: the
//! Kerberos work (tickets, the security context, wrap and unwrap) is done by the
//! system's GSSAPI library (MIT krb5's `libgssapi_krb5`, through the `libgssapi`
//! binding), and the session carries the tokens in `sasl` packets like any other
//! mechanism's, before anything else on every connection and again on every
//! reconnect. `zk-proto` stays free of the library; only builds with the `gssapi`
//! feature of `zk-client`, the adapters or `zk` link it.
//!
//! # The exchange
//!
//! 1. `gss_init_sec_context` for `zookeeper/<host>` (mutual authentication) gives
//!    the first token (a Kerberos AP-REQ; getting the service ticket asks the KDC).
//! 2. The server's tokens are fed back until the context is complete (one AP-REP
//!    with MIT and Java); when the context completes without a token of its own,
//!    an empty token is sent, as Java's SASL client does, so the server can speak
//!    next.
//! 3. The server sends a wrapped 4-byte security-layer offer. The client unwraps it,
//!    checks that "no security layer" (bit 1) is offered (ZooKeeper's default qop
//!    `auth`), and answers with a wrapped `[1, 0, 0, 0]` followed by its own
//!    principal as the authorization id: no layer, so no maximum message size.
//! 4. The server's last reply ends the exchange. Its ACL id for the client is
//!    `sasl:<principal>` as the server's `KerberosName` rules shorten it (by default
//!    `user@REALM`; `-Dzookeeper.kerberos.removeRealmFromPrincipal=true` on the
//!    server makes it `user`).
//!
//! # Credentials and configuration
//!
//! Which tickets and keys are used is the Kerberos library's business, as with any
//! GSSAPI program: the credential cache (`KRB5CCNAME`, or after `kinit`), or a
//! client keytab (`KRB5_CLIENT_KTNAME`, from which the library gets a ticket
//! itself), and the configuration in `KRB5_CONFIG` (default `/etc/krb5.conf`).
//! These are process-wide environment variables read by the C library: set them
//! before the program starts threads (or before the first connection), never while
//! clients run. [`GssapiOptions::client_principal`] picks one principal when the
//! cache or keytab holds several.
//!
//! # Options, next to the Java client's and kazoo's
//!
//! | Java client (system property) | kazoo `sasl_options` | here |
//! | --- | --- | --- |
//! | `zookeeper.sasl.client.username` (default `zookeeper`) | `service` | [`GssapiOptions::service_name`] |
//! | `zookeeper.sasl.client.canonicalize.hostname` (default true) | — | [`GssapiOptions::canonicalize_hostname`] |
//! | `zookeeper.server.principal` | — | [`GssapiOptions::server_principal`] |
//! | `zookeeper.server.realm` | — | the realm in [`GssapiOptions::server_principal`], or krb5.conf's `domain_realm` for the host |
//! | JAAS `Client` section's `principal` | `principal` | [`GssapiOptions::client_principal`] |
//! | JAAS `keyTab` / `useTicketCache` | — | `KRB5_CLIENT_KTNAME` / `KRB5CCNAME` |
//! | `java.security.krb5.conf` | — | `KRB5_CONFIG` |
//! | `mechanism: "GSSAPI"` | `mechanism` | `ClientBuilder::sasl_gssapi` |

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};
use zk_proto::sasl::{SaslClient, SaslClientFactory, SaslConfig, SaslError, SaslTarget};

/// The GSSAPI mechanism's options (the Java client's names in the crate docs).
/// Nothing here is secret: keys and tickets stay in the Kerberos library's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssapiOptions {
    service: String,
    canonicalize_hostname: bool,
    server_principal: Option<String>,
    client_principal: Option<String>,
}

impl Default for GssapiOptions {
    fn default() -> Self {
        GssapiOptions::new()
    }
}

impl GssapiOptions {
    /// The Java client's defaults: service `zookeeper` on the host each connection
    /// reached, that host canonicalized by the Kerberos library, the default client
    /// credentials.
    pub fn new() -> GssapiOptions {
        GssapiOptions {
            service: "zookeeper".to_owned(),
            canonicalize_hostname: true,
            server_principal: None,
            client_principal: None,
        }
    }

    /// The server's service name, the first part of its principal
    /// `<service>/<host>@REALM` (Java's `zookeeper.sasl.client.username`, kazoo's
    /// `service`; default `zookeeper`).
    pub fn service_name(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    /// Whether the host the client connected to is canonicalized before it names
    /// the server (Java's `zookeeper.sasl.client.canonicalize.hostname`, default
    /// true). True names the server as the GSSAPI host-based service
    /// `<service>@<host>`, which the Kerberos library canonicalizes as its
    /// configuration says (`dns_canonicalize_hostname`, `rdns` in krb5.conf: the
    /// same DNS work Java's `getCanonicalHostName` does). False uses the
    /// principal `<service>/<host>` exactly as written in the connect string.
    pub fn canonicalize_hostname(mut self, on: bool) -> Self {
        self.canonicalize_hostname = on;
        self
    }

    /// The whole server principal, e.g. `zookeeper/zk1.example.com@EXAMPLE.COM`,
    /// whatever host the client connected to (Java's `zookeeper.server.principal`;
    /// needed when the servers share one principal or sit behind another name).
    /// Overrides the service name and canonicalization.
    pub fn server_principal(mut self, principal: &str) -> Self {
        self.server_principal = Some(principal.to_owned());
        self
    }

    /// The client principal to authenticate as, e.g. `alice@EXAMPLE.COM` (the JAAS
    /// `Client` section's `principal`, kazoo's `principal`): picks it from the
    /// credential cache collection or the client keytab. Default: the library's
    /// default credentials.
    pub fn client_principal(mut self, principal: &str) -> Self {
        self.client_principal = Some(principal.to_owned());
        self
    }

    /// The session's SASL configuration for these options.
    pub fn sasl_config(self) -> SaslConfig {
        let service = self.service.clone();
        let mut c = SaslConfig::custom(Arc::new(Gssapi { opts: self }));
        c.service = service;
        c
    }

    /// The server's GSSAPI name for a connection to `target`, and how it was formed
    /// (for error messages).
    fn target_name(&self, target: SaslTarget<'_>) -> Result<(Name, String), SaslError> {
        let (text, kind) = match &self.server_principal {
            Some(p) => (p.clone(), GSS_NT_KRB5_PRINCIPAL),
            None if self.canonicalize_hostname => (
                format!("{}@{}", target.service, target.host),
                GSS_NT_HOSTBASED_SERVICE,
            ),
            None => (
                format!("{}/{}", target.service, target.host),
                GSS_NT_KRB5_PRINCIPAL,
            ),
        };
        let name = Name::new(text.as_bytes(), Some(kind))
            .map_err(|e| SaslError(format!("bad server principal {text:?}: {e}")))?;
        // Canonical for Kerberos, so the message names the principal asked for; a
        // host the library maps to no realm (a referral: `svc/host@`) is shown as asked.
        let shown = name
            .canonicalize(Some(GSS_MECH_KRB5))
            .map(|n| n.to_string())
            .ok()
            .filter(|n| !n.ends_with('@'))
            .unwrap_or_else(|| text.clone());
        Ok((name, shown))
    }
}

/// The mechanism plug-in: [`GssapiOptions`] shared by every connection.
#[derive(Debug)]
struct Gssapi {
    opts: GssapiOptions,
}

impl SaslClientFactory for Gssapi {
    fn mechanism_name(&self) -> &'static str {
        "GSSAPI"
    }

    fn start(&self, target: SaslTarget<'_>) -> Result<(Box<dyn SaslClient>, Bytes), SaslError> {
        let (server, server_shown) = self.opts.target_name(target)?;
        let mechs = OidSet::singleton(GSS_MECH_KRB5)
            .map_err(|e| SaslError(format!("the Kerberos mechanism is not available: {e}")))?;
        let client_name = match &self.opts.client_principal {
            None => None,
            Some(p) => Some(
                Name::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                    .map_err(|e| SaslError(format!("bad client principal {p:?}: {e}")))?,
            ),
        };
        let cred = Cred::acquire(
            client_name.as_ref(),
            None,
            CredUsage::Initiate,
            Some(&mechs),
        )
        .map_err(|e| {
            let who = self
                .opts
                .client_principal
                .as_deref()
                .map_or_else(|| "the default principal".to_owned(), |p| format!("{p:?}"));
            SaslError(format!(
                "no Kerberos credentials for {who} (a ticket cache, or a client keytab \
                 in KRB5_CLIENT_KTNAME): {e}"
            ))
        })?;
        let authzid = cred
            .name()
            .map(|n| n.to_string())
            .map_err(|e| SaslError(format!("the client credential has no name: {e}")))?;
        let mut ctx = ClientCtx::new(
            Some(cred),
            server,
            CtxFlags::GSS_C_MUTUAL_FLAG,
            Some(GSS_MECH_KRB5),
        );
        let first = ctx
            .step(None, None)
            .map_err(|e| {
                SaslError(format!(
                    "cannot start a Kerberos context with {server_shown} as {authzid}: {e}"
                ))
            })?
            .map(|b| Bytes::copy_from_slice(&b))
            .unwrap_or_default();
        Ok((
            Box::new(GssapiClient {
                ctx,
                stage: Stage::Context,
                server: server_shown,
                authzid,
            }),
            first,
        ))
    }
}

/// Where one connection's GSSAPI exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Security context tokens are being exchanged.
    Context,
    /// The context is up; the server's wrapped security-layer offer comes next.
    AwaitOffer,
    /// Our wrapped answer is out; the server's last reply comes next.
    AwaitEnd,
}

/// One connection's exchange: the security context lives in the C library.
struct GssapiClient {
    ctx: ClientCtx,
    stage: Stage,
    /// The server principal, for messages.
    server: String,
    /// Our principal, sent as the authorization id.
    authzid: String,
}

impl fmt::Debug for GssapiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GssapiClient")
            .field("stage", &self.stage)
            .field("server", &self.server)
            .field("authzid", &self.authzid)
            .finish_non_exhaustive()
    }
}

/// RFC 4752 3.3: the "no security layer" bit of the offer and answer.
const LAYER_NONE: u8 = 1;

impl SaslClient for GssapiClient {
    fn step(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, SaslError> {
        match self.stage {
            Stage::Context => {
                let out = self.ctx.step(Some(challenge), None).map_err(|e| {
                    SaslError(format!(
                        "the Kerberos context with {} failed: {e}",
                        self.server
                    ))
                })?;
                if self.ctx.is_complete() {
                    self.stage = Stage::AwaitOffer;
                }
                // Once complete without a token of its own, an empty one lets the
                // server send its offer.
                Ok(Some(
                    out.map(|b| Bytes::copy_from_slice(&b)).unwrap_or_default(),
                ))
            }
            Stage::AwaitOffer => {
                let offer = self.ctx.unwrap(challenge).map_err(|e| {
                    SaslError(format!(
                        "the security-layer offer of {} does not verify: {e}",
                        self.server
                    ))
                })?;
                let answer = answer_offer(&offer, &self.authzid)?;
                let wrapped = self.ctx.wrap(false, &answer).map_err(|e| {
                    SaslError(format!("cannot wrap the security-layer answer: {e}"))
                })?;
                self.stage = Stage::AwaitEnd;
                Ok(Some(Bytes::copy_from_slice(&wrapped)))
            }
            Stage::AwaitEnd => Ok(None),
        }
    }
}

/// The unwrapped answer to an unwrapped offer: "no security layer", maximum size 0,
/// then the authorization id (RFC 4752 3.1).
fn answer_offer(offer: &[u8], authzid: &str) -> Result<Vec<u8>, SaslError> {
    let Some(&layers) = offer.first().filter(|_| offer.len() == 4) else {
        return Err(SaslError(format!(
            "the server's security-layer offer has {} bytes, not 4",
            offer.len()
        )));
    };
    if layers & LAYER_NONE == 0 {
        return Err(SaslError(format!(
            "the server requires a SASL security layer (offer {layers:#04x}); only \
             authentication (qop \"auth\") is supported"
        )));
    }
    let mut answer = vec![LAYER_NONE, 0, 0, 0];
    answer.extend_from_slice(authzid.as_bytes());
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_and_answer() {
        // Layer "none" offered with a 64 KiB maximum: answered with none, size 0.
        let a = answer_offer(&[0x07, 0x01, 0x00, 0x00], "alice@EXAMPLE.COM").unwrap();
        assert_eq!(&a[..4], &[1, 0, 0, 0]);
        assert_eq!(&a[4..], b"alice@EXAMPLE.COM");
        // Integrity or privacy only: refused, with the reason.
        let e = answer_offer(&[0x06, 0, 0, 0], "a").unwrap_err();
        assert!(e.0.contains("security layer"), "{e}");
        assert!(answer_offer(&[1, 0, 0], "a").is_err());
        assert!(answer_offer(&[], "a").is_err());
    }

    #[test]
    fn options_shape_the_server_name() {
        let t = SaslTarget {
            service: "zookeeper",
            host: "zk1.example.com",
        };
        let name = |o: GssapiOptions| {
            let (n, _) = o.target_name(t).unwrap();
            n.to_string()
        };
        assert_eq!(
            name(GssapiOptions::new()),
            "zookeeper@zk1.example.com",
            "host-based, canonicalized by the library"
        );
        assert_eq!(
            name(GssapiOptions::new().canonicalize_hostname(false)),
            "zookeeper/zk1.example.com"
        );
        assert_eq!(
            name(GssapiOptions::new().server_principal("zk/shared@EXAMPLE.COM")),
            "zk/shared@EXAMPLE.COM"
        );
        let c = GssapiOptions::new().service_name("zk").sasl_config();
        assert_eq!(c.service, "zk");
        assert_eq!(c.mechanism_name(), "GSSAPI");
        assert!(format!("{c:?}").contains("Gssapi"));
    }
}
