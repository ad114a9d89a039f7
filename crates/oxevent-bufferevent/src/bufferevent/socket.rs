//! Socket bufferevents: an fd, a persistent read event and a write event
//! armed only while output is pending; non-blocking connect, and
//! `connect_hostname` racing the resolved addresses per RFC 8305 (Happy
//! Eyeballs): families interleaved, a new attempt every 250 ms (or at once
//! when one fails) while the earlier ones go on, the first to connect wins.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use oxevent_core::{Event, EventBase, Features, What, fdio, util};
use socket2::{Domain, SockRef, Socket, Type};

use super::rate;
use super::{
    BevData, BevEvent, BevFlags, BevOptions, BufferEvent, Family, Kind, Resolve, data, readcb,
    release_fd, suspend, update_read_wm, writecb,
};
use super::{Bevs, bevs, note_dirty};
// A socket's own events go through its transport, if it has one.
use super::transport::{self, eventcb};
use crate::buffer::{Buffer, BufferError};
use crate::slab::Key;

/// The socket side of a bufferevent.
#[derive(Default)]
pub(crate) struct SocketState {
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) read_ev: Option<Event>,
    pub(crate) write_ev: Option<Event>,
    read_armed: bool,
    write_armed: bool,
    /// The events are edge-triggered (on backends that have it): the kernel
    /// reports new data and new room only, so the bufferevent re-activates
    /// its own event when it stopped before the socket was drained (a read
    /// or write of the whole max single size) and when it re-arms an event
    /// (the edge may have come while it was disarmed).
    pub(crate) edge: bool,
    /// Edge-triggered: the peer's end of stream was reported, so reads go
    /// on (each one re-activating the event) until one returns it.
    pub(crate) peer_closed: bool,
    /// Whether reads ask the kernel what is left (`TCP_INQ`).
    pub(crate) inq: Inq,
    /// Timeouts changed: re-add armed events with the new values.
    pub(crate) rearm: bool,
    pub(crate) connecting: bool,
    /// The fd is the caller's (no `CLOSE_ON_FREE`): never close it, even
    /// when the base is dropped with the bufferevent still in it.
    keep_open: bool,
    /// The state of a `connect_hostname`, boxed: most sockets never have
    /// one, and it would make every bufferevent's slot larger.
    race: Option<Box<Race>>,
    /// The layer that drives this socket's I/O, if any (a TLS session):
    /// see `transport.rs`.
    pub(crate) transport: Option<Box<dyn transport::Transport>>,
}

/// `TCP_INQ` on an edge-triggered socket: once on, each read also says how
/// much the kernel still holds, so a read that filled the max single read
/// and drained the socket needs no second `recv` to find `WouldBlock`. It
/// is turned on at the first read that fills the max (one `setsockopt`), so
/// that sockets whose reads never do (small requests) keep the plain `recv`
/// and pay nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Inq {
    /// Not needed yet.
    #[default]
    Untried,
    /// On: reads use `recvmsg` and get the count.
    On,
    /// Level-triggered, or refused (not TCP).
    Off,
}

/// A `connect_hostname` in progress (or its DNS error).
#[derive(Default)]
struct Race {
    /// Addresses still to try.
    pending_addrs: VecDeque<SocketAddr>,
    dns_error: Option<String>,
    /// Happy Eyeballs: connection attempts racing beside the main one.
    racers: Vec<Racer>,
    /// Starts the next racing attempt after the connection attempt delay.
    race_timer: Option<Event>,
    next_racer: u32,
    /// The lookup is running: more parts of the answer may come.
    resolving: bool,
    /// No attempt has started yet: the first one waits for the resolution
    /// delay (A came first, AAAA may follow) or for the rest of the answer.
    not_started: bool,
}

/// RFC 8305's Resolution Delay: how long an A answer waits for the AAAA
/// answer before the first attempt starts on IPv4.
pub(crate) const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

/// A connection attempt racing beside the bufferevent's own socket.
struct Racer {
    id: u32,
    sock: Socket,
    ev: Event,
}

/// RFC 8305's Connection Attempt Delay: the wait before starting the next
/// address while the earlier attempts go on.
pub(crate) const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

impl Drop for SocketState {
    fn drop(&mut self) {
        if self.keep_open {
            if let Some(fd) = self.fd.take() {
                let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
            }
        }
    }
}

