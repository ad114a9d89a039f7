//! The HTTP/1.1 server: libevent's `evhttp`, rebuilt strict and streaming.
//!
//! A [`Server`] is a handle to a server living in an [`EventBase`] (in its extension state,
//! as bufferevents and listeners are). It accepts connections on any number of bound sockets
//! (TCP or Unix-domain, made here or handed over as an fd or a [`Listener`]), turns each
//! accepted socket into a [`BufferEvent`] (through a factory you may replace, which is how a
//! socket speaks HTTPS), reads requests with the strict parser of [`proto`](crate::proto)
//! and hands each one to a handler: an exact-path route ([`Server::set_cb`]) or the generic
//! handler ([`Server::set_gencb`]), possibly of a virtual host.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use oxevent_core::EventBase;
//! use oxevent_http::server::Server;
//!
//! let mut base = EventBase::new()?;
//! let server = Server::new(&mut base);
//! server.set_cb(&mut base, "/", |base, req| {
//!     let _ = req.send_reply(base, 200, "Hello, World!");
//! })?;
//! server.bind(&mut base, SocketAddr::from(([127, 0, 0, 1], 8080)))?;
//! base.dispatch()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Requests and replies
//!
//! A handler gets the [`Request`] by value: its head, its body (buffered up to
//! [`Limits::max_body`], or streamed, see below) and the headers of the reply to come. It
//! answers at once or later (keep the `Request`, reply from a timer or another event):
//!
//! - [`Request::send_reply`]: a full reply. `Content-Length`, `Date`, `Connection` and a
//!   default `Content-Type` are set for you; a `HEAD` request gets the head only. The body is
//!   a [`Body`]: a `Bytes`, a [`Buffer`] or a [`FileSegment`] go to the socket by reference
//!   (a 1 MiB body is never copied, and a file is sent with `sendfile`).
//! - [`Request::send_reply_start`], then [`Responder::send_chunk`] /
//!   [`Responder::send_chunk_with_cb`] and [`Responder::send_end`]: a streaming reply,
//!   chunked for HTTP/1.1 and close-delimited for HTTP/1.0. The callback of
//!   `send_chunk_with_cb` runs once the connection's output buffer has drained to the socket,
//!   which is when to send more: a slow client never makes the server buffer a whole stream.
//! - [`Request::send_error`]: an error page (see [`Server::set_errorcb`]).
//!
//! Requests on one connection are answered in order: a pipelined request is parsed only
//! once the reply to the one before it is complete, and meanwhile at most a bounded amount of
//! input is buffered (reading pauses past it).
//!
//! # Request bodies
//!
//! A route registered with [`Server::set_cb`] gets the whole body, buffered up to
//! [`Limits::max_body`] (413 past it, before reading it when the length is declared). A
//! route registered with [`Server::set_streaming_cb`] is called as soon as the head has
//! arrived; the body then streams to the callback given to [`Responder::set_body_cb`],
//! piece by piece, with backpressure: data the callback leaves in the buffer it is handed
//! stays there, and reading from the socket pauses while more than
//! [`Server::set_body_buffer_size`] bytes wait. `Expect: 100-continue` is answered with
//! `100 Continue` when the path has a route, and with the final status when it has not.
//!
//! # Limits and timeouts
//!
//! Every head, body and connection is bounded ([`Server::set_limits`],
//! [`Server::set_max_connections`]: past it new connections get 503) and timed:
//!
//! - the *read timeout* bounds the time from the first incomplete read of a request to its
//!   last byte (head and buffered body): a client sending one byte a second (slowloris) gets
//!   408 and is closed;
//! - the *idle timeout* closes keep-alive connections with no request in progress;
//! - the *write timeout* closes a connection whose peer stops reading its reply.
//!
//! A connection closed on an error while the client may still be sending *lingers*: once
//! the error reply has gone out it shuts down its write side (`shutdown(SHUT_WR)`, so the
//! client reads end of file right after the reply), then keeps reading and discarding
//! (bounded in time and bytes) until the client closes, so that the reply is not destroyed
//! by a TCP reset. A connection from a [`Server::set_bevcb`] factory (such as TLS, which
//! needs its `close_notify` first) only lingers, without the shutdown.
//!
//! # Draining
//!
//! [`Server::drain`] stops accepting, closes idle keep-alive connections, lets requests in
//! flight finish (their replies say `Connection: close`) and calls back once the last
//! connection is gone.
//!
//! # Many cores
//!
//! An `EventBase` is one thread's. To use several cores run one base and one `Server` per
//! thread, each bound to the same address with
//! [`ListenerOptions::REUSEABLE_PORT`] ([`Server::bind_with_options`]): the kernel spreads
//! incoming connections over the listening sockets. (The other way, one acceptor handing
//! sockets to worker bases through
//! [`Remote::run_in_loop`](oxevent_core::Remote::run_in_loop) and
//! [`Server::accept_connection`], works too; it costs a cross-thread wake-up per
//! connection.) The `http-server` example's `--threads` flag and the `http_hello` benchmark's
//! `-j` flag do the former.

