//! QUIC's TLS between ring members, bound to their node keys: each node presents a
//! self-signed certificate over its Ed25519 identity key, and each end accepts the other only
//! if that key hashes to the overlay address it expects. No certificate authority is
//! involved; the ring address *is* the key's fingerprint, so a forwarder or a member that
//! routes packets under another's address cannot complete the handshake.

use std::sync::Arc;

use brunet_compat::address::Address as RingAddress;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use xmpp_ext::NodeSecret;
use xmpp_ext::keys::address_of_identity;

use super::ServiceError;

/// The ALPN protocol of chamber's service connections.
pub const ALPN: &[u8] = b"chamber-services/1";

/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32 key bytes (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER of an Ed25519 PKCS#8 v1 private key up to the 32 seed bytes (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The name a client asks for: the server's address in hex (a DNS label of 40 characters).
pub fn server_name(addr: &RingAddress) -> String {
    hex::encode(addr.as_bytes())
}

/// The overlay address whose identity key signed `cert`, if it is an Ed25519 certificate.
pub fn cert_address(cert: &CertificateDer<'_>) -> Option<RingAddress> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = ee.subject_public_key_info();
    let key = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let key: [u8; 32] = key.try_into().ok()?;
    Some(RingAddress::from_bytes(
        address_of_identity(&key).to_bytes(),
    ))
}

/// Our certificate and its key, made from the node's identity key.
fn certificate(
    secret: &NodeSecret,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), ServiceError> {
    let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(&secret.to_bytes()[..32]);
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let tls = |e: rcgen::Error| ServiceError::Tls(e.to_string());
    let key = rcgen::KeyPair::try_from(&der).map_err(tls)?;
    let name = server_name(&RingAddress::from_bytes(
        secret.public().overlay_address().to_bytes(),
    ));
    let params = rcgen::CertificateParams::new(vec![name]).map_err(tls)?;
    let cert = params.self_signed(&key).map_err(tls)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(der)))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server side: every member's connection, each client proving its own key.
pub fn server_config(secret: &NodeSecret) -> Result<quinn::ServerConfig, ServiceError> {
    let (cert, key) = certificate(secret)?;
    let provider = provider();
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServiceError::Tls(e.to_string()))?
        .with_client_cert_verifier(Arc::new(MemberKey { provider }))
        .with_single_cert(vec![cert], key)
        .map_err(|e| ServiceError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| ServiceError::Tls(e.to_string()))?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// The client side: the server must hold the key of the address dialled (its server name).
pub fn client_config(secret: &NodeSecret) -> Result<quinn::ClientConfig, ServiceError> {
    let (cert, key) = certificate(secret)?;
    let provider = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServiceError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(MemberKey { provider }))
        .with_client_auth_cert(vec![cert], key)
        .map_err(|e| ServiceError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| ServiceError::Tls(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// Accepts a certificate whose Ed25519 key is the expected address's (servers) or any
/// member's (clients: the connection's source address is checked against it afterwards).
#[derive(Debug)]
struct MemberKey {
    provider: Arc<CryptoProvider>,
}

impl MemberKey {
    fn verify13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
}

fn bad_cert() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

impl ServerCertVerifier for MemberKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ServerName::DnsName(name) = server_name else {
            return Err(bad_cert());
        };
        let got = cert_address(end_entity).ok_or_else(bad_cert)?;
        if server_name_matches(name.as_ref(), &got) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(bad_cert())
        }
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for MemberKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        cert_address(end_entity).ok_or_else(bad_cert)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn server_name_matches(name: &str, addr: &RingAddress) -> bool {
    name.eq_ignore_ascii_case(&server_name(addr))
}

/// The address a connection's peer proved with its certificate.
pub fn peer_address(conn: &quinn::Connection) -> Option<RingAddress> {
    let id = conn.peer_identity()?;
    let certs = id.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().and_then(cert_address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_node_address() {
        let secret = NodeSecret::generate(&mut rand::rngs::OsRng);
        let (cert, _) = certificate(&secret).unwrap();
        let want = RingAddress::from_bytes(secret.public().overlay_address().to_bytes());
        assert_eq!(cert_address(&cert), Some(want));
        assert!(server_name_matches(&server_name(&want), &want));
        let other = NodeSecret::generate(&mut rand::rngs::OsRng);
        let (c2, _) = certificate(&other).unwrap();
        assert_ne!(cert_address(&c2), Some(want));
        assert_eq!(
            cert_address(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
            None
        );
    }
}
