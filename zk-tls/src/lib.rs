//! TLS for the ZooKeeper adapters: what to trust, what to check, and which
//! certificate to show, turned into a [`rustls::ClientConfig`].
//!
//! This crate does no I/O of its own (it only reads the PEM files you name, when
//! the configuration is built). `zk-tokio`, `zk-smol` and `zk-blocking` each have
//! a `tls` cargo feature with a connector that runs the handshake on their own
//! sockets (tokio-rustls, futures-rustls, rustls's blocking `ClientConnection`),
//! all built from the same [`TlsOptions`]:
//!
//! ```no_run
//! use zk_tls::TlsOptions;
//! let opts = TlsOptions::new()
//!     .ca_file("/etc/zookeeper/ca.pem")
//!     // Mutual TLS (the server's `ssl.clientAuth=need`):
//!     .client_cert_files("/etc/zookeeper/client.pem", "/etc/zookeeper/client-key.pem");
//! // zk_tokio::connect_tls(&zk_tokio::ClientBuilder::new("zk1:2281,zk2:2281"), opts)
//! # let _ = opts;
//! ```
//!
//! # Per host
//!
//! [`TlsHosts`] gives hosts their own options, or plain TCP (a cluster half way
//! to its secure port, members with certificates from different CAs); the
//! connect string can say it with `tls://` and `tcp://` prefixes
//! ([`TlsHosts::parse`]). Each adapter's `TlsConnector::per_host` takes it.
//!
//! # Defaults
//!
//! The server's certificate must chain to one of the roots you give (PEM, or the
//! system's roots on request with [`TlsOptions::system_roots`]), be valid now, and
//! name the host the client dialled: a DNS name SAN for a host name, an IP SAN
//! for an address (so a certificate for `zk1.example.com` does not pass for
//! `127.0.0.1`). [`TlsOptions::server_name`] checks another name instead (a
//! cluster behind one certificate name). TLS 1.2 and 1.3, rustls's safe cipher
//! suites, on the ring crypto provider.
//!
//! # Errors
//!
//! Building the configuration fails with a [`TlsError`] naming what is wrong
//! (a file that cannot be read, a PEM without a certificate, a key file without a
//! key, no roots). A failed handshake is a [`TlsError`] too, inside the
//! `io::Error` the connector returns ([`TlsError::from_io`] gets it back): unknown
//! CA, expired, not valid for the host name, the server's alert, the peer not
//! speaking TLS at all (a plain port). The adapters keep the last one where
//! `Client::last_connect_error()` reads it, and `connect()` reports it when its
//! deadline passes.
//!
//! # kazoo's options
//!
//! | kazoo `KazooClient(...)` | here |
//! | --- | --- |
//! | `use_ssl=True` | connect with a TLS connector (`zk_tokio::connect_tls`, `zk_smol::connect_tls`, `zk_blocking::connect_tls`) |
//! | `ca="ca.pem"` | [`TlsOptions::ca_file`] (or [`ca_pem`](TlsOptions::ca_pem) for bytes) |
//! | no `ca` (Python falls back to the system store) | [`TlsOptions::system_roots`] (explicit here: no roots is an error, not a silent fallback) |
//! | `certfile="client.pem"`, `keyfile="client-key.pem"` | [`TlsOptions::client_cert_files`] (or [`client_cert_pem`](TlsOptions::client_cert_pem)) |
//! | `keyfile_password=...` | not supported: decrypt the key first (`openssl pkey -in enc.pem -out key.pem`); an encrypted key is [`TlsError::EncryptedKey`] |
//! | `verify_certs=True` (default) | the default |
//! | `verify_certs=False` | [`TlsOptions::danger_accept_invalid_certs_for_tests`]: no check at all, tests only |
//! | `check_hostname=False` (kazoo's default!) | [`TlsOptions::skip_hostname_verification`]: the chain is checked, the name is not |
//! | `check_hostname=True` | the default here |
//!
//! Note the one difference in defaults: kazoo does not check the host name
//! unless asked (`check_hostname=False`); this crate does unless told not to.
//!
//! # Secrets
//!
//! `TlsOptions`' `Debug` never prints key material (only whether a key is set),
//! and no error carries it.
#![warn(missing_docs)]

