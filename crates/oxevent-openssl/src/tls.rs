//! The TLS filter: an `openssl::ssl::SslStream` over an in-memory
//! transport, driven by the filter hook of `oxevent-bufferevent`.
//!
//! Ciphertext read by the underlying bufferevent is moved (without a copy)
//! into the transport's receive buffer, where OpenSSL reads it; what
//! OpenSSL writes lands in the transport's send buffer, which is moved
//! (without a copy) to the underlying output. Plaintext is decrypted
//! straight into the space reserved at the end of the filter's input, and
//! encrypted from the output in pieces of up to 16 KiB, so that each
//! `SSL_write` makes one full record.

use std::any::Any;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, Ssl, SslStream};
use oxevent_bufferevent::bufferevent::{Filter, FilterCtx};
use oxevent_bufferevent::{BevEvent, BevFlags, Buffer, FilterResult, FlushMode};
use oxevent_core::fdio;

use crate::{SslFlags, TlsState};

/// The largest TLS record payload: each `SSL_write` gets at most this.
pub(crate) const RECORD: usize = 16 * 1024;

/// The most ciphertext the TLS layer takes in before decrypting it: four
/// full records (see [`Mem::receive`]).
pub(crate) const RX_MAX: usize = 4 * (RECORD + 256);

/// Ciphertext allowed to wait in the underlying output before encryption
/// stops until it drains (the write side's backpressure).
const MAX_PENDING_OUT: usize = 256 * 1024;

/// The in-memory transport OpenSSL reads from and writes to.
///
/// In socket mode it also holds a duplicate of the socket: while nothing
/// waits in the underlying output, records are sent straight from
/// OpenSSL's buffer (`send`), saving a copy and an allocation per record;
/// whatever the socket does not take goes to `tx`, and from there to the
/// underlying output, in order.
///
/// Both buffers are boxed and made only while they hold data (an empty
/// `Buffer` is about 100 bytes): an idle connection keeps neither.
#[derive(Debug, Default)]
pub(crate) struct Mem {
    rx: Option<Box<Buffer>>,
    tx: Option<Box<Buffer>>,
    sock: Option<OwnedFd>,
    /// Sending straight to `sock` keeps the order (set before each step).
    direct: bool,
}

impl Mem {
    fn rx_is_empty(&self) -> bool {
        self.rx.as_ref().is_none_or(|b| b.is_empty())
    }

    fn tx_is_empty(&self) -> bool {
        self.tx.as_ref().is_none_or(|b| b.is_empty())
    }

