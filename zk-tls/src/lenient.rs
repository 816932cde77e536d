//! The certificate checks of the two lenient modes, `Verify::NoHostname` (kazoo's
//! `check_hostname=False`) and `Verify::Nothing`. Both still check the handshake's
//! signatures with the provider's algorithms (so the peer holds the key of the
//! certificate it showed); they differ only in how much of the certificate they check,
//! so one verifier serves both.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A verifier that accepts what the full check would refuse for the name (or for anything).
#[derive(Debug)]
pub(crate) struct Lenient {
    provider: Arc<CryptoProvider>,
    /// The chain and dates check; `None`: any certificate is accepted.
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl Lenient {
    /// Accepts any certificate (the handshake's signatures are still checked, so the
    /// peer holds the key of the certificate it showed, whoever that is).
    pub(crate) fn anything(provider: Arc<CryptoProvider>) -> Lenient {
        Lenient {
            provider,
            chain: None,
        }
    }

    /// Checks the chain and dates with `webpki` (built on `provider`), accepts any name.
    pub(crate) fn any_name(
        provider: Arc<CryptoProvider>,
        webpki: Arc<WebPkiServerVerifier>,
    ) -> Lenient {
        Lenient {
            provider,
            chain: Some(webpki),
        }
    }
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    // The signatures as the webpki verifier checks them: with the algorithms of the
    // provider it was built on.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