impl SocketState {
    pub(crate) fn release(mut self, base: &mut EventBase, options: BevOptions) {
        transport::release(&mut self);
        let race = self.race.take();
        for ev in [
            self.read_ev.take(),
            self.write_ev.take(),
            race.as_ref().and_then(|r| r.race_timer),
        ]
        .into_iter()
        .flatten()
        {
            let _ = base.free(ev);
        }
        for r in race.into_iter().flat_map(|r| r.racers) {
            let _ = base.free(r.ev);
        }
        if let Some(fd) = self.fd.take() {
            if options.contains(BevOptions::CLOSE_ON_FREE) {
                // Closing drops the kernel's registration: no removal needed.
                base.fd_closing(fd.as_raw_fd());
            }
            release_fd(fd, options);
        }
    }
}

impl SocketState {
    /// The `connect_hostname` state, made on first use.
    fn race(&mut self) -> &mut Race {
        self.race.get_or_insert_with(Box::default)
    }
}

/// The `connect_hostname` state of `key`, if it is racing.
fn race_of(base: &mut EventBase, key: Key) -> Option<&mut Race> {
    state_of(base, key).ok()?.race.as_deref_mut()
}

fn state(d: &mut BevData) -> &mut SocketState {
    match &mut d.kind {
        Kind::Socket(s) => s,
        _ => unreachable!("socket functions are only called for socket bufferevents"),
    }
}

impl BufferEvent {
    /// A bufferevent over a connected (or, with [`connect`](Self::connect),
    /// to-be-connected) socket (`bufferevent_socket_new`). The fd is put in
    /// non-blocking mode. Writing starts enabled, reading does not.
    ///
    /// # Errors
    ///
    /// The OS error for an fd the backend cannot watch.
    #[doc(alias = "bufferevent_socket_new")]
    pub fn socket(
        base: &mut EventBase,
        fd: Option<OwnedFd>,
        options: BevOptions,
    ) -> io::Result<Self> {
        let bev = Self::insert(
            base,
            BevData::new(Kind::Socket(SocketState::default()), options),
        );
        if let Some(fd) = fd {
            if let Err(e) = bev.setfd(base, fd) {
                let _ = bev.free(base);
                return Err(e);
            }
        }
        Ok(bev)
    }

    /// Replaces the fd of a socket bufferevent (`bufferevent_setfd`); the
    /// old one is released as the options say.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent, `InvalidInput` for another kind,
    /// the OS error for an fd that cannot be watched.
    #[doc(alias = "bufferevent_setfd")]
    pub fn setfd(self, base: &mut EventBase, fd: OwnedFd) -> io::Result<()> {
        let options = data(base, self.key)?.options;
        self.replace_fd(base, fd, options.contains(BevOptions::CLOSE_ON_FREE))
    }

    /// Puts `fd` in place of the current fd (closed if `close_old`) with
    /// fresh events; the connect state (addresses left to try, DNS error)
    /// stays.
    fn replace_fd(self, base: &mut EventBase, fd: OwnedFd, close_old: bool) -> io::Result<()> {
        util::set_nonblocking(fd.as_fd())?;
        let key = self.key;
        let s = state_of(base, key)?;
        let (old_fd, old_r, old_w) = (s.fd.take(), s.read_ev.take(), s.write_ev.take());
        s.read_armed = false;
        s.write_armed = false;
        s.connecting = false;
        for ev in [old_r, old_w].into_iter().flatten() {
            let _ = base.free(ev);
        }
        if let Some(old) = old_fd {
            if close_old {
                base.fd_closing(old.as_raw_fd());
            }
            release_fd(
                old,
                if close_old {
                    BevOptions::CLOSE_ON_FREE
                } else {
                    BevOptions::empty()
                },
            );
        }
        let raw = fd.as_raw_fd();
        // Edge-triggered where the backend has it: every poll then reports
        // only sockets with new data (level-triggered epoll re-checks every
        // socket it reported last time), which measured a lower p99 round
        // trip under many busy connections (design 0003).
        // With edges, the peer's end of stream must be seen too: a FIN that
        // came with the last data raises no edge of its own, so the read
        // event also asks for `CLOSED` (EPOLLRDHUP) and reads on to the end
        // when the report carries it.
        let edge = base
            .features()
            .contains(Features::ET | Features::EARLY_CLOSE);
        let (et, closed) = if edge {
            (What::ET, What::CLOSED)
        } else {
            (What::empty(), What::empty())
        };
        // The callbacks capture nothing (no allocation per event): the
        // bufferevent is found by the event's index.
        let read_ev = base.event_new(
            raw,
            What::READ | What::PERSIST | et | closed,
            |base, ev, what| {
                if let Some(key) = super::owner(base, ev) {
                    on_read(base, key, what);
                }
            },
        )?;
        super::set_owner(base, read_ev, key);
        let write_ev =
            match base.event_new(raw, What::WRITE | What::PERSIST | et, |base, ev, what| {
                if let Some(key) = super::owner(base, ev) {
                    on_write(base, key, what);
                }
            }) {
                Ok(ev) => ev,
                Err(e) => {
                    let _ = base.free(read_ev);
                    return Err(e);
                }
            };
        super::set_owner(base, write_ev, key);
        let keep_open = !data(base, key)?.options.contains(BevOptions::CLOSE_ON_FREE);
        let s = state_of(base, key)?;
        s.inq = if edge { Inq::Untried } else { Inq::Off };
        s.fd = Some(fd);
        s.keep_open = keep_open;
        s.read_ev = Some(read_ev);
        s.write_ev = Some(write_ev);
        s.edge = edge;
        s.peer_closed = false;
        sync(base, key)
    }

