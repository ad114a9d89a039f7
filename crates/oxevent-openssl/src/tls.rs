//! The TLS layer: an `openssl::ssl::SslStream` over an in-memory
//! transport, driven either as the [`Transport`] of a socket bufferevent
//! (socket mode) or as the [`Filter`] of a filter bufferevent (filter
//! mode). One state machine ([`TlsFilter`]) serves both, through [`Cx`].
//!
//! In socket mode the socket is read straight into the transport's receive
//! buffer, where OpenSSL reads it, and what OpenSSL writes lands in the
//! send buffer, which is written to the socket at once (what the socket
//! does not take waits there, with the write event armed). In filter mode
//! ciphertext is moved (without a copy) between those buffers and the
//! underlying bufferevent's. Plaintext is decrypted straight into the
//! space reserved at the end of the input, and encrypted from the output
//! in pieces of up to 16 KiB, so that each `SSL_write` makes one full
//! record.

use std::any::Any;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, Ssl, SslStream};
use oxevent_bufferevent::bufferevent::{Filter, FilterCtx, Transport, TransportCtx};
use oxevent_bufferevent::{BevEvent, BevFlags, Buffer, BufferError, FilterResult, FlushMode};
use oxevent_core::fdio;

use crate::{SslFlags, TlsState};

/// The largest TLS record payload: each `SSL_write` gets at most this.
pub(crate) const RECORD: usize = 16 * 1024;

/// The most ciphertext the TLS layer takes in before decrypting it: four
/// full records. In socket mode the socket is not read past it; in filter
/// mode the rest waits in the underlying input (see [`Mem::receive`]).
pub(crate) const RX_MAX: usize = 4 * (RECORD + 256);

/// The most ciphertext read from the socket at once (socket mode): room
/// for several full records (16 KiB of plaintext is 16,406 bytes of TLS
/// 1.3 record), so a 16 KiB message costs one `recv`. (Receiving record
/// bodies straight into OpenSSL's buffer instead saves a copy but costs
/// two more `recv` per record: measured slower, see
/// `docs/design/0004-tls.md`.)
const SOCKET_MAX_READ: usize = 64 * 1024;

/// The most ciphertext written to the socket at once (socket mode).
const SOCKET_MAX_WRITE: usize = 256 * 1024;

/// Ciphertext allowed to wait (in the underlying output, or in socket mode
/// in the send buffer) before encryption stops until it drains (the write
/// side's backpressure).
const MAX_PENDING_OUT: usize = 256 * 1024;

/// The in-memory transport OpenSSL reads from and writes to.
///
/// Both buffers are boxed and made only while they hold data (an empty
/// `Buffer` is about 100 bytes): an idle connection keeps neither.
///
/// In socket mode, during each step of the socket bufferevent, it is lent
/// the socket's number (`sock`): while nothing waits in `tx`, a record
/// OpenSSL writes is sent straight from OpenSSL's buffer (one copy and one
/// buffer less per record); what the socket does not take goes to `tx`,
/// and out from there in order, with the write event armed.
#[derive(Debug, Default)]
pub(crate) struct Mem {
    rx: Option<Box<Buffer>>,
    tx: Option<Box<Buffer>>,
    /// The socket, for the duration of one step (socket mode).
    sock: Option<RawFd>,
}

impl Mem {
    fn rx_is_empty(&self) -> bool {
        self.rx.as_ref().is_none_or(|b| b.is_empty())
    }

    fn tx_is_empty(&self) -> bool {
        self.tx.as_ref().is_none_or(|b| b.is_empty())
    }

    fn tx_len(&self) -> usize {
        self.tx.as_ref().map_or(0, |b| b.len())
    }

    /// Moves ciphertext from `from` (without a copy) to the end of `rx`,
    /// until `rx` holds [`RX_MAX`] bytes: the rest waits in `from`, the
    /// underlying bufferevent's input (filter mode).
    fn receive(&mut self, from: &mut Buffer) -> Result<(), BufferError> {
        let rx = self.rx.get_or_insert_with(Box::default);
        let room = RX_MAX.saturating_sub(rx.len());
        if room >= from.len() {
            rx.add_buffer(from)
        } else {
            from.remove_buffer(rx, room).map(drop)
        }
    }

