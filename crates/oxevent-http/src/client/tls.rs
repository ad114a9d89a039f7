//! HTTPS for the client (the `openssl` feature): [`TlsConfig`], [`TlsFailure`], and the step
//! that puts TLS over a freshly connected socket.
//!
//! The connection connects a plain socket bufferevent as for HTTP (name lookup and Happy
//! Eyeballs through [`BufferEvent::connect_hostname`]); once the socket is connected it wraps
//! it in a TLS filter ([`oxevent_openssl::filter_new`], state `Connecting`), and the
//! connection counts as connected only when the TLS bufferevent reports `CONNECTED`, that is
//! after the handshake and the certificate checks. The connect timeout covers the name
//! lookup, the TCP connect and the handshake.

use std::fmt;
use std::io;
use std::path::Path;

use oxevent_bufferevent::{BevOptions, BufferEvent};
use oxevent_core::EventBase;
use oxevent_openssl::openssl::error::ErrorStack;
use oxevent_openssl::openssl::ssl::{Ssl, SslConnector};
use oxevent_openssl::openssl::x509::X509VerifyResult;
use oxevent_openssl::{SslBufferEvent, TlsError, TlsState};

/// The most ciphertext the socket under TLS reads at once: several full records (a full
/// record of 16 KiB of plaintext is 16,406 bytes), as `oxevent_openssl::socket_new` sets.
const SOCKET_MAX_READ: usize = 64 * 1024;
/// The most ciphertext the socket under TLS writes at once.
const SOCKET_MAX_WRITE: usize = 256 * 1024;

/// How an HTTPS connection sets up TLS: the trusted roots, whether the server's certificate
/// and name are verified (they are unless [`insecure`](Self::insecure) says otherwise), the
/// name sent as SNI and checked against the certificate (the connection's host unless
/// [`server_name`](Self::server_name) says otherwise), and whether a close-delimited
/// response may end without TLS's close_notify.
///
/// Cloning is cheap (the OpenSSL context is shared).
///
/// ```no_run
/// use oxevent_core::EventBase;
/// use oxevent_http::client::{Connection, TlsConfig};
///
/// let mut base = EventBase::new()?;
/// // The system's roots, verification on.
/// let public = Connection::new_https(&mut base, "example.com", 443, TlsConfig::new()?);
/// // The system's roots plus a private CA.
/// let tls = TlsConfig::with_ca_file("ca.pem")?;
/// let private = Connection::new_https(&mut base, "intranet.example", 443, tls);
/// // No verification at all: any certificate, for any name (tests and tools only).
/// let tls = TlsConfig::new()?.insecure();
/// let lab = Connection::new_https(&mut base, "192.0.2.7", 8443, tls);
/// for conn in [public, private, lab] {
///     conn.free(&mut base)?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    connector: SslConnector,
    verify: bool,
    server_name: Option<String>,
    allow_truncation: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("verify", &self.verify)
            .field("server_name", &self.server_name)
            .field("allow_truncation", &self.allow_truncation)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// The system's trusted roots, TLS 1.2 or later, certificate and host-name verification
    /// on ([`oxevent_openssl::client_connector`]).
    ///
    /// # Errors
    ///
    /// OpenSSL's, setting up the context.
    pub fn new() -> Result<Self, ErrorStack> {
        Ok(Self::from_connector(oxevent_openssl::client_connector(
            None,
        )?))
    }

    /// As [`new`](Self::new), trusting the certificates of `ca_file` (a PEM bundle) too.
    ///
    /// # Errors
    ///
    /// OpenSSL's, for an unreadable or malformed file.
    pub fn with_ca_file(ca_file: impl AsRef<Path>) -> Result<Self, ErrorStack> {
        Ok(Self::from_connector(oxevent_openssl::client_connector(
            Some(ca_file.as_ref()),
        )?))
    }

    /// A configuration over `connector`, a context of the caller's (client certificates,
    /// ALPN, ciphers, roots...). Verification stays on: each session is made with
    /// [`oxevent_openssl::client_ssl`], which checks the certificate against the connector's
    /// roots and its name against the host.
    pub fn from_connector(connector: SslConnector) -> Self {
        Self {
            connector,
            verify: true,
            server_name: None,
            allow_truncation: false,
        }
    }

    /// Turns verification **off**: any certificate, for any name, is accepted
    /// ([`oxevent_openssl::insecure_client_ssl`]). The connection is then encrypted but
    /// not authenticated; for tests and tools (`https-client --insecure`) only.
    #[must_use]
    pub fn insecure(mut self) -> Self {
        self.verify = false;
        self
    }

    /// Whether the server's certificate and name are verified.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// Sends `name` as SNI and checks the certificate against it, instead of the
    /// connection's host (for a server reached by address, or through a tunnel).
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Accepts (or not, the default) a response whose body ends at the connection's close
    /// (neither `Content-Length` nor chunked) when the server closes without TLS's
    /// close_notify. Without close_notify such a body may have been cut short by an
    /// attacker, so by default the request fails with [`TlsFailure::Truncated`]; some servers
    /// (`openssl s_server -www`, old ones) never send it. Bodies with a length are not
    /// affected: their end is known.
    #[must_use]
    pub fn allow_truncation(mut self, allow: bool) -> Self {
        self.allow_truncation = allow;
        self
    }

    /// Whether a close-delimited body may end without close_notify
    /// ([`allow_truncation`](Self::allow_truncation)).
    pub fn allows_truncation(&self) -> bool {
        self.allow_truncation
    }

    /// The OpenSSL context sessions are made from.
    pub fn connector(&self) -> &SslConnector {
        &self.connector
    }

    /// A session for `host` (or the configured server name).
    fn session(&self, host: &str) -> Result<Ssl, ErrorStack> {
        let name = self.server_name.as_deref().unwrap_or(host);
        if self.verify {
            oxevent_openssl::client_ssl(&self.connector, name)
        } else {
            oxevent_openssl::insecure_client_ssl(&self.connector, name)
        }
    }
}

