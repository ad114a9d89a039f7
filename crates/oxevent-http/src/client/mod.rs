//! The HTTP/1.1 client (libevent's `evhttp_connection` and `evhttp_make_request`).
//!
//! A [`Connection`] is a handle, like a [`BufferEvent`]: its state lives in the
//! [`EventBase`], every method takes the base, and a freed connection's handle gives
//! `NotFound`. It connects lazily, on the first request, to a host and port (resolved through
//! a [`Resolve`], the blocking [`BlockingResolver`] unless [`Connection::set_resolver`] says
//! otherwise, and tried address by address through [`BufferEvent::connect_hostname`]) or to
//! a Unix socket, and keeps the socket for the requests that follow (keep-alive).
//!
//! # Requests
//!
//! [`Connection::make_request`] queues a [`Request`]; the connection sends the queue in order
//! and calls each request's completion callback with its [`Response`] or a [`ClientError`].
//! By default one request is in flight at a time. [`Connection::set_pipelining`] lets up to N
//! idempotent requests go out before their responses come back (RFC 9112 §9.3.2: a
//! non-idempotent request is sent only when nothing is in flight, and nothing follows it
//! until its response is in). Responses are matched to requests in order.
//!
//! A response is delivered whole, or streamed: with [`Request::on_chunk`] each piece of the
//! body goes to the callback as it arrives, and the callback may return [`Flow::Pause`] to
//! stop reading from the socket (the kernel's buffers then fill and TCP slows the server
//! down) until [`RequestHandle::resume`].
//!
//! # Failures
//!
//! - Connect, read and write timeouts ([`Connection::set_timeout`] and friends; libevent's
//!   defaults: 45 s to connect, 50 s to read and write).
//! - Retries ([`Connection::set_retries`], 0 by default): a request whose connection could not
//!   be established, or an idempotent request whose connection failed before any of its
//!   response arrived, is tried again after a backoff that starts at
//!   [`Connection::set_initial_retry`] (2 s) and doubles each time, up to an hour.
//! - Limits on the response head and body ([`Connection::set_max_headers_size`],
//!   [`Connection::set_max_body_size`]; 16 KiB and 64 MiB by default): past them the request
//!   fails with [`ClientError::DataTooLong`] and the connection is closed.
//! - A malformed response fails its request with [`ClientError::InvalidHeader`] or
//!   [`ClientError::InvalidBody`] and closes the connection; the requests pipelined behind it
//!   are sent again on a new one.
//! - [`RequestHandle::cancel`] drops a queued request, or closes the connection of one in
//!   flight (it may be called from any callback, the request's own included).
//!
//! Callbacks always run from the loop, never from inside a method of this module, so a
//! callback may make requests, cancel them or free the connection.
//!
//! An idle connection keeps watching its socket (to notice the server closing it), which
//! keeps the loop running, as in libevent: free the connection, or ask for
//! [`Connection::free_on_completion`], to let the loop exit once the work is done.
//!
//! # HTTPS
//!
//! With the `openssl` feature, `Connection::new_https` (or [`Connection::for_uri`] with an
//! `https://` URI) makes a connection that speaks TLS: each socket is connected as for HTTP,
//! then a TLS client is put over it (a filter bufferevent of `oxevent-openssl`), and requests
//! go out once the handshake is done. The server's certificate is verified against the
//! trusted roots of the `TlsConfig` (the system's by default, plus a CA file with
//! `TlsConfig::with_ca_file`) and its name against the host, which is also sent as SNI;
//! turning verification off takes an explicit `TlsConfig::insecure`. TLS failures reach
//! the requests as `ClientError::Tls`, with OpenSSL's error stack and the certificate
//! check's result. A body delimited by the connection's close must end with TLS's
//! close_notify, or the request fails (`TlsConfig::allow_truncation` relaxes this). The
//! connect timeout covers the handshake too.
//!
//! Each connection attempt gets its bufferevent from a factory
//! ([`Connection::with_factory`]); the default makes a plain socket bufferevent. The factory
//! must return a socket-kind bufferevent without an fd, which the connection then connects
//! (as libevent's `evhttp_connection_base_bufferevent_new` does with its `bev`); with
//! `Connection::set_tls` TLS then goes over it. A bufferevent connected (and handshaken)
//! beforehand can be handed over with [`Connection::from_bufferevent`].
//!
//! # Example
//!
//! ```no_run
//! use oxevent_core::EventBase;
//! use oxevent_http::client::{Connection, Request};
//!
//! let mut base = EventBase::new()?;
//! let conn = Connection::new(&mut base, "example.com", 80);
//! conn.make_request(&mut base, Request::get("/", move |base, result| {
//!     match result {
//!         Ok(resp) => println!("{} {} bytes", resp.code(), resp.body().len()),
//!         Err(e) => eprintln!("error: {e}"),
//!     }
//!     let _ = conn.free(base);
//! }))?;
//! base.dispatch()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conn;
mod request;
#[cfg(feature = "openssl")]
mod tls;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use oxevent_bufferevent::{BlockingResolver, BufferEvent, Family, Resolve};
use oxevent_core::EventBase;