mod conn;
mod request;
mod route;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use oxevent_bufferevent::{Buffer, BufferEvent, Listener, ListenerOptions};
use oxevent_core::EventBase;

use crate::proto::{HttpDate, Limits, Method, RequestHead};

pub use oxevent_bufferevent::FileSegment;
pub use request::{Body, BodyEvent, Request, Responder};

use oxevent_bufferevent::slab::{Key, Slab};

/// A request handler: runs with the base and the request.
pub(crate) type Handler = Rc<RefCell<dyn FnMut(&mut EventBase, Request)>>;

/// Turns an accepted socket into the bufferevent the connection runs on.
pub(crate) type BevFactory =
    Rc<RefCell<dyn FnMut(&mut EventBase, OwnedFd) -> io::Result<BufferEvent>>>;

/// Decides on extension methods.
pub(crate) type ExtMethodCmp = Rc<dyn Fn(&str) -> bool>;

/// Runs once a drain is complete.
pub(crate) type DrainDone = Box<dyn FnOnce(&mut EventBase)>;

/// Sees each new request's head before the server acts on it; `false` refuses it.
pub(crate) type NewReqCb =
    Rc<RefCell<dyn FnMut(&mut EventBase, Option<SocketAddr>, &RequestHead) -> bool>>;

/// Builds error pages: the cause, and the body to fill.
pub(crate) type ErrorCb = Rc<RefCell<dyn FnMut(&mut EventBase, &ServerError, &mut Buffer)>>;

/// Why the server answered with an error status (given to [`Server::set_errorcb`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerError {
    /// The request was malformed or over a limit; the status is
    /// [`ParseError::status_code`](crate::proto::ParseError::status_code).
    Parse(crate::proto::ParseError),
    /// The request did not arrive within the read timeout (408).
    Timeout,
    /// The server is at its connection limit, or draining (503).
    Overloaded,
    /// No route and no generic handler matched (404).
    NotFound,
    /// The method is not allowed (405).
    MethodNotAllowed,
    /// A handler called [`Request::send_error`] with this status.
    Handler(u16),
}

impl ServerError {
    /// The status code sent for this error.
    #[must_use]
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Parse(e) => e.status_code(),
            Self::Timeout => 408,
            Self::Overloaded => 503,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Handler(status) => *status,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "bad request: {e}"),
            Self::Timeout => f.write_str("request timed out"),
            Self::Overloaded => f.write_str("too many connections"),
            Self::NotFound => f.write_str("no handler for the path"),
            Self::MethodNotAllowed => f.write_str("method not allowed"),
            Self::Handler(s) => write!(f, "error {s} from a handler"),
        }
    }
}

impl std::error::Error for ServerError {}

/// A route: the handler, and whether it wants the body streamed.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) handler: Handler,
    pub(crate) streaming: bool,
}

/// The methods a server accepts; the rest get 405.
#[derive(Clone, Debug)]
pub(crate) struct MethodSet {
    standard: u16,
    extensions: Vec<Box<str>>,
}

const fn method_bit(m: &Method) -> u16 {
    match m {
        Method::Get => 1,
        Method::Head => 2,
        Method::Post => 4,
        Method::Put => 8,
        Method::Delete => 16,
        Method::Options => 32,
        Method::Trace => 64,
        Method::Connect => 128,
        Method::Patch => 256,
        _ => 0,
    }
}

impl MethodSet {
    fn of(methods: &[Method]) -> Self {
        let mut set = Self {
            standard: 0,
            extensions: Vec::new(),
        };
        for m in methods {
            match method_bit(m) {
                0 => set.extensions.push(m.as_str().into()),
                bit => set.standard |= bit,
            }
        }
        set
    }

    pub(crate) fn contains(&self, m: &Method) -> bool {
        match method_bit(m) {
            0 => self.extensions.iter().any(|e| &**e == m.as_str()),
            bit => self.standard & bit != 0,
        }
    }

    /// The `Allow` header value.
    pub(crate) fn allow_header(&self) -> String {
        let all = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Delete,
            Method::Options,
            Method::Trace,
            Method::Connect,
            Method::Patch,
        ];
        let mut names: Vec<&str> = all
            .iter()
            .filter(|m| self.standard & method_bit(m) != 0)
            .map(Method::as_str)
            .collect();
        names.extend(self.extensions.iter().map(|e| &**e));
        names.join(", ")
    }
}

