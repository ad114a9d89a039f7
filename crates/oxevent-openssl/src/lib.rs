//! TLS bufferevents over the `openssl` crate (libevent's `bufferevent_ssl.h`).
//!
//! Where this sits: `oxevent-core` ← `oxevent-bufferevent` ← **`oxevent-openssl`**.
//!
//! A TLS bufferevent is an ordinary [`BufferEvent`]: the user reads
//! plaintext from its input, writes plaintext to its output, and gets the
//! usual callbacks; every `BufferEvent` method works on it. It comes in two
//! modes, as in libevent:
//!
//! - **socket mode** ([`socket_new`], `bufferevent_openssl_socket_new`):
//!   it owns an fd. It is one socket bufferevent whose reads and writes
//!   the TLS layer drives (its [`oxevent_bufferevent::bufferevent::Transport`]):
//!   [`BufferEvent::fd`] is its socket, [`BufferEvent::underlying`] is
//!   `None`, timeouts are its own, and [`connect`] (or
//!   [`BufferEvent::connect`]) connects it;
//! - **filter mode** ([`filter_new`], `bufferevent_openssl_filter_new`):
//!   it wraps any bufferevent (a socket, a pair, another filter).
//!
//! It starts in one of three [`TlsState`]s: `Connecting` (a client, whose
//! handshake starts at once), `Accepting` (a server, waiting for the
//! ClientHello) or `Open` (a session already handshaken). The handshake is
//! driven by OpenSSL's want-read/want-write answers as data comes and goes;
//! the event callback gets `CONNECTED` when it completes, or `ERROR` when
//! it fails, with the reason (and OpenSSL's error stack) in
//! [`SslBufferEvent::openssl_error`].
//!
//! OpenSSL never touches a socket itself: it runs over an in-memory
//! transport (`openssl::ssl::SslStream` over two
//! [`oxevent_bufferevent::Buffer`]s). In socket mode the socket is read
//! straight into that transport's receive buffer, and each record OpenSSL
//! finishes is sent straight from OpenSSL's buffer while nothing is queued
//! (what the socket does not take waits in the send buffer, with the write
//! event armed). In filter mode the transport is fed by the underlying
//! bufferevent through the filter hook
//! ([`oxevent_bufferevent::bufferevent::Filter`]). There are no raw BIO
//! calls, and this crate has no `unsafe` code (see
//! `docs/design/0004-tls.md`).
//!
//! # Behaviour
//!
//! - **Reads** honour the read watermarks and the max single read: no more
//!   than the room below the high watermark is decrypted into the input,
//!   at most the max single read per pass. Data OpenSSL already holds
//!   (decrypted or not) when reading stops is delivered as soon as reading
//!   resumes, with no new data from the network needed (libevent #690 and
//!   #854 left it stranded).
//! - **Writes** are cut into pieces of 16 KiB, so that each makes one full
//!   TLS record, whatever the segments of the output (libevent's
//!   `BUFFEREVENT_SSL_BATCH_WRITE`, always on). Encryption pauses while
//!   256 KiB of ciphertext wait below.
//! - **Closing**: freeing the bufferevent (or [`SslBufferEvent::shutdown`],
//!   or `flush` with `FlushMode::Finished`) sends close_notify. A peer
//!   that closes without close_notify is an `ERROR` unless dirty shutdowns
//!   are allowed ([`SslBufferEvent::set_allow_dirty_shutdown`]), in which
//!   case it is `EOF`.
//! - **Renegotiation** is off: contexts made here set
//!   `SslOptions::NO_RENEGOTIATION`, and [`SslBufferEvent::renegotiate`] is
//!   refused.
//! - **Verification**: [`client_ssl`] verifies the peer's certificate and
//!   host name; turning that off takes [`insecure_client_ssl`].
//!
//! ```no_run
//! use oxevent_core::{EventBase, What};
//! use oxevent_bufferevent::{BevFlags, BevOptions};
//! use oxevent_openssl::{TlsState, SslBufferEvent};
//!
//! let mut base = EventBase::new().unwrap();
//! let connector = oxevent_openssl::client_connector(None).unwrap();
//! let ssl = oxevent_openssl::client_ssl(&connector, "example.com").unwrap();
//! let bev = oxevent_openssl::socket_new(
//!     &mut base, None, ssl, TlsState::Connecting, BevOptions::CLOSE_ON_FREE,
//! ).unwrap();
//! bev.on_event(&mut base, |base, bev, ev| {
//!     if ev.what.contains(BevFlags::CONNECTED) {
//!         bev.write(base, b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").unwrap();
//!     } else if ev.what.contains(BevFlags::ERROR) {
//!         eprintln!("{:?}", bev.openssl_error(base).unwrap());
//!     }
//! }).unwrap();
//! bev.enable(&mut base, What::READ | What::WRITE).unwrap();
//! oxevent_openssl::connect(&mut base, bev, "93.184.216.34:443".parse().unwrap()).unwrap();
//! base.dispatch().unwrap();
//! ```