    /// Ciphertext received and not yet decrypted.
    pub(crate) fn rx_len(&self) -> usize {
        self.rx.as_ref().map_or(0, |b| b.len())
    }

    /// Gives back the buffers that hold nothing.
    fn tidy(&mut self) {
        if self.rx_is_empty() {
            self.rx = None;
        }
        if self.tx_is_empty() {
            self.tx = None;
        }
    }
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.rx.as_mut() {
            Some(rx) if !rx.is_empty() => rx.remove(buf).map_err(io::Error::other),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if let Some(fd) = self.sock.filter(|_| self.tx_is_empty()) {
            // Full, or failing: what is left goes to `tx`, and the socket
            // bufferevent's write path (which reports any error).
            if let Ok(n) = fdio::send_raw(fd, buf) {
                rest = &buf[n.min(buf.len())..];
            }
        }
        if !rest.is_empty() {
            self.tx
                .get_or_insert_with(Box::default)
                .add(rest)
                .map_err(io::Error::other)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a TLS bufferevent reported an error (`bufferevent_get_openssl_error`).
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// OpenSSL failed (handshake, verification, a bad record...): its error,
    /// with the OpenSSL error stack in [`openssl::ssl::Error::ssl_error`].
    Ssl(openssl::ssl::Error),
    /// Setting up OpenSSL failed.
    Stack(ErrorStack),
    /// The peer closed the connection without a close_notify alert, and
    /// dirty shutdowns are not allowed.
    UnexpectedEof,
    /// The peer closed the connection during the handshake.
    HandshakeEof,
    /// The transport failed under TLS (the underlying bufferevent's error).
    Transport,
}

impl TlsError {
    /// The OpenSSL error stack, when OpenSSL produced the error.
    #[must_use]
    pub fn error_stack(&self) -> Option<&ErrorStack> {
        match self {
            TlsError::Ssl(e) => e.ssl_error(),
            TlsError::Stack(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Ssl(e) => write!(f, "TLS error: {e}"),
            TlsError::Stack(e) => write!(f, "OpenSSL error: {e}"),
            TlsError::UnexpectedEof => f.write_str("the peer closed without close_notify"),
            TlsError::HandshakeEof => f.write_str("the peer closed during the TLS handshake"),
            TlsError::Transport => f.write_str("the transport under TLS failed"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Ssl(e) => Some(e),
            TlsError::Stack(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Open,
    Failed,
}

/// What one step of the TLS state machine works on: a filter's context
/// (filter mode) or a socket transport's (socket mode). They differ in
/// where ciphertext goes: the underlying output, or the socket.
pub(crate) trait Cx {
    /// The input (plaintext for the user) and the output (the user's).
    fn bufs(&mut self) -> (&mut Buffer, &mut Buffer);
    /// How much may be decrypted into the input in this step.
    fn budget(&self) -> usize;
    /// The flush mode of the step.
    fn mode(&self) -> FlushMode;
    /// Whether the user's output may be encrypted now.
    fn writing(&self) -> bool;
    /// Reports events to the TLS bufferevent's event callback.
    fn report(&mut self, what: BevFlags, error: Option<i32>);
    /// Ciphertext waiting to go out.
    fn backlog(&self, mem: &Mem) -> usize;
    /// Hands on what OpenSSL wrote; `Err(errno)` if the transport failed.
    fn push_tx(&mut self, mem: &mut Mem) -> Result<(), Option<i32>>;
}

impl Cx for FilterCtx<'_> {
    fn bufs(&mut self) -> (&mut Buffer, &mut Buffer) {
        (&mut *self.input, &mut *self.output)
    }

    fn budget(&self) -> usize {
        self.read_budget()
    }

    fn mode(&self) -> FlushMode {
        self.mode
    }

    fn writing(&self) -> bool {
        true
    }

    fn report(&mut self, what: BevFlags, error: Option<i32>) {
        FilterCtx::report(self, what, error);
    }

    fn backlog(&self, _mem: &Mem) -> usize {
        self.under_output.len()
    }

    fn push_tx(&mut self, mem: &mut Mem) -> Result<(), Option<i32>> {
        match mem.tx.as_mut() {
            Some(tx) if !tx.is_empty() => self.under_output.add_buffer(tx).map_err(|_| None),
            _ => Ok(()),
        }
    }
}

impl Cx for TransportCtx<'_> {
    fn bufs(&mut self) -> (&mut Buffer, &mut Buffer) {
        (&mut *self.input, &mut *self.output)
    }

    fn budget(&self) -> usize {
        self.read_budget()
    }

    fn mode(&self) -> FlushMode {
        self.mode
    }

    fn writing(&self) -> bool {
        self.writing
    }

    fn report(&mut self, what: BevFlags, error: Option<i32>) {
        TransportCtx::report(self, what, error);
    }

    fn backlog(&self, mem: &Mem) -> usize {
        mem.tx_len()
    }

    /// Writes the send buffer to the socket (one `sendmsg`); what the
    /// socket does not take stays, and the write event is armed for it.
    fn push_tx(&mut self, mem: &mut Mem) -> Result<(), Option<i32>> {
        let Some(tx) = mem.tx.as_mut().filter(|tx| !tx.is_empty()) else {
            return Ok(());
        };
        match self.send_from(tx, SOCKET_MAX_WRITE) {
            Ok(_) => Ok(()),
            Err(BufferError::Io(e))
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(())
            }
            Err(BufferError::Io(e)) => Err(e.raw_os_error()),
            Err(_) => Err(None),
        }
    }
}

/// The TLS state machine behind a TLS bufferevent, in either mode.
pub(crate) struct TlsFilter {
    pub(crate) stream: SslStream<Mem>,
    phase: Phase,
    pub(crate) flags: SslFlags,
    /// Boxed: rare, and large next to the rest.
    pub(crate) error: Option<Box<TlsError>>,
    /// The last `SSL_read` wanted more ciphertext and none came since:
    /// nothing can be decrypted until more is read.
    starved: bool,
    /// A close_notify came from the peer (EOF was reported).
    peer_closed: bool,
    /// The end of the stream below (the socket's, or the underlying
    /// bufferevent's), held back while ciphertext read before it is still
    /// to be decrypted (reads take 64 KiB, a run decrypts the max single
    /// read); decided once that is delivered.
    eof: bool,
    /// Socket mode: the socket returned its end (or failed): no more reads.
    sock_done: bool,
    /// We sent our close_notify.
    closed: bool,
    /// The state it was created in.
    pub(crate) initial: TlsState,
}

impl fmt::Debug for TlsFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFilter")
            .field("phase", &self.phase)
            .field("flags", &self.flags)
            .field("peer_closed", &self.peer_closed)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl TlsFilter {
    pub(crate) fn new(mut ssl: Ssl, state: TlsState) -> Result<Self, ErrorStack> {
        match state {
            TlsState::Connecting => ssl.set_connect_state(),
            TlsState::Accepting => ssl.set_accept_state(),
            TlsState::Open => {}
        }
        let stream = SslStream::new(ssl, Mem::default())?;
        Ok(Self {
            stream,
            phase: if state == TlsState::Open {
                Phase::Open
            } else {
                Phase::Handshaking
            },
            flags: SslFlags::empty(),
            error: None,
            starved: false,
            peer_closed: false,
            eof: false,
            sock_done: false,
            closed: false,
            initial: state,
        })
    }

    /// Socket mode: lends the transport the socket for this step (see
    /// [`Mem`]), if it can send now.
    pub(crate) fn attach(&mut self, cx: &TransportCtx<'_>) {
        self.stream.get_mut().sock = cx.fd().filter(|_| cx.can_send()).map(|fd| fd.as_raw_fd());
    }

    /// Socket mode: the step is over; the socket is not ours to keep.
    pub(crate) fn detach(&mut self) {
        self.stream.get_mut().sock = None;
    }

    /// Whether the handshake completed.
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Starts the handshake (a client's ClientHello goes out).
    pub(crate) fn start<C: Cx>(&mut self, cx: &mut C) {
        if self.phase == Phase::Handshaking {
            self.handshake(cx);
        }
        self.flush_tx(cx);
    }

    /// Hands on what OpenSSL wrote.
    fn flush_tx<C: Cx>(&mut self, cx: &mut C) {
        let mem = self.stream.get_mut();
        let r = cx.push_tx(mem);
        mem.tidy();
        if let Err(errno) = r {
            self.fail_with(cx, TlsError::Transport, BevFlags::WRITING, errno);
        }
    }

    fn fail_with<C: Cx>(&mut self, cx: &mut C, e: TlsError, dir: BevFlags, errno: Option<i32>) {
        if self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            self.error = Some(Box::new(e));
            cx.report(dir | BevFlags::ERROR, errno);
        }
    }

    fn handshake<C: Cx>(&mut self, cx: &mut C) {
        match self.stream.do_handshake() {
            Ok(()) => {
                self.phase = Phase::Open;
                cx.report(BevFlags::CONNECTED, None);
            }
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {}
            Err(e) => {
                self.flush_tx(cx); // the alert, if any
                self.fail_with(cx, TlsError::Ssl(e), BevFlags::empty(), None);
            }
        }
    }

    /// Decrypts into the input, within the read budget.
    fn read_app<C: Cx>(&mut self, cx: &mut C) {
        let mut budget = cx.budget();
        while budget > 0 && !self.peer_closed && self.phase == Phase::Open {
            let pending = self.stream.ssl().pending();
            if pending == 0 && self.stream.get_ref().rx_is_empty() {
                // Nothing to decrypt: no need to ask (nor to make room).
                self.starved = true;
                break;
            }
            // A record's worth, or what is left of the decrypted one.
            let want = budget.min(if pending > 0 { pending } else { RECORD });
            let got = self.decrypt_into(cx.bufs().0, want);
            match got {
                Ok(n) => {
                    budget -= n.min(budget);
                    if n == 0 {
                        break;
                    }
                }
                Err(None) => {
                    self.fail_with(cx, TlsError::Transport, BevFlags::READING, None);
                    return;
                }
                Err(Some(e)) if e.code() == ErrorCode::WANT_READ => {
                    self.starved = true;
                    break;
                }
                Err(Some(e)) if e.code() == ErrorCode::WANT_WRITE => break,
                Err(Some(e)) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.peer_closed = true;
                    cx.report(BevFlags::READING | BevFlags::EOF, None);
                    break;
                }
                Err(Some(e)) => {
                    self.flush_tx(cx);
                    self.fail_with(cx, TlsError::Ssl(e), BevFlags::READING, None);
                    break;
                }
            }
        }
    }

    /// Decrypts up to `want` bytes straight into the spare space at the end
    /// of `input` (made contiguous first; segments come from the thread's
    /// segment cache, already initialized, so this neither allocates nor
    /// zeroes in steady traffic). Space that got nothing is given back, so
    /// that a buffer left empty holds no memory.
    fn decrypt_into(
        &mut self,
        input: &mut Buffer,
        want: usize,
    ) -> Result<usize, Option<openssl::ssl::Error>> {
        input.expand(want).map_err(|_| None)?;
        let res = {
            let mut r = input.reserve(want).map_err(|_| None)?;
            let Some(slice) = r.first_mut() else {
                return Err(None);
            };
            let n = want.min(slice.len());
            self.stream.ssl_read(&mut slice[..n])
        };
        match res {
            Ok(k) if k > 0 => input.commit(k).map(|()| k).map_err(|_| None),
            Ok(_) => {
                input.release_spare();
                Ok(0)
            }
            Err(e) => {
                input.release_spare();
                Err(Some(e))
            }
        }
    }

    /// Encrypts the output, one record per `SSL_write`, each handed on at
    /// once.
    fn write_app<C: Cx>(&mut self, cx: &mut C) {
        while self.phase == Phase::Open
            && !self.closed
            && cx.writing()
            && !cx.bufs().1.is_empty()
            && cx.backlog(self.stream.get_ref()) < MAX_PENDING_OUT
        {
            let output = cx.bufs().1;
            let n = output.len().min(RECORD);
            let res = match output.pullup(n) {
                Ok(chunk) => self.stream.ssl_write(chunk),
                Err(_) => {
                    self.fail_with(cx, TlsError::Transport, BevFlags::WRITING, None);
                    return;
                }
            };
            match res {
                Ok(w) => {
                    let _ = cx.bufs().1.drain(w);
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                    break;
                }
                Err(e) => {
                    self.flush_tx(cx);
                    self.fail_with(cx, TlsError::Ssl(e), BevFlags::WRITING, None);
                    return;
                }
            }
            self.flush_tx(cx);
        }
    }

    /// Sends close_notify (once), after what the output holds.
    pub(crate) fn shutdown<C: Cx>(&mut self, cx: &mut C) {
        if self.phase == Phase::Open && !self.closed {
            self.write_app(cx);
            self.closed = true;
            let _ = self.stream.shutdown();
            self.flush_tx(cx);
        }
    }

    /// Nothing read from the network is left to decrypt.
    fn drained(&self) -> bool {
        self.peer_closed
            || self.phase != Phase::Open
            || (self.stream.ssl().pending() == 0 && self.stream.get_ref().rx_is_empty())
    }

    /// The end of the stream below, once everything before it was read:
    /// `EOF` after close_notify (already reported, so not again), or with
    /// dirty shutdowns allowed; an error otherwise. Returns whether to
    /// report it as `EOF`.
    fn end_of_file<C: Cx>(&mut self, cx: &mut C) -> bool {
        match self.phase {
            Phase::Failed => false,
            Phase::Handshaking => {
                self.fail_with(cx, TlsError::HandshakeEof, BevFlags::READING, None);
                false
            }
            Phase::Open if self.peer_closed => false,
            Phase::Open if self.flags.contains(SslFlags::DIRTY_SHUTDOWN) => {
                self.peer_closed = true;
                true
            }
            Phase::Open => {
                self.fail_with(cx, TlsError::UnexpectedEof, BevFlags::READING, None);
                false
            }
        }
    }

    /// One step after ciphertext came (or reading resumed): handshake,
    /// decrypt, decide a held end of file, encrypt what waits, hand on.
    fn process<C: Cx>(&mut self, cx: &mut C) {
        if self.phase == Phase::Handshaking {
            self.handshake(cx);
        }
        if self.phase == Phase::Open {
            self.read_app(cx);
        }
        if self.eof && (self.phase != Phase::Open || self.drained()) {
            self.eof = false;
            if self.end_of_file(cx) {
                cx.report(BevFlags::READING | BevFlags::EOF, None);
            }
        }
        if self.phase == Phase::Open {
            // Data queued during the handshake, or a post-handshake reply.
            self.write_app(cx);
            if cx.mode() == FlushMode::Finished {
                self.shutdown(cx);
            }
        }
        self.flush_tx(cx);
    }

    /// The write side of a step.
    fn output_step<C: Cx>(&mut self, cx: &mut C) {
        if self.phase == Phase::Failed {
            // Nothing can be sent any more.
            let _ = cx.bufs().1.clear();
            return;
        }
        // What the socket did not take last time goes first.
        self.flush_tx(cx);
        self.write_app(cx);
        if cx.mode() == FlushMode::Finished {
            self.shutdown(cx);
        }
        self.flush_tx(cx);
    }

    /// An event from below: the TCP connect is swallowed (the handshake
    /// decides), an end of file is held back or decided, an error fails the
    /// session. Returns whether to pass the event on.
    fn event<C: Cx>(&mut self, cx: &mut C, what: BevFlags) -> bool {
        if what.contains(BevFlags::CONNECTED) {
            // The transport is up; the handshake (already started) says
            // when TLS is.
            return false;
        }
        if what.contains(BevFlags::EOF) {
            // Decrypt what is left before deciding.
            if self.phase == Phase::Open {
                self.read_app(cx);
                if !self.drained() {
                    // Records still wait (the input is full, or the max
                    // single read was reached): decide once they are read.
                    self.eof = true;
                    return false;
                }
            }
            return self.end_of_file(cx);
        }
        if what.contains(BevFlags::ERROR) && self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            self.error = Some(Box::new(TlsError::Transport));
        }
        true
    }

    /// Last words: close_notify into the send buffer.
    fn close_on_free(&mut self) {
        if self.phase == Phase::Open && !self.closed {
            self.closed = true;
            let _ = self.stream.shutdown();
        }
    }

    /// Socket mode: reads the socket into the receive buffer, at most up
    /// to [`RX_MAX`] held.
    fn recv(&mut self, cx: &mut TransportCtx<'_>) {
        if !cx.readable || self.sock_done || self.phase == Phase::Failed {
            return;
        }
        let mem = self.stream.get_mut();
        let rx = mem.rx.get_or_insert_with(Box::default);
        let room = RX_MAX.saturating_sub(rx.len()).min(SOCKET_MAX_READ);
        if room == 0 {
            // Four records wait: read the rest once some are decrypted.
            cx.read_later();
            return;
        }
        match cx.recv_into(rx, room) {
            Ok(0) => {
                self.sock_done = true;
                self.eof = true;
            }
            Ok(_) => self.starved = false,
            Err(BufferError::Io(e))
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.sock_done = true;
                let errno = match &e {
                    BufferError::Io(e) => e.raw_os_error(),
                    _ => None,
                };
                self.fail_with(cx, TlsError::Transport, BevFlags::READING, errno);
            }
        }
        self.stream.get_mut().tidy();
    }
}

impl Transport for TlsFilter {
    fn on_input(&mut self, cx: &mut TransportCtx<'_>) {
        self.recv(cx);
        self.attach(cx);
        if self.phase == Phase::Failed {
            // Whatever came is of no use now.
            let mem = self.stream.get_mut();
            mem.rx = None;
            self.flush_tx(cx);
        } else {
            self.process(cx);
        }
        self.detach();
    }