/// The settings of a server.
pub(crate) struct Config {
    pub(crate) limits: Limits,
    pub(crate) max_connections: usize,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) linger_timeout: Duration,
    pub(crate) linger_bytes: usize,
    pub(crate) body_buffer: usize,
    pub(crate) default_content_type: Bytes,
    pub(crate) allowed: MethodSet,
    pub(crate) ext_method: Option<ExtMethodCmp>,
    pub(crate) nodelay: bool,
}

/// The default read, write and idle timeouts (libevent's 50 seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(50);

/// How long a connection closed on an error keeps discarding input, at most.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(2);

/// How much request body may wait for a streaming handler before reading pauses.
pub const DEFAULT_BODY_BUFFER: usize = 64 * 1024;

/// The `Content-Type` of replies that set none (libevent's default).
pub const DEFAULT_CONTENT_TYPE: &str = "text/html; charset=ISO-8859-1";

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_connections: usize::MAX,
            read_timeout: Some(DEFAULT_TIMEOUT),
            write_timeout: Some(DEFAULT_TIMEOUT),
            idle_timeout: Some(DEFAULT_TIMEOUT),
            linger_timeout: DEFAULT_LINGER,
            linger_bytes: 1 << 20,
            body_buffer: DEFAULT_BODY_BUFFER,
            default_content_type: Bytes::from_static(DEFAULT_CONTENT_TYPE.as_bytes()),
            allowed: MethodSet::of(&[
                Method::Get,
                Method::Post,
                Method::Head,
                Method::Put,
                Method::Delete,
            ]),
            ext_method: None,
            nodelay: false,
        }
    }
}

/// One bound socket of a server.
pub(crate) struct Bound {
    pub(crate) listener: Listener,
    pub(crate) bevcb: Option<BevFactory>,
}

/// The per-server state.
#[derive(Default)]
pub(crate) struct ServerData {
    pub(crate) cfg: Config,
    pub(crate) routes: HashMap<String, Route>,
    pub(crate) gencb: Option<Route>,
    pub(crate) vhosts: Vec<(String, Key)>,
    pub(crate) aliases: Vec<String>,
    pub(crate) is_vhost: bool,
    pub(crate) bound: Vec<Bound>,
    pub(crate) bevcb: Option<BevFactory>,
    pub(crate) errorcb: Option<ErrorCb>,
    pub(crate) newreqcb: Option<NewReqCb>,
    pub(crate) conns: usize,
    pub(crate) draining: bool,
    pub(crate) drain_done: Option<DrainDone>,
}

/// The state of this module in a base.
#[derive(Default)]
pub(crate) struct Servers {
    pub(crate) servers: Slab<ServerData>,
    pub(crate) conns: Slab<conn::Conn>,
    date_secs: u64,
    date: Option<HttpDate>,
    /// Where reply heads are encoded before going to the output buffer.
    pub(crate) scratch: Vec<u8>,
    /// A replied request's head, whose allocations the next parsed head reuses.
    pub(crate) spare_head: Option<Box<RequestHead>>,
    /// The last reply head encoded for a reply without headers of its own.
    pub(crate) head_cache: Option<HeadCache>,
}

/// What a reply head without headers of its own depends on, besides the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadKey {
    pub(crate) version: crate::proto::Version,
    pub(crate) status: u16,
    /// `None`: no framing headers; `Ok(len)`: `Content-Length`; `Err(())`: chunked.
    pub(crate) framing: Option<Result<u64, ()>>,
    pub(crate) keep: bool,
    /// The `Date` second.
    pub(crate) secs: u64,
}

/// A cached reply head (see [`Servers::head_cache`]).
pub(crate) struct HeadCache {
    pub(crate) key: HeadKey,
    /// The server's default content type when it was encoded.
    pub(crate) ct: Bytes,
    pub(crate) head: Vec<u8>,
}

impl Default for HeadCache {
    fn default() -> Self {
        Self {
            key: HeadKey {
                version: crate::proto::Version::Http11,
                status: 0,
                framing: None,
                keep: false,
                secs: 0,
            },
            ct: Bytes::new(),
            head: Vec::new(),
        }
    }
}

pub(crate) fn servers(base: &mut EventBase) -> &mut Servers {
    base.extension::<Servers>()
}

pub(crate) fn stale(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("stale {what} handle"))
}