#![forbid(unsafe_code)]

mod config;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use openssl::ssl::{Ssl, SslRef};
use oxevent_bufferevent::{BevOptions, BufferEvent};
use oxevent_core::EventBase;

pub use config::{
    client_connector, client_ssl, insecure_client_ssl, server_acceptor, server_acceptor_from,
    server_ssl,
};
pub use openssl;
pub use tls::TlsError;

use tls::TlsFilter;

/// Where a TLS bufferevent starts (libevent's `enum bufferevent_ssl_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "bufferevent_ssl_state")]
pub enum TlsState {
    /// The session is already handshaken (`BUFFEREVENT_SSL_OPEN`).
    Open,
    /// A client: the handshake starts at once (`BUFFEREVENT_SSL_CONNECTING`).
    Connecting,
    /// A server: waits for the ClientHello (`BUFFEREVENT_SSL_ACCEPTING`).
    Accepting,
}

/// Options of a TLS bufferevent (libevent's `BUFFEREVENT_SSL_*` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SslFlags(u32);

impl SslFlags {
    /// A peer closing without close_notify is `EOF`, not `ERROR`
    /// (`BUFFEREVENT_SSL_DIRTY_SHUTDOWN`).
    pub const DIRTY_SHUTDOWN: SslFlags = SslFlags(1);
    /// Write full records whatever the output's segments
    /// (`BUFFEREVENT_SSL_BATCH_WRITE`): always on here, accepted for
    /// compatibility.
    pub const BATCH_WRITE: SslFlags = SslFlags(2);

    /// No flag.
    #[must_use]
    pub const fn empty() -> Self {
        SslFlags(0)
    }

