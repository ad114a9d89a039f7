//! Socket bufferevents whose I/O another layer drives: a [`Transport`]
//! object held by a socket bufferevent (a TLS session: `oxevent-openssl`'s
//! socket mode, libevent's `bufferevent_openssl_socket_new`).
//!
//! The bufferevent stays a socket bufferevent in every other way: it owns
//! the fd and its two events, [`BufferEvent::fd`] and
//! [`BufferEvent::connect`] work on it, [`BufferEvent::underlying`] is
//! `None`, timeouts, watermarks and the max single read are its own, and
//! the edge-triggered rules of design 0003 hold. What changes is what its
//! read and write paths do:
//!
//! - when the socket is readable, the transport's
//!   [`on_input`](Transport::on_input) runs: it reads the socket itself
//!   ([`TransportCtx::recv_into`], into its own buffer: ciphertext for TLS)
//!   and puts what it decodes into the input (plaintext), within the read
//!   budget;
//! - at the per-iteration flush, and when the socket is writable, its
//!   [`on_output`](Transport::on_output) runs: it encodes the output and
//!   writes the result to the socket ([`TransportCtx::send_from`]); what
//!   the socket does not take stays in the transport, which says so with
//!   [`wants_write`](Transport::wants_write) so that the write event is
//!   armed until it drains;
//! - the socket's own events (connected, a connect or write error, a
//!   timeout) go through [`on_event`](Transport::on_event), which may
//!   rewrite or swallow them;
//! - the socket is read while the transport says so
//!   ([`wants_read`](Transport::wants_read), e.g. during a handshake with
//!   reading disabled), and the transport is run again without the socket
//!   whenever reading resumes while it holds input it has not delivered
//!   ([`pending_input`](Transport::pending_input)).
//!
//! After each run the bufferevent does what a socket read or write does:
//! it applies the watermarks, re-arms its events, runs the read callback
//! (input at the low watermark), the write callback (output drained to
//! its low watermark) and reports the events the transport raised with
//! [`TransportCtx::report`] (`CONNECTED` before the read callback, the rest
//! after it). A socket bufferevent without a transport takes none of these
//! paths (one test of an `Option` on its read and write paths).

use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use oxevent_core::{Event, EventBase, What};

use super::socket::{self, SocketState};
use super::{
    BevData, BevEvent, BevFlags, BevOptions, Bevs, BufferEvent, FlushMode, Kind, Reported,
    after_layer_run, bevs, data, mark_dirty, note_dirty, read_budget, update_read_wm,
};
use crate::buffer::{Buffer, BufferError};
use crate::slab::Key;