use crate::uri::Uri;

pub use request::{
    BodyChunk, BodySource, ChunkFn, ClientError, CompleteFn, Flow, HeadFn, Request, Response,
    TimeoutKind,
};

#[cfg(feature = "openssl")]
pub use tls::{TlsConfig, TlsFailure};

use conn::{Target, state};
use oxevent_bufferevent::slab::Key;

/// Makes the bufferevent for one connection attempt: a socket-kind bufferevent with no fd
/// yet, which the connection connects (see the [module docs](self#https)).
pub type BevFactory = Box<dyn FnMut(&mut EventBase) -> io::Result<BufferEvent>>;

/// The most requests [`Connection::set_pipelining`] lets be in flight at once.
pub const MAX_PIPELINE: usize = 128;

/// A handle to an HTTP client connection in one [`EventBase`] (`struct evhttp_connection *`).
///
/// It is `Copy`; the connection lives in the base until [`free`](Self::free).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "evhttp_connection")]
pub struct Connection {
    key: Key,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection({})", self.key)
    }
}

/// A handle to one request made with [`Connection::make_request`]: to cancel it or resume
/// its streamed body. It is `Copy`; once the request completed, its methods do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestHandle {
    conn: Connection,
    id: u64,
}

impl RequestHandle {
    /// The connection the request was made on.
    #[doc(alias = "evhttp_request_get_connection")]
    pub fn connection(self) -> Connection {
        self.conn
    }

    /// Cancels the request (`evhttp_cancel_request`): a queued one is dropped, one in flight
    /// closes the connection (the requests pipelined with it are sent again on a new one).
    /// Its completion callback then runs from the loop with [`ClientError::Cancelled`].
    /// Returns whether the request was still pending.
    #[doc(alias = "evhttp_cancel_request")]
    pub fn cancel(self, base: &mut EventBase) -> bool {
        conn::cancel(base, self.conn.key, self.id)
    }

    /// Resumes reading a streamed body paused by [`Flow::Pause`]. Returns whether the request
    /// was paused.
    pub fn resume(self, base: &mut EventBase) -> bool {
        conn::resume(base, self.conn.key, self.id)
    }

    /// Asks a streamed request body's source for more after it returned
    /// [`BodyChunk::Wait`] (see [`Request::body_stream`]); the source runs from the loop.
    /// Calling it before the source has returned `Wait` (from inside the source, say)
    /// makes its next `Wait` ask again at once. Returns whether the request is still
    /// sending its body.
    pub fn resume_body(self, base: &mut EventBase) -> bool {
        conn::resume_body(base, self.conn.key, self.id)
    }
}

impl Connection {
    fn with_target(base: &mut EventBase, target: Target, factory: Option<BevFactory>) -> Self {
        conn::create(base, target, Rc::new(BlockingResolver), factory)
    }

    /// A connection to `host` (a name, an IPv4 address, or an IPv6 address with or without
    /// brackets) and `port` (`evhttp_connection_base_new`). Nothing happens until the first
    /// request.
    #[doc(alias = "evhttp_connection_base_new")]
    #[doc(alias = "evhttp_connection_new")]
    pub fn new(base: &mut EventBase, host: &str, port: u16) -> Self {
        Self::with_target(
            base,
            Target::Tcp {
                host: host.to_owned(),
                port,
            },
            None,
        )
    }

    /// An HTTPS connection to `host` and `port` (443 is HTTPS's usual port): as
    /// [`new`](Self::new), with TLS over each socket, set up as `tls` says (the server's
    /// certificate and name verified, unless [`TlsConfig::insecure`]). libevent builds this
    /// from `evhttp_connection_base_bufferevent_new` and a `bufferevent_openssl` factory.
    #[cfg(feature = "openssl")]
    #[doc(alias = "evhttp_connection_base_bufferevent_new")]
    pub fn new_https(base: &mut EventBase, host: &str, port: u16, tls: TlsConfig) -> Self {
        let conn = Self::new(base, host, port);
        if let Some(st) = conn::get(base, conn.key) {
            st.tls = Some(tls);
        }
        conn
    }

