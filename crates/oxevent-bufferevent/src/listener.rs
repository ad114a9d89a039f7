//! Listeners: accept incoming stream connections and hand each one to a
//! callback (libevent's `listener.h`, `evconnlistener`).
//!
//! A [`Listener`] owns a listening socket (TCP or Unix-domain) and a
//! persistent read event on it. When the socket is readable it accepts with
//! `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, so every accepted socket is
//! non-blocking and close-on-exec, and passes the socket and the peer address
//! to the accept callback. It accepts until the queue is empty, but at most
//! [`ACCEPTS_PER_CALLBACK`] connections per wake-up, so one busy listener
//! cannot starve the rest of the loop.
//!
//! **Running out of descriptors.** When `accept` fails with `EMFILE`,
//! `ENFILE`, `ENOBUFS` or `ENOMEM`, a level-triggered listener would wake
//! again at once and spin: the pending connection is still there. Instead the
//! listener reports the error to its error callback, stops watching the
//! socket and arms a one-shot timer ([`BACKOFF_MIN`], doubling up to
//! [`BACKOFF_MAX`]) that starts it again; the next successful accept resets
//! the delay. Any other unexpected error (say, the socket stopped listening)
//! is handled the same way, so no error can make the loop spin.
//! `ECONNABORTED` and `EINTR` are retried silently, and the per-connection
//! errors Linux passes on from `accept` (`EPROTO`, `EPERM`, `ENETDOWN`, ...)
//! are reported and the listener moves on to the next connection.
//!
//! Listeners live inside the base (in its extension state) behind
//! generational handles, like events and bufferevents: every callback gets
//! `&mut EventBase` and the [`Listener`] handle, so it may enable, disable or
//! free any listener, its own included. A freed listener's handle is a
//! `NotFound` error and none of its callbacks runs after
//! [`Listener::free`] returns.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddr, TcpStream};
//! use oxevent_core::EventBase;
//! use oxevent_bufferevent::{Listener, ListenerOptions};
//!
//! let mut base = EventBase::new().unwrap();
//! let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
//! let lis = Listener::bind(&mut base, addr, ListenerOptions::REUSEABLE, -1, |base, lis, fd, peer| {
//!     println!("connection from {:?}", peer.as_socket());
//!     drop(fd); // a real server would wrap it in a BufferEvent
//!     lis.free(base).unwrap(); // one connection is enough here; the loop then ends
//! })
//! .unwrap();
//! let port = lis.local_addr(&mut base).unwrap().as_socket().unwrap().port();
//! let _client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
//! base.dispatch().unwrap();
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use oxevent_core::{Event, EventBase, What};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::slab::{Key, Slab, stale};

/// The most connections accepted in one wake-up of a listener (libevent
/// accepts until the queue is empty; a bound keeps one busy listener from
/// starving the other events of the loop).
pub const ACCEPTS_PER_CALLBACK: usize = 32;

/// The first pause after `accept` ran out of resources (`EMFILE` and kin).
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// The longest pause: the delay doubles from [`BACKOFF_MIN`] up to this.
pub const BACKOFF_MAX: Duration = Duration::from_millis(1600);

/// The backlog used when the caller asks for the default (libevent's 128).
const DEFAULT_BACKLOG: i32 = 128;

/// `TCP_DEFER_ACCEPT` timeout, in seconds, as libevent sets it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const DEFER_ACCEPT_SECS: u32 = 1;