/// A layer that drives a socket bufferevent's I/O: it reads and writes the
/// socket itself and turns what it reads into the input and the output
/// into what it writes. Install one with
/// [`BufferEvent::socket_with_transport`].
pub trait Transport: 'static {
    /// The socket is readable ([`TransportCtx::readable`]), or reading
    /// resumed while [`pending_input`](Self::pending_input) holds, or the
    /// user flushed the read side: read the socket (if readable) and put
    /// what can be delivered into the input, at most
    /// [`TransportCtx::read_budget`] bytes.
    fn on_input(&mut self, cx: &mut TransportCtx<'_>);

    /// The output has data, the socket is writable while
    /// [`wants_write`](Self::wants_write) holds, or the user flushed the
    /// write side: encode the output and send.
    fn on_output(&mut self, cx: &mut TransportCtx<'_>);

    /// The socket bufferevent raised `ev` (`CONNECTED`, a connect or write
    /// error, a timeout): returns what is reported instead (`None` swallows
    /// it). The default passes it on.
    fn on_event(&mut self, cx: &mut TransportCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
        let _ = cx;
        Some(ev)
    }

    /// Whether the socket should be read now; `user` is whether the user
    /// reads (enabled, and not suspended by the high watermark). The
    /// default is `user`; a handshake also reads when the user does not,
    /// and a transport that saw the end of the stream stops.
    fn wants_read(&self, user: bool) -> bool {
        user
    }

    /// Whether the transport holds bytes the socket did not take yet: the
    /// write event stays armed while it does (and writing is enabled).
    /// Default: no.
    fn wants_write(&self) -> bool {
        false
    }

    /// Whether the transport holds input it could deliver without reading
    /// the socket: it is run again as soon as the input has room. Default:
    /// no.
    fn pending_input(&self) -> bool {
        false
    }

    /// The bufferevent is being freed: last words (e.g. a TLS close_notify)
    /// go to `fd` now, with one write, before it is closed (with
    /// `CLOSE_ON_FREE`) or given back.
    fn on_free(&mut self, fd: Option<BorrowedFd<'_>>) {
        let _ = fd;
    }

    /// `self`, to reach the concrete type through
    /// [`BufferEvent::transport_hook`]: implement it as `self`.
    fn as_any(&mut self) -> &mut dyn Any;
}

/// What a [`Transport`] works on: the input and output, the socket, the
/// read limits, and the events it reports.
pub struct TransportCtx<'a> {
    /// The bufferevent's input: where decoded data goes.
    pub input: &'a mut Buffer,
    /// The bufferevent's output: what the user wrote.
    pub output: &'a mut Buffer,
    /// Room left in `input` below the read high watermark (`None`: no
    /// limit).
    pub limit: Option<usize>,
    /// The bufferevent's max single read: the most to put into `input` in
    /// one run.
    pub max_read: usize,
    /// The flush mode ([`FlushMode::Normal`] but for `bufferevent_flush`).
    pub mode: FlushMode,
    /// Whether the user reads (enabled, not suspended).
    pub reading: bool,
    /// Whether the user has writing enabled (and not suspended): if not,
    /// the output should stay where it is.
    pub writing: bool,
    /// The socket reported readiness: a read may find data (or the end).
    pub readable: bool,
    fd: Option<BorrowedFd<'a>>,
    /// A connect is in progress: nothing can be sent yet.
    connecting: bool,
    scratch: &'a mut Vec<u8>,
    /// The socket's `TCP_INQ` state (see `socket::read_edge`).
    inq: &'a mut socket::Inq,
    /// Edge-triggered events.
    edge: bool,
    /// Edge-triggered, and the peer's end of stream was reported: reads go
    /// on until one returns it.
    peer_closing: bool,
    read_again: bool,
    write_again: bool,
    reported: Reported,
}

impl fmt::Debug for TransportCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportCtx")
            .field("input", &self.input.len())
            .field("output", &self.output.len())
            .field("limit", &self.limit)
            .field("max_read", &self.max_read)
            .field("mode", &self.mode)
            .field("reading", &self.reading)
            .field("writing", &self.writing)
            .field("readable", &self.readable)
            .field("fd", &self.fd)
            .field("events", &self.reported.events)
            .finish_non_exhaustive()
    }
}

impl<'a> TransportCtx<'a> {
    /// Reports `what` to the event callback once the transport returns
    /// (`CONNECTED` before the read callback of the same run, the rest
    /// after it). Several reports in one run are merged.
    pub fn report(&mut self, what: BevFlags, error: Option<i32>) {
        self.reported.add(what, error);
    }

    /// How many more bytes may be put into the input in this run: the
    /// smaller of the room below the high watermark and the max single
    /// read, 0 if the user does not read.
    #[must_use]
    pub fn read_budget(&self) -> usize {
        read_budget(self.reading, self.limit, self.max_read)
    }