    /// Connects to `addr` (`bufferevent_socket_connect`), creating the
    /// socket if the bufferevent has none. Completion, or failure, reaches
    /// the event callback as `CONNECTED` or `ERROR` (never from inside this
    /// call). Data written meanwhile is sent once connected.
    ///
    /// # Errors
    ///
    /// `NotFound`, `InvalidInput` for another kind; the OS error creating
    /// the socket.
    #[doc(alias = "bufferevent_socket_connect")]
    pub fn connect(self, base: &mut EventBase, addr: SocketAddr) -> io::Result<()> {
        if state_of(base, self.key)?.fd.is_none() {
            let sock = Socket::new(
                Domain::for_address(addr),
                Type::STREAM.nonblocking().cloexec(),
                None,
            )?;
            self.setfd(base, sock.into())?;
        }
        let r = match state_of(base, self.key)?.fd.as_ref() {
            Some(fd) => SockRef::from(fd).connect(&addr.into()),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        };
        match r {
            Ok(()) => {
                // Connected at once (loopback can do that): report it from the loop.
                state(data(base, self.key)?).connecting = true;
                set_connecting(base, self.key)?;
                Ok(())
            }
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                state(data(base, self.key)?).connecting = true;
                set_connecting(base, self.key)
            }
            Err(e) => {
                // Refused at once: report it from the loop, as libevent does.
                let ev = BevEvent::new(BevFlags::ERROR, e.raw_os_error());
                super::merge_pending_event(data(base, self.key)?, ev);
                self.touch(base)
            }
        }
    }

    /// A new socket bufferevent connecting to `addr`: [`socket`](Self::socket)
    /// then [`connect`](Self::connect).
    ///
    /// # Errors
    ///
    /// As for those two.
    pub fn socket_connect(
        base: &mut EventBase,
        addr: SocketAddr,
        options: BevOptions,
    ) -> io::Result<Self> {
        let bev = Self::socket(base, None, options)?;
        if let Err(e) = bev.connect(base, addr) {
            let _ = bev.free(base);
            return Err(e);
        }
        Ok(bev)
    }

    /// Resolves `host` with `resolver` and connects to the addresses
    /// (`bufferevent_socket_connect_hostname`; libevent stops at the
    /// first): IPv6 and IPv4 are interleaved and raced per RFC 8305 (Happy
    /// Eyeballs): IPv4 addresses that arrive first wait up to 50 ms for
    /// IPv6 ones (the resolution delay, with a resolver that hands over
    /// parts: [`Resolve::resolve_parts`]); while an attempt is pending, the
    /// next address is tried after 250 ms (at once when an attempt fails),
    /// and the first to connect wins; the others are closed. A failed
    /// lookup reaches the event callback as `ERROR` with
    /// [`dns_error`](Self::dns_error) set; when every address fails, the
    /// last error is reported.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for another kind.
    #[doc(alias = "bufferevent_socket_connect_hostname")]
    pub fn connect_hostname(
        self,
        base: &mut EventBase,
        resolver: &dyn Resolve,
        family: Family,
        host: &str,
        port: u16,
    ) -> io::Result<()> {
        let s = state_of(base, self.key)?;
        let r = s.race();
        r.resolving = true;
        r.not_started = true;
        r.dns_error = None;
        r.pending_addrs.clear();
        let key = self.key;
        resolver.resolve_parts(
            base,
            host,
            port,
            family,
            Box::new(move |base, result, last| resolved_part(base, key, result, last)),
        );
        Ok(())
    }

    /// Why the last `connect_hostname` lookup failed
    /// (`bufferevent_socket_get_dns_error`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_socket_get_dns_error")]
    pub fn dns_error(self, base: &mut EventBase) -> io::Result<Option<String>> {
        Ok(match &data(base, self.key)?.kind {
            Kind::Socket(s) => s.race.as_ref().and_then(|r| r.dns_error.clone()),
            _ => None,
        })
    }
}