    /// The raw value (libevent's numbers).
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether all of `other` is set.
    #[must_use]
    pub const fn contains(self, other: SslFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    #[must_use]
    pub const fn union(self, other: SslFlags) -> Self {
        SslFlags(self.0 | other.0)
    }

    /// `self` without `other`.
    #[must_use]
    pub const fn difference(self, other: SslFlags) -> Self {
        SslFlags(self.0 & !other.0)
    }
}

impl std::ops::BitOr for SslFlags {
    type Output = SslFlags;
    fn bitor(self, rhs: SslFlags) -> SslFlags {
        self.union(rhs)
    }
}

/// A TLS bufferevent over `fd`, or over no fd yet for [`connect`]
/// (`bufferevent_openssl_socket_new`). `ssl` is configured beforehand (SNI,
/// ALPN, verification: see [`client_ssl`] and [`server_ssl`]). With
/// [`BevOptions::CLOSE_ON_FREE`] the fd is closed on free. Writing starts
/// enabled, reading does not; the handshake runs regardless.
///
/// # Errors
///
/// OpenSSL's error setting up the session (as `io::Error::other` holding a
/// [`TlsError`]); the OS error for an fd that cannot be watched.
#[doc(alias = "bufferevent_openssl_socket_new")]
pub fn socket_new(
    base: &mut EventBase,
    fd: Option<OwnedFd>,
    ssl: Ssl,
    state: TlsState,
    options: BevOptions,
) -> io::Result<BufferEvent> {
    let tls = TlsFilter::new(ssl, state).map_err(|e| io::Error::other(TlsError::Stack(e)))?;
    let bev = BufferEvent::socket_with_transport(base, fd, Box::new(tls), options)?;
    if let Err(e) = bev.with_transport_hook::<TlsFilter, _>(base, |t, cx| {
        t.attach(cx);
        t.start(cx);
        t.detach();
    }) {
        let _ = bev.free(base);
        return Err(e);
    }
    Ok(bev)
}

/// A TLS bufferevent over `under`, any bufferevent
/// (`bufferevent_openssl_filter_new`). With [`BevOptions::CLOSE_ON_FREE`]
/// freeing it frees `under`. `under`'s callbacks are taken over.
///
/// # Errors
///
/// `NotFound` if `under` was freed; OpenSSL's error setting up the session.
#[doc(alias = "bufferevent_openssl_filter_new")]
pub fn filter_new(
    base: &mut EventBase,
    under: BufferEvent,
    ssl: Ssl,
    state: TlsState,
    options: BevOptions,
) -> io::Result<BufferEvent> {
    let filter = TlsFilter::new(ssl, state).map_err(|e| io::Error::other(TlsError::Stack(e)))?;
    let bev = BufferEvent::filter_with(base, under, Box::new(filter), options)?;
    bev.with_filter_hook::<TlsFilter, _>(base, |t, cx| t.start(cx))?;
    Ok(bev)
}

/// Connects a socket-mode TLS bufferevent to `addr`
/// (`bufferevent_socket_connect` on a TLS bufferevent). The handshake
/// follows the TCP connect; `CONNECTED` reaches the event callback when
/// both are done.
///
/// # Errors
///
/// `InvalidInput` for a bufferevent that is not a TLS one over a socket;
/// the OS error creating the socket.
#[doc(alias = "bufferevent_socket_connect")]
pub fn connect(base: &mut EventBase, bev: BufferEvent, addr: SocketAddr) -> io::Result<()> {
    if socket_mode(bev, base) {
        return bev.connect(base, addr);
    }
    // Filter mode over a socket bufferevent: connect that.
    bev.filter_hook::<TlsFilter>(base)?;
    bev.filter_underlying(base)?.connect(base, addr)
}

/// Whether `bev` is a socket-mode TLS bufferevent.
fn socket_mode(bev: BufferEvent, base: &mut EventBase) -> bool {
    bev.transport_hook::<TlsFilter>(base).is_ok()
}

/// The TLS state machine of a TLS bufferevent, in either mode.
fn tls(bev: BufferEvent, base: &mut EventBase) -> io::Result<&mut TlsFilter> {
    if socket_mode(bev, base) {
        bev.transport_hook::<TlsFilter>(base)
    } else {
        bev.filter_hook::<TlsFilter>(base)
    }
}

/// TLS operations on a [`BufferEvent`] made by [`socket_new`] or
/// [`filter_new`]. On any other bufferevent they fail with `InvalidInput`.
pub trait SslBufferEvent: Copy {
    /// The OpenSSL session, for the peer certificate, the verify result,
    /// the server name, the ALPN protocol, the cipher...
    /// (`bufferevent_openssl_get_ssl`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_openssl_get_ssl")]
    fn ssl(self, base: &mut EventBase) -> io::Result<&SslRef>;

    /// Takes the error behind the last `ERROR` event, if any
    /// (`bufferevent_get_openssl_error`; libevent pops one code at a time,
    /// this gives the whole OpenSSL error stack at once).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_get_openssl_error")]
    fn openssl_error(self, base: &mut EventBase) -> io::Result<Option<TlsError>>;

    /// Whether the handshake has completed.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    fn is_handshake_done(self, base: &mut EventBase) -> io::Result<bool>;

    /// The state the bufferevent was created in.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    fn initial_state(self, base: &mut EventBase) -> io::Result<TlsState>;

    /// Ciphertext received from the peer and not decrypted yet: what the
    /// TLS layer has taken in (at most four records; in socket mode the
    /// socket is not read past that), plus, in filter mode, what waits in
    /// the underlying bufferevent's input.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    fn pending_ciphertext(self, base: &mut EventBase) -> io::Result<usize>;

    /// Allows (or not) a peer to close without close_notify: `EOF` instead
    /// of `ERROR` (`bufferevent_openssl_set_allow_dirty_shutdown`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_openssl_set_allow_dirty_shutdown")]
    fn set_allow_dirty_shutdown(self, base: &mut EventBase, allow: bool) -> io::Result<()>;

    /// Whether dirty shutdowns are allowed
    /// (`bufferevent_openssl_get_allow_dirty_shutdown`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_openssl_get_allow_dirty_shutdown")]
    fn allow_dirty_shutdown(self, base: &mut EventBase) -> io::Result<bool>;