    fn on_output(&mut self, cx: &mut TransportCtx<'_>) {
        self.attach(cx);
        self.output_step(cx);
        self.detach();
    }

    fn on_event(&mut self, cx: &mut TransportCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
        self.attach(cx);
        let pass = self.event(cx, ev.what);
        self.detach();
        pass.then_some(ev)
    }

    fn wants_read(&self, user: bool) -> bool {
        !self.sock_done
            && match self.phase {
                Phase::Handshaking => true,
                Phase::Open => user,
                Phase::Failed => false,
            }
    }

    fn wants_write(&self) -> bool {
        !self.stream.get_ref().tx_is_empty()
    }

    fn pending_input(&self) -> bool {
        (self.phase == Phase::Open && !self.peer_closed && !self.starved) || self.eof
    }

    fn on_free(&mut self, fd: Option<BorrowedFd<'_>>) {
        self.close_on_free();
        if let (Some(fd), Some(tx)) = (fd, self.stream.get_mut().tx.as_mut()) {
            if !tx.is_empty() {
                let len = tx.len();
                let _ = tx.write_atmost_socket(fd, len);
            }
        }
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

impl Filter for TlsFilter {
    fn on_input(&mut self, cx: &mut FilterCtx<'_>) -> FilterResult {
        if !cx.under_input.is_empty() {
            if self.phase == Phase::Failed {
                let _ = cx.under_input.clear();
                return FilterResult::Ok;
            }
            if self.stream.get_mut().receive(cx.under_input).is_err() {
                self.fail_with(cx, TlsError::Transport, BevFlags::READING, None);
                return FilterResult::Ok;
            }
            self.starved = false;
        }
        self.process(cx);
        FilterResult::Ok
    }

    fn on_output(&mut self, cx: &mut FilterCtx<'_>) -> FilterResult {
        self.output_step(cx);
        FilterResult::Ok
    }

    fn on_event(&mut self, cx: &mut FilterCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
        self.event(cx, ev.what).then_some(ev)
    }

    fn wants_input(&self) -> bool {
        self.phase == Phase::Handshaking
    }

    fn pending_input(&self) -> bool {
        self.phase == Phase::Open && !self.peer_closed && !self.starved
    }

    fn on_free(&mut self, under_output: &mut Buffer) {
        self.close_on_free();
        if let Some(tx) = self.stream.get_mut().tx.as_mut() {
            let _ = under_output.add_buffer(tx);
        }
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_buffers_exist_only_while_they_hold_data() {
        let mut mem = Mem::default();
        assert!(mem.rx.is_none() && mem.tx.is_none());
        // Writes queue in `tx` and reads wait for `rx`.
        assert_eq!(mem.write(b"record").unwrap(), 6);
        let mut buf = [0u8; 16];
        assert_eq!(
            mem.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let mut from = Buffer::new();
        from.add(b"cipher").unwrap();
        mem.receive(&mut from).unwrap();
        assert!(from.is_empty());
        mem.tidy();
        assert!(mem.rx.is_some() && mem.tx.is_some(), "both hold data");
        assert_eq!(mem.read(&mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"cipher");
        let mut under = Buffer::new();
        under.add_buffer(mem.tx.as_mut().unwrap()).unwrap();
        assert_eq!(under.len(), 6);
        mem.tidy();
        assert!(mem.rx.is_none() && mem.tx.is_none(), "both given back");
    }
}
