//! Ready-made OpenSSL configurations with this crate's defaults: peer and
//! host-name verification on for clients, TLS 1.2 at least, renegotiation
//! off, buffers released while idle (`SSL_MODE_RELEASE_BUFFERS`).

use std::path::Path;

use openssl::error::ErrorStack;
use openssl::pkey::{PKeyRef, Private};
use openssl::ssl::{
    Ssl, SslAcceptor, SslAcceptorBuilder, SslConnector, SslFiletype, SslMethod, SslMode,
    SslOptions, SslVerifyMode, SslVersion,
};
use openssl::x509::X509Ref;

/// A client context: the system's trusted roots (plus `ca_file`, a PEM
/// bundle, if given), TLS 1.2 or later, no renegotiation, buffers released
/// while idle.
///
/// # Errors
///
/// OpenSSL's, e.g. for an unreadable `ca_file`.
pub fn client_connector(ca_file: Option<&Path>) -> Result<SslConnector, ErrorStack> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_options(SslOptions::NO_RENEGOTIATION);
    b.set_mode(SslMode::RELEASE_BUFFERS);
    if let Some(ca) = ca_file {
        b.set_ca_file(ca)?;
    }
    Ok(b.build())
}

/// A client session for `host`: SNI set (unless `host` is an IP address),
/// the peer's certificate verified against the connector's roots, and its
/// name (or IP address) checked against `host`.
///
/// # Errors
///
/// OpenSSL's.
pub fn client_ssl(connector: &SslConnector, host: &str) -> Result<Ssl, ErrorStack> {
    connector.configure()?.into_ssl(host)
}

/// A client session for `host` that does **not** verify the peer: any
/// certificate, for any name, is accepted. Only for tests and tools
/// (`https-client --insecure`); SNI is still sent.
///
/// # Errors
///
/// OpenSSL's.
pub fn insecure_client_ssl(connector: &SslConnector, host: &str) -> Result<Ssl, ErrorStack> {
    let mut cfg = connector.configure()?.verify_hostname(false);
    cfg.set_verify(SslVerifyMode::NONE);
    cfg.into_ssl(host)
}

fn acceptor_builder() -> Result<SslAcceptorBuilder, ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_options(SslOptions::NO_RENEGOTIATION);
    b.set_mode(SslMode::RELEASE_BUFFERS);
    Ok(b)
}

/// A server context from PEM files: `cert` (the chain, leaf first) and
/// `key`; Mozilla's intermediate settings, no renegotiation, buffers
/// released while idle.
///
/// # Errors
///
/// OpenSSL's, e.g. for unreadable files or a key that does not match.
pub fn server_acceptor(cert: &Path, key: &Path) -> Result<SslAcceptor, ErrorStack> {
    let mut b = acceptor_builder()?;
    b.set_certificate_chain_file(cert)?;
    b.set_private_key_file(key, SslFiletype::PEM)?;
    b.check_private_key()?;
    Ok(b.build())
}

/// A server context from a certificate and key in memory, with the same
/// settings as [`server_acceptor`].
///
/// # Errors
///
/// OpenSSL's, e.g. for a key that does not match.
pub fn server_acceptor_from(
    cert: &X509Ref,
    key: &PKeyRef<Private>,
) -> Result<SslAcceptor, ErrorStack> {
    let mut b = acceptor_builder()?;
    b.set_certificate(cert)?;
    b.set_private_key(key)?;
    b.check_private_key()?;
    Ok(b.build())
}

/// A server session of `acceptor`, for [`crate::TlsState::Accepting`].
///
/// # Errors
///
/// OpenSSL's.
pub fn server_ssl(acceptor: &SslAcceptor) -> Result<Ssl, ErrorStack> {
    Ssl::new(acceptor.context())
}