    /// Moves ciphertext from `from` (without a copy) to the end of `rx`,
    /// until `rx` holds [`RX_MAX`] bytes: the rest waits in `from`, the
    /// underlying bufferevent's input, whose read watermark then stops the
    /// socket (a fast peer cannot make the TLS layer's queue grow).
    fn receive(&mut self, from: &mut Buffer) -> Result<(), oxevent_bufferevent::BufferError> {
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
        if self.direct && self.tx_is_empty() {
            if let Some(fd) = &self.sock {
                // Full, not connected yet, or failing: what is left goes
                // through the socket bufferevent (which reports any error).
                if let Ok(n) = fdio::send(fd.as_fd(), buf) {
                    rest = &buf[n.min(buf.len())..];
                }
            }
            if !rest.is_empty() {
                self.direct = false;
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

/// The filter object behind a TLS bufferevent.
pub(crate) struct TlsFilter {
    pub(crate) stream: SslStream<Mem>,
    phase: Phase,
    pub(crate) flags: SslFlags,
    /// Boxed: rare, and large next to the rest.
    pub(crate) error: Option<Box<TlsError>>,
    /// The last `SSL_read` wanted more ciphertext and none came since:
    /// nothing can be decrypted until the underlying bufferevent reads.
    starved: bool,
    /// A close_notify came from the peer (EOF was reported).
    peer_closed: bool,
    /// The underlying bufferevent's end of file, held back while
    /// ciphertext read before it is still to be decrypted (the socket reads
    /// faster than the input takes: 64 KiB a read, the max single read
    /// decrypted a run); decided once that is delivered.
    eof: Option<BevEvent>,
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
            eof: None,
            closed: false,
            initial: state,
        })
    }

    /// Gives the transport the socket (a duplicate of the underlying
    /// socket bufferevent's fd) to send records on directly.
    pub(crate) fn set_socket(&mut self, fd: OwnedFd) {
        self.stream.get_mut().sock = Some(fd);
    }

    /// Allows direct sends for the next step if nothing waits below.
    fn prepare(&mut self, cx: &FilterCtx<'_>) {
        let mem = self.stream.get_mut();
        mem.direct = mem.sock.is_some() && cx.under_output.is_empty() && mem.tx_is_empty();
    }

    /// Whether the handshake completed.
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Starts the handshake (a client's ClientHello goes out).
    pub(crate) fn start(&mut self, cx: &mut FilterCtx<'_>) {
        self.prepare(cx);
        if self.phase == Phase::Handshaking {
            self.handshake(cx);
        }
        self.flush_tx(cx);
    }

    /// Moves what OpenSSL wrote to the underlying output.
    fn flush_tx(&mut self, cx: &mut FilterCtx<'_>) {
        let mem = self.stream.get_mut();
        let moved = match mem.tx.as_mut() {
            Some(tx) if !tx.is_empty() => cx.under_output.add_buffer(tx).is_ok(),
            _ => true,
        };
        mem.tidy();
        if !moved {
            self.fail_with(cx, TlsError::Transport, BevFlags::WRITING);
        }
    }

    fn fail_with(&mut self, cx: &mut FilterCtx<'_>, e: TlsError, dir: BevFlags) {
        if self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            self.error = Some(Box::new(e));
            cx.report(dir | BevFlags::ERROR, None);
        }
    }

    fn handshake(&mut self, cx: &mut FilterCtx<'_>) {
        match self.stream.do_handshake() {
            Ok(()) => {
                self.phase = Phase::Open;
                cx.report(BevFlags::CONNECTED, None);
            }
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {}
            Err(e) => {
                self.flush_tx(cx); // the alert, if any
                self.fail_with(cx, TlsError::Ssl(e), BevFlags::empty());
            }
        }
    }

    /// Decrypts into the input, within the read budget.
    fn read_app(&mut self, cx: &mut FilterCtx<'_>) {
        let mut budget = cx.read_budget();
        while budget > 0 && !self.peer_closed && self.phase == Phase::Open {
            let pending = self.stream.ssl().pending();
            if pending == 0 && self.stream.get_ref().rx_is_empty() {
                // Nothing to decrypt: no need to ask (nor to make room).
                self.starved = true;
                break;
            }
            // A record's worth, or what is left of the decrypted one.
            let want = budget.min(if pending > 0 { pending } else { RECORD });
            let got = self.decrypt_into(cx.input, want);
            match got {
                Ok(n) => {
                    budget -= n.min(budget);
                    if n == 0 {
                        break;
                    }
                }
                Err(None) => {
                    self.fail_with(cx, TlsError::Transport, BevFlags::READING);
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
                    self.fail_with(cx, TlsError::Ssl(e), BevFlags::READING);
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

    /// Encrypts the output, one record per `SSL_write`.
    fn write_app(&mut self, cx: &mut FilterCtx<'_>) {
        while self.phase == Phase::Open
            && !self.closed
            && !cx.output.is_empty()
            && cx.under_output.len() < MAX_PENDING_OUT
        {
            let n = cx.output.len().min(RECORD);
            let res = match cx.output.pullup(n) {
                Ok(chunk) => self.stream.ssl_write(chunk),
                Err(_) => {
                    self.fail_with(cx, TlsError::Transport, BevFlags::WRITING);
                    return;
                }
            };
            match res {
                Ok(w) => {
                    let _ = cx.output.drain(w);
                }
                Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                    break;
                }
                Err(e) => {
                    self.flush_tx(cx);
                    self.fail_with(cx, TlsError::Ssl(e), BevFlags::WRITING);
                    return;
                }
            }
            self.flush_tx(cx);
        }
    }

    /// Sends close_notify (once).
    pub(crate) fn shutdown(&mut self, cx: &mut FilterCtx<'_>) {
        self.prepare(cx);
        if self.phase == Phase::Open && !self.closed {
            self.write_app(cx);
            self.closed = true;
            let _ = self.stream.shutdown();
            self.flush_tx(cx);
        }
    }
}

impl TlsFilter {
    /// Nothing read from the network is left to decrypt.
    fn drained(&self) -> bool {
        self.peer_closed
            || self.phase != Phase::Open
            || (self.stream.ssl().pending() == 0 && self.stream.get_ref().rx_is_empty())
    }

    /// The underlying end of file, once everything before it was read:
    /// `EOF` after close_notify (already reported), or with dirty
    /// shutdowns allowed; an error otherwise. Returns what to report.
    fn end_of_file(&mut self, cx: &mut FilterCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
        match self.phase {
            Phase::Failed => None,
            Phase::Handshaking => {
                self.fail_with(cx, TlsError::HandshakeEof, BevFlags::READING);
                None
            }
            Phase::Open if self.peer_closed => None,
            Phase::Open if self.flags.contains(SslFlags::DIRTY_SHUTDOWN) => {
                self.peer_closed = true;
                Some(ev)
            }
            Phase::Open => {
                self.fail_with(cx, TlsError::UnexpectedEof, BevFlags::READING);
                None
            }
        }
    }
}

impl Filter for TlsFilter {
    fn on_input(&mut self, cx: &mut FilterCtx<'_>) -> FilterResult {
        self.prepare(cx);
        if !cx.under_input.is_empty() {
            if self.phase == Phase::Failed {
                let _ = cx.under_input.clear();
                return FilterResult::Ok;
            }
            if self.stream.get_mut().receive(cx.under_input).is_err() {
                self.fail_with(cx, TlsError::Transport, BevFlags::READING);
                return FilterResult::Ok;
            }
            self.starved = false;
        }
        if self.phase == Phase::Handshaking {
            self.handshake(cx);
        }
        if self.phase == Phase::Open {
            self.read_app(cx);
            if self.eof.is_some() && self.drained() {
                if let Some(ev) = self.eof.take() {
                    if let Some(ev) = self.end_of_file(cx, ev) {
                        cx.report(ev.what, ev.error);
                    }
                }
            }
            // Data queued during the handshake, or a post-handshake reply.
            self.write_app(cx);
            if cx.mode == FlushMode::Finished {
                self.shutdown(cx);
            }
        }
        self.flush_tx(cx);
        FilterResult::Ok
    }

    fn on_output(&mut self, cx: &mut FilterCtx<'_>) -> FilterResult {
        self.prepare(cx);
        if self.phase == Phase::Failed {
            // Nothing can be sent any more.
            let _ = cx.output.clear();
            return FilterResult::Ok;
        }
        self.write_app(cx);
        if cx.mode == FlushMode::Finished {
            self.shutdown(cx);
        }
        self.flush_tx(cx);
        FilterResult::Ok
    }

    fn on_event(&mut self, cx: &mut FilterCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
        self.prepare(cx);
        let what = ev.what;
        if what.contains(BevFlags::CONNECTED) {
            // The transport is up; the handshake (already started) says when
            // TLS is.
            return None;
        }
        if what.contains(BevFlags::EOF) {
            // Decrypt what is left before deciding.
            if self.phase == Phase::Open {
                self.read_app(cx);
                if !self.drained() {
                    // Records still wait (the input is full, or the max
                    // single read was reached): decide once they are read.
                    self.eof = Some(ev);
                    return None;
                }
            }
            return self.end_of_file(cx, ev);
        }
        if what.contains(BevFlags::ERROR) && self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            self.error = Some(Box::new(TlsError::Transport));
        }
        Some(ev)
    }

    fn wants_input(&self) -> bool {
        self.phase == Phase::Handshaking
    }

    fn pending_input(&self) -> bool {
        self.phase == Phase::Open && !self.peer_closed && !self.starved
    }

    fn on_free(&mut self, under_output: &mut Buffer) {
        if self.phase == Phase::Open && !self.closed {
            self.closed = true;
            let mem = self.stream.get_mut();
            mem.direct = mem.sock.is_some() && under_output.is_empty() && mem.tx_is_empty();
            let _ = self.stream.shutdown();
            if let Some(tx) = self.stream.get_mut().tx.as_mut() {
                let _ = under_output.add_buffer(tx);
            }
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
        // Without a socket, writes queue in `tx` and reads wait for `rx`.
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