    /// The socket, if the bufferevent has one.
    #[must_use]
    pub fn fd(&self) -> Option<BorrowedFd<'a>> {
        self.fd
    }

    /// Whether bytes can be sent now: there is a socket and it is not
    /// connecting.
    #[must_use]
    pub fn can_send(&self) -> bool {
        self.fd.is_some() && !self.connecting
    }

    /// Reads at most `max` bytes from the socket to the end of `buf`, with
    /// one `recv` (straight into `buf`'s spare space when it is already
    /// initialized). `Ok(0)` is the end of the stream; `WouldBlock` means
    /// nothing is there. With edge-triggered events, a read that filled
    /// `max` makes the bufferevent come back for the rest, unless the
    /// kernel said nothing is left (`TCP_INQ`, as for a plain socket).
    ///
    /// # Errors
    ///
    /// The socket's error (`BufferError::Io`), `NotConnected` without a
    /// socket.
    pub fn recv_into(&mut self, buf: &mut Buffer, max: usize) -> Result<usize, BufferError> {
        let Some(fd) = self.fd else {
            return Err(BufferError::Io(io::ErrorKind::NotConnected.into()));
        };
        let (n, again) = socket::read_edge(
            fd,
            self.inq,
            self.edge,
            self.peer_closing,
            buf,
            self.scratch,
            max,
        )?;
        self.read_again |= again;
        Ok(n)
    }

    /// A read the transport skipped (its own buffer is full) leaves the
    /// socket undrained: with edge-triggered events the bufferevent comes
    /// back next pass (while reading is still wanted).
    pub fn read_later(&mut self) {
        self.read_again = true;
    }

    /// Writes at most `max` bytes from the front of `buf` to the socket
    /// with one `sendmsg` (no `SIGPIPE`) and drains what went. With
    /// edge-triggered events, a write that took everything offered while
    /// more is left makes the bufferevent come back for it. Without a
    /// socket, or while connecting, this writes nothing: `Ok(0)`.
    ///
    /// # Errors
    ///
    /// The socket's error (`WouldBlock` when it is full).
    pub fn send_from(&mut self, buf: &mut Buffer, max: usize) -> Result<usize, BufferError> {
        let Some(fd) = self.fd.filter(|_| !self.connecting) else {
            return Ok(0);
        };
        let r = buf.write_socket_offered(fd, max);
        if let Ok((n, offered)) = r {
            if self.edge && n > 0 && n == offered && !buf.is_empty() {
                self.write_again = true;
            }
        }
        r.map(|(n, _)| n)
    }
}

/// What one run did, for the work that follows it.
struct Outcome {
    produced: usize,
    input_changed: bool,
    output_before: usize,
    output_after: usize,
    reported: Reported,
    read_again: Option<Event>,
    write_again: Option<Event>,
}

/// Whether `d` is a socket bufferevent with a transport.
pub(crate) fn has(d: &BevData) -> bool {
    matches!(&d.kind, Kind::Socket(s) if s.transport.is_some())
}

/// Whether the socket of `d` should be read: the user's reading, or what
/// its transport says (never while connecting).
pub(crate) fn wants_read(d: &BevData) -> bool {
    let user = d.wants_read();
    match &d.kind {
        Kind::Socket(s) => match &s.transport {
            Some(t) => !s.connecting && t.wants_read(user),
            None => user,
        },
        _ => user,
    }
}

/// Whether the transport of `d` holds bytes for the socket, with writing
/// enabled (a write timeout disables writing, as for any socket, and so
/// stops the write event until the user enables it again).
pub(crate) fn wants_write(d: &BevData) -> bool {
    d.enabled.contains(What::WRITE)
        && matches!(&d.kind, Kind::Socket(s) if s.transport.as_ref().is_some_and(|t| t.wants_write()))
}