mod connector;
mod hosts;
pub use connector::{SharedConnector, TlsConnector};
pub use hosts::TlsHosts;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use lenient::Lenient;

mod lenient;

pub use rustls;

/// Where PEM bytes come from: given, or a file read when the config is built.
#[derive(Clone)]
enum Source {
    Pem(Arc<Vec<u8>>),
    File(PathBuf),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Pem(b) => write!(f, "Pem({} bytes)", b.len()),
            Source::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl Source {
    fn load(&self) -> Result<Arc<Vec<u8>>, TlsError> {
        match self {
            Source::Pem(b) => Ok(b.clone()),
            Source::File(p) => std::fs::read(p)
                .map(Arc::new)
                .map_err(|e| TlsError::ReadFile {
                    path: p.clone(),
                    reason: e.to_string(),
                }),
        }
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Chain, validity and host name (the default).
    Full,
    /// Chain and validity, not the name (kazoo's `check_hostname=False`).
    NoHostname,
    /// Nothing (tests only).
    Nothing,
}

/// TLS options for a ZooKeeper client (see the crate docs for kazoo's names).
///
/// Cheap to clone. Files are read when the configuration is built
/// ([`TlsConfig::new`], or an adapter's `TlsConnector::new`), so errors show up
/// there, before any connection.
///
/// ```
/// use zk_tls::{TlsConfig, TlsError, TlsOptions};
/// // Nothing to trust is an error, not a silent fallback:
/// assert_eq!(TlsConfig::new(&TlsOptions::new()).unwrap_err(), TlsError::NoRoots);
/// // A missing file is named when the configuration is built:
/// let err = TlsConfig::new(&TlsOptions::new().ca_file("/nonexistent/ca.pem")).unwrap_err();
/// assert!(matches!(err, TlsError::ReadFile { .. }));
/// // Full checks unless told otherwise (kazoo does not check host names by default):
/// let opts = TlsOptions::new().ca_file("ca.pem");
/// assert!(opts.verifies_certificates() && opts.verifies_hostname());
/// assert!(!opts.clone().skip_hostname_verification().verifies_hostname());
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    roots: Vec<Source>,
    system_roots: bool,
    verify: Verify,
    server_name: Option<String>,
    client_cert: Option<(Source, Source)>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots)
            .field("system_roots", &self.system_roots)
            .field("verify", &self.verify)
            .field("server_name", &self.server_name)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|(cert, key)| {
                    // The key's source is named only by its path; its bytes never.
                    let key = match key {
                        Source::Pem(_) => "<redacted>".to_string(),
                        Source::File(p) => format!("File({})", p.display()),
                    };
                    format!("cert: {cert:?}, key: {key}")
                }),
            )
            .finish()
    }
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions::new()
    }
}

impl TlsOptions {
    /// Full verification, no roots yet: add some with [`ca_pem`](Self::ca_pem),
    /// [`ca_file`](Self::ca_file) or [`system_roots`](Self::system_roots)
    /// (building without any is [`TlsError::NoRoots`]).
    pub fn new() -> TlsOptions {
        TlsOptions {
            roots: Vec::new(),
            system_roots: false,
            verify: Verify::Full,
            server_name: None,
            client_cert: None,
        }
    }