pub(crate) fn state_of(base: &mut EventBase, key: Key) -> io::Result<&mut SocketState> {
    match &mut data(base, key)?.kind {
        Kind::Socket(s) => Ok(s),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a socket bufferevent",
        )),
    }
}

/// A part of `connect_hostname`'s answer (RFC 8305 sections 3 and 4):
/// IPv6 addresses, or the last part, start the attempts at once; IPv4
/// addresses that came first wait up to [`RESOLUTION_DELAY`] for IPv6 ones.
/// Addresses that come once attempts are running join the queue, still
/// interleaved by family.
fn resolved_part(base: &mut EventBase, key: Key, result: io::Result<Vec<SocketAddr>>, last: bool) {
    let Ok(st) = state_of(base, key) else { return };
    let connecting = st.connecting;
    let Some(s) = st.race.as_deref_mut().filter(|r| r.resolving) else {
        return;
    };
    s.resolving = !last;
    if !s.not_started && !connecting {
        // The race is over (connected, or every address failed): a late
        // part changes nothing.
        return;
    }
    match result {
        Ok(addrs) if !addrs.is_empty() => {
            let has_v6 = addrs.iter().any(SocketAddr::is_ipv6);
            let mut all: Vec<SocketAddr> = s.pending_addrs.drain(..).collect();
            let merged = !all.is_empty();
            for a in addrs {
                if !all.contains(&a) {
                    all.push(a);
                }
            }
            if merged {
                // Parts of one answer: IPv6 first (RFC 8305 section 4).
                // A single part keeps the resolver's order.
                all.sort_by_key(|a| !a.is_ipv6());
            }
            s.pending_addrs = interleave(all);
            s.dns_error = None;
            if !s.not_started {
                arm_race(base, key);
            } else if has_v6 {
                start_attempts(base, key);
            } else if !last {
                let _ = base.once(-1, What::empty(), Some(RESOLUTION_DELAY), move |base, _| {
                    if race_of(base, key)
                        .is_some_and(|s| s.not_started && !s.pending_addrs.is_empty())
                    {
                        start_attempts(base, key);
                    }
                });
            }
        }
        Ok(_) => {}
        // Kept until an address comes; reported if none does.
        Err(e) if s.pending_addrs.is_empty() => s.dns_error = Some(e.to_string()),
        Err(_) => {}
    }
    let Some(s) = race_of(base, key) else { return };
    if last && s.not_started {
        // The whole answer is in: start on what came, or report the lookup
        // error (no waiting out the resolution delay for a failed AAAA).
        if s.pending_addrs.is_empty() {
            let msg = s
                .dns_error
                .take()
                .unwrap_or_else(|| "no addresses found".into());
            s.not_started = false;
            dns_failed(base, key, msg);
        } else {
            start_attempts(base, key);
        }
    }
}

/// Starts the first connection attempt of `connect_hostname`.
fn start_attempts(base: &mut EventBase, key: Key) {
    let Some(s) = race_of(base, key) else { return };
    s.not_started = false;
    try_next(base, key, None);
    arm_race(base, key);
}

fn dns_failed(base: &mut EventBase, key: Key, msg: String) {
    if let Ok(s) = state_of(base, key) {
        s.race().dns_error = Some(msg);
    }
    eventcb(base, key, BevEvent::new(BevFlags::ERROR, None));
}

/// Connects to the next pending address on a fresh socket, or reports the
/// last error when none is left.
fn try_next(base: &mut EventBase, key: Key, last_error: Option<i32>) {
    let Some(s) = race_of(base, key) else { return };
    let Some(addr) = s.pending_addrs.pop_front() else {
        if !s.racers.is_empty() {
            // Attempts are still racing: one of them takes over.
            let r = s.racers.remove(0);
            promote(base, key, r, false);
            return;
        }
        end_race(base, key);
        eventcb(base, key, BevEvent::new(BevFlags::ERROR, last_error));
        return;
    };
    // A fresh socket for each attempt: a failed connect leaves the old one
    // unusable. The failed sockets were ours, so they are closed.
    let bev = BufferEvent { key };
    let attempt = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )
    .and_then(|sock| {
        bev.replace_fd(base, sock.into(), true)?;
        let s = state_of(base, key)?;
        let sref = SockRef::from(s.fd.as_ref().expect("just set"));
        match sref.connect(&addr.into()) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
            Err(e) => Err(e),
        }
    });
    match attempt {
        Ok(()) => {
            if let Ok(s) = state_of(base, key) {
                s.connecting = true;
            }
            let _ = set_connecting(base, key);
        }
        Err(e) => try_next(base, key, e.raw_os_error()),
    }
}