oxevent_backend::bitflags_type! {
    /// Options of a listener (libevent's `LEV_OPT_*`, with the same values).
    ListenerOptions: u32 {
        /// Close the socket when the listener is freed
        /// (`LEV_OPT_CLOSE_ON_FREE`). A socket made by [`Listener::bind`] or
        /// [`Listener::bind_unix`] is always closed on free.
        #[doc(alias = "LEV_OPT_CLOSE_ON_FREE")]
        CLOSE_ON_FREE = 0x02;
        /// Set close-on-exec on the listening socket (`LEV_OPT_CLOSE_ON_EXEC`).
        /// Sockets made by `bind` are always close-on-exec, and so is every
        /// accepted socket.
        #[doc(alias = "LEV_OPT_CLOSE_ON_EXEC")]
        CLOSE_ON_EXEC = 0x04;
        /// Allow rebinding the address at once after the listener is closed,
        /// despite connections in `TIME_WAIT` (`LEV_OPT_REUSEABLE`, `SO_REUSEADDR`).
        #[doc(alias = "LEV_OPT_REUSEABLE")]
        REUSEABLE = 0x08;
        /// Create the listener disabled; [`Listener::enable`] starts it
        /// (`LEV_OPT_DISABLED`).
        #[doc(alias = "LEV_OPT_DISABLED")]
        DISABLED = 0x20;
        /// Wake the listener only once a new connection has data to read,
        /// or after a second (`LEV_OPT_DEFERRED_ACCEPT`, `TCP_DEFER_ACCEPT`).
        /// Only for protocols where the client speaks first, such as HTTP.
        /// A hint: ignored where the system has no such option (as in
        /// libevent), and for Unix-domain sockets.
        #[doc(alias = "LEV_OPT_DEFERRED_ACCEPT")]
        DEFERRED_ACCEPT = 0x40;
        /// Let several sockets bind the same address and port, the kernel
        /// spreading connections over them (`LEV_OPT_REUSEABLE_PORT`,
        /// `SO_REUSEPORT`). Every socket sharing the port needs it.
        #[doc(alias = "LEV_OPT_REUSEABLE_PORT")]
        REUSEABLE_PORT = 0x80;
        /// For an IPv6 address, accept IPv6 connections only
        /// (`LEV_OPT_BIND_IPV6ONLY`). Without it an IPv6 socket is made
        /// dual-stack, whatever the system default, so `[::]` also accepts
        /// IPv4 connections (`LEV_OPT_BIND_IPV4_AND_IPV6`). Only for
        /// [`Listener::bind`] with an IPv6 address.
        #[doc(alias("LEV_OPT_BIND_IPV6ONLY", "LEV_OPT_BIND_IPV4_AND_IPV6"))]
        IPV6_ONLY = 0x100;
    }
}

/// The accept callback: the listener, the accepted socket (non-blocking,
/// close-on-exec) and the peer's address.
type AcceptCb = Box<dyn FnMut(&mut EventBase, Listener, OwnedFd, SockAddr)>;

/// The error callback.
type ErrorCb = Box<dyn FnMut(&mut EventBase, Listener, io::Error)>;

/// A handle to a listening socket in an [`EventBase`] (libevent's
/// `struct evconnlistener`).
///
/// It is a small `Copy` handle (an index and a generation): the listener
/// itself lives in the base, and every method takes the base. Once the
/// listener is [`free`](Self::free)d, every copy of the handle is stale and
/// its methods return a `NotFound` error.
#[doc(alias = "evconnlistener")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    key: Key,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Listener({}v{})", self.key.idx, self.key.generation)
    }
}

/// One listener's state, in the base.
struct LisData {
    /// The listening socket; `None` only while being dropped.
    sock: Option<Socket>,
    close_on_free: bool,
    /// The persistent read event on the socket.
    ev: Option<Event>,
    /// The one-shot timer that ends a back-off, made on first need.
    timer: Option<Event>,
    /// The user's wish: accepting unless disabled.
    enabled: bool,
    /// Paused by a back-off; the timer ends it.
    backing_off: bool,
    /// The next back-off delay (zero when the last accept succeeded).
    backoff: Duration,
    /// Taken out while it runs.
    cb: Option<AcceptCb>,
    errcb: Option<ErrorCb>,
}

impl Drop for LisData {
    fn drop(&mut self) {
        if let Some(sock) = self.sock.take() {
            if !self.close_on_free {
                // Not ours to close (libevent leaves the fd open without
                // LEV_OPT_CLOSE_ON_FREE): give the descriptor back unclosed.
                let _ = sock.into_raw_fd();
            }
        }
    }
}