/// Runs `call` on the transport, taken out of its slot so that it can get
/// the buffers and the socket borrowed from the slab. `None` if the
/// bufferevent is gone, has no transport, or its transport is running.
fn run(
    base: &mut EventBase,
    key: Key,
    mode: FlushMode,
    readable: bool,
    closed: bool,
    call: &mut dyn FnMut(&mut dyn Transport, &mut TransportCtx<'_>),
) -> Option<Outcome> {
    let Bevs { slab, scratch, .. } = bevs(base);
    let d = slab.get_mut(key)?;
    let room = d.read_room();
    let reading = d.wants_read();
    let writing = d.enabled.contains(What::WRITE) && d.write_suspend == 0;
    let max_read = d.max_read;
    let BevData {
        kind,
        input,
        output,
        ..
    } = d;
    let Kind::Socket(s) = kind else { return None };
    let mut t = s.transport.take()?;
    s.peer_closed |= readable && s.edge && closed;
    let (input_before, output_before) = (input.len(), output.len());
    let mut cx = TransportCtx {
        input,
        output,
        limit: (room != usize::MAX).then_some(room),
        max_read,
        mode,
        reading,
        writing,
        readable,
        fd: s.fd.as_ref().map(AsFd::as_fd),
        connecting: s.connecting,
        scratch,
        inq: &mut s.inq,
        edge: s.edge,
        peer_closing: s.edge && s.peer_closed,
        read_again: false,
        write_again: false,
        reported: Reported::default(),
    };
    call(&mut *t, &mut cx);
    let o = Outcome {
        produced: cx.input.len().saturating_sub(input_before),
        input_changed: cx.input.len() != input_before,
        output_before,
        output_after: cx.output.len(),
        reported: cx.reported,
        read_again: if s.edge && cx.read_again {
            s.read_ev
        } else {
            None
        },
        write_again: if s.edge && cx.write_again {
            s.write_ev
        } else {
            None
        },
    };
    s.transport = Some(t);
    Some(o)
}

/// After a run: watermarks, events re-armed, callbacks, reports.
fn after_run(base: &mut EventBase, key: Key, o: Outcome) {
    let Bevs {
        slab,
        dirty,
        virtual_held,
        ..
    } = bevs(base);
    let Some(d) = slab.get_mut(key) else { return };
    // The buffers changed: their deferred callbacks run at the next flush.
    let add_virtual = (o.input_changed || o.output_after != o.output_before)
        && note_dirty(d, key, dirty, virtual_held);
    update_read_wm(d);
    // Come back for an undrained socket only while that direction is still
    // wanted (re-arming it later activates it anyway; and running a
    // persistent event re-arms its timeout, so a disarmed one must not be
    // activated).
    let read_again = o.read_again.filter(|_| wants_read(d));
    let write_again = o.write_again.filter(|_| wants_write(d));
    if add_virtual {
        base.add_virtual();
    }
    let _ = socket::sync(base, key);
    if let Some(ev) = read_again {
        let _ = base.activate(ev, What::READ, 1);
    }
    if let Some(ev) = write_again {
        let _ = base.activate(ev, What::WRITE, 1);
    }
    after_layer_run(
        base,
        key,
        o.produced,
        (o.output_before, o.output_after),
        o.reported,
    );
    // Input held back (the max single read was reached): come back for it
    // at the next flush.
    let more = data(base, key).is_ok_and(|d| {
        d.wants_read()
            && d.read_room() > 0
            && matches!(&d.kind, Kind::Socket(s) if s.transport.as_ref().is_some_and(|t| t.pending_input()))
    });
    if more {
        let _ = mark_dirty(base, key);
    }
}

/// The socket is readable (its read event fired without a timeout).
pub(crate) fn on_read(base: &mut EventBase, key: Key, what: What) {
    let mut call = |t: &mut dyn Transport, cx: &mut TransportCtx<'_>| t.on_input(cx);
    if let Some(o) = run(
        base,
        key,
        FlushMode::Normal,
        true,
        what.contains(What::CLOSED),
        &mut call,
    ) {
        after_run(base, key, o);
    }
}

/// The write path (the per-iteration flush, the socket's write event, a
/// finished connect): delivers input held back if reading resumed, encodes
/// and sends the output, sends what the transport holds. Returns the
/// output bytes taken.
pub(crate) fn write_out(base: &mut EventBase, key: Key, check_wm: bool) -> usize {
    let Ok(d) = data(base, key) else { return 0 };
    if check_wm {
        update_read_wm(d);
    }
    let Kind::Socket(s) = &d.kind else { return 0 };
    let Some(t) = s.transport.as_ref() else {
        return 0;
    };
    let connecting = s.connecting;
    let pending = d.wants_read() && d.read_room() > 0 && t.pending_input();
    let out = d.enabled.contains(What::WRITE) && d.write_suspend == 0 && !d.output.is_empty();
    // Nothing is written while writing is disabled (a write timeout).
    let held = d.enabled.contains(What::WRITE) && t.wants_write();
    if !pending && (connecting || !(out || held)) {
        let _ = socket::sync(base, key);
        return 0;
    }
    let mut call = |t: &mut dyn Transport, cx: &mut TransportCtx<'_>| {
        if pending {
            t.on_input(cx);
        }
        if out || held {
            t.on_output(cx);
        }
    };
    let Some(o) = run(base, key, FlushMode::Normal, false, false, &mut call) else {
        return 0;
    };
    let taken = o.output_before.saturating_sub(o.output_after);
    after_run(base, key, o);
    taken
}