/// The cached wall-clock time in whole seconds since the Unix epoch.
pub(crate) fn unix_secs(base: &mut EventBase) -> u64 {
    base.gettimeofday_cached()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Servers {
    /// The `Date` header value for `secs`, formatted once per second.
    pub(crate) fn date_at(&mut self, secs: u64) -> HttpDate {
        match self.date {
            Some(d) if self.date_secs == secs => d,
            _ => {
                let d = HttpDate::from_unix(secs);
                self.date = Some(d);
                self.date_secs = secs;
                d
            }
        }
    }
}

/// A handle to an HTTP server in an [`EventBase`] (`struct evhttp *`).
///
/// It is `Copy`; the server lives in the base until [`free`](Self::free). Every method takes
/// the base, and a stale handle gives `NotFound`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "evhttp")]
pub struct Server {
    pub(crate) key: Key,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Server({})", self.key)
    }
}

/// A socket a server accepts on (`struct evhttp_bound_socket *`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[doc(alias = "evhttp_bound_socket")]
pub struct BoundSocket {
    server: Server,
    listener: Listener,
}

impl BoundSocket {
    /// The listener behind it (`evhttp_bound_socket_get_listener`).
    #[doc(alias = "evhttp_bound_socket_get_listener")]
    #[must_use]
    pub fn listener(self) -> Listener {
        self.listener
    }

    /// The server it belongs to.
    #[must_use]
    pub fn server(self) -> Server {
        self.server
    }

    /// The listening socket's fd (`evhttp_bound_socket_get_fd`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a socket no longer bound.
    #[doc(alias = "evhttp_bound_socket_get_fd")]
    pub fn fd(self, base: &mut EventBase) -> io::Result<std::os::fd::RawFd> {
        self.listener.fd(base)
    }

    /// The address it is bound to (for port 0, the port picked), or `None` for a Unix-domain
    /// socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a socket no longer bound; the OS error of `getsockname`.
    pub fn local_addr(self, base: &mut EventBase) -> io::Result<Option<SocketAddr>> {
        Ok(self.listener.local_addr(base)?.as_socket())
    }

    /// Sets the bufferevent factory of this socket only (`evhttp_bound_set_bevcb`); it takes
    /// precedence over the server's ([`Server::set_bevcb`]).
    ///
    /// # Errors
    ///
    /// `NotFound` for a socket no longer bound.
    #[doc(alias = "evhttp_bound_set_bevcb")]
    pub fn set_bevcb(
        self,
        base: &mut EventBase,
        f: impl FnMut(&mut EventBase, OwnedFd) -> io::Result<BufferEvent> + 'static,
    ) -> io::Result<()> {
        let lis = self.listener;
        let srv = self.server.data(base)?;
        let b = srv
            .bound
            .iter_mut()
            .find(|b| b.listener == lis)
            .ok_or_else(|| stale("bound socket"))?;
        b.bevcb = Some(Rc::new(RefCell::new(f)));
        Ok(())
    }
}

impl Server {
    /// A new server with no socket, no route and the default settings (`evhttp_new`).
    #[doc(alias = "evhttp_new")]
    pub fn new(base: &mut EventBase) -> Self {
        let key = servers(base).servers.insert(ServerData::default());
        let server = Self { key };
        server.register_timeouts(base);
        server
    }

    pub(crate) fn data(self, base: &mut EventBase) -> io::Result<&mut ServerData> {
        servers(base)
            .servers
            .get_mut(self.key)
            .ok_or_else(|| stale("server"))
    }

    /// Whether the handle still refers to a live server.
    #[must_use]
    pub fn is_valid(self, base: &mut EventBase) -> bool {
        servers(base).servers.get(self.key).is_some()
    }

    /// Registers the timeouts as common timeouts: thousands of connections then share O(1)
    /// timer queues.
    fn register_timeouts(self, base: &mut EventBase) {
        let Ok(d) = self.data(base) else { return };
        let all = [
            d.cfg.read_timeout,
            d.cfg.idle_timeout,
            d.cfg.write_timeout,
            Some(d.cfg.linger_timeout),
        ];
        for t in all.into_iter().flatten().chain([conn::LINGER_QUIET]) {
            if !t.is_zero() {
                let _ = base.init_common_timeout(t);
            }
        }
    }

    /// Frees the server (`evhttp_free`): its sockets stop listening and are closed, and every
    /// connection is closed at once (see [`drain`](Self::drain) for a graceful stop).
    ///
    /// # Errors
    ///
    /// `NotFound` if it was already freed.
    #[doc(alias = "evhttp_free")]
    pub fn free(self, base: &mut EventBase) -> io::Result<()> {
        self.data(base)?;
        let conns: Vec<Key> = servers(base)
            .conns
            .iter()
            .filter(|(_, c)| c.server == self.key)
            .map(|(k, _)| k)
            .collect();
        for c in conns {
            conn::free_conn(base, c);
        }
        let data = servers(base)
            .servers
            .remove(self.key)
            .ok_or_else(|| stale("server"))?;
        for b in data.bound {
            let _ = b.listener.free(base);
        }
        // Forget it as a virtual host of any other server.
        let keys: Vec<Key> = servers(base).servers.keys();
        for k in keys {
            if let Some(s) = servers(base).servers.get_mut(k) {
                s.vhosts.retain(|(_, v)| *v != self.key);
            }
        }
        Ok(())
    }