/// The per-base state of the listeners, kept in the base's extension map.
#[derive(Default)]
struct Listeners {
    slab: Slab<LisData>,
}

fn slab(base: &mut EventBase) -> &mut Slab<LisData> {
    &mut base.extension::<Listeners>().slab
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// What to do about an `accept` error.
enum AcceptErr {
    /// Try the next connection, telling no one.
    Retry,
    /// Report it, then try the next connection: it concerned one connection.
    ReportAndRetry,
    /// Report it and pause the listener with a back-off.
    Backoff,
}

fn classify(err: &io::Error) -> AcceptErr {
    if err.kind() == io::ErrorKind::Interrupted {
        return AcceptErr::Retry;
    }
    match err.raw_os_error() {
        Some(libc::ECONNABORTED) => AcceptErr::Retry,
        // Errors of one connection that Linux reports from accept(2); the
        // manual says to treat them like EAGAIN and go on.
        Some(
            libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::ETIMEDOUT,
        ) => AcceptErr::ReportAndRetry,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(libc::ENONET) => AcceptErr::ReportAndRetry,
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, and anything unexpected (EBADF,
        // EINVAL for a socket that stopped listening, ...).
        _ => AcceptErr::Backoff,
    }
}

/// `accept4` with non-blocking and close-on-exec, in one call where the
/// system has it.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
))]
fn accept_nb(sock: &Socket) -> io::Result<(Socket, SockAddr)> {
    sock.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
)))]
fn accept_nb(sock: &Socket) -> io::Result<(Socket, SockAddr)> {
    let (s, addr) = sock.accept()?;
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    Ok((s, addr))
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "macos",
    target_os = "ios",
))]
fn set_reuse_port(sock: &Socket) -> io::Result<()> {
    sock.set_reuse_port(true)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "macos",
    target_os = "ios",
)))]
fn set_reuse_port(_sock: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this system",
    ))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_deferred_accept(sock: &Socket) -> io::Result<()> {
    oxevent_core::util::set_tcp_defer_accept(std::os::fd::AsFd::as_fd(sock), DEFER_ACCEPT_SECS)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_deferred_accept(_sock: &Socket) -> io::Result<()> {
    // A hint, as in libevent: without TCP_DEFER_ACCEPT the listener simply
    // wakes on every connection.
    Ok(())
}

/// Checks that a socket handed to `from_fd` with backlog 0 is listening.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn check_listening(sock: &Socket) -> io::Result<()> {
    if sock.is_listener()? {
        Ok(())
    } else {
        Err(invalid(
            "the socket is not listening (pass a backlog to listen on it)",
        ))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn check_listening(_sock: &Socket) -> io::Result<()> {
    Ok(())
}

/// The backlog to pass to `listen` for a caller's value: negative means the
/// default.
fn backlog_or_default(backlog: i32) -> i32 {
    if backlog < 0 {
        DEFAULT_BACKLOG
    } else {
        backlog
    }
}

/// The options that apply to any stream socket before it listens.
fn apply_reuse_options(sock: &Socket, options: ListenerOptions) -> io::Result<()> {
    if options.contains(ListenerOptions::REUSEABLE) {
        sock.set_reuse_address(true)?;
    }
    if options.contains(ListenerOptions::REUSEABLE_PORT) {
        set_reuse_port(sock)?;
    }
    Ok(())
}

impl Listener {
    /// Creates a TCP socket, sets the `options` on it, binds it to `addr`
    /// and listens (`evconnlistener_new_bind`). Port 0 picks a free port;
    /// [`local_addr`](Self::local_addr) tells which.
    ///
    /// `backlog` is passed to `listen`; a negative value or 0 means the
    /// default (128, as libevent). `cb` runs for every accepted connection
    /// with the listener, the new socket (non-blocking, close-on-exec) and
    /// the peer's address. The socket made here is closed on
    /// [`free`](Self::free), whether or not
    /// [`CLOSE_ON_FREE`](ListenerOptions::CLOSE_ON_FREE) is given.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for [`IPV6_ONLY`](ListenerOptions::IPV6_ONLY) with an
    /// IPv4 address; `Unsupported` for
    /// [`REUSEABLE_PORT`](ListenerOptions::REUSEABLE_PORT) where the system
    /// lacks it; the OS error of `socket`, `setsockopt`, `bind` (such as
    /// `AddrInUse`) or `listen`; the base's error registering the socket.
    #[doc(alias = "evconnlistener_new_bind")]
    pub fn bind(
        base: &mut EventBase,
        addr: SocketAddr,
        options: ListenerOptions,
        backlog: i32,
        cb: impl FnMut(&mut EventBase, Listener, OwnedFd, SockAddr) + 'static,
    ) -> io::Result<Listener> {
        if addr.is_ipv4() && options.contains(ListenerOptions::IPV6_ONLY) {
            return Err(invalid("IPV6_ONLY needs an IPv6 address"));
        }
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        apply_reuse_options(&sock, options)?;
        if addr.is_ipv6() {
            sock.set_only_v6(options.contains(ListenerOptions::IPV6_ONLY))?;
        }
        if options.contains(ListenerOptions::DEFERRED_ACCEPT) {
            set_deferred_accept(&sock)?;
        }
        sock.bind(&addr.into())?;
        sock.listen(if backlog > 0 {
            backlog
        } else {
            DEFAULT_BACKLOG
        })?;
        Self::register(base, sock, options, true, Box::new(cb))
    }

    /// Creates a Unix-domain stream socket bound to `path` and listens on it
    /// (`evconnlistener_new_bind` with a `sockaddr_un`).
    ///
    /// The path must not exist yet; the socket file is left in place when the
    /// listener is freed, for the caller to remove. `backlog` and `cb` are
    /// as for [`bind`](Self::bind); the peer address given to `cb` is
    /// usually unnamed. Of the `options`, only
    /// [`DISABLED`](ListenerOptions::DISABLED) has an effect.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for [`IPV6_ONLY`](ListenerOptions::IPV6_ONLY) or a
    /// path too long for a socket address; the OS error of `socket`, `bind`
    /// (such as `AddrInUse` when the path exists) or `listen`.
    #[doc(alias = "evconnlistener_new_bind")]
    pub fn bind_unix(
        base: &mut EventBase,
        path: impl AsRef<Path>,
        options: ListenerOptions,
        backlog: i32,
        cb: impl FnMut(&mut EventBase, Listener, OwnedFd, SockAddr) + 'static,
    ) -> io::Result<Listener> {
        if options.contains(ListenerOptions::IPV6_ONLY) {
            return Err(invalid(
                "IPV6_ONLY is for IPv6 addresses, not Unix-domain paths",
            ));
        }
        let addr = SockAddr::unix(path)?;
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        sock.bind(&addr)?;
        sock.listen(if backlog > 0 {
            backlog
        } else {
            DEFAULT_BACKLOG
        })?;
        Self::register(base, sock, options, true, Box::new(cb))
    }

    /// Wraps an existing stream socket (`evconnlistener_new`).
    ///
    /// The socket is made non-blocking. With a `backlog` above 0 the
    /// listener calls `listen(backlog)` on it, with a negative one
    /// `listen` with the default (128); with 0 the socket must already be
    /// listening, as in libevent. The fd is closed on [`free`](Self::free)
    /// only with [`CLOSE_ON_FREE`](ListenerOptions::CLOSE_ON_FREE); without
    /// it, free leaves the descriptor open (its number is given by
    /// [`fd`](Self::fd)) and its owner must close it.
    ///
    /// [`CLOSE_ON_EXEC`](ListenerOptions::CLOSE_ON_EXEC),
    /// [`REUSEABLE`](ListenerOptions::REUSEABLE),
    /// [`REUSEABLE_PORT`](ListenerOptions::REUSEABLE_PORT) and
    /// [`DEFERRED_ACCEPT`](ListenerOptions::DEFERRED_ACCEPT) are applied to
    /// the socket as libevent does.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `fd` is not a stream socket, if `backlog` is 0 and
    /// it is not listening, or for [`IPV6_ONLY`](ListenerOptions::IPV6_ONLY)
    /// (it cannot be changed on a bound socket); the OS error of `fcntl`,
    /// `setsockopt` or `listen`. On error the fd is closed only with
    /// `CLOSE_ON_FREE`.
    #[doc(alias = "evconnlistener_new")]
    pub fn from_fd(
        base: &mut EventBase,
        fd: OwnedFd,
        options: ListenerOptions,
        backlog: i32,
        cb: impl FnMut(&mut EventBase, Listener, OwnedFd, SockAddr) + 'static,
    ) -> io::Result<Listener> {
        let sock = Socket::from(fd);
        let close = options.contains(ListenerOptions::CLOSE_ON_FREE);
        let prepared = (|| {
            if options.contains(ListenerOptions::IPV6_ONLY) {
                return Err(invalid("IPV6_ONLY can only be set by Listener::bind"));
            }
            if sock.r#type()? != Type::STREAM {
                return Err(invalid("a listener needs a stream socket"));
            }
            sock.set_nonblocking(true)?;
            if options.contains(ListenerOptions::CLOSE_ON_EXEC) {
                sock.set_cloexec(true)?;
            }
            apply_reuse_options(&sock, options)?;
            let tcp = matches!(sock.domain()?, Domain::IPV4 | Domain::IPV6);
            if tcp && options.contains(ListenerOptions::DEFERRED_ACCEPT) {
                set_deferred_accept(&sock)?;
            }
            if backlog == 0 {
                check_listening(&sock)
            } else {
                sock.listen(backlog_or_default(backlog))
            }
        })();
        match prepared {
            Ok(()) => Self::register(base, sock, options, close, Box::new(cb)),
            Err(e) => {
                if !close {
                    // The caller did not give us the right to close it.
                    let _ = sock.into_raw_fd();
                }
                Err(e)
            }
        }
    }

    /// Stores the listener in the base and starts it unless `DISABLED`.
    fn register(
        base: &mut EventBase,
        sock: Socket,
        options: ListenerOptions,
        close_on_free: bool,
        cb: AcceptCb,
    ) -> io::Result<Listener> {
        let fd = sock.as_raw_fd();
        let key = slab(base).insert(LisData {
            sock: Some(sock),
            close_on_free,
            ev: None,
            timer: None,
            enabled: false,
            backing_off: false,
            backoff: Duration::ZERO,
            cb: Some(cb),
            errcb: None,
        });
        let lis = Listener { key };
        let ev = match base.event_new(fd, What::READ | What::PERSIST, move |base, _ev, _what| {
            accept_ready(base, lis);
        }) {
            Ok(ev) => ev,
            Err(e) => {
                drop(slab(base).remove(key));
                return Err(e);
            }
        };
        if let Some(d) = slab(base).get_mut(key) {
            d.ev = Some(ev);
        }
        if !options.contains(ListenerOptions::DISABLED) {
            if let Err(e) = lis.enable(base) {
                let _ = lis.free(base);
                return Err(e);
            }
        }
        Ok(lis)
    }

    fn data(self, base: &mut EventBase) -> io::Result<&mut LisData> {
        slab(base)
            .get_mut(self.key)
            .ok_or_else(|| stale("listener"))
    }

    /// Whether the handle still refers to a live listener.
    #[must_use]
    pub fn is_valid(self, base: &mut EventBase) -> bool {
        slab(base).get(self.key).is_some()
    }

    /// Starts (or resumes) accepting connections (`evconnlistener_enable`).
    /// This also ends a back-off in progress, so accepting is retried at
    /// once. Enabling an enabled listener does nothing.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener; the base's error adding the event.
    #[doc(alias = "evconnlistener_enable")]
    pub fn enable(self, base: &mut EventBase) -> io::Result<()> {
        let d = self.data(base)?;
        d.enabled = true;
        d.backing_off = false;
        let (ev, timer) = (d.ev, d.timer);
        if let Some(t) = timer {
            base.del(t)?;
        }
        if let Some(ev) = ev {
            base.add(ev, None)?;
        }
        Ok(())
    }

    /// Stops accepting connections (`evconnlistener_disable`); new ones wait
    /// in the kernel's backlog until [`enable`](Self::enable). Called from
    /// the accept callback, it also stops the current round of accepts.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener.
    #[doc(alias = "evconnlistener_disable")]
    pub fn disable(self, base: &mut EventBase) -> io::Result<()> {
        let d = self.data(base)?;
        d.enabled = false;
        if let Some(ev) = d.ev {
            base.del(ev)?;
        }
        Ok(())
    }

    /// Whether the listener is enabled (it may still be pausing in a
    /// back-off).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener.
    pub fn is_enabled(self, base: &mut EventBase) -> io::Result<bool> {
        Ok(self.data(base)?.enabled)
    }

    /// Replaces the accept callback (`evconnlistener_set_cb`). Called from
    /// inside the accept callback, the new one takes over from the next
    /// connection on.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener.
    #[doc(alias = "evconnlistener_set_cb")]
    pub fn set_callback(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, Listener, OwnedFd, SockAddr) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.cb = Some(Box::new(cb));
        Ok(())
    }

    /// Sets the callback that hears about failed `accept` calls
    /// (`evconnlistener_set_error_cb`): running out of descriptors or
    /// memory (after which the listener backs off), per-connection errors
    /// and unexpected ones. `ECONNABORTED` and `EINTR` are not reported.
    /// The callback may free the listener.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener.
    #[doc(alias = "evconnlistener_set_error_cb")]
    pub fn set_error_callback(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, Listener, io::Error) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.errcb = Some(Box::new(cb));
        Ok(())
    }

    /// The address the socket is bound to (`getsockname`), such as the port
    /// picked for port 0.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener; the OS error of `getsockname`.
    pub fn local_addr(self, base: &mut EventBase) -> io::Result<SockAddr> {
        self.socket(base)?.local_addr()
    }

    /// The listening socket's descriptor (`evconnlistener_get_fd`). It stays
    /// owned by the listener.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed listener.
    #[doc(alias = "evconnlistener_get_fd")]
    pub fn fd(self, base: &mut EventBase) -> io::Result<RawFd> {
        Ok(self.socket(base)?.as_raw_fd())
    }

    fn socket(self, base: &mut EventBase) -> io::Result<&Socket> {
        self.data(base)?
            .sock
            .as_ref()
            .ok_or_else(|| stale("listener"))
    }

    /// Frees the listener (`evconnlistener_free`): it stops accepting, its
    /// events are freed, and its socket is closed if the listener made it or
    /// was given [`CLOSE_ON_FREE`](ListenerOptions::CLOSE_ON_FREE).
    /// Connections still in the backlog are then reset by the kernel.
    ///
    /// It may be called from any callback, the listener's own included; no
    /// callback of the listener runs after it returns, and every copy of the
    /// handle becomes stale.
    ///
    /// # Errors
    ///
    /// `NotFound` for a listener already freed.
    #[doc(alias = "evconnlistener_free")]
    pub fn free(self, base: &mut EventBase) -> io::Result<()> {
        let data = slab(base)
            .remove(self.key)
            .ok_or_else(|| stale("listener"))?;
        if let Some(ev) = data.ev {
            base.free(ev)?;
        }
        if let Some(t) = data.timer {
            base.free(t)?;
        }
        // Dropping closes the socket (or releases it unclosed) and drops the
        // closures, after the base no longer refers to them.
        drop(data);
        Ok(())
    }
}