/// `bufferevent_flush` on a socket bufferevent with a transport.
pub(crate) fn flush(
    base: &mut EventBase,
    key: Key,
    what: What,
    mode: FlushMode,
) -> io::Result<bool> {
    let before = data(base, key)?.input.len();
    let mut moved = 0;
    if what.contains(What::READ) {
        let mut call = |t: &mut dyn Transport, cx: &mut TransportCtx<'_>| t.on_input(cx);
        if let Some(o) = run(base, key, mode, false, false, &mut call) {
            after_run(base, key, o);
        }
        moved += data(base, key).map_or(0, |d| d.input.len().saturating_sub(before));
    }
    if what.contains(What::WRITE) {
        let mut call = |t: &mut dyn Transport, cx: &mut TransportCtx<'_>| t.on_output(cx);
        if let Some(o) = run(base, key, mode, false, false, &mut call) {
            moved += o.output_before.saturating_sub(o.output_after);
            after_run(base, key, o);
        }
    }
    Ok(moved > 0)
}

/// An event of the socket bufferevent: through its transport (if any),
/// then to the event callback.
pub(crate) fn eventcb(base: &mut EventBase, key: Key, ev: BevEvent) {
    if !data(base, key).is_ok_and(|d| has(d)) {
        super::eventcb(base, key, ev);
        return;
    }
    let mut out = Some(ev);
    let mut call = |t: &mut dyn Transport, cx: &mut TransportCtx<'_>| {
        out = t.on_event(cx, ev);
    };
    if let Some(o) = run(base, key, FlushMode::Normal, false, false, &mut call) {
        after_run(base, key, o);
    }
    if let Some(ev) = out {
        super::eventcb(base, key, ev);
    }
}

/// Last words of the transport, before the socket is released.
pub(crate) fn release(s: &mut SocketState) {
    if let Some(mut t) = s.transport.take() {
        t.on_free(s.fd.as_ref().map(AsFd::as_fd));
    }
}

impl BufferEvent {
    /// A socket bufferevent whose I/O `transport` drives (see [`Transport`]):
    /// as [`socket`](Self::socket), over `fd` or over no fd yet for
    /// [`connect`](Self::connect). This is how a TLS layer owns a socket
    /// (libevent's `bufferevent_openssl_socket_new`).
    ///
    /// # Errors
    ///
    /// The OS error for an fd the backend cannot watch.
    pub fn socket_with_transport(
        base: &mut EventBase,
        fd: Option<OwnedFd>,
        transport: Box<dyn Transport>,
        options: BevOptions,
    ) -> io::Result<Self> {
        let bev = Self::socket(base, None, options)?;
        socket::state_of(base, bev.key)?.transport = Some(transport);
        if let Some(fd) = fd {
            if let Err(e) = bev.setfd(base, fd) {
                let _ = bev.free(base);
                return Err(e);
            }
        }
        Ok(bev)
    }