    /// Speaks TLS (`Some`) or not (`None`) from the next socket on: TLS goes over the socket
    /// each connect attempt makes (the factory's, with [`with_factory`](Self::with_factory)),
    /// and the `Host` header leaves out port 443 instead of 80.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[cfg(feature = "openssl")]
    pub fn set_tls(self, base: &mut EventBase, tls: Option<TlsConfig>) -> io::Result<()> {
        state(base, self.key)?.tls = tls;
        Ok(())
    }

    /// The TLS session of the current socket, for its peer certificate, cipher, protocol or
    /// ALPN; `None` when no TLS socket is open (or its handshake is not done).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[cfg(feature = "openssl")]
    pub fn tls_session(
        self,
        base: &mut EventBase,
    ) -> io::Result<Option<&oxevent_openssl::openssl::ssl::SslRef>> {
        use oxevent_openssl::SslBufferEvent;
        let Some(bev) = conn::tls_bev(base, self.key)? else {
            return Ok(None);
        };
        if !bev.is_handshake_done(base)? {
            return Ok(None);
        }
        bev.ssl(base).map(Some)
    }

    /// A connection to `host` and `port` whose bufferevents come from `factory`
    /// (`evhttp_connection_base_bufferevent_new`): to set socket options, rate limits...
    /// With the `openssl` feature, `set_tls` puts TLS over them.
    #[doc(alias = "evhttp_connection_base_bufferevent_new")]
    pub fn with_factory(base: &mut EventBase, host: &str, port: u16, factory: BevFactory) -> Self {
        Self::with_target(
            base,
            Target::Tcp {
                host: host.to_owned(),
                port,
            },
            Some(factory),
        )
    }

    /// A connection over `bev`, a bufferevent that is already connected (to `host` and
    /// `port`), such as a TLS bufferevent whose handshake is done
    /// (`evhttp_connection_base_bufferevent_reuse_new`). The connection takes it over
    /// (its callbacks are replaced) and frees it when done; if it closes, later requests
    /// connect to `host` and `port` with a plain socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "evhttp_connection_base_bufferevent_reuse_new")]
    pub fn from_bufferevent(
        base: &mut EventBase,
        bev: BufferEvent,
        host: &str,
        port: u16,
    ) -> io::Result<Self> {
        let conn = Self::new(base, host, port);
        if let Err(e) = conn::adopt(base, conn.key, bev) {
            let _ = conn.free(base);
            return Err(e);
        }
        Ok(conn)
    }

    /// A connection to the Unix socket at `path`
    /// (`evhttp_connection_base_bufferevent_unix_new`). Requests get `Host: localhost`
    /// unless they set one.
    #[doc(alias = "evhttp_connection_base_bufferevent_unix_new")]
    pub fn new_unix(base: &mut EventBase, path: impl Into<PathBuf>) -> Self {
        Self::with_target(base, Target::Unix(path.into()), None)
    }