/// The read event's callback: accept what is queued, up to the bound.
fn accept_ready(base: &mut EventBase, lis: Listener) {
    for _ in 0..ACCEPTS_PER_CALLBACK {
        let Some(d) = slab(base).get_mut(lis.key) else {
            return; // freed by a callback
        };
        if !d.enabled || d.backing_off {
            return; // disabled by a callback
        }
        let Some(sock) = d.sock.as_ref() else {
            return;
        };
        match accept_nb(sock) {
            Ok((conn, peer)) => {
                d.backoff = Duration::ZERO;
                let Some(mut cb) = d.cb.take() else {
                    // Only possible if the loop were re-entered from the
                    // callback itself; the connection cannot be handed on.
                    drop(conn);
                    continue;
                };
                cb(base, lis, OwnedFd::from(conn), peer);
                if let Some(d) = slab(base).get_mut(lis.key) {
                    // Unless the callback installed a new one.
                    if d.cb.is_none() {
                        d.cb = Some(cb);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => match classify(&e) {
                AcceptErr::Retry => {}
                AcceptErr::ReportAndRetry => report(base, lis, e),
                AcceptErr::Backoff => {
                    // Pause first, so the error callback sees (and may
                    // override with enable, or end with free) the paused state.
                    if let Err(te) = start_backoff(base, lis) {
                        tracing::warn!("listener: cannot arm the back-off timer: {te}");
                    }
                    report(base, lis, e);
                    return;
                }
            },
        }
    }
}

/// Calls the error callback, if any, the way the accept callback is called.
fn report(base: &mut EventBase, lis: Listener, err: io::Error) {
    let Some(d) = slab(base).get_mut(lis.key) else {
        return;
    };
    let Some(mut cb) = d.errcb.take() else {
        tracing::debug!("listener: accept failed: {err}");
        return;
    };
    cb(base, lis, err);
    if let Some(d) = slab(base).get_mut(lis.key) {
        if d.errcb.is_none() {
            d.errcb = Some(cb);
        }
    }
}

/// Stops watching the socket and arms the timer that resumes it.
fn start_backoff(base: &mut EventBase, lis: Listener) -> io::Result<()> {
    let d = lis.data(base)?;
    let delay = if d.backoff.is_zero() {
        BACKOFF_MIN
    } else {
        (d.backoff * 2).min(BACKOFF_MAX)
    };
    d.backoff = delay;
    d.backing_off = true;
    let (ev, timer) = (d.ev, d.timer);
    if let Some(ev) = ev {
        base.del(ev)?;
    }
    let timer = match timer {
        Some(t) => t,
        None => {
            let t = base.timer_new(move |base, _ev, _what| end_backoff(base, lis));
            lis.data(base)?.timer = Some(t);
            t
        }
    };
    tracing::debug!("listener: accept failing, pausing for {delay:?}");
    base.add(timer, Some(delay))
}

/// The back-off timer's callback: watch the socket again if still enabled.
fn end_backoff(base: &mut EventBase, lis: Listener) {
    let Some(d) = slab(base).get_mut(lis.key) else {
        return;
    };
    d.backing_off = false;
    let (enabled, ev) = (d.enabled, d.ev);
    if let (true, Some(ev)) = (enabled, ev) {
        if let Err(e) = base.add(ev, None) {
            tracing::warn!("listener: cannot resume after a back-off: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let e = |n| io::Error::from_raw_os_error(n);
        for n in [libc::ECONNABORTED, libc::EINTR] {
            assert!(matches!(classify(&e(n)), AcceptErr::Retry), "{n}");
        }
        for n in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EBADF,
            libc::EINVAL,
        ] {
            assert!(matches!(classify(&e(n)), AcceptErr::Backoff), "{n}");
        }
        for n in [libc::EPROTO, libc::EPERM, libc::ENETUNREACH] {
            assert!(matches!(classify(&e(n)), AcceptErr::ReportAndRetry), "{n}");
        }
    }

    #[test]
    fn backlog_defaults() {
        assert_eq!(backlog_or_default(-1), DEFAULT_BACKLOG);
        assert_eq!(backlog_or_default(5), 5);
        assert_eq!(ListenerOptions::all().bits(), 0x1ee);
    }
}