    /// Trust the CA certificates in this PEM text (one or more `CERTIFICATE` blocks).
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots
            .push(Source::Pem(Arc::new(pem.as_ref().to_vec())));
        self
    }

    /// Trust the CA certificates in this PEM file (kazoo's `ca`).
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.roots.push(Source::File(path.as_ref().to_path_buf()));
        self
    }

    /// Also trust the operating system's roots (`/etc/ssl/certs` and the like,
    /// through rustls-native-certs). Off by default.
    pub fn system_roots(mut self) -> Self {
        self.system_roots = true;
        self
    }

    /// Check the server's certificate against this name instead of the host in the
    /// connect string (a DNS name, or an IP address). Also the SNI sent.
    ///
    /// ```
    /// use zk_tls::TlsOptions;
    /// // Every member's certificate names zk.example.com; the connect string has addresses.
    /// let opts = TlsOptions::new().ca_file("ca.pem").server_name("zk.example.com");
    /// let name = opts.server_name_for("10.0.0.7").unwrap();
    /// assert_eq!(name.to_str(), "zk.example.com");
    /// ```
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }

    /// Present this certificate chain (PEM, leaf first) and private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1) for mutual TLS.
    pub fn client_cert_pem(mut self, cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.client_cert = Some((
            Source::Pem(Arc::new(cert_chain.as_ref().to_vec())),
            Source::Pem(Arc::new(key.as_ref().to_vec())),
        ));
        self
    }

    /// [`client_cert_pem`](Self::client_cert_pem) from files (kazoo's `certfile`
    /// and `keyfile`).
    pub fn client_cert_files(
        mut self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Self {
        self.client_cert = Some((
            Source::File(cert_chain.as_ref().to_path_buf()),
            Source::File(key.as_ref().to_path_buf()),
        ));
        self
    }

    /// Check the chain and validity dates but not that the certificate names the
    /// host (kazoo's `check_hostname=False`). Anyone holding any certificate from
    /// your CA can then pose as the server.
    pub fn skip_hostname_verification(mut self) -> Self {
        if self.verify == Verify::Full {
            self.verify = Verify::NoHostname;
        }
        self
    }

    /// **Accept any certificate from anyone: no chain, date or name check.** For
    /// tests against throwaway servers only; the connection is encrypted but not
    /// authenticated, so anyone on the path can read and change it. kazoo's
    /// `verify_certs=False`. Roots are not needed then.
    ///
    /// ```
    /// use zk_tls::{TlsConfig, TlsOptions};
    /// let opts = TlsOptions::new().danger_accept_invalid_certs_for_tests();
    /// assert!(!opts.verifies_certificates());
    /// assert!(TlsConfig::new(&opts).is_ok()); // no roots needed
    /// ```
    pub fn danger_accept_invalid_certs_for_tests(mut self) -> Self {
        self.verify = Verify::Nothing;
        self
    }

    /// Whether the server's certificate is checked at all.
    pub fn verifies_certificates(&self) -> bool {
        self.verify != Verify::Nothing
    }

    /// Whether the certificate must name the host.
    pub fn verifies_hostname(&self) -> bool {
        self.verify == Verify::Full
    }

    /// Builds the rustls configuration (reads the files now).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match self.verify {
            Verify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient::anything(provider))),
            Verify::Full | Verify::NoHostname => {
                let roots = self.root_store()?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                if self.verify == Verify::Full {
                    builder.with_webpki_verifier(webpki)
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(Lenient::any_name(
                            provider, webpki,
                        )))
                }
            }
        };
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certs_of(&cert.load()?, "client certificate")?;
                let key = key_of(&key.load()?)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::ClientCertRejected(e.to_string()))?
            }
        };
        Ok(Arc::new(config))
    }

    fn root_store(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for source in &self.roots {
            for cert in certs_of(&source.load()?, "CA certificate")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::InvalidCa(e.to_string()))?;
            }
        }
        if self.system_roots {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(TlsError::SystemRoots(if why.is_empty() {
                    "no certificate found in the system's store".into()
                } else {
                    why.join("; ")
                }));
            }
            // Some system stores hold a few certificates webpki cannot parse: skip those.
            roots.add_parsable_certificates(found.certs);
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        Ok(roots)
    }

    /// The name to check the certificate against (and send as SNI) when dialling `host`.
    ///
    /// ```
    /// use zk_tls::{TlsError, TlsOptions};
    /// let opts = TlsOptions::new();
    /// assert_eq!(opts.server_name_for("zk1.example.com").unwrap().to_str(), "zk1.example.com");
    /// assert_eq!(opts.server_name_for("[::1]").unwrap().to_str(), "::1"); // brackets dropped
    /// assert!(matches!(opts.server_name_for("not a name!"), Err(TlsError::InvalidServerName(_))));
    /// ```
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        // `[::1]` in a connect string: the brackets are not part of the address.
        let name = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        ServerName::try_from(name.to_owned()).map_err(|_| TlsError::InvalidServerName(name.into()))
    }
}