    /// Binds a TCP socket to `addr` and accepts on it (`evhttp_bind_socket_with_handle`). It
    /// may be called any number of times. Port 0 picks a free port: see
    /// [`BoundSocket::local_addr`].
    ///
    /// # Errors
    ///
    /// The OS error of `socket`, `bind` or `listen`; `NotFound` for a freed server.
    #[doc(alias("evhttp_bind_socket", "evhttp_bind_socket_with_handle"))]
    pub fn bind(self, base: &mut EventBase, addr: SocketAddr) -> io::Result<BoundSocket> {
        self.bind_with_options(base, addr, ListenerOptions::REUSEABLE)
    }

    /// As [`bind`](Self::bind), with the listener's options: for example
    /// [`ListenerOptions::REUSEABLE_PORT`] to share the port with servers on other threads.
    ///
    /// # Errors
    ///
    /// As for [`bind`](Self::bind).
    pub fn bind_with_options(
        self,
        base: &mut EventBase,
        addr: SocketAddr,
        options: ListenerOptions,
    ) -> io::Result<BoundSocket> {
        self.data(base)?;
        let lis = Listener::bind(base, addr, options, -1, self.accept_cb())?;
        self.add_bound(base, lis)
    }

    /// Binds a Unix-domain stream socket at `path` (which must not exist) and accepts on it.
    ///
    /// # Errors
    ///
    /// The OS error of `socket`, `bind` or `listen`; `NotFound` for a freed server.
    pub fn bind_unix(
        self,
        base: &mut EventBase,
        path: impl AsRef<Path>,
    ) -> io::Result<BoundSocket> {
        self.data(base)?;
        let lis = Listener::bind_unix(base, path, ListenerOptions::empty(), -1, self.accept_cb())?;
        self.add_bound(base, lis)
    }

    /// Accepts on a socket that is already bound and listening (`evhttp_accept_socket`); the
    /// server owns and closes it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if it is not a listening stream socket; `NotFound` for a freed server.
    #[doc(alias("evhttp_accept_socket", "evhttp_accept_socket_with_handle"))]
    pub fn accept_socket(self, base: &mut EventBase, fd: OwnedFd) -> io::Result<BoundSocket> {
        self.data(base)?;
        let lis = Listener::from_fd(
            base,
            fd,
            ListenerOptions::CLOSE_ON_FREE,
            0,
            self.accept_cb(),
        )?;
        self.add_bound(base, lis)
    }

    /// Accepts the connections of an existing listener (`evhttp_bind_listener`): its accept
    /// callback is replaced, and the server frees it when it is freed or drained.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server or listener.
    #[doc(alias = "evhttp_bind_listener")]
    pub fn bind_listener(self, base: &mut EventBase, lis: Listener) -> io::Result<BoundSocket> {
        self.data(base)?;
        lis.set_callback(base, self.accept_cb())?;
        self.add_bound(base, lis)
    }