fn set_connecting(base: &mut EventBase, key: Key) -> io::Result<()> {
    let d = data(base, key)?;
    d.read_suspend |= suspend::CONNECTING;
    sync(base, key)
}

/// Arms or disarms the read and write events to match the state.
pub(crate) fn sync(base: &mut EventBase, key: Key) -> io::Result<()> {
    let d = data(base, key)?;
    let want_read = transport::wants_read(d);
    let connecting = state(d).connecting;
    let want_write = connecting
        || (d.enabled.contains(What::WRITE) && d.write_suspend == 0 && !d.output.is_empty())
        || transport::wants_write(d);
    let (tr, tw) = (d.timeout_read.get(), d.timeout_write.get());
    let s = state(d);
    let rearm = std::mem::take(&mut s.rearm);
    let (Some(rev), Some(wev)) = (s.read_ev, s.write_ev) else {
        return Ok(());
    };
    let (read_armed, write_armed, edge) = (s.read_armed, s.write_armed, s.edge);
    if !rearm && read_armed == want_read && write_armed == want_write {
        // The common case on every read and write: nothing to change.
        return Ok(());
    }
    if want_read && (!read_armed || rearm) {
        base.add(rev, tr)?;
        if edge && !read_armed {
            // Data that came while reading was off raised no edge we saw.
            base.activate(rev, What::READ, 1)?;
        }
    } else if !want_read && read_armed {
        base.del(rev)?;
    }
    if want_write && (!write_armed || rearm) {
        base.add(wev, tw)?;
        if edge && !write_armed && !connecting {
            // The same for room (never while connecting: the connect's own
            // edge says when it is done).
            base.activate(wev, What::WRITE, 1)?;
        }
    } else if !want_write && write_armed {
        base.del(wev)?;
    }
    let s = state(data(base, key)?);
    s.read_armed = want_read;
    s.write_armed = want_write;
    Ok(())
}

fn errno_of(e: &BufferError) -> Option<i32> {
    match e {
        BufferError::Io(e) => e.raw_os_error(),
        _ => None,
    }
}

