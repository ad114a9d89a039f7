//! The server connection state machine: reading heads and bodies from a bufferevent,
//! dispatching to handlers, writing replies, timeouts, lingering close.
//!
//! ```text
//!          head complete, no body / streaming body        reply complete, keep-alive
//!   Head ------------------------------------------> Handling --------------------------> Head
//!    |  head complete, buffered body      ^   |
//!    +------------> Body ---body done-----+   | reply complete, close (or error anywhere)
//!                                              v
//!                                           Closing: discard input; once the output has
//!                                           drained, close, or linger until EOF / timeout
//! ```
//!
//! One request is handled at a time: the next pipelined head is parsed only after the reply
//! to the current one is complete, so replies go out in order. Meanwhile the input buffer is
//! capped by the bufferevent's read high watermark (reading pauses).

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use oxevent_bufferevent::{BevEvent, BevFlags, BevOptions, Buffer, BufferEvent, Listener};
use oxevent_core::{Event, EventBase, What};

use super::request::{Body, BodyEvent, Request, Responder};
use super::route::{self, Target};
use super::{Route, ServerError, Servers, servers, stale};
use crate::proto::{
    BodyDecoder, BodyKind, ChunkHeader, Headers, LAST_CHUNK, Method, ParseError, RequestHead,
    RequestParser, Version, encode_response_head, list_elements, reason_phrase,
};
use oxevent_bufferevent::slab::Key;

/// The most requests handled in one read callback before the rest waits for the next loop
/// iteration (so that one pipelining client cannot starve the others).
const REQUESTS_PER_READ: usize = 32;

/// The most bytes written to a connection's socket at once.
const MAX_SINGLE_WRITE: usize = 8 << 20;

/// A lingering connection closes once the client has sent nothing for this long (or at the
/// linger deadline, or when the client closes).
pub(crate) const LINGER_QUIET: Duration = Duration::from_millis(250);

pub(crate) type BodySink = Box<dyn FnMut(&mut EventBase, Responder, BodyEvent<'_>)>;
type DrainCb = Box<dyn FnOnce(&mut EventBase, Responder)>;
pub(crate) type CompleteCb = Box<dyn FnOnce(&mut EventBase)>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading a body that is buffered before the handler runs.
    Body,
    /// The handler has the request; the reply is not complete.
    Handling,
    /// Closing: input is discarded; once the output has drained the connection closes, or
    /// with `linger` keeps discarding until the client closes or the linger timeout.
    Closing { linger: bool },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reply {
    None,
    Streaming { chunked: bool },
}

/// Whether a reply must close the connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Close {
    /// Only if the request or the server says so.
    No,
    /// Close after the reply, lingering: the client may still be sending.
    Linger,
}

/// A request body being read.
pub(crate) struct BodyIn {
    decoder: BodyDecoder,
    buf: Buffer,
    streaming: bool,
    /// For a buffered body: the head and route waiting for it.
    pending: Option<Box<(Box<RequestHead>, Route)>>,
    sink: Option<BodySink>,
    done: bool,
    end_sent: bool,
}

pub(crate) struct Conn {
    pub(crate) server: Key,
    pub(crate) bev: BufferEvent,
    pub(crate) peer: Option<SocketAddr>,
    timer: Option<Event>,
    /// Boxed: it is taken out and put back around every parse.
    parser: Option<Box<RequestParser>>,
    pub(crate) state: State,
    pub(crate) seq: u32,
    reply: Reply,
    body: Option<Box<BodyIn>>,
    drain_cb: Option<DrainCb>,
    /// The current request's completion callback.
    on_complete: Option<CompleteCb>,
    /// Completion callbacks of replies that are complete but not yet all written: they run
    /// once the output buffer has drained.
    completions: Vec<CompleteCb>,
    version: Version,
    lingered: usize,
    linger_until: Option<std::time::Instant>,
    keep_alive: bool,
    head_req: bool,
    in_read: bool,
    read_timer: bool,
    /// `Some(t)` while the timer is pending as the idle timer: the connection has been idle
    /// since `t`. A reply on a keep-alive connection only moves `t` forward; the timer,
    /// when it fires, re-arms for what is left (one timer update per idle period, not one
    /// per request).
    idle_since: Option<std::time::Instant>,
    read_paused: bool,
    peer_eof: bool,
    /// The bufferevent is the server's own socket bufferevent (no factory, so no TLS): its
    /// fd's write side may be shut down for a lingering close.
    plain: bool,
}

fn conn(base: &mut EventBase, key: Key) -> Option<&mut Conn> {
    servers(base).conns.get_mut(key)
}

/// The connection of `r`, if `r` is still waiting for its reply.
pub(crate) fn live(base: &mut EventBase, r: Responder) -> io::Result<&mut Conn> {
    live_in(servers(base), r)
}