    /// The flags (`bufferevent_ssl_get_flags`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_ssl_get_flags")]
    fn ssl_flags(self, base: &mut EventBase) -> io::Result<SslFlags>;

    /// Sets flags; returns the new set (`bufferevent_ssl_set_flags`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_ssl_set_flags")]
    fn set_ssl_flags(self, base: &mut EventBase, flags: SslFlags) -> io::Result<SslFlags>;

    /// Clears flags; returns the new set (`bufferevent_ssl_clear_flags`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_ssl_clear_flags")]
    fn clear_ssl_flags(self, base: &mut EventBase, flags: SslFlags) -> io::Result<SslFlags>;

    /// Renegotiation (`bufferevent_ssl_renegotiate`) is not supported:
    /// it is off (TLS 1.3 has none, and TLS 1.2 renegotiation is a known
    /// source of attacks). Always an error.
    ///
    /// # Errors
    ///
    /// `Unsupported` (or `NotFound` / `InvalidInput` as for the others).
    #[doc(alias = "bufferevent_ssl_renegotiate")]
    fn renegotiate(self, base: &mut EventBase) -> io::Result<()>;

    /// Sends close_notify now (`SSL_shutdown`), after what is in the
    /// output; nothing more can be written. The bufferevent stays until
    /// freed (free it once the write callback says the output drained).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind.
    #[doc(alias = "SSL_shutdown")]
    fn shutdown(self, base: &mut EventBase) -> io::Result<()>;
}

impl SslBufferEvent for BufferEvent {
    fn ssl(self, base: &mut EventBase) -> io::Result<&SslRef> {
        Ok(tls(self, base)?.stream.ssl())
    }

    fn openssl_error(self, base: &mut EventBase) -> io::Result<Option<TlsError>> {
        Ok(tls(self, base)?.error.take().map(|e| *e))
    }

    fn is_handshake_done(self, base: &mut EventBase) -> io::Result<bool> {
        Ok(tls(self, base)?.is_open())
    }

    fn initial_state(self, base: &mut EventBase) -> io::Result<TlsState> {
        Ok(tls(self, base)?.initial)
    }

    fn pending_ciphertext(self, base: &mut EventBase) -> io::Result<usize> {
        let held = tls(self, base)?.stream.get_ref().rx_len();
        if socket_mode(self, base) {
            return Ok(held);
        }
        let under = self.filter_underlying(base)?;
        Ok(held + under.input(base)?.len())
    }

    fn set_allow_dirty_shutdown(self, base: &mut EventBase, allow: bool) -> io::Result<()> {
        let f = tls(self, base)?;
        f.flags = if allow {
            f.flags.union(SslFlags::DIRTY_SHUTDOWN)
        } else {
            f.flags.difference(SslFlags::DIRTY_SHUTDOWN)
        };
        Ok(())
    }

    fn allow_dirty_shutdown(self, base: &mut EventBase) -> io::Result<bool> {
        Ok(tls(self, base)?.flags.contains(SslFlags::DIRTY_SHUTDOWN))
    }

    fn ssl_flags(self, base: &mut EventBase) -> io::Result<SslFlags> {
        Ok(tls(self, base)?.flags)
    }

    fn set_ssl_flags(self, base: &mut EventBase, flags: SslFlags) -> io::Result<SslFlags> {
        let f = tls(self, base)?;
        f.flags = f.flags.union(flags);
        Ok(f.flags)
    }

    fn clear_ssl_flags(self, base: &mut EventBase, flags: SslFlags) -> io::Result<SslFlags> {
        let f = tls(self, base)?;
        f.flags = f.flags.difference(flags);
        Ok(f.flags)
    }

    fn renegotiate(self, base: &mut EventBase) -> io::Result<()> {
        tls(self, base)?;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "TLS renegotiation is not supported",
        ))
    }

    fn shutdown(self, base: &mut EventBase) -> io::Result<()> {
        if socket_mode(self, base) {
            self.with_transport_hook::<TlsFilter, _>(base, |t, cx| {
                t.attach(cx);
                t.shutdown(cx);
                t.detach();
            })
        } else {
            self.with_filter_hook::<TlsFilter, _>(base, |t, cx| t.shutdown(cx))
        }
    }
}