    /// The [`Transport`] of a socket bufferevent, as its concrete type.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for another kind,
    /// a socket without a transport or one of another type.
    pub fn transport_hook<T: Transport>(self, base: &mut EventBase) -> io::Result<&mut T> {
        let wrong = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a socket bufferevent with a transport of that type",
            )
        };
        let Kind::Socket(s) = &mut data(base, self.key)?.kind else {
            return Err(wrong());
        };
        // (No user code runs while a transport is out of its slot.)
        match s.transport.as_mut() {
            Some(t) => t.as_any().downcast_mut::<T>().ok_or_else(wrong),
            None => Err(wrong()),
        }
    }

    /// Runs `f` on the [`Transport`] with a context over the buffers and
    /// the socket, then does what a run does: re-arms the events, runs the
    /// read and write callbacks as the buffers call for, reports the
    /// events. This is how a layer starts a handshake or a shutdown on its
    /// own.
    ///
    /// # Errors
    ///
    /// As for [`transport_hook`](Self::transport_hook).
    pub fn with_transport_hook<T: Transport, R>(
        self,
        base: &mut EventBase,
        f: impl FnOnce(&mut T, &mut TransportCtx<'_>) -> R,
    ) -> io::Result<R> {
        self.transport_hook::<T>(base)?;
        let mut out = None;
        let mut f = Some(f);
        let mut call = |t: &mut dyn Transport, cx: &mut TransportCtx<'_>| {
            if let (Some(t), Some(f)) = (t.as_any().downcast_mut::<T>(), f.take()) {
                out = Some(f(t, cx));
            }
        };
        let o = run(base, self.key, FlushMode::Normal, false, false, &mut call)
            .ok_or_else(|| io::Error::new(io::ErrorKind::WouldBlock, "the transport is running"))?;
        after_run(base, self.key, o);
        out.ok_or_else(|| io::Error::other("the transport hook did not run"))
    }
}

#[cfg(test)]
mod tests {
    //! A toy transport over a real loopback TCP connection: bytes are
    //! XORed with 0x20 on the wire, the peer must first send `!` (a
    //! "handshake" read even while the user does not read), `CONNECTED` of
    //! the socket is swallowed and reported once the `!` came, and freeing
    //! sends `~` as last words.

    use std::cell::RefCell;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use oxevent_core::LoopFlags;
    use oxevent_test_support::{Watchdog, tcp_pair};

    use super::*;

    #[derive(Debug, Default)]
    struct Xor {
        /// Decoded bytes not delivered yet (the budget was reached).
        held: Buffer,
        /// Encoded bytes the socket did not take.
        out: Buffer,
        greeted: bool,
        eof: bool,
        runs: usize,
    }

    impl Transport for Xor {
        fn on_input(&mut self, cx: &mut TransportCtx<'_>) {
            self.runs += 1;
            if cx.readable && !self.eof {
                let mut raw = Buffer::new();
                match cx.recv_into(&mut raw, 64) {
                    Ok(0) => {
                        self.eof = true;
                        cx.report(BevFlags::READING | BevFlags::EOF, None);
                    }
                    Ok(_) => {
                        let mut v = vec![0; raw.len()];
                        raw.remove(&mut v).unwrap();
                        let mut v: Vec<u8> = v.into_iter().map(|b| b ^ 0x20).collect();
                        if !self.greeted && v.first() == Some(&b'!') {
                            self.greeted = true;
                            v.remove(0);
                            cx.report(BevFlags::CONNECTED, None);
                        }
                        self.held.add(&v).unwrap();
                    }
                    Err(_) => {}
                }
            }
            let n = cx.read_budget().min(self.held.len());
            if n > 0 {
                self.held.remove_buffer(cx.input, n).unwrap();
            }
        }

        fn on_output(&mut self, cx: &mut TransportCtx<'_>) {
            if cx.writing && self.greeted {
                let mut v = vec![0; cx.output.len()];
                cx.output.remove(&mut v).unwrap();
                let v: Vec<u8> = v.into_iter().map(|b| b ^ 0x20).collect();
                self.out.add(&v).unwrap();
            }
            let _ = cx.send_from(&mut self.out, 1 << 20);
        }