fn certs_of(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

fn key_of(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(k) => Ok(k),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            if contains(pem, b"ENCRYPTED PRIVATE KEY") || contains(pem, b"Proc-Type: 4,ENCRYPTED") {
                Err(TlsError::EncryptedKey)
            } else {
                Err(TlsError::NoPrivateKey)
            }
        }
        // The PEM error names the section, never its bytes.
        Err(e) => Err(TlsError::BadPem {
            what: "client key",
            reason: e.to_string(),
        }),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A built configuration: the rustls config and the name override, ready for
/// every connection. What the adapters' connectors hold.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    opts: TlsOptions,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Builds it (reads the PEM files now).
    pub fn new(opts: &TlsOptions) -> Result<TlsConfig, TlsError> {
        Ok(TlsConfig {
            config: opts.client_config()?,
            opts: opts.clone(),
        })
    }

    /// The rustls client configuration.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The options it was built from.
    pub fn options(&self) -> &TlsOptions {
        &self.opts
    }

    /// The name checked (and sent as SNI) when dialling `host`.
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        self.opts.server_name_for(host)
    }

    /// A rustls client connection to `host`, handshake not started (for blocking I/O).
    pub fn connection(&self, host: &str) -> Result<rustls::ClientConnection, TlsError> {
        rustls::ClientConnection::new(self.config.clone(), self.server_name_for(host)?)
            .map_err(|e| TlsError::from_rustls(&e))
    }
}