    fn accept_cb(
        self,
    ) -> impl FnMut(&mut EventBase, Listener, OwnedFd, socket2::SockAddr) + 'static {
        let key = self.key;
        move |base, lis, fd, peer| conn::accept(base, key, Some(lis), fd, peer.as_socket())
    }

    fn add_bound(self, base: &mut EventBase, listener: Listener) -> io::Result<BoundSocket> {
        match self.data(base) {
            Ok(d) => {
                d.bound.push(Bound {
                    listener,
                    bevcb: None,
                });
                Ok(BoundSocket {
                    server: self,
                    listener,
                })
            }
            Err(e) => {
                let _ = listener.free(base);
                Err(e)
            }
        }
    }

    /// Serves a connection accepted elsewhere (for example by an acceptor thread that hands
    /// sockets over through a `Remote`): `fd` is a connected stream socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn accept_connection(
        self,
        base: &mut EventBase,
        fd: OwnedFd,
        peer: Option<SocketAddr>,
    ) -> io::Result<()> {
        self.data(base)?;
        conn::accept(base, self.key, None, fd, peer);
        Ok(())
    }

    /// Stops accepting on `bound` and closes it (`evhttp_del_accept_socket`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server or a socket not bound to it.
    #[doc(alias = "evhttp_del_accept_socket")]
    pub fn del_accept_socket(self, base: &mut EventBase, bound: BoundSocket) -> io::Result<()> {
        let d = self.data(base)?;
        let i = d
            .bound
            .iter()
            .position(|b| b.listener == bound.listener)
            .ok_or_else(|| stale("bound socket"))?;
        let b = d.bound.remove(i);
        b.listener.free(base)
    }

    /// The sockets the server accepts on (`evhttp_foreach_bound_socket`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_foreach_bound_socket")]
    pub fn bound_sockets(self, base: &mut EventBase) -> io::Result<Vec<BoundSocket>> {
        Ok(self
            .data(base)?
            .bound
            .iter()
            .map(|b| BoundSocket {
                server: self,
                listener: b.listener,
            })
            .collect())
    }

    /// Routes requests for exactly `path` to `handler` (`evhttp_set_cb`). The path is
    /// compared percent-decoded, without the query. The body is buffered before the handler
    /// runs.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the path has a route (libevent returns -1); `NotFound` for a freed
    /// server.
    #[doc(alias = "evhttp_set_cb")]
    pub fn set_cb(
        self,
        base: &mut EventBase,
        path: &str,
        handler: impl FnMut(&mut EventBase, Request) + 'static,
    ) -> io::Result<()> {
        self.add_route(base, path, Rc::new(RefCell::new(handler)), false)
    }

    /// As [`set_cb`](Self::set_cb), but the handler runs as soon as the head has arrived and
    /// the body streams to the callback set with [`Responder::set_body_cb`].
    ///
    /// # Errors
    ///
    /// As for [`set_cb`](Self::set_cb).
    pub fn set_streaming_cb(
        self,
        base: &mut EventBase,
        path: &str,
        handler: impl FnMut(&mut EventBase, Request) + 'static,
    ) -> io::Result<()> {
        self.add_route(base, path, Rc::new(RefCell::new(handler)), true)
    }

    fn add_route(
        self,
        base: &mut EventBase,
        path: &str,
        handler: Handler,
        streaming: bool,
    ) -> io::Result<()> {
        let d = self.data(base)?;
        if d.routes.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("a handler is already set for {path}"),
            ));
        }
        d.routes
            .insert(path.to_owned(), Route { handler, streaming });
        Ok(())
    }

    /// Removes the route of `path` (`evhttp_del_cb`).
    ///
    /// # Errors
    ///
    /// `NotFound` if there is none, or for a freed server.
    #[doc(alias = "evhttp_del_cb")]
    pub fn del_cb(self, base: &mut EventBase, path: &str) -> io::Result<()> {
        self.data(base)?
            .routes
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such route"))
    }

    /// Sets the handler of requests no route matches (`evhttp_set_gencb`); without one they
    /// get 404.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_gencb")]
    pub fn set_gencb(
        self,
        base: &mut EventBase,
        handler: impl FnMut(&mut EventBase, Request) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.gencb = Some(Route {
            handler: Rc::new(RefCell::new(handler)),
            streaming: false,
        });
        Ok(())
    }

    /// Serves requests whose host matches `pattern` (a glob: `*` any run of characters, `?`
    /// any one, case-insensitive) with the routes of `vhost`, another server that is not
    /// bound anywhere (`evhttp_add_virtual_host`). The limits, timeouts and methods stay this
    /// server's.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `vhost` is this server, is bound, or is already a virtual host;
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_add_virtual_host")]
    pub fn add_virtual_host(
        self,
        base: &mut EventBase,
        pattern: &str,
        vhost: Server,
    ) -> io::Result<()> {
        self.data(base)?;
        let v = vhost.data(base)?;
        if vhost == self || !v.bound.is_empty() || v.is_vhost {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a virtual host must be another, unbound server",
            ));
        }
        v.is_vhost = true;
        self.data(base)?
            .vhosts
            .push((pattern.to_ascii_lowercase(), vhost.key));
        Ok(())
    }

    /// Stops serving `vhost` as a virtual host (`evhttp_remove_virtual_host`).
    ///
    /// # Errors
    ///
    /// `NotFound` if it is not one of this server's.
    #[doc(alias = "evhttp_remove_virtual_host")]
    pub fn remove_virtual_host(self, base: &mut EventBase, vhost: Server) -> io::Result<()> {
        let d = self.data(base)?;
        let before = d.vhosts.len();
        d.vhosts.retain(|(_, k)| *k != vhost.key);
        if d.vhosts.len() == before {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not a virtual host",
            ));
        }
        if let Ok(v) = vhost.data(base) {
            v.is_vhost = false;
        }
        Ok(())
    }

    /// Adds another host name (a glob, as for virtual hosts) this server answers to when it
    /// is a virtual host (`evhttp_add_server_alias`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_add_server_alias")]
    pub fn add_server_alias(self, base: &mut EventBase, alias: &str) -> io::Result<()> {
        self.data(base)?.aliases.push(alias.to_ascii_lowercase());
        Ok(())
    }

    /// Removes an alias (`evhttp_remove_server_alias`).
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such alias.
    #[doc(alias = "evhttp_remove_server_alias")]
    pub fn remove_server_alias(self, base: &mut EventBase, alias: &str) -> io::Result<()> {
        let d = self.data(base)?;
        let alias = alias.to_ascii_lowercase();
        let before = d.aliases.len();
        d.aliases.retain(|a| *a != alias);
        if d.aliases.len() == before {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such alias"));
        }
        Ok(())
    }

    /// The methods accepted; others get 405 with an `Allow` header
    /// (`evhttp_set_allowed_methods`). The default is libevent's: GET, POST, HEAD, PUT and
    /// DELETE. Extension methods (`Method::Extension`) may be listed too.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_allowed_methods")]
    pub fn set_allowed_methods(self, base: &mut EventBase, methods: &[Method]) -> io::Result<()> {
        self.data(base)?.cfg.allowed = MethodSet::of(methods);
        Ok(())
    }

    /// Decides on extension methods not in the allowed list (`evhttp_set_ext_method_cmp`):
    /// `f` gets the method name and says whether to accept it.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_ext_method_cmp")]
    pub fn set_ext_method_cmp(
        self,
        base: &mut EventBase,
        f: impl Fn(&str) -> bool + 'static,
    ) -> io::Result<()> {
        self.data(base)?.cfg.ext_method = Some(Rc::new(f));
        Ok(())
    }

    /// All the parser limits at once (see [`Limits`] for the defaults).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn set_limits(self, base: &mut EventBase, limits: Limits) -> io::Result<()> {
        self.data(base)?.cfg.limits = limits;
        Ok(())
    }

    /// The largest request head, in bytes (`evhttp_set_max_headers_size`); past it: 431.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_max_headers_size")]
    pub fn set_max_headers_size(self, base: &mut EventBase, n: usize) -> io::Result<()> {
        let d = self.data(base)?;
        d.cfg.limits = d.cfg.limits.with_max_header_bytes(n);
        Ok(())
    }

    /// The most header fields in a request; past it: 431.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn set_max_headers(self, base: &mut EventBase, n: usize) -> io::Result<()> {
        let d = self.data(base)?;
        d.cfg.limits = d.cfg.limits.with_max_headers(n);
        Ok(())
    }

    /// The largest request body (`evhttp_set_max_body_size`); past it: 413, and the
    /// connection closes after lingering.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_max_body_size")]
    pub fn set_max_body_size(self, base: &mut EventBase, n: u64) -> io::Result<()> {
        let d = self.data(base)?;
        d.cfg.limits = d.cfg.limits.with_max_body(n);
        Ok(())
    }

    /// The most connections served at once (`evhttp_set_max_connections`); past it a new
    /// connection gets 503 and is closed.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_max_connections")]
    pub fn set_max_connections(self, base: &mut EventBase, n: usize) -> io::Result<()> {
        self.data(base)?.cfg.max_connections = n;
        Ok(())
    }

    /// The number of open connections (`evhttp_get_connection_count`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_get_connection_count")]
    pub fn connection_count(self, base: &mut EventBase) -> io::Result<usize> {
        Ok(self.data(base)?.conns)
    }

    /// Sets the read, write and idle timeouts at once (`evhttp_set_timeout`,
    /// `evhttp_set_timeout_tv`); `None` disables them.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias("evhttp_set_timeout", "evhttp_set_timeout_tv"))]
    pub fn set_timeout(self, base: &mut EventBase, t: Option<Duration>) -> io::Result<()> {
        let d = self.data(base)?;
        d.cfg.read_timeout = t;
        d.cfg.write_timeout = t;
        d.cfg.idle_timeout = t;
        self.register_timeouts(base);
        Ok(())
    }

    /// The time a request (head and buffered body) may take to arrive once it has started
    /// (`evhttp_set_read_timeout_tv`); past it: 408 and close.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_read_timeout_tv")]
    pub fn set_read_timeout(self, base: &mut EventBase, t: Option<Duration>) -> io::Result<()> {
        self.data(base)?.cfg.read_timeout = t;
        self.register_timeouts(base);
        Ok(())
    }

    /// The time a reply may make no progress towards the socket
    /// (`evhttp_set_write_timeout_tv`); past it the connection is closed. It applies to
    /// connections accepted afterwards.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_write_timeout_tv")]
    pub fn set_write_timeout(self, base: &mut EventBase, t: Option<Duration>) -> io::Result<()> {
        self.data(base)?.cfg.write_timeout = t;
        self.register_timeouts(base);
        Ok(())
    }

    /// The time a keep-alive connection may wait for its next request.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn set_idle_timeout(self, base: &mut EventBase, t: Option<Duration>) -> io::Result<()> {
        self.data(base)?.cfg.idle_timeout = t;
        self.register_timeouts(base);
        Ok(())
    }

    /// How long a connection closed on an error keeps discarding what the client still
    /// sends (lingering close, libevent's `EVHTTP_SERVER_LINGERING_CLOSE`), and how many
    /// bytes at most. A zero duration closes at once.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_flags")]
    pub fn set_linger(self, base: &mut EventBase, t: Duration, max_bytes: usize) -> io::Result<()> {
        let d = self.data(base)?;
        d.cfg.linger_timeout = t;
        d.cfg.linger_bytes = max_bytes;
        self.register_timeouts(base);
        Ok(())
    }

    /// How much request body may wait for a streaming handler before reading from the socket
    /// pauses (64 KiB by default).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn set_body_buffer_size(self, base: &mut EventBase, n: usize) -> io::Result<()> {
        self.data(base)?.cfg.body_buffer = n.max(1);
        Ok(())
    }

    /// The `Content-Type` of replies whose handler set none
    /// (`evhttp_set_default_content_type`); `None` sends no `Content-Type` then.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server; `InvalidInput` for a value with control characters.
    #[doc(alias = "evhttp_set_default_content_type")]
    pub fn set_default_content_type(
        self,
        base: &mut EventBase,
        content_type: Option<&str>,
    ) -> io::Result<()> {
        let v = content_type.unwrap_or("");
        if !v.bytes().all(crate::proto::is_field_byte) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid content type",
            ));
        }
        self.data(base)?.cfg.default_content_type = Bytes::copy_from_slice(v.as_bytes());
        Ok(())
    }

    /// Sets `TCP_NODELAY` on accepted TCP sockets (off by default).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn set_nodelay(self, base: &mut EventBase, on: bool) -> io::Result<()> {
        self.data(base)?.cfg.nodelay = on;
        Ok(())
    }

    /// Sets the factory that turns each accepted socket into the connection's bufferevent
    /// (`evhttp_set_bevcb`): for HTTPS, a TLS bufferevent over the socket. The default is a
    /// plain socket bufferevent that closes the socket when freed.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_bevcb")]
    pub fn set_bevcb(
        self,
        base: &mut EventBase,
        f: impl FnMut(&mut EventBase, OwnedFd) -> io::Result<BufferEvent> + 'static,
    ) -> io::Result<()> {
        self.data(base)?.bevcb = Some(Rc::new(RefCell::new(f)));
        Ok(())
    }

    /// Sets the error callback (`evhttp_set_errorcb`): it runs for every error reply the
    /// server sends (parse errors, timeouts, 404, 405, 503, [`Request::send_error`]), with
    /// the cause and the body about to be sent. Leaving the body empty keeps the default
    /// HTML page; filling it replaces the page.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_errorcb")]
    pub fn set_errorcb(
        self,
        base: &mut EventBase,
        f: impl FnMut(&mut EventBase, &ServerError, &mut Buffer) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.errorcb = Some(Rc::new(RefCell::new(f)));
        Ok(())
    }

    /// Sets the new-request callback (`evhttp_set_newreqcb`): it sees each request's head
    /// (and the client's address) as soon as the head has been parsed, before routing,
    /// `100 Continue` or the body. Returning `false` refuses the request: the connection
    /// closes without a reply, as when libevent's callback returns -1. A refused request's
    /// handler never runs. Virtual hosts use their parent server's callback.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    #[doc(alias = "evhttp_set_newreqcb")]
    pub fn set_newreqcb(
        self,
        base: &mut EventBase,
        f: impl FnMut(&mut EventBase, Option<SocketAddr>, &RequestHead) -> bool + 'static,
    ) -> io::Result<()> {
        self.data(base)?.newreqcb = Some(Rc::new(RefCell::new(f)));
        Ok(())
    }

    /// Stops the server gracefully: it stops accepting (its sockets are closed), closes idle
    /// keep-alive connections, lets requests in flight finish (their replies close the
    /// connection) and calls `done` from the loop once the last connection is gone. The
    /// server itself stays (free it in `done` if you like).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed server.
    pub fn drain(
        self,
        base: &mut EventBase,
        done: impl FnOnce(&mut EventBase) + 'static,
    ) -> io::Result<()> {
        let d = self.data(base)?;
        d.draining = true;
        d.drain_done = Some(Box::new(done));
        let bound = std::mem::take(&mut d.bound);
        for b in bound {
            let _ = b.listener.free(base);
        }
        let conns: Vec<Key> = servers(base)
            .conns
            .iter()
            .filter(|(_, c)| c.server == self.key)
            .map(|(k, _)| k)
            .collect();
        for c in conns {
            conn::drain_conn(base, c);
        }
        conn::check_drained(base, self.key);
        Ok(())
    }
}