        fn on_event(&mut self, _cx: &mut TransportCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
            (!ev.what.contains(BevFlags::CONNECTED)).then_some(ev)
        }

        fn wants_read(&self, user: bool) -> bool {
            !self.eof && (user || !self.greeted)
        }

        fn wants_write(&self) -> bool {
            !self.out.is_empty()
        }

        fn pending_input(&self) -> bool {
            !self.held.is_empty()
        }

        fn on_free(&mut self, fd: Option<BorrowedFd<'_>>) {
            let mut bye = Buffer::new();
            bye.add(&[b'~' ^ 0x20]).unwrap();
            if let Some(fd) = fd {
                let _ = bye.write_atmost_socket(fd, 1);
            }
        }

        fn as_any(&mut self) -> &mut dyn Any {
            self
        }
    }

    fn xor(data: &[u8]) -> Vec<u8> {
        data.iter().map(|b| b ^ 0x20).collect()
    }

    /// The default base (edge-triggered epoll, or whatever the environment
    /// selects, as in `cargo xtask test`'s mio pass) and, where the
    /// environment leaves it available, a level-triggered poll one.
    fn bases() -> Vec<EventBase> {
        let poll = oxevent_core::Config::new()
            .avoid_method("epoll")
            .avoid_method("mio");
        let mut v = vec![EventBase::new().unwrap()];
        if let Ok(lt) = EventBase::with_config(&poll) {
            assert_eq!(lt.method(), "poll");
            v.push(lt);
        }
        v
    }

    fn run_until(base: &mut EventBase, mut cond: impl FnMut(&mut EventBase) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if cond(base) {
                return true;
            }
            base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        cond(base)
    }

    fn read_exact_from(peer: &mut TcpStream, n: usize) -> Vec<u8> {
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut v = vec![0; n];
        peer.read_exact(&mut v).unwrap();
        v
    }

    fn setup(base: &mut EventBase) -> (BufferEvent, TcpStream, Rc<RefCell<Vec<BevFlags>>>) {
        let (ours, peer) = tcp_pair();
        let bev = BufferEvent::socket_with_transport(
            base,
            Some(ours.into()),
            Box::new(Xor::default()),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        bev.on_event(base, move |_, _, ev| e.borrow_mut().push(ev.what))
            .unwrap();
        (bev, peer, events)
    }

    #[test]
    fn a_transport_drives_the_socket_both_ways() {
        let _w = Watchdog::new("transport both ways", Duration::from_secs(30));
        for base in bases() {
            both_ways(base);
        }
    }

    fn both_ways(mut base: EventBase) {
        let (bev, mut peer, events) = setup(&mut base);
        assert!(bev.fd(&mut base).unwrap().is_some());
        assert_eq!(bev.underlying(&mut base).unwrap(), None);
        // The "handshake" is read although the user does not read.
        peer.write_all(&xor(b"!hello")).unwrap();
        assert!(run_until(&mut base, |_| !events.borrow().is_empty()));
        assert_eq!(events.borrow().as_slice(), [BevFlags::CONNECTED]);
        assert!(bev.input(&mut base).unwrap().is_empty(), "not reading yet");
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        bev.on_read(&mut base, move |base, bev| {
            let input = bev.input(base).unwrap();
            let mut v = vec![0; input.len()];
            input.remove(&mut v).unwrap();
            g.borrow_mut().extend_from_slice(&v);
        })
        .unwrap();
        bev.enable(&mut base, What::READ).unwrap();
        assert!(run_until(&mut base, |_| got.borrow().len() == 5));
        assert_eq!(&*got.borrow(), b"hello");
        // Writes are encoded and sent; the write callback hears of it.
        let drained = Rc::new(RefCell::new(0));
        let d = drained.clone();
        bev.on_write(&mut base, move |_, _| *d.borrow_mut() += 1)
            .unwrap();
        bev.write(&mut base, b"WORLD").unwrap();
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        assert_eq!(read_exact_from(&mut peer, 5), xor(b"WORLD"));
        assert!(*drained.borrow() >= 1);
        // Freeing sends the last words.
        bev.free(&mut base).unwrap();
        assert_eq!(read_exact_from(&mut peer, 1), xor(b"~"));
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "closed after the last words");
    }