/// Why TLS failed on an HTTPS connection (in [`ClientError::Tls`](super::ClientError::Tls)).
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The handshake failed: the server's certificate or name did not verify, no common
    /// protocol or cipher, the server closed... `error` is what the TLS bufferevent reported
    /// (with OpenSSL's error stack), `verify` the certificate check's result.
    Handshake {
        /// The TLS bufferevent's error, if it gave one.
        error: Option<TlsError>,
        /// The certificate verification result (`X509_V_OK` if the certificate was fine, or
        /// not checked).
        verify: X509VerifyResult,
    },
    /// TLS failed on an established connection (a bad record, an alert).
    Session(TlsError),
    /// A body delimited by the connection's close ended without close_notify (see
    /// [`TlsConfig::allow_truncation`]).
    Truncated,
    /// A session could not be set up (OpenSSL's error).
    Setup(ErrorStack),
}

impl TlsFailure {
    /// The OpenSSL error stack, when OpenSSL produced the error.
    pub fn error_stack(&self) -> Option<&ErrorStack> {
        match self {
            Self::Handshake { error, .. } => error.as_ref().and_then(TlsError::error_stack),
            Self::Session(e) => e.error_stack(),
            Self::Setup(s) => Some(s),
            Self::Truncated => None,
        }
    }

    /// The certificate verification result of a failed handshake.
    pub fn verify_result(&self) -> Option<X509VerifyResult> {
        match self {
            Self::Handshake { verify, .. } => Some(*verify),
            _ => None,
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake { error, verify } => {
                f.write_str("TLS handshake failed")?;
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                if *verify != X509VerifyResult::OK {
                    write!(f, " (certificate: {})", verify.error_string())?;
                }
                Ok(())
            }
            Self::Session(e) => write!(f, "TLS session failed: {e}"),
            Self::Truncated => {
                f.write_str("the server closed without close_notify: the body may be truncated")
            }
            Self::Setup(e) => write!(f, "TLS setup failed: {e}"),
        }
    }
}

impl std::error::Error for TlsFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handshake { error: Some(e), .. } | Self::Session(e) => Some(e),
            Self::Setup(e) => Some(e),
            _ => None,
        }
    }
}

/// Puts a TLS client over `plain`, a connected socket bufferevent, for `host`. On error
/// `plain` is left as it was (the caller frees it).
pub(super) fn wrap(
    base: &mut EventBase,
    cfg: &TlsConfig,
    host: &str,
    plain: BufferEvent,
) -> Result<BufferEvent, TlsFailure> {
    let ssl = cfg.session(host).map_err(TlsFailure::Setup)?;
    let setup = |e: io::Error| TlsFailure::Setup(stack_of(e));
    plain
        .set_max_single_read(base, SOCKET_MAX_READ)
        .map_err(setup)?;
    plain
        .set_max_single_write(base, SOCKET_MAX_WRITE)
        .map_err(setup)?;
    let bev = oxevent_openssl::filter_new(
        base,
        plain,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .map_err(setup)?;
    // Dirty shutdowns stay refused: a close without close_notify is an error event with
    // `TlsError::UnexpectedEof`, which the connection tells apart from a clean close (see
    // `session_error`).
    Ok(bev)
}

/// An `io::Error` from the TLS crate's setup as an error stack, where it holds one.
fn stack_of(e: io::Error) -> ErrorStack {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsError>())
    {
        Some(TlsError::Stack(s)) => s.clone(),
        _ => ErrorStack::get(),
    }
}

/// The failure behind an event other than `CONNECTED` on `bev` during the handshake.
pub(super) fn handshake_failure(base: &mut EventBase, bev: BufferEvent) -> TlsFailure {
    let error = bev.openssl_error(base).ok().flatten();
    let verify = bev
        .ssl(base)
        .map(|s| s.verify_result())
        .unwrap_or(X509VerifyResult::OK);
    TlsFailure::Handshake { error, verify }
}

/// What an error event on an established TLS connection stands for, when TLS (rather than
/// the socket under it) is the cause.
pub(super) enum SessionError {
    /// The server closed the connection without close_notify.
    DirtyClose,
    /// TLS failed.
    Failed(TlsFailure),
}

/// Why an error event on an established TLS connection happened; `None` when the socket
/// under TLS failed.
pub(super) fn session_error(base: &mut EventBase, bev: BufferEvent) -> Option<SessionError> {
    match bev.openssl_error(base).ok().flatten()? {
        TlsError::Transport => None,
        TlsError::UnexpectedEof => Some(SessionError::DirtyClose),
        e => Some(SessionError::Failed(TlsFailure::Session(e))),
    }
}