/// What went wrong with TLS: in the options, or in a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        reason: String,
    },
    /// PEM text that does not parse.
    BadPem {
        /// Which input ("CA certificate", "client certificate", "client key").
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// A PEM input with no `CERTIFICATE` block.
    NoCertificate {
        /// Which input.
        what: &'static str,
    },
    /// The client key's PEM holds no private key.
    NoPrivateKey,
    /// The client key is encrypted (kazoo's `keyfile_password`); not supported.
    EncryptedKey,
    /// The client certificate and key were refused (mismatched, unsupported type).
    ClientCertRejected(String),
    /// A CA certificate cannot serve as a trust anchor.
    InvalidCa(String),
    /// The system's roots were asked for and none could be loaded.
    SystemRoots(String),
    /// Certificates are verified but no root was given.
    NoRoots,
    /// The host (or the configured server name) is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// Another configuration error.
    Config(String),
    /// The server's certificate is not signed by a trusted CA.
    UnknownCa,
    /// The server's certificate has expired.
    Expired(String),
    /// The server's certificate is not valid yet.
    NotYetValid(String),
    /// The server's certificate does not name the host dialled.
    WrongHostName(String),
    /// The server's certificate was revoked.
    Revoked,
    /// The server's certificate is unusable for another reason.
    BadCertificate(String),
    /// The server ended the handshake with this alert (it may require a client
    /// certificate, or not trust ours).
    ServerAlert(String),
    /// The server closed the connection during the handshake: most likely not a
    /// TLS port (ZooKeeper's plain port drops a ClientHello), or it refused us.
    ClosedDuringHandshake,
    /// The peer answered with bytes that are not TLS: a plain port.
    NotTls(String),
    /// The handshake did not finish within the connect timeout.
    HandshakeTimeout,
    /// Another TLS protocol failure.
    Protocol(String),
    /// A socket error during the handshake.
    Io(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::ReadFile { path, reason } => {
                write!(f, "TLS: cannot read {}: {reason}", path.display())
            }
            TlsError::BadPem { what, reason } => write!(f, "TLS: bad PEM in the {what}: {reason}"),
            TlsError::NoCertificate { what } => {
                write!(f, "TLS: the {what} PEM holds no CERTIFICATE block")
            }
            TlsError::NoPrivateKey => f.write_str(
                "TLS: the client key PEM holds no private key (PKCS#8, PKCS#1 or SEC1 block)",
            ),
            TlsError::EncryptedKey => f.write_str(
                "TLS: the client key is encrypted; decrypt it first (openssl pkey -in enc.pem -out key.pem)",
            ),
            TlsError::ClientCertRejected(r) => {
                write!(f, "TLS: the client certificate and key were refused: {r}")
            }
            TlsError::InvalidCa(r) => write!(f, "TLS: a CA certificate cannot be a trust root: {r}"),
            TlsError::SystemRoots(r) => write!(f, "TLS: cannot load the system's roots: {r}"),
            TlsError::NoRoots => f.write_str(
                "TLS: no root certificate to verify the server against (give a CA, ask for the \
                 system roots, or, in tests only, disable verification)",
            ),
            TlsError::InvalidServerName(n) => {
                write!(f, "TLS: {n:?} is neither a DNS name nor an IP address")
            }
            TlsError::Config(r) => write!(f, "TLS: configuration: {r}"),
            TlsError::UnknownCa => f.write_str(
                "TLS: the server's certificate is not signed by a trusted CA (unknown issuer)",
            ),
            TlsError::Expired(d) => write!(f, "TLS: the server's certificate has expired{d}"),
            TlsError::NotYetValid(d) => write!(f, "TLS: the server's certificate is not valid yet{d}"),
            TlsError::WrongHostName(d) => write!(
                f,
                "TLS: the server's certificate is not valid for the host name dialled (wrong host name){d}"
            ),
            TlsError::Revoked => f.write_str("TLS: the server's certificate was revoked"),
            TlsError::BadCertificate(r) => write!(f, "TLS: the server's certificate is unusable: {r}"),
            TlsError::ServerAlert(a) => write!(
                f,
                "TLS: the server refused the handshake with alert {a} (does it require a client \
                 certificate, or not trust ours?)"
            ),
            TlsError::ClosedDuringHandshake => f.write_str(
                "TLS: the server closed the connection during the handshake (is this a plain, \
                 non-TLS port? or did it refuse our certificate?)",
            ),
            TlsError::NotTls(r) => write!(
                f,
                "TLS: the server does not speak TLS (a plain, non-TLS port?): {r}"
            ),
            TlsError::HandshakeTimeout => f.write_str(
                "TLS: no handshake within the connect timeout (a plain, non-TLS port, or a server \
                 that does not answer?)",
            ),
            TlsError::Protocol(r) => write!(f, "TLS: handshake failed: {r}"),
            TlsError::Io(r) => write!(f, "TLS: socket error during the handshake: {r}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> io::Error {
        let kind = match e {
            TlsError::HandshakeTimeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

impl TlsError {
    /// Names a rustls error.
    pub fn from_rustls(e: &rustls::Error) -> TlsError {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsError::UnknownCa,
                CertificateError::Expired => TlsError::Expired(String::new()),
                CertificateError::ExpiredContext { time, not_after } => TlsError::Expired(format!(
                    " (valid until {}, now {})",
                    utc(not_after.as_secs()),
                    utc(time.as_secs())
                )),
                CertificateError::NotValidYet => TlsError::NotYetValid(String::new()),
                CertificateError::NotValidYetContext { time, not_before } => {
                    TlsError::NotYetValid(format!(
                        " (valid from {}, now {})",
                        utc(not_before.as_secs()),
                        utc(time.as_secs())
                    ))
                }
                CertificateError::NotValidForName => TlsError::WrongHostName(String::new()),
                CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => {
                    let names: Vec<String> = presented
                        .iter()
                        .map(|p| {
                            p.strip_prefix("DnsName(\"")
                                .and_then(|n| n.strip_suffix("\")"))
                                .map_or_else(|| p.clone(), str::to_owned)
                        })
                        .collect();
                    TlsError::WrongHostName(format!(
                        ": dialled {}, the certificate names {}",
                        expected.to_str(),
                        names.join(", ")
                    ))
                }
                CertificateError::Revoked => TlsError::Revoked,
                other => TlsError::BadCertificate(format!("{other:?}")),
            },
            E::AlertReceived(a) => TlsError::ServerAlert(format!("{a:?}")),
            E::InvalidMessage(m) => TlsError::NotTls(format!("{m:?}")),
            E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
                TlsError::Protocol(e.to_string())
            }
            other => TlsError::Protocol(other.to_string()),
        }
    }

    /// Names the failure inside an `io::Error` from a TLS stream or connector: the
    /// `TlsError` or rustls error it wraps, an end of stream during the handshake,
    /// a timeout, or the socket error itself.
    ///
    /// ```
    /// use std::io;
    /// use zk_tls::TlsError;
    /// let e = io::Error::new(io::ErrorKind::InvalidData, TlsError::UnknownCa);
    /// assert_eq!(TlsError::from_io(&e), TlsError::UnknownCa);
    /// let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
    /// assert_eq!(TlsError::from_io(&eof), TlsError::ClosedDuringHandshake);
    /// ```
    pub fn from_io(e: &io::Error) -> TlsError {
        if let Some(inner) = e.get_ref() {
            if let Some(t) = inner.downcast_ref::<TlsError>() {
                return t.clone();
            }
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return TlsError::from_rustls(r);
            }
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => TlsError::ClosedDuringHandshake,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TlsError::HandshakeTimeout,
            _ => TlsError::Io(e.to_string()),
        }
    }

    /// `from_io` as an `io::Error` (what connectors return for a failed handshake).
    pub fn handshake_failed(e: io::Error) -> io::Error {
        TlsError::from_io(&e).into()
    }
}