    #[test]
    fn held_input_comes_out_as_reading_resumes_without_socket_data() {
        let _w = Watchdog::new("transport pending input", Duration::from_secs(30));
        for base in bases() {
            held_input(base);
        }
    }

    fn held_input(mut base: EventBase) {
        let (bev, mut peer, events) = setup(&mut base);
        // Four bytes a run, and reading stops at 10 bytes in the input.
        bev.set_max_single_read(&mut base, 4).unwrap();
        bev.set_watermark(&mut base, What::READ, 0, 10).unwrap();
        bev.enable(&mut base, What::READ).unwrap();
        let data: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        let mut wire = vec![b'!'];
        wire.extend_from_slice(&data);
        peer.write_all(&xor(&wire)).unwrap();
        assert!(run_until(&mut base, |b| bev.input(b).unwrap().len() >= 10));
        for _ in 0..20 {
            base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(
            bev.input(&mut base).unwrap().len(),
            10,
            "stopped at the watermark"
        );
        assert_eq!(events.borrow().as_slice(), [BevFlags::CONNECTED]);
        // The peer sends nothing more: draining the input alone brings the
        // rest, a budget at a time.
        let mut got = Vec::new();
        assert!(run_until(&mut base, |b| {
            let input = bev.input(b).unwrap();
            let mut v = vec![0; input.len()];
            input.remove(&mut v).unwrap();
            got.extend_from_slice(&v);
            got.len() == data.len()
        }));
        assert_eq!(got, data);
        let runs = bev.transport_hook::<Xor>(&mut base).unwrap().runs;
        assert!(runs >= 25, "one run per 4 bytes: {runs}");
        // The peer's end reaches the event callback.
        drop(peer);
        assert!(run_until(&mut base, |_| events.borrow().len() == 2));
        assert_eq!(events.borrow()[1], BevFlags::READING | BevFlags::EOF);
        bev.free(&mut base).unwrap();
    }

    #[test]
    fn the_hook_is_reached_by_type_only() {
        let mut base = EventBase::new().unwrap();
        let (bev, _peer, _events) = setup(&mut base);
        assert!(bev.transport_hook::<Xor>(&mut base).is_ok());
        let greeted = bev
            .with_transport_hook::<Xor, _>(&mut base, |t, cx| {
                assert!(cx.fd().is_some() && cx.can_send());
                t.greeted
            })
            .unwrap();
        assert!(!greeted);
        let plain = BufferEvent::socket(&mut base, None, BevOptions::empty()).unwrap();
        let err = plain.transport_hook::<Xor>(&mut base).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let (pa, _pb) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();
        assert_eq!(
            pa.transport_hook::<Xor>(&mut base).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        bev.free(&mut base).unwrap();
        assert_eq!(
            bev.transport_hook::<Xor>(&mut base).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
#[cfg(test)]
mod layout_tests {
    use super::super::{Kind, filter::FilterState, socket::SocketState};

    /// The transport adds no byte to a bufferevent's slot, and a filter's
    /// state is no larger than a socket's: the kind of a bufferevent costs
    /// every bufferevent the size of the largest one.
    #[test]
    fn the_kinds_stay_within_a_socket_state() {
        let (socket, filter) = (size_of::<SocketState>(), size_of::<FilterState>());
        assert!(
            filter <= socket,
            "filter state {filter} > socket state {socket}"
        );
        assert!(
            size_of::<Kind>() <= socket + 8,
            "kind {}",
            size_of::<Kind>()
        );
    }
}