/// [`live`] on the servers' state already looked up.
fn live_in(s: &mut Servers, r: Responder) -> io::Result<&mut Conn> {
    match s.conns.get_mut(r.conn) {
        Some(c) if c.seq == r.seq && c.state == State::Handling => Ok(c),
        _ => Err(stale("request")),
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A new connection on server `skey`.
pub(crate) fn accept(
    base: &mut EventBase,
    skey: Key,
    lis: Option<Listener>,
    fd: OwnedFd,
    peer: Option<SocketAddr>,
) {
    let Some(srv) = servers(base).servers.get(skey) else {
        return;
    };
    let factory = lis
        .and_then(|l| srv.bound.iter().find(|b| b.listener == l))
        .and_then(|b| b.bevcb.clone())
        .or_else(|| srv.bevcb.clone());
    let overloaded = srv.draining || srv.conns >= srv.cfg.max_connections;
    let limits = srv.cfg.limits;
    let write_timeout = srv.cfg.write_timeout;
    let idle = srv.cfg.idle_timeout;
    let high = limits.max_header_bytes.saturating_add(srv.cfg.body_buffer);
    if srv.cfg.nodelay {
        // Fails harmlessly on a Unix-domain socket.
        let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
    }
    let plain = factory.is_none();
    let bev = match factory {
        Some(f) => match f.try_borrow_mut() {
            Ok(mut f) => f(base, fd),
            Err(_) => Err(io::Error::other("bufferevent factory re-entered")),
        },
        None => BufferEvent::socket(base, Some(fd), BevOptions::CLOSE_ON_FREE),
    };
    // A factory that fails (say, a TLS context error) drops the socket: the client sees the
    // connection close.
    let Ok(bev) = bev else {
        return;
    };
    let ckey = servers(base).conns.insert(Conn {
        server: skey,
        bev,
        peer,
        timer: None,
        parser: Some(Box::new(RequestParser::new(limits))),
        state: State::Head,
        seq: 0,
        reply: Reply::None,
        body: None,
        drain_cb: None,
        on_complete: None,
        completions: Vec::new(),
        version: Version::Http11,
        lingered: 0,
        linger_until: None,
        keep_alive: true,
        head_req: false,
        in_read: false,
        read_timer: false,
        idle_since: None,
        read_paused: false,
        peer_eof: false,
        plain,
    });
    if let Some(s) = servers(base).servers.get_mut(skey) {
        s.conns += 1;
    }
    let setup = (|| {
        bev.on_read(base, move |b, _| on_read(b, ckey))?;
        bev.on_write(base, move |b, _| on_write(b, ckey))?;
        bev.on_event(base, move |b, _, ev| on_event(b, ckey, ev))?;
        bev.set_watermark(base, What::READ, 0, high)?;
        bev.set_timeouts(base, None, write_timeout)?;
        // Large replies (files, shared `Bytes`) go out in big `writev`/`sendfile` calls.
        bev.set_max_single_write(base, MAX_SINGLE_WRITE)?;
        bev.enable(base, What::READ)
    })();
    if setup.is_err() {
        free_conn(base, ckey);
        return;
    }
    let timer = base.timer_new(move |b, _, _| on_timer(b, ckey));
    if let Some(c) = conn(base, ckey) {
        c.timer = Some(timer);
    }
    if overloaded {
        if let Some(c) = conn(base, ckey) {
            c.state = State::Handling;
            c.seq = 1;
        }
        let r = Responder { conn: ckey, seq: 1 };
        let _ = reply_error_with(
            base,
            r,
            &ServerError::Overloaded,
            None,
            Headers::new(),
            Close::Linger,
        );
    } else {
        arm_idle(base, ckey, idle);
    }
}

/// Arms the connection's timer for `t` (or disarms it), for anything but idleness.
fn arm(base: &mut EventBase, ckey: Key, t: Option<Duration>) {
    let Some(c) = conn(base, ckey) else { return };
    c.idle_since = None;
    let timer = c.timer;
    arm_timer(base, timer, t);
}

/// Arms the connection's timer as the idle timer, for `t` from now (or disarms it).
fn arm_idle(base: &mut EventBase, ckey: Key, t: Option<Duration>) {
    let now = base.now();
    let Some(c) = conn(base, ckey) else { return };
    let on = t.is_some_and(|d| !d.is_zero());
    c.idle_since = on.then_some(now);
    let timer = c.timer;
    arm_timer(base, timer, t);
}

/// Arms `timer` for `t` (or disarms it); nothing without a timer.
fn arm_timer(base: &mut EventBase, timer: Option<Event>, t: Option<Duration>) {
    let Some(timer) = timer else {
        return;
    };
    match t {
        Some(d) if !d.is_zero() => {
            let _ = base.add(timer, Some(d));
        }
        _ => {
            let _ = base.del(timer);
        }
    }
}

fn cfg_timeouts(base: &mut EventBase, skey: Key) -> (Option<Duration>, Option<Duration>, Duration) {
    servers(base)
        .servers
        .get(skey)
        .map_or((None, None, Duration::ZERO), |s| {
            (s.cfg.read_timeout, s.cfg.idle_timeout, s.cfg.linger_timeout)
        })
}

/// Frees a connection: its bufferevent (closing the socket), its timer; a streaming body
/// callback hears that the body was cut short.
pub(crate) fn free_conn(base: &mut EventBase, ckey: Key) {
    let Some(mut c) = servers(base).conns.remove(ckey) else {
        return;
    };
    let _ = c.bev.free(base);
    if let Some(t) = c.timer.take() {
        let _ = base.free(t);
    }
    if let Some(mut bi) = c.body.take() {
        if bi.streaming && !bi.done {
            if let Some(mut sink) = bi.sink.take() {
                let r = Responder {
                    conn: ckey,
                    seq: c.seq,
                };
                sink(base, r, BodyEvent::Error(ParseError::IncompleteBody));
            }
        }
    }
    if let Some(s) = servers(base).servers.get_mut(c.server) {
        s.conns = s.conns.saturating_sub(1);
    }
    check_drained(base, c.server);
}

/// Calls a draining server's callback once its last connection is gone.
pub(crate) fn check_drained(base: &mut EventBase, skey: Key) {
    let Some(s) = servers(base).servers.get_mut(skey) else {
        return;
    };
    if !s.draining || s.conns != 0 {
        return;
    }
    if let Some(done) = s.drain_done.take() {
        let _ = base.once(-1, What::empty(), Some(Duration::ZERO), move |b, _| done(b));
    }
}

/// Drain: idle connections close now, busy ones after their reply.
pub(crate) fn drain_conn(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    c.keep_alive = false;
    let (state, bev) = (c.state, c.bev);
    let idle = state == State::Head && bev.input(base).map_or(true, |i| i.is_empty());
    if idle {
        free_conn(base, ckey);
    }
}

fn on_read(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    if c.in_read {
        return;
    }
    c.in_read = true;
    let mut budget = REQUESTS_PER_READ;
    // Set when `read_head` found the input empty (and so stopped the loop).
    let mut input_empty = false;
    loop {
        let s = servers(base);
        let Some(c) = s.conns.get_mut(ckey) else {
            return;
        };
        let progressed = match c.state {
            // The last head took all the input: nothing to parse (input only arrives from
            // the loop, never while this callback runs).
            State::Head if input_empty => false,
            State::Head => {
                if budget == 0 {
                    // More pipelined requests: the rest waits for the next iteration.
                    let bev = c.bev;
                    let _ = bev.trigger(base, What::READ, true, true);
                    false
                } else {
                    budget -= 1;
                    let bev = c.bev;
                    match c.parser.take() {
                        Some(parser) => {
                            let spare = s.spare_head.take();
                            read_head(base, ckey, bev, parser, spare, &mut input_empty)
                        }
                        None => false,
                    }
                }
            }
            State::Body => read_body(base, ckey),
            State::Handling => {
                if c.body.as_ref().is_some_and(|b| b.streaming && !b.done) {
                    read_body(base, ckey)
                } else {
                    false
                }
            }
            State::Closing { .. } => {
                discard(base, ckey);
                false
            }
        };
        if !progressed {
            break;
        }
    }
    let Some(c) = conn(base, ckey) else { return };
    c.in_read = false;
    // A request that has started but not arrived gets the read timeout, once.
    let (state, bev, armed, skey) = (c.state, c.bev, c.read_timer, c.server);
    let pending = match state {
        State::Head => !input_empty && bev.input(base).is_ok_and(|i| !i.is_empty()),
        State::Body => true,
        _ => false,
    };
    if pending && !armed {
        if let Some(c) = conn(base, ckey) {
            c.read_timer = true;
        }
        let (read, _, _) = cfg_timeouts(base, skey);
        arm(base, ckey, read);
    }
}

/// Throws input away (a closing connection), within the linger budget.
fn discard(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    let (bev, skey) = (c.bev, c.server);
    let n = bev.input(base).map_or(0, |i| {
        let n = i.len();
        let _ = i.clear();
        n
    });
    let max = servers(base)
        .servers
        .get(skey)
        .map_or(0, |s| s.cfg.linger_bytes);
    let Some(c) = conn(base, ckey) else { return };
    c.lingered = c.lingered.saturating_add(n);
    if c.lingered > max {
        free_conn(base, ckey);
        return;
    }
    if let Some(until) = c.linger_until {
        // Still sending: wait for another quiet period, up to the linger deadline.
        let now = base.now();
        if now >= until {
            free_conn(base, ckey);
        } else {
            arm(base, ckey, Some(LINGER_QUIET.min(until - now)));
        }
    }
}

/// Parses a head from the input with the connection's `parser` (taken out of it, and put
/// back here) and the `spare` head (put back unless used); returns whether one was taken.
/// Sets `input_empty` when the input had nothing to parse, or a complete head took all of it.
fn read_head(
    base: &mut EventBase,
    ckey: Key,
    bev: BufferEvent,
    mut parser: Box<RequestParser>,
    spare: Option<Box<RequestHead>>,
    input_empty: &mut bool,
) -> bool {
    let limit = parser.limits().max_header_bytes.saturating_add(1);
    // Parsed in place, into a recycled head: only the box moves from here on.
    let mut head = spare.unwrap_or_else(|| Box::new(RequestHead::empty()));
    // A complete head is drained from the input under the same borrow.
    let result = match bev.input(base) {
        Ok(input) if !input.is_empty() => {
            let n = input.len().min(limit);
            let parsed = match input.pullup(n) {
                Ok(bytes) => Some(parser.parse_into(bytes, &mut head)),
                Err(_) => None,
            };
            if let Some(Ok(Some(used))) = parsed {
                let _ = input.drain(used);
                *input_empty = input.is_empty();
            }
            parsed
        }
        Ok(_) => {
            *input_empty = true;
            None
        }
        Err(_) => None,
    };
    if let Some(Ok(Some(_))) = result {
        // `on_head` puts the parser back with its own lookup.
        on_head(base, ckey, head, parser);
        return true;
    }
    let s = servers(base);
    recycle_head_in(s, head);
    if let Some(c) = s.conns.get_mut(ckey) {
        c.parser = Some(parser);
    }
    if let Some(Err(e)) = result {
        start_error(base, ckey, &ServerError::Parse(e), Close::Linger, None);
    }
    false
}

/// Marks the start of a request's handling: a new sequence number, its reply settings.
fn begin(c: &mut Conn, ckey: Key, version: Version, keep_alive: bool, head_req: bool) -> Responder {
    c.seq = c.seq.wrapping_add(1);
    c.version = version;
    c.keep_alive = keep_alive && c.keep_alive_allowed();
    c.head_req = head_req;
    c.reply = Reply::None;
    Responder {
        conn: ckey,
        seq: c.seq,
    }
}

impl Conn {
    fn keep_alive_allowed(&self) -> bool {
        !self.peer_eof
    }
}

/// A complete head arrived; `parser` goes back to the connection.
fn on_head(base: &mut EventBase, ckey: Key, head: Box<RequestHead>, parser: Box<RequestParser>) {
    let s = servers(base);
    let Some((skey, peer)) = s.conns.get_mut(ckey).map(|c| {
        c.parser = Some(parser);
        (c.server, c.peer)
    }) else {
        return;
    };
    let s = match s.servers.get(skey).and_then(|d| d.newreqcb.clone()) {
        None => s,
        Some(cb) => {
            // A callback that runs the loop and gets here again lets the request through.
            let go = match cb.try_borrow_mut() {
                Ok(mut f) => f(base, peer, &head),
                Err(_) => true,
            };
            if !go {
                // Refused: the connection closes without a reply, as in libevent.
                free_conn(base, ckey);
                return;
            }
            let s = servers(base);
            if s.conns.get(ckey).is_none() {
                return;
            }
            s
        }
    };
    let target = route::resolve(s, skey, &head);
    let (draining, limits) = s
        .servers
        .get(skey)
        .map_or((true, crate::proto::Limits::default()), |s| {
            (s.draining, s.cfg.limits)
        });
    let Some(c) = s.conns.get_mut(ckey) else {
        return;
    };
    let r = begin(
        c,
        ckey,
        head.version,
        head.keep_alive && !draining,
        head.method == Method::Head,
    );
    c.state = State::Handling;
    let has_body = head.body != BodyKind::None;
    let route = match target {
        Target::Route(route) => route,
        Target::NotFound | Target::MethodNotAllowed(_) => {
            let (err, allow) = match target {
                Target::MethodNotAllowed(allow) => (ServerError::MethodNotAllowed, Some(allow)),
                _ => (ServerError::NotFound, None),
            };
            let mut out = Headers::new();
            if let Some(allow) = allow {
                out.append("Allow", allow);
            }
            let close = if has_body { Close::Linger } else { Close::No };
            let _ = reply_error_with(base, r, &err, None, out, close);
            return;
        }
    };
    let peer = c.peer;
    if !has_body {
        dispatch(base, r, peer, head, Buffer::new(), &route);
        return;
    }
    let bev = c.bev;
    let expect = head.expect_continue;
    let streaming = route.streaming;
    let decoder = BodyDecoder::new(head.body, &limits);
    // `Content-Length: 0`: the body is complete already (no input will come to say so).
    let done = head.body == BodyKind::Length(0);
    let bi = BodyIn {
        decoder,
        buf: Buffer::new(),
        streaming,
        pending: None,
        sink: None,
        done,
        end_sent: false,
    };
    c.body = Some(Box::new(bi));
    if expect && !done {
        let _ = bev.write(base, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    if streaming {
        dispatch(base, r, peer, head, Buffer::new(), &route);
    } else if let Some(c) = conn(base, ckey) {
        c.state = State::Body;
        if let Some(bi) = c.body.as_mut() {
            bi.pending = Some(Box::new((head, route)));
        }
    }
}

/// Hands request `r` (from `peer`) to its route's handler.
fn dispatch(
    base: &mut EventBase,
    r: Responder,
    peer: Option<SocketAddr>,
    head: Box<RequestHead>,
    body: Buffer,
    route: &Route,
) {
    let req = Request::new(head, body, r, peer);
    let handler = route.handler.clone();
    match handler.try_borrow_mut() {
        Ok(mut f) => f(base, req),
        Err(_) => {
            // Only a handler that runs the loop itself can get here.
            let _ = req.send_error(base, 503, Some("handler busy"));
        }
    }
}

/// Reads body bytes from the input; returns whether anything moved.
fn read_body(base: &mut EventBase, ckey: Key) -> bool {
    let Some(c) = conn(base, ckey) else {
        return false;
    };
    let (bev, skey) = (c.bev, c.server);
    let Some(mut bi) = c.body.take() else {
        return false;
    };
    let high = servers(base)
        .servers
        .get(skey)
        .map_or(usize::MAX, |s| s.cfg.body_buffer);
    let mut err = None;
    let mut moved = false;
    if let Ok(input) = bev.input(base) {
        while !(bi.done || input.is_empty() || bi.streaming && bi.buf.len() >= high) {
            let n = input.contiguous_space();
            let step = match input.pullup(n) {
                Ok(chunk) => bi.decoder.step(chunk),
                Err(_) => break,
            };
            match step {
                Ok(step) => {
                    let (start, end) = (step.data.start, step.data.end);
                    let _ = input.drain(start);
                    if end > start {
                        let _ = input.remove_buffer(&mut bi.buf, end - start);
                    }
                    let _ = input.drain(step.consumed - end);
                    if step.done {
                        bi.done = true;
                    }
                    if step.consumed == 0 && !step.done {
                        break;
                    }
                    moved = true;
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
    }
    if let Some(e) = err {
        if bi.streaming {
            if let Some(mut sink) = bi.sink.take() {
                let r = Responder {
                    conn: ckey,
                    seq: conn(base, ckey).map_or(0, |c| c.seq),
                };
                sink(base, r, BodyEvent::Error(e));
            }
        }
        start_error(base, ckey, &ServerError::Parse(e), Close::Linger, None);
        return false;
    }
    let Some(c) = conn(base, ckey) else {
        return false;
    };
    if bi.streaming {
        let backlog = bi.buf.len() >= high;
        c.body = Some(bi);
        deliver(base, ckey);
        let still_behind = conn(base, ckey)
            .and_then(|c| c.body.as_ref())
            .is_some_and(|b| b.buf.len() >= high);
        if still_behind || backlog {
            pause_reading(base, ckey, still_behind);
        }
        return moved && !still_behind;
    }
    if bi.done {
        let Some(pending) = bi.pending.take() else {
            return false;
        };
        let (head, route) = *pending;
        c.state = State::Handling;
        let body = std::mem::take(&mut bi.buf);
        c.body = Some(bi);
        let (r, peer) = (
            Responder {
                conn: ckey,
                seq: c.seq,
            },
            c.peer,
        );
        dispatch(base, r, peer, head, body, &route);
        return true;
    }
    c.body = Some(bi);
    false
}

/// Stops (or restarts) reading for a streaming body whose handler is behind.
fn pause_reading(base: &mut EventBase, ckey: Key, pause: bool) {
    let Some(c) = conn(base, ckey) else { return };
    if c.read_paused == pause {
        return;
    }
    c.read_paused = pause;
    let bev = c.bev;
    if pause {
        let _ = bev.disable(base, What::READ);
    } else {
        let _ = bev.enable(base, What::READ);
        // Input may be waiting already.
        let _ = bev.trigger(base, What::READ, true, true);
    }
}

/// Hands buffered body data (then the end) to the body callback.
fn deliver(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    let seq = c.seq;
    let Some(bi) = c.body.as_mut() else { return };
    let Some(mut sink) = bi.sink.take() else {
        return;
    };
    let r = Responder { conn: ckey, seq };
    if !bi.buf.is_empty() {
        let mut buf = std::mem::take(&mut bi.buf);
        sink(base, r, BodyEvent::Data(&mut buf));
        let Some(bi) = conn(base, ckey)
            .filter(|c| c.seq == seq)
            .and_then(|c| c.body.as_mut())
        else {
            return;
        };
        // Nothing is read while the callback runs, so the buffer it had is all there is.
        let _ = buf.add_buffer(&mut bi.buf);
        bi.buf = buf;
    }
    let Some(bi) = conn(base, ckey)
        .filter(|c| c.seq == seq)
        .and_then(|c| c.body.as_mut())
    else {
        return;
    };
    if bi.done && bi.buf.is_empty() && !bi.end_sent {
        bi.end_sent = true;
        sink(base, r, BodyEvent::End);
    }
    if let Some(bi) = conn(base, ckey)
        .filter(|c| c.seq == seq)
        .and_then(|c| c.body.as_mut())
    {
        if bi.sink.is_none() {
            bi.sink = Some(sink);
        }
    }
}

pub(crate) fn set_body_cb(base: &mut EventBase, r: Responder, sink: BodySink) -> io::Result<()> {
    let c = live(base, r)?;
    let bi = c
        .body
        .as_mut()
        .filter(|b| b.streaming)
        .ok_or_else(|| invalid("the request has no streamed body"))?;
    bi.sink = Some(sink);
    deliver(base, r.conn);
    resume_if_caught_up(base, r.conn);
    Ok(())
}

pub(crate) fn take_body(base: &mut EventBase, r: Responder) -> io::Result<Buffer> {
    let c = live(base, r)?;
    let buf = c
        .body
        .as_mut()
        .map(|b| std::mem::take(&mut b.buf))
        .unwrap_or_default();
    deliver(base, r.conn);
    resume_if_caught_up(base, r.conn);
    Ok(buf)
}

pub(crate) fn resume_body(base: &mut EventBase, r: Responder) -> io::Result<()> {
    live(base, r)?;
    deliver(base, r.conn);
    resume_if_caught_up(base, r.conn);
    Ok(())
}

fn resume_if_caught_up(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    if !c.read_paused {
        return;
    }
    let skey = c.server;
    let len = c.body.as_ref().map_or(0, |b| b.buf.len());
    let high = servers(base)
        .servers
        .get(skey)
        .map_or(usize::MAX, |s| s.cfg.body_buffer);
    if len < high {
        pause_reading(base, ckey, false);
    }
}

/// Runs the completion callbacks of the replies written so far, if the output has drained.
fn run_completions(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    if c.completions.is_empty() {
        return;
    }
    let bev = c.bev;
    if !bev.output(base).is_ok_and(|o| o.is_empty()) {
        return;
    }
    let Some(c) = conn(base, ckey) else { return };
    for cb in std::mem::take(&mut c.completions) {
        cb(base);
    }
}

/// Sets the current request's completion callback.
pub(crate) fn set_on_complete(
    base: &mut EventBase,
    r: Responder,
    cb: CompleteCb,
) -> io::Result<()> {
    live(base, r)?.on_complete = Some(cb);
    Ok(())
}

fn on_write(base: &mut EventBase, ckey: Key) {
    let Some(c) = conn(base, ckey) else { return };
    let c = if c.completions.is_empty() {
        c
    } else {
        run_completions(base, ckey);
        let Some(c) = conn(base, ckey) else { return };
        c
    };
    let (mut state, mut bev) = (c.state, c.bev);
    if let Some(cb) = c.drain_cb.take() {
        let r = Responder {
            conn: ckey,
            seq: c.seq,
        };
        cb(base, r);
        let Some(c) = conn(base, ckey) else { return };
        (state, bev) = (c.state, c.bev);
    }
    if let State::Closing { linger } = state {
        if bev.output(base).is_ok_and(|o| o.is_empty()) {
            close_or_linger(base, ckey, linger);
        }
    }
}

/// The output has drained on a closing connection: close, or linger.
fn close_or_linger(base: &mut EventBase, ckey: Key, linger: bool) {
    let Some(c) = conn(base, ckey) else { return };
    if !linger || c.peer_eof {
        free_conn(base, ckey);
        return;
    }
    let skey = c.server;
    let (_, _, t) = cfg_timeouts(base, skey);
    if t.is_zero() {
        free_conn(base, ckey);
        return;
    }
    let until = base.now() + t;
    arm(base, ckey, Some(LINGER_QUIET.min(t)));
    // Reading may have been paused by a full input or a slow body handler.
    let Some(c) = conn(base, ckey) else { return };
    c.linger_until = Some(until);
    c.read_paused = false;
    let (bev, plain) = (c.bev, c.plain);
    if plain {
        // The reply is all out: end the write side, so that the client reads end of file
        // after it (rather than waiting, or a reset when we close with its data unread),
        // and keep reading what it still sends. A TLS bufferevent would need its
        // close_notify first, so it only lingers.
        if let Ok(Some(fd)) = bev.fd(base) {
            let _ = oxevent_core::fdio::shutdown_write(fd);
        }
    }
    let _ = bev.enable(base, What::READ);
    discard(base, ckey);
}

fn on_event(base: &mut EventBase, ckey: Key, ev: BevEvent) {
    let Some(c) = conn(base, ckey) else { return };
    if !ev
        .what
        .intersects(BevFlags::EOF | BevFlags::ERROR | BevFlags::TIMEOUT)
    {
        // `CONNECTED`: a TLS bufferevent finished its handshake.
        return;
    }
    if !ev.what.contains(BevFlags::EOF) {
        // An error or a write timeout: nothing more can be said to this client.
        free_conn(base, ckey);
        return;
    }
    let (state, bev) = (c.state, c.bev);
    match state {
        State::Handling => {
            // The client half-closed: answer, then close.
            c.peer_eof = true;
            c.keep_alive = false;
            let seq = c.seq;
            let cut = c.body.as_ref().is_some_and(|b| b.streaming && !b.done);
            if cut {
                if let Some(mut sink) = c.body.as_mut().and_then(|b| b.sink.take()) {
                    let r = Responder { conn: ckey, seq };
                    sink(base, r, BodyEvent::Error(ParseError::IncompleteBody));
                }
                if let Some(b) = conn(base, ckey).and_then(|c| c.body.as_mut()) {
                    b.done = true;
                    b.end_sent = true;
                }
            }
        }
        State::Closing { .. } => {
            c.peer_eof = true;
            if bev.output(base).map_or(true, |o| o.is_empty()) {
                free_conn(base, ckey);
            }
        }
        State::Head | State::Body => free_conn(base, ckey),
    }
}

fn on_timer(base: &mut EventBase, ckey: Key) {
    let now = base.now();
    let Some(c) = conn(base, ckey) else { return };
    let (state, bev, skey) = (c.state, c.bev, c.server);
    // The timer has fired: it is no longer pending, whatever it was armed for.
    let idle_since = c.idle_since.take();
    match state {
        State::Head => {
            if bev.input(base).map_or(true, |i| i.is_empty()) {
                // Idle since `idle_since`: a reply since the timer was armed moved that on.
                let (_, idle, _) = cfg_timeouts(base, skey);
                if let (Some(since), Some(idle)) = (idle_since, idle) {
                    let due = since + idle;
                    if now < due {
                        let timer = conn(base, ckey).and_then(|c| {
                            c.idle_since = Some(since);
                            c.timer
                        });
                        arm_timer(base, timer, Some(due - now));
                        return;
                    }
                }
                // Idle keep-alive connection.
                free_conn(base, ckey);
            } else {
                start_error(base, ckey, &ServerError::Timeout, Close::Linger, None);
            }
        }
        State::Body => start_error(base, ckey, &ServerError::Timeout, Close::Linger, None),
        State::Handling => {}
        State::Closing { .. } => free_conn(base, ckey),
    }
}

/// An error found while no request is being handled (a bad head, a body error, a timeout):
/// make it the current request and answer it.
fn start_error(
    base: &mut EventBase,
    ckey: Key,
    err: &ServerError,
    close: Close,
    allow: Option<String>,
) {
    let Some(c) = conn(base, ckey) else { return };
    if c.reply != Reply::None {
        // A streaming reply is under way: the only way to say it failed is to cut it.
        free_conn(base, ckey);
        return;
    }
    if c.state != State::Handling {
        let version = if c.state == State::Head {
            Version::Http11
        } else {
            c.version
        };
        let head_req = c.state != State::Head && c.head_req;
        begin(c, ckey, version, false, head_req);
        c.state = State::Handling;
    }
    c.keep_alive = false;
    c.body = None;
    let r = Responder {
        conn: ckey,
        seq: c.seq,
    };
    let mut out = Headers::new();
    if let Some(allow) = allow {
        out.append("Allow", allow);
    }
    let _ = reply_error_with(base, r, err, None, out, close);
}

pub(crate) fn reply_error(
    base: &mut EventBase,
    r: Responder,
    err: &ServerError,
    reason: Option<&str>,
    out: Headers,
) -> io::Result<()> {
    reply_error_with(base, r, err, reason, out, Close::No)
}

fn reply_error_with(
    base: &mut EventBase,
    r: Responder,
    err: &ServerError,
    reason: Option<&str>,
    mut out: Headers,
    close: Close,
) -> io::Result<()> {
    let skey = live(base, r)?.server;
    let status = err.status_code();
    let mut page = Buffer::new();
    let errorcb = servers(base)
        .servers
        .get(skey)
        .and_then(|s| s.errorcb.clone());
    if let Some(cb) = errorcb {
        if let Ok(mut f) = cb.try_borrow_mut() {
            f(base, err, &mut page);
        }
    }
    if page.is_empty() {
        let phrase = reason.unwrap_or_else(|| reason_phrase(status));
        let phrase = crate::uri::html_escape(phrase);
        let _ = page.add_fmt(format_args!(
            "<!DOCTYPE html>\n<html><head><title>{status} {phrase}</title></head>\
             <body><h1>{status} {phrase}</h1></body></html>\n"
        ));
        if !out.contains("content-type") {
            out.append("Content-Type", "text/html; charset=utf-8");
        }
    }
    let reason = reason.filter(|r| r.bytes().all(crate::proto::is_field_byte));
    reply_full(
        base,
        r,
        status,
        reason,
        &out,
        Body::Buffer(page),
        close,
        None,
    )
}

/// Whether a `Connection` header asks to close.
fn says_close(h: &Headers) -> bool {
    h.get_all("connection")
        .any(|v| list_elements(v).any(|o| o.eq_ignore_ascii_case(b"close")))
}

/// The headers the server writes itself, which a handler's are stripped of.
fn is_framing(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length")
        || name.eq_ignore_ascii_case("transfer-encoding")
        || name.eq_ignore_ascii_case("connection")
}

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Encodes a reply head into the server's scratch vector: status line, the handler's
/// headers (minus framing ones), then `Content-Type`, the framing, `Date` and `Connection`.
/// Returns the scratch vector; the caller puts it back.
#[allow(clippy::too_many_arguments)] // one call site each for full and streaming replies
fn encode_head(
    s: &mut Servers,
    secs: u64,
    skey: Key,
    version: Version,
    status: u16,
    reason: Option<&str>,
    out: &Headers,
    framing: Option<Result<u64, ()>>,
    keep: bool,
) -> io::Result<Vec<u8>> {
    let date = s.date_at(secs);
    let mut scratch = std::mem::take(&mut s.scratch);
    scratch.clear();
    let ct: &[u8] = s
        .servers
        .get(skey)
        .map_or(&[], |d| &d.cfg.default_content_type[..]);
    // Replies with no headers of their own repeat the same head within a second.
    let key = (out.is_empty() && reason.is_none()).then_some(super::HeadKey {
        version,
        status,
        framing,
        keep,
        secs,
    });
    if let Some(key) = key {
        if let Some(cached) = s.head_cache.as_ref().filter(|c| c.key == key && c.ct == ct) {
            scratch.extend_from_slice(&cached.head);
            return Ok(scratch);
        }
    }
    let filtered;
    let out = if out.iter().any(|(n, _)| is_framing(n)) {
        filtered = out
            .iter()
            .filter(|(n, _)| !is_framing(n))
            .collect::<Headers>();
        &filtered
    } else {
        out
    };
    let reason = reason.unwrap_or_else(|| reason_phrase(status));
    if let Err(e) = encode_response_head(version, status, reason, out, &mut scratch) {
        s.scratch = scratch;
        return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
    }
    scratch.truncate(scratch.len() - 2);
    if let Some(framing) = framing {
        if !ct.is_empty() && !out.contains("content-type") {
            scratch.extend_from_slice(b"Content-Type: ");
            scratch.extend_from_slice(ct);
            scratch.extend_from_slice(b"\r\n");
        }
        match framing {
            Ok(len) => {
                scratch.extend_from_slice(b"Content-Length: ");
                push_num(&mut scratch, len);
                scratch.extend_from_slice(b"\r\n");
            }
            Err(()) => scratch.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
    }
    if !out.contains("date") {
        scratch.extend_from_slice(b"Date: ");
        scratch.extend_from_slice(date.as_bytes());
        scratch.extend_from_slice(b"\r\n");
    }
    if !keep {
        scratch.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        scratch.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    scratch.extend_from_slice(b"\r\n");
    if let Some(key) = key {
        // Refill the cache in place (no allocation once it has grown).
        let ct = s
            .servers
            .get(skey)
            .map_or_else(bytes::Bytes::new, |d| d.cfg.default_content_type.clone());
        let cache = s.head_cache.get_or_insert_with(Default::default);
        cache.key = key;
        cache.ct = ct;
        cache.head.clear();
        cache.head.extend_from_slice(&scratch);
    }
    Ok(scratch)
}

/// The most heap a recycled request head may keep.
const SPARE_HEAD_MAX: usize = 4096;

/// Keeps a replied request's head for the next parse to reuse its allocations.
fn recycle_head_in(s: &mut Servers, head: Box<RequestHead>) {
    if head.target.capacity() + head.headers.capacity_bytes() <= SPARE_HEAD_MAX {
        s.spare_head = Some(head);
    }
}

/// Whether the request's body has not been read to its end.
fn body_unread(c: &Conn) -> bool {
    c.state == State::Body || c.body.as_ref().is_some_and(|b| !b.done)
}

/// Sends a full reply; `spare` is the request's head, kept for the next parse to reuse.
#[allow(clippy::too_many_arguments)] // three call sites, all in this crate
pub(crate) fn reply_full(
    base: &mut EventBase,
    r: Responder,
    status: u16,
    reason: Option<&str>,
    out: &Headers,
    body: Body,
    close: Close,
    spare: Option<Box<RequestHead>>,
) -> io::Result<()> {
    let secs = super::unix_secs(base);
    let s = servers(base);
    let c = live_in(s, r)?;
    if c.reply != Reply::None {
        return Err(invalid("a streaming reply was started"));
    }
    let (skey, bev, version, head_req) = (c.server, c.bev, c.version, c.head_req);
    let unread = body_unread(c);
    let keep_alive = c.keep_alive;
    let draining = s.servers.get(skey).is_none_or(|s| s.draining);
    let keep = keep_alive && close == Close::No && !unread && !draining && !says_close(out);
    let linger = close == Close::Linger || unread;
    let bodyless = status < 200 || status == 204 || status == 304;
    let framing = (!bodyless).then_some(Ok(body.len() as u64));
    let mut scratch = encode_head(s, secs, skey, version, status, reason, out, framing, keep)?;
    let send_body = !head_req && !bodyless;
    if send_body {
        if let Some(small) = body.small() {
            scratch.extend_from_slice(small);
        }
    }
    let wrote = bev.output(base).and_then(|o| {
        o.add(&scratch).map_err(io::Error::other)?;
        if send_body && body.small().is_none() {
            body.append_to(o).map_err(io::Error::other)?;
        }
        Ok(())
    });
    let s = servers(base);
    s.scratch = scratch;
    if let Some(head) = spare {
        recycle_head_in(s, head);
    }
    wrote?;
    finish(base, r.conn, keep, linger);
    Ok(())
}

/// The reply is complete: next request, or close.
fn finish(base: &mut EventBase, ckey: Key, keep: bool, linger: bool) {
    let now = base.now();
    let s = servers(base);
    let Some(c) = s.conns.get_mut(ckey) else {
        return;
    };
    c.reply = Reply::None;
    c.body = None;
    c.drain_cb = None;
    let completing = match c.on_complete.take() {
        Some(cb) => {
            c.completions.push(cb);
            true
        }
        None => false,
    };
    let (bev, skey, in_read, paused) = (c.bev, c.server, c.in_read, c.read_paused);
    if keep {
        c.state = State::Head;
        c.read_timer = false;
        c.read_paused = false;
        let timer = c.timer;
        let (idle, draining) = s
            .servers
            .get(skey)
            .map_or((None, false), |d| (d.cfg.idle_timeout, d.draining));
        if c.idle_since.is_some() && idle.is_some_and(|d| !d.is_zero()) {
            // The idle timer is pending: it re-arms itself from here when it fires.
            c.idle_since = Some(now);
        } else {
            c.idle_since = idle.is_some_and(|d| !d.is_zero()).then_some(now);
            arm_timer(base, timer, idle);
        }
        if paused {
            let _ = bev.enable(base, What::READ);
        }
        if completing && bev.output(base).is_ok_and(|o| o.is_empty()) {
            // Nothing left to write (a streamed reply already out): complete from the loop.
            let _ = bev.trigger(base, What::WRITE, true, true);
        }
        if !in_read && bev.input(base).is_ok_and(|i| !i.is_empty()) {
            // Pipelined requests wait in the input: parse them from the loop, not from
            // inside whatever called the reply.
            let _ = bev.trigger(base, What::READ, true, true);
        }
        // A server that started draining while this reply was being written: close
        // the connection if idle.
        if draining {
            drain_conn(base, ckey);
        }
    } else {
        c.state = State::Closing { linger };
        let _ = bev.input(base).map(|i| i.clear());
        if bev.output(base).is_ok_and(|o| o.is_empty()) {
            run_completions(base, ckey);
            close_or_linger(base, ckey, linger);
        }
    }
}

pub(crate) fn reply_start(
    base: &mut EventBase,
    r: Responder,
    status: u16,
    out: &Headers,
) -> io::Result<()> {
    let secs = super::unix_secs(base);
    let s = servers(base);
    let c = live_in(s, r)?;
    if c.reply != Reply::None {
        return Err(invalid("a streaming reply was already started"));
    }
    let (skey, bev, version, keep_alive) = (c.server, c.bev, c.version, c.keep_alive);
    let chunked = version == Version::Http11;
    let draining = s.servers.get(skey).is_none_or(|s| s.draining);
    let keep = chunked && keep_alive && !draining && !says_close(out);
    let bodyless = status < 200 || status == 204 || status == 304;
    let framing = (!bodyless && chunked).then_some(Err(()));
    let framing = if bodyless {
        None
    } else {
        framing.or(Some(Ok(0)))
    };
    // A close-delimited body has no length: only the content type of the framing applies.
    let scratch = encode_head(s, secs, skey, version, status, None, out, framing, keep)?;
    let scratch = if !bodyless && !chunked {
        strip_content_length(scratch)
    } else {
        scratch
    };
    let wrote = bev
        .output(base)
        .and_then(|o| o.add(&scratch).map_err(io::Error::other));
    servers(base).scratch = scratch;
    wrote?;
    let c = live(base, r)?;
    c.keep_alive = keep;
    c.reply = Reply::Streaming {
        chunked: chunked && !bodyless,
    };
    Ok(())
}

/// Removes the `Content-Length: 0` line a close-delimited head was encoded with.
fn strip_content_length(mut head: Vec<u8>) -> Vec<u8> {
    const LINE: &[u8] = b"Content-Length: 0\r\n";
    if let Some(i) = head.windows(LINE.len()).position(|w| w == LINE) {
        head.drain(i..i + LINE.len());
    }
    head
}

pub(crate) fn reply_chunk(
    base: &mut EventBase,
    r: Responder,
    body: Body,
    cb: Option<DrainCb>,
) -> io::Result<()> {
    let c = live(base, r)?;
    let Reply::Streaming { chunked } = c.reply else {
        return Err(invalid("no streaming reply was started"));
    };
    let (bev, head_req) = (c.bev, c.head_req);
    if let Some(cb) = cb {
        c.drain_cb = Some(cb);
    }
    let output = bev.output(base)?;
    if !head_req && !body.is_empty() {
        if chunked {
            if let Some(h) = ChunkHeader::new(body.len() as u64) {
                output.add(h.as_bytes()).map_err(io::Error::other)?;
            }
            body.append_to(output).map_err(io::Error::other)?;
            output
                .add(crate::proto::CHUNK_END)
                .map_err(io::Error::other)?;
        } else {
            body.append_to(output).map_err(io::Error::other)?;
        }
    }
    if output.is_empty() && live(base, r).is_ok_and(|c| c.drain_cb.is_some()) {
        // Nothing to wait for: run the callback from the loop.
        bev.trigger(base, What::WRITE, true, true)?;
    }
    Ok(())
}

pub(crate) fn reply_end(base: &mut EventBase, r: Responder) -> io::Result<()> {
    let c = live(base, r)?;
    let Reply::Streaming { chunked } = c.reply else {
        return Err(invalid("no streaming reply was started"));
    };
    let (bev, head_req, keep) = (c.bev, c.head_req, c.keep_alive);
    let unread = body_unread(c);
    if chunked && !head_req {
        bev.output(base)?
            .add(LAST_CHUNK)
            .map_err(io::Error::other)?;
    }
    finish(base, r.conn, keep && !unread, unread);
    Ok(())
}