/// An I/O error from a connector or stream as the adapters report it (the
/// client's last connect error): a TLS failure inside it named as [`TlsError`]
/// names it, any other error as it is.
pub fn describe_io(e: &io::Error) -> String {
    if e.get_ref()
        .is_some_and(|i| i.is::<rustls::Error>() || i.is::<TlsError>())
    {
        return TlsError::from_io(e).to_string();
    }
    e.to_string()
}

/// `YYYY-MM-DD hh:mm:ss UTC` for seconds since 1970 (days to civil date: H. Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_MARKER: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";

    #[test]
    fn debug_never_prints_key_bytes() {
        let key = format!("-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END PRIVATE KEY-----\n");
        let opts = TlsOptions::new().client_cert_pem("cert", key);
        let dbg = format!("{opts:?}");
        assert!(!dbg.contains(KEY_MARKER), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn option_errors_name_their_cause() {
        assert_eq!(
            TlsOptions::new().client_config().unwrap_err(),
            TlsError::NoRoots
        );
        let e = TlsOptions::new()
            .ca_pem("not pem")
            .client_config()
            .unwrap_err();
        assert_eq!(
            e,
            TlsError::NoCertificate {
                what: "CA certificate"
            }
        );
        let e = TlsOptions::new()
            .ca_file("/nonexistent/ca.pem")
            .client_config()
            .unwrap_err();
        assert!(matches!(e, TlsError::ReadFile { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/ca.pem"));
        let e = TlsOptions::new()
            .danger_accept_invalid_certs_for_tests()
            .client_cert_pem("x", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
            .client_config()
            .unwrap_err();
        // The chain comes first.
        assert_eq!(
            e,
            TlsError::NoCertificate {
                what: "client certificate"
            }
        );
        assert_eq!(
            key_of(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
                .unwrap_err(),
            TlsError::EncryptedKey
        );
        assert_eq!(key_of(b"nothing").unwrap_err(), TlsError::NoPrivateKey);
        assert!(TlsOptions::new()
            .danger_accept_invalid_certs_for_tests()
            .client_config()
            .is_ok());
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(978_307_200), "2001-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01 UTC");
    }

    #[test]
    fn server_names() {
        let o = TlsOptions::new();
        assert!(matches!(
            o.server_name_for("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            o.server_name_for("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            o.server_name_for("zk1.example.com").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(o.server_name_for("bad name!").is_err());
        let o = o.server_name("localhost");
        assert!(matches!(
            o.server_name_for("127.0.0.1").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn io_errors_are_classified() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(TlsError::from_io(&eof), TlsError::ClosedDuringHandshake);
        let r = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(TlsError::from_io(&r), TlsError::UnknownCa);
        let wrapped: io::Error = TlsError::Expired(String::new()).into();
        assert_eq!(
            TlsError::from_io(&wrapped),
            TlsError::Expired(String::new())
        );
        assert!(wrapped.to_string().contains("expired"));
    }
}