fn is_would_block(e: &BufferError) -> bool {
    matches!(e, BufferError::Io(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted)
}

/// Disables `what`, re-syncs and reports `flags` to the event callback.
fn fail(base: &mut EventBase, key: Key, what: What, flags: BevFlags, error: Option<i32>) {
    if let Ok(d) = data(base, key) {
        d.enabled = d.enabled.difference(what);
        let _ = sync(base, key);
        eventcb(base, key, BevEvent::new(flags, error));
    }
}

fn on_read(base: &mut EventBase, key: Key, what: What) {
    if what.contains(What::TIMEOUT) {
        fail(
            base,
            key,
            What::READ,
            BevFlags::READING | BevFlags::TIMEOUT,
            None,
        );
        return;
    }
    let Ok(d) = data(base, key) else { return };
    if transport::has(d) {
        transport::on_read(base, key, what);
        return;
    }
    let room = d.read_room();
    if room == 0 {
        update_read_wm(d);
        let _ = sync(base, key);
        return;
    }
    let (limited, mut max) = (d.rate.is_some(), d.max_read.min(room));
    if limited {
        max = rate::max_to_read(base, key, max);
        if max == 0 {
            rate::starve(base, key, true);
            return;
        }
    }
    // One slot lookup from the read to the read callback (the hot path).
    let Bevs {
        slab,
        scratch,
        dirty,
        virtual_held,
        ..
    } = bevs(base);
    let Some(d) = slab.get_mut(key) else { return };
    let Kind::Socket(s) = &mut d.kind else { return };
    let Some(fd) = s.fd.as_ref() else { return };
    s.peer_closed |= s.edge && what.contains(What::CLOSED);
    let read_ev = s.read_ev;
    let r = read_edge(
        fd.as_fd(),
        &mut s.inq,
        s.edge,
        s.peer_closed,
        &mut d.input,
        scratch,
        max,
    );
    match r {
        Ok((0, _)) => fail(
            base,
            key,
            What::READ,
            BevFlags::READING | BevFlags::EOF,
            None,
        ),
        Ok((n, again)) => {
            // The input changed: its deferred callbacks run at the next flush.
            let add_virtual = note_dirty(d, key, dirty, virtual_held);
            let changed = update_read_wm(d);
            let ready = d.input.len() >= d.wm_read.0;
            if add_virtual {
                base.add_virtual();
            }
            if let Some(ev) = read_ev.filter(|_| again) {
                // Read again in the next pass, after the other ready
                // sockets (see `read_edge`).
                let _ = base.activate(ev, What::READ, 1);
            }
            if limited {
                rate::charge(base, key, n, true);
            }
            if changed {
                let _ = sync(base, key);
            }
            if ready {
                // What the callback writes in reply goes out at the flush
                // before the next poll, together with the replies of every
                // other connection read in this pass (libevent writes on the
                // next write event, also one pass later). Writing here at
                // once instead woke each peer mid-pass: measured with wrk on
                // the HTTP server, batching gave about 20% more requests/s.
                readcb(base, key);
            }
        }
        Err(e) if is_would_block(&e) => {}
        Err(e) => fail(
            base,
            key,
            What::READ,
            BevFlags::READING | BevFlags::ERROR,
            errno_of(&e),
        ),
    }
}

/// One read of up to `max` bytes from the socket `fd` into `buf`, for the
/// socket path and for transports alike. Returns the bytes read (`0` is end
/// of file) and whether, edge-triggered, the bufferevent must come back
/// for more in the next pass, since no edge will say so: the read filled
/// `max` and the kernel did not say the socket is drained, or the peer
/// closed and its end is still to be read. The first read that fills `max`
/// turns `TCP_INQ` on (`inq`), so that later ones learn what is left: a
/// read that took exactly what was queued then costs no `recv` that finds
/// `WouldBlock` (the next data raises an edge).
pub(crate) fn read_edge(
    fd: BorrowedFd<'_>,
    inq: &mut Inq,
    edge: bool,
    peer_closed: bool,
    buf: &mut Buffer,
    scratch: &mut Vec<u8>,
    max: usize,
) -> Result<(usize, bool), BufferError> {
    let (n, left) = buf.read_socket_via(fd, max, scratch, *inq == Inq::On)?;
    if n == max && *inq == Inq::Untried {
        *inq = if fdio::enable_tcp_inq(fd).is_ok() {
            Inq::On
        } else {
            Inq::Off
        };
    }
    let again = edge && n > 0 && ((n == max && left != Some(0)) || peer_closed);
    Ok((n, again))
}

fn on_write(base: &mut EventBase, key: Key, what: What) {
    if what.contains(What::TIMEOUT) {
        // Also a connect that took longer than the write timeout.
        fail(
            base,
            key,
            What::WRITE,
            BevFlags::WRITING | BevFlags::TIMEOUT,
            None,
        );
        return;
    }
    if data(base, key).is_ok_and(|d| state(d).connecting) {
        finish_connect(base, key);
        return;
    }
    if flush_write(base, key) > 0 {
        // The output changed: its deferred callbacks run at the next flush.
        let _ = super::mark_dirty(base, key);
    }
}

fn finish_connect(base: &mut EventBase, key: Key) {
    let Ok(d) = data(base, key) else { return };
    let s = state(d);
    let err = match s.fd.as_ref() {
        Some(fd) => match SockRef::from(fd).take_error() {
            Ok(None) => None,
            Ok(Some(e)) => Some(e),
            Err(e) => Some(e),
        },
        None => Some(io::Error::from(io::ErrorKind::NotConnected)),
    };
    s.connecting = false;
    match err {
        Some(e) => {
            let (racer, none_left) = match s.race.as_deref_mut() {
                Some(r) => (
                    (!r.racers.is_empty()).then(|| r.racers.remove(0)),
                    r.pending_addrs.is_empty(),
                ),
                None => (None, true),
            };
            if let Some(r) = racer {
                // A racing attempt takes over as the main one, and the
                // next address starts at once.
                promote(base, key, r, false);
                start_racer(base, key);
            } else if none_left {
                d.read_suspend &= !suspend::CONNECTING;
                let _ = sync(base, key);
                end_race(base, key);
                eventcb(base, key, BevEvent::new(BevFlags::ERROR, e.raw_os_error()));
            } else {
                try_next(base, key, e.raw_os_error());
                arm_race(base, key);
            }
        }
        None => {
            end_race(base, key);
            let Ok(d) = data(base, key) else { return };
            d.read_suspend &= !suspend::CONNECTING;
            let _ = sync(base, key);
            eventcb(base, key, BevEvent::new(BevFlags::CONNECTED, None));
            flush_write(base, key);
        }
    }
}

/// Writes up to the max single write from the output now. Returns the
/// number of bytes written.
pub(crate) fn flush_write(base: &mut EventBase, key: Key) -> usize {
    write_out(base, key, false)
}

/// [`flush_write`], after re-checking the read high watermark first when
/// `check_wm` (the per-iteration flush): one slot lookup on the common path.
fn write_out(base: &mut EventBase, key: Key, check_wm: bool) -> usize {
    let Ok(d) = data(base, key) else { return 0 };
    if transport::has(d) {
        return transport::write_out(base, key, check_wm);
    }
    if check_wm {
        update_read_wm(d);
    }
    if state(d).connecting
        || !d.enabled.contains(What::WRITE)
        || d.write_suspend != 0
        || d.output.is_empty()
    {
        let _ = sync(base, key);
        return 0;
    }
    let (limited, max_single) = (d.rate.is_some(), d.max_write);
    if limited {
        let max = rate::max_to_write(base, key, max_single);
        if max == 0 {
            rate::starve(base, key, false);
            return 0;
        }
        let Ok(d) = data(base, key) else { return 0 };
        let Some(done) = write_with(d, max) else {
            return 0;
        };
        return after_write(base, key, done, true);
    }
    let Some(done) = write_with(d, max_single) else {
        return 0;
    };
    after_write(base, key, done, false)
}

/// What [`write_with`] did.
struct WriteDone {
    /// The write's result.
    r: Result<usize, BufferError>,
    /// The output fell to the write low watermark.
    low: bool,
    /// A write callback would hear of it.
    notify: bool,
    /// Edge-triggered, the write went through and more is left: the event
    /// to activate for the rest (no edge may come for it).
    again: Option<Event>,
}

/// Writes up to `max` bytes of the socket bufferevent `d`'s output; `None`
/// when it has no socket.
fn write_with(d: &mut BevData, max: usize) -> Option<WriteDone> {
    // Whether anyone hears of the write: a write callback, or a deferred
    // one (the common echo or HTTP connection has neither).
    let notify = d.writecb.is_some() || d.options.contains(BevOptions::DEFER_CALLBACKS);
    let BevData {
        kind,
        output,
        wm_write,
        ..
    } = d;
    let Kind::Socket(s) = kind else { return None };
    let fd = s.fd.as_ref()?;
    let r = output.write_socket_offered(fd.as_fd(), max);
    let low = matches!(r, Ok((n, _)) if n > 0) && output.len() <= wm_write.0;
    // A write that took everything offered (which the iovec limit can make
    // less than `max`) may have left room: no edge would come for the rest.
    // One that took less found the socket full, and the edge will come.
    let again =
        if s.edge && matches!(r, Ok((n, offered)) if n > 0 && n == offered) && !output.is_empty() {
            s.write_ev
        } else {
            None
        };
    Some(WriteDone {
        r: r.map(|(n, _)| n),
        low,
        notify,
        again,
    })
}

/// After [`write_with`]: charges the rate limit, re-syncs the events, runs
/// the write callback at the low watermark, or reports the error.
fn after_write(base: &mut EventBase, key: Key, done: WriteDone, limited: bool) -> usize {
    let WriteDone {
        r,
        low,
        notify,
        again,
    } = done;
    match r {
        Ok(n) => {
            if limited {
                rate::charge(base, key, n, false);
            }
            let _ = sync(base, key);
            if let Some(ev) = again {
                let _ = base.activate(ev, What::WRITE, 1);
            }
            if low && notify {
                writecb(base, key);
            }
            n
        }
        Err(e) if is_would_block(&e) => {
            let _ = sync(base, key);
            0
        }
        Err(e) => {
            fail(
                base,
                key,
                What::WRITE,
                BevFlags::WRITING | BevFlags::ERROR,
                errno_of(&e),
            );
            0
        }
    }
}

/// The per-iteration flush of a socket bufferevent.
pub(crate) fn flush(base: &mut EventBase, key: Key) {
    write_out(base, key, true);
}

/// Orders addresses per RFC 8305 section 4: the families alternate,
/// starting with the family of the first address; within a family the
/// order given is kept.
fn interleave(addrs: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut a, mut b): (VecDeque<SocketAddr>, VecDeque<SocketAddr>) =
        addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = VecDeque::with_capacity(a.len() + b.len());
    loop {
        match (a.pop_front(), b.pop_front()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// Arms the race timer while addresses are left and the main attempt is
/// still connecting.
fn arm_race(base: &mut EventBase, key: Key) {
    let Ok(st) = state_of(base, key) else { return };
    let connecting = st.connecting;
    let Some(s) = st.race.as_deref_mut() else {
        return;
    };
    if s.pending_addrs.is_empty() || !connecting {
        return;
    }
    let timer = match s.race_timer {
        Some(t) => t,
        None => {
            let t = base.timer_new(move |base, _, _| {
                start_racer(base, key);
                arm_race(base, key);
            });
            match race_of(base, key) {
                Some(s) => s.race_timer = Some(t),
                None => {
                    let _ = base.free(t);
                    return;
                }
            }
            t
        }
    };
    let _ = base.add(timer, Some(CONNECTION_ATTEMPT_DELAY));
}

/// Starts one racing attempt on the next pending address (skipping the
/// ones that fail at once).
fn start_racer(base: &mut EventBase, key: Key) {
    loop {
        let Some(s) = race_of(base, key) else { return };
        let Some(addr) = s.pending_addrs.pop_front() else {
            return;
        };
        let id = s.next_racer;
        s.next_racer = s.next_racer.wrapping_add(1);
        let Ok(sock) = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            None,
        ) else {
            continue;
        };
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(_) => continue,
        }
        let Ok(ev) = base.event_new(sock.as_raw_fd(), What::WRITE, move |base, _, _| {
            racer_ready(base, key, id);
        }) else {
            continue;
        };
        if base.add(ev, None).is_err() {
            let _ = base.free(ev);
            continue;
        }
        match race_of(base, key) {
            Some(s) => s.racers.push(Racer { id, sock, ev }),
            None => {
                let _ = base.free(ev);
            }
        }
        return;
    }
}

/// A racing attempt finished connecting, or failed.
fn racer_ready(base: &mut EventBase, key: Key, id: u32) {
    let Some(s) = race_of(base, key) else { return };
    let Some(i) = s.racers.iter().position(|r| r.id == id) else {
        return;
    };
    let r = s.racers.remove(i);
    match r.sock.take_error() {
        Ok(None) => promote(base, key, r, true),
        _ => {
            // Failed: the next address goes at once (RFC 8305 section 5).
            let _ = base.free(r.ev);
            start_racer(base, key);
        }
    }
}

/// Makes a racing attempt the bufferevent's socket: still connecting (its
/// write event reports the outcome), or connected (reported now).
fn promote(base: &mut EventBase, key: Key, r: Racer, connected: bool) {
    let _ = base.free(r.ev);
    let bev = BufferEvent { key };
    if bev.replace_fd(base, r.sock.into(), true).is_err() {
        return;
    }
    if let Ok(s) = state_of(base, key) {
        s.connecting = true;
    }
    if connected {
        finish_connect(base, key);
    } else {
        let _ = set_connecting(base, key);
    }
}

/// Closes the racing attempts and the race timer.
fn end_race(base: &mut EventBase, key: Key) {
    let Ok(s) = state_of(base, key) else { return };
    // The race is over: its state goes (no DNS error is set by then).
    let Some(race) = s.race.take() else { return };
    let Race {
        racers, race_timer, ..
    } = *race;
    let timer = race_timer;
    for r in racers {
        let _ = base.free(r.ev);
    }
    if let Some(t) = timer {
        let _ = base.free(t);
    }
}

/// Parses `Family` into a filter on addresses.
pub(crate) fn family_matches(family: Family, addr: &SocketAddr) -> bool {
    match family {
        Family::Any => true,
        Family::V4 => addr.is_ipv4(),
        Family::V6 => addr.is_ipv6(),
    }
}

#[cfg(test)]
mod happy_eyeballs_tests {
    use super::*;

    #[test]
    fn families_alternate_starting_with_the_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let got: Vec<SocketAddr> = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
        ])
        .into();
        assert_eq!(
            got,
            [
                a("[::1]:1"),
                a("10.0.0.1:1"),
                a("[::2]:1"),
                a("10.0.0.2:1"),
                a("[::3]:1")
            ]
        );
        let got: Vec<SocketAddr> =
            interleave(vec![a("10.0.0.1:1"), a("[::1]:1"), a("10.0.0.2:1")]).into();
        assert_eq!(got, [a("10.0.0.1:1"), a("[::1]:1"), a("10.0.0.2:1")]);
        assert!(interleave(Vec::new()).is_empty());
    }
}