    /// A connection for `uri`: its Unix socket (a URI parsed with
    /// [`UriFlags::UNIX_SOCKET`](crate::uri::UriFlags::UNIX_SOCKET)), or its host and port
    /// (80 by default). Requests then use [`Uri::request_target`] as their target.
    ///
    /// With the `openssl` feature an `https://` URI gives an HTTPS connection (port 443 by
    /// default) with the default `TlsConfig`: the system's roots, verification on;
    /// `for_uri_with_tls` takes another configuration.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URI with neither host nor Unix socket, with a scheme other than
    /// `http` (or `https` with the `openssl` feature), or `https` with a Unix socket; for
    /// HTTPS, OpenSSL's error setting up the context.
    pub fn for_uri(base: &mut EventBase, uri: &Uri) -> io::Result<Self> {
        #[cfg(feature = "openssl")]
        if uri
            .scheme()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            let tls = TlsConfig::new().map_err(io::Error::other)?;
            return Self::for_uri_with_tls(base, uri, tls);
        }
        if uri
            .scheme()
            .is_some_and(|s| !s.eq_ignore_ascii_case("http"))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only http:// (and, with the openssl feature, https://) URIs are supported",
            ));
        }
        Self::plain_for_uri(base, uri)
    }

    /// An HTTPS connection for `uri`, an `https://` URI (port 443 by default), with TLS set
    /// up as `tls` says.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URI whose scheme is not `https`, that names no host, or that
    /// names a Unix socket.
    #[cfg(feature = "openssl")]
    pub fn for_uri_with_tls(base: &mut EventBase, uri: &Uri, tls: TlsConfig) -> io::Result<Self> {
        if !uri
            .scheme()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an https:// URI",
            ));
        }
        if uri.unix_socket().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "HTTPS over a Unix socket is not supported",
            ));
        }
        match uri.host_unbracketed() {
            Some(host) if !host.is_empty() => {
                Ok(Self::new_https(base, host, uri.port().unwrap_or(443), tls))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the URI names no host",
            )),
        }
    }

    fn plain_for_uri(base: &mut EventBase, uri: &Uri) -> io::Result<Self> {
        if let Some(path) = uri.unix_socket() {
            return Ok(Self::new_unix(base, path));
        }
        match uri.host_unbracketed() {
            Some(host) if !host.is_empty() => Ok(Self::new(base, host, uri.port().unwrap_or(80))),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the URI names no host",
            )),
        }
    }

    /// Whether the handle still refers to a live connection.
    pub fn is_valid(self, base: &mut EventBase) -> bool {
        conn::get(base, self.key).is_some()
    }

    /// Frees the connection (`evhttp_connection_free`): the socket closes, and every request
    /// still pending gets [`ClientError::Closed`] from the loop. No callback of the connection
    /// runs after this returns, except those completion callbacks.
    ///
    /// # Errors
    ///
    /// `NotFound` if it was already freed.
    #[doc(alias = "evhttp_connection_free")]
    pub fn free(self, base: &mut EventBase) -> io::Result<()> {
        conn::free(base, self.key)
    }

    /// Frees the connection once no request is pending any more
    /// (`evhttp_connection_free_on_completion`); at once if none is.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_free_on_completion")]
    pub fn free_on_completion(self, base: &mut EventBase) -> io::Result<()> {
        state(base, self.key)?.free_on_completion = true;
        conn::kick(base, self.key);
        Ok(())
    }

    /// Queues `req` (`evhttp_make_request`). Its callbacks run from the loop.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] for a target or header that cannot be sent,
    /// [`ClientError::QueueFull`] past [`set_max_queue`](Self::set_max_queue),
    /// [`ClientError::Closed`] for a freed connection. The request's callbacks are then
    /// dropped without running.
    #[doc(alias = "evhttp_make_request")]
    pub fn make_request(
        self,
        base: &mut EventBase,
        req: Request,
    ) -> Result<RequestHandle, ClientError> {
        conn::make_request(base, self.key, req)
    }

    /// How many requests are queued or in flight.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    pub fn pending(self, base: &mut EventBase) -> io::Result<usize> {
        conn::pending(base, self.key).ok_or_else(conn::stale)
    }

    /// Whether a socket is connected now.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    pub fn is_connected(self, base: &mut EventBase) -> io::Result<bool> {
        conn::is_connected(base, self.key).ok_or_else(conn::stale)
    }

    /// How many sockets the connection has opened so far (connect attempts included): 1
    /// after any number of requests on one keep-alive socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    pub fn connect_count(self, base: &mut EventBase) -> io::Result<u64> {
        Ok(state(base, self.key)?.connects)
    }

    /// The host (or Unix-socket path) and port it connects to (`evhttp_connection_get_peer`);
    /// port 0 for a Unix socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_get_peer")]
    pub fn peer(self, base: &mut EventBase) -> io::Result<(String, u16)> {
        Ok(match &state(base, self.key)?.target {
            Target::Tcp { host, port } => (host.clone(), *port),
            Target::Unix(p) => (p.display().to_string(), 0),
        })
    }

    /// Resolves host names with `resolver` from the next connect on (the DNS crate's async
    /// resolver, for one).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    pub fn set_resolver(
        self,
        base: &mut EventBase,
        resolver: impl Resolve + 'static,
    ) -> io::Result<()> {
        state(base, self.key)?.resolver = Rc::new(resolver);
        Ok(())
    }

    /// Which address family to connect with (`evhttp_connection_set_family`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_family")]
    pub fn set_family(self, base: &mut EventBase, family: Family) -> io::Result<()> {
        state(base, self.key)?.cfg.family = family;
        Ok(())
    }

    /// Binds the socket to `addr` before connecting (`evhttp_connection_set_local_address`).
    /// Only the first resolved address of the same family is then tried.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_local_address")]
    pub fn set_local_address(self, base: &mut EventBase, addr: Option<IpAddr>) -> io::Result<()> {
        state(base, self.key)?.cfg.local_addr = addr;
        Ok(())
    }

    /// Sets the connect, read and write timeouts at once (`evhttp_connection_set_timeout`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_timeout")]
    #[doc(alias = "evhttp_connection_set_timeout_tv")]
    pub fn set_timeout(self, base: &mut EventBase, timeout: Duration) -> io::Result<()> {
        let cfg = &mut state(base, self.key)?.cfg;
        cfg.connect_timeout = timeout;
        cfg.read_timeout = timeout;
        cfg.write_timeout = timeout;
        conn::apply_timeouts(base, self.key);
        Ok(())
    }

    /// How long connecting (name lookup included) may take
    /// (`evhttp_connection_set_connect_timeout_tv`); from the next attempt on.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_connect_timeout_tv")]
    pub fn set_connect_timeout(self, base: &mut EventBase, timeout: Duration) -> io::Result<()> {
        state(base, self.key)?.cfg.connect_timeout = timeout;
        Ok(())
    }

    /// How long the connection may wait for response data while a request is in flight
    /// (`evhttp_connection_set_read_timeout_tv`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_read_timeout_tv")]
    pub fn set_read_timeout(self, base: &mut EventBase, timeout: Duration) -> io::Result<()> {
        state(base, self.key)?.cfg.read_timeout = timeout;
        conn::apply_timeouts(base, self.key);
        Ok(())
    }

    /// How long a write may wait for the socket (`evhttp_connection_set_write_timeout_tv`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_write_timeout_tv")]
    pub fn set_write_timeout(self, base: &mut EventBase, timeout: Duration) -> io::Result<()> {
        state(base, self.key)?.cfg.write_timeout = timeout;
        conn::apply_timeouts(base, self.key);
        Ok(())
    }

    /// How many times a request is tried again (`evhttp_connection_set_retries`); applies
    /// to requests made from now on.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_retries")]
    pub fn set_retries(self, base: &mut EventBase, retries: u32) -> io::Result<()> {
        state(base, self.key)?.cfg.retries = retries;
        Ok(())
    }

    /// The first retry's delay; each further one doubles it
    /// (`evhttp_connection_set_initial_retry_tv`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_initial_retry_tv")]
    pub fn set_initial_retry(self, base: &mut EventBase, delay: Duration) -> io::Result<()> {
        state(base, self.key)?.cfg.initial_retry = delay;
        Ok(())
    }

    /// The largest response head accepted, in bytes
    /// (`evhttp_connection_set_max_headers_size`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_max_headers_size")]
    pub fn set_max_headers_size(self, base: &mut EventBase, bytes: usize) -> io::Result<()> {
        let l = &mut state(base, self.key)?.cfg.limits;
        *l = l.with_max_header_bytes(bytes);
        Ok(())
    }

    /// The largest response body accepted, in bytes, streamed or not
    /// (`evhttp_connection_set_max_body_size`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_max_body_size")]
    pub fn set_max_body_size(self, base: &mut EventBase, bytes: u64) -> io::Result<()> {
        let l = &mut state(base, self.key)?.cfg.limits;
        *l = l.with_max_body(bytes);
        Ok(())
    }

    /// Lets up to `max_in_flight` idempotent requests be sent before their responses arrive
    /// (1, the default, turns pipelining off; at most [`MAX_PIPELINE`]).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection; `InvalidInput` for 0 or more than
    /// [`MAX_PIPELINE`].
    pub fn set_pipelining(self, base: &mut EventBase, max_in_flight: usize) -> io::Result<()> {
        if max_in_flight == 0 || max_in_flight > MAX_PIPELINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pipeline depth must be 1..=MAX_PIPELINE",
            ));
        }
        state(base, self.key)?.cfg.max_in_flight = max_in_flight;
        conn::kick(base, self.key);
        Ok(())
    }

    /// The most requests that may be queued or in flight at once (1024 by default).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection; `InvalidInput` for 0.
    pub fn set_max_queue(self, base: &mut EventBase, max: usize) -> io::Result<()> {
        if max == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the queue must hold at least one request",
            ));
        }
        state(base, self.key)?.cfg.max_queue = max;
        Ok(())
    }

    /// Binds the socket to local port `port` before connecting
    /// (`evhttp_connection_set_local_port`); with [`set_local_address`](Self::set_local_address)
    /// or alone (then on the unspecified address).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_local_port")]
    pub fn set_local_port(self, base: &mut EventBase, port: Option<u16>) -> io::Result<()> {
        state(base, self.key)?.cfg.local_port = port;
        Ok(())
    }

    /// Runs `cb` each time an established socket of this connection closes, whoever closed
    /// it (`evhttp_connection_set_closecb`). Not on [`free`](Self::free).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed connection.
    #[doc(alias = "evhttp_connection_set_closecb")]
    pub fn set_closecb(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, Connection) + 'static,
    ) -> io::Result<()> {
        state(base, self.key)?.closecb = Some(Box::new(cb));
        Ok(())
    }
}
