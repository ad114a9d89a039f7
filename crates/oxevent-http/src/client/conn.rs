//! The connection engine: the state kept in the base per connection, and the transitions
//! driven by the bufferevent's callbacks, the timers and the API calls.
//!
//! Every user callback runs from the loop with no borrow of this state held: the state is
//! brought to a consistent point first, the callbacks to run are collected, and then they
//! run one by one, each free to make requests, cancel them or free the connection. API calls
//! (`make_request`, `cancel`, `resume`, ...) never run a user callback themselves: they
//! change the state and activate the connection's *kick* event, whose callback does the
//! work from the loop.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use oxevent_bufferevent::{BevEvent, BevFlags, BevOptions, Buffer, BufferEvent, Family, Resolve};
use oxevent_core::{Event, EventBase, What};
use socket2::{Domain, SockAddr, Socket, Type};

use super::request::{
    BodyChunk, BodySource, ChunkFn, ClientError, CompleteFn, Flow, HeadFn, Response, TimeoutKind,
};
use super::{BevFactory, Connection, RequestHandle};
use crate::proto::{
    BodyDecoder, EncodeError, Headers, Limits, Method, ResponseHead, ResponseParser, Status,
    Version, encode_chunk, encode_last_chunk, encode_request_head,
};
use oxevent_bufferevent::slab::{Key, Slab};

/// The longest a retry backoff grows to.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// A close callback.
pub(crate) type CloseFn = Box<dyn FnMut(&mut EventBase, Connection)>;

/// Where a connection goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

pub(crate) struct Config {
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) initial_retry: Duration,
    pub(crate) limits: Limits,
    pub(crate) max_in_flight: usize,
    pub(crate) max_queue: usize,
    pub(crate) family: Family,
    pub(crate) local_addr: Option<IpAddr>,
    pub(crate) local_port: Option<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // libevent's defaults for evhttp connections.
            connect_timeout: Duration::from_secs(45),
            read_timeout: Duration::from_secs(50),
            write_timeout: Duration::from_secs(50),
            retries: 0,
            initial_retry: Duration::from_secs(2),
            limits: Limits::DEFAULT.with_max_body(64 * 1024 * 1024),
            max_in_flight: 1,
            max_queue: 1024,
            family: Family::Any,
            local_addr: None,
            local_port: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No socket.
    Closed,
    /// Resolving or connecting.
    Connecting,
    /// Connected: requests can be written.
    Connected,
}

/// A request body being streamed from its source.
struct Upload {
    /// `None` while the source runs (or once it is done).
    source: Option<BodySource>,
    /// The announced `Content-Length`, or `None` for chunked.
    len: Option<u64>,
    sent: u64,
    /// The source said [`BodyChunk::Wait`].
    waiting: bool,
    /// [`RequestHandle::resume_body`] came before the source's `Wait`.
    woken: bool,
    done: bool,
}

/// Below this much waiting output, a streamed body's source is asked for more.
const UPLOAD_LOW: usize = 64 * 1024;

/// The most pieces taken from a source in one go; then the rest waits for the loop.
const UPLOAD_STEPS: usize = 64;

pub(crate) struct Req {
    pub(crate) id: u64,
    method: Method,
    idempotent: bool,
    wire: Vec<u8>,
    retries_left: u32,
    on_complete: Option<CompleteFn>,
    on_head: Option<HeadFn>,
    on_chunk: Option<ChunkFn>,
    head: Option<ResponseHead>,
    body: Vec<u8>,
    /// Some of its response has arrived: it can no longer be retried.
    got_bytes: bool,
    /// It was already re-sent once because a reused connection turned out closed.
    stale_retried: bool,
    /// A streamed body.
    upload: Option<Box<Upload>>,
}

enum Reader {
    Head(ResponseParser),
    Body(BodyDecoder),
}

pub(crate) struct ConnState {
    pub(crate) target: Target,
    pub(crate) cfg: Config,
    pub(crate) resolver: Rc<dyn Resolve>,
    pub(crate) factory: Option<BevFactory>,
    pub(crate) closecb: Option<CloseFn>,
    pub(crate) free_on_completion: bool,
    bev: Option<BufferEvent>,
    phase: Phase,
    queue: VecDeque<Req>,
    in_flight: VecDeque<Req>,
    reader: Option<Reader>,
    inbuf: Buffer,
    paused: bool,
    /// Consecutive failed attempts, for the backoff; reset by a response.
    failures: u32,
    /// Counts connect attempts, so that a late resolver answer for an abandoned attempt is
    /// recognised.
    attempt: u64,
    next_id: u64,
    kick_ev: Event,
    kick_pending: bool,
    connect_timer: Event,
    retry_timer: Event,
    retry_armed: bool,
    /// Sockets opened so far.
    pub(crate) connects: u64,
    /// The current socket has delivered a response already (it is a kept-alive one).
    reused: bool,
    /// The current socket is a `CONNECT` tunnel: what was sent on it must not be re-sent
    /// elsewhere.
    tunnel: bool,
    /// HTTPS: TLS goes over each new socket.
    #[cfg(feature = "openssl")]
    pub(crate) tls: Option<super::TlsConfig>,
    /// `bev` is a TLS bufferevent (TLS is up, or its handshake is running).
    #[cfg(feature = "openssl")]
    secured: bool,
}

impl ConnState {
    /// Whether the current bufferevent is a TLS one.
    fn secured(&self) -> bool {
        #[cfg(feature = "openssl")]
        return self.secured;
        #[cfg(not(feature = "openssl"))]
        return false;
    }

    /// The port a `Host` header leaves out: 443 for HTTPS, 80 otherwise.
    fn default_port(&self) -> u16 {
        #[cfg(feature = "openssl")]
        if self.tls.is_some() {
            return 443;
        }
        80
    }
}

#[derive(Default)]
pub(crate) struct Conns {
    slab: Slab<ConnState>,
}

pub(crate) fn get(base: &mut EventBase, key: Key) -> Option<&mut ConnState> {
    base.extension::<Conns>().slab.get_mut(key)
}

pub(crate) fn stale() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "HTTP connection was freed")
}

pub(crate) fn state(base: &mut EventBase, key: Key) -> io::Result<&mut ConnState> {
    get(base, key).ok_or_else(stale)
}

/// A user callback to run once the state is consistent.
enum Notify {
    Complete(CompleteFn, Result<Response, ClientError>),
    Closed,
}

// ---------------------------------------------------------------------------------------
// creation, requests, cancel, free

pub(crate) fn create(
    base: &mut EventBase,
    target: Target,
    resolver: Rc<dyn Resolve>,
    factory: Option<BevFactory>,
) -> Connection {
    // The events need the key, the key needs the slot: fill the slot with placeholders
    // first, then give it its events.
    let kick_ev = base.user_new(|_, _, _| {});
    let connect_timer = base.timer_new(|_, _, _| {});
    let retry_timer = base.timer_new(|_, _, _| {});
    let st = ConnState {
        target,
        cfg: Config::default(),
        resolver,
        factory,
        closecb: None,
        free_on_completion: false,
        bev: None,
        phase: Phase::Closed,
        queue: VecDeque::new(),
        in_flight: VecDeque::new(),
        reader: None,
        inbuf: Buffer::new(),
        paused: false,
        failures: 0,
        attempt: 0,
        next_id: 1,
        kick_ev,
        kick_pending: false,
        connect_timer,
        retry_timer,
        retry_armed: false,
        connects: 0,
        reused: false,
        tunnel: false,
        #[cfg(feature = "openssl")]
        tls: None,
        #[cfg(feature = "openssl")]
        secured: false,
    };
    let key = base.extension::<Conns>().slab.insert(st);
    let _ = base.free(kick_ev);
    let _ = base.free(connect_timer);
    let _ = base.free(retry_timer);
    let kick_ev = base.user_new(move |base, _, _| on_kick(base, key));
    let connect_timer = base.timer_new(move |base, _, _| on_connect_timeout(base, key));
    let retry_timer = base.timer_new(move |base, _, _| {
        if let Some(st) = get(base, key) {
            st.retry_armed = false;
        }
        on_kick(base, key);
    });
    if let Some(st) = get(base, key) {
        st.kick_ev = kick_ev;
        st.connect_timer = connect_timer;
        st.retry_timer = retry_timer;
    }
    Connection { key }
}

/// Schedules the kick event (idempotent).
pub(crate) fn kick(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    if st.kick_pending {
        return;
    }
    st.kick_pending = true;
    let ev = st.kick_ev;
    let _ = base.activate(ev, What::TIMEOUT, 1);
}

fn host_header(target: &Target, default_port: u16) -> String {
    match target {
        Target::Tcp { host, port } => {
            let h = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            if *port == default_port {
                h
            } else {
                format!("{h}:{port}")
            }
        }
        Target::Unix(_) => "localhost".to_owned(),
    }
}

pub(crate) fn make_request(
    base: &mut EventBase,
    key: Key,
    mut req: super::Request,
) -> Result<RequestHandle, ClientError> {
    let st = get(base, key).ok_or(ClientError::Closed)?;
    if st.queue.len() + st.in_flight.len() >= st.cfg.max_queue {
        return Err(ClientError::QueueFull);
    }
    if !req.headers.contains("host") {
        req.headers
            .append("Host", host_header(&st.target, st.default_port()));
    }
    let stream = req.body_stream.take();
    let chunked = match &stream {
        None => framing(&mut req)?,
        Some((len, _)) => stream_framing(&mut req, *len)?,
    };
    let mut wire = Vec::with_capacity(256 + req.body.len());
    encode_request_head(
        &req.method,
        &req.target,
        Version::Http11,
        &req.headers,
        &mut wire,
    )
    .map_err(ClientError::InvalidRequest)?;
    if stream.is_some() {
        // The body follows from its source once the head is out.
    } else if chunked {
        encode_chunk(&req.body, &mut wire);
        encode_last_chunk(&Headers::new(), &mut wire).map_err(ClientError::InvalidRequest)?;
    } else {
        wire.extend_from_slice(&req.body);
    }
    let id = st.next_id;
    st.next_id += 1;
    // A streamed body cannot be replayed: never retried, never pipelined.
    let idempotent = req.method.is_idempotent() && stream.is_none();
    let upload = stream.map(|(len, source)| {
        Box::new(Upload {
            source: Some(source),
            len,
            sent: 0,
            waiting: false,
            woken: false,
            done: false,
        })
    });
    st.queue.push_back(Req {
        id,
        method: req.method,
        idempotent,
        wire,
        retries_left: st.cfg.retries,
        on_complete: Some(req.on_complete),
        on_head: req.on_head,
        on_chunk: req.on_chunk,
        head: None,
        body: Vec::new(),
        got_bytes: false,
        stale_retried: false,
        upload,
    });
    kick(base, key);
    Ok(RequestHandle {
        conn: Connection { key },
        id,
    })
}

/// Whether the last transfer coding in `headers` is `chunked`.
fn te_ends_chunked(headers: &Headers) -> bool {
    headers
        .get_all("transfer-encoding")
        .last()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
}

/// Checks or sets the body framing of `req`: a `Transfer-Encoding` ending in `chunked` has the
/// body sent as one chunk (returns true); a `Content-Length` must match the body; with
/// neither, `Content-Length` is added for a body, or for `POST`, `PUT` and `PATCH`.
fn framing(req: &mut super::Request) -> Result<bool, ClientError> {
    let bad = ClientError::InvalidRequest(EncodeError::InvalidHeaderValue);
    if req.headers.contains("transfer-encoding") {
        if !te_ends_chunked(&req.headers) || req.headers.contains("content-length") {
            return Err(bad);
        }
        return Ok(true);
    }
    if req.headers.contains("content-length") {
        let len = req.body.len().to_string();
        if req
            .headers
            .get_all("content-length")
            .any(|v| v != len.as_bytes())
        {
            return Err(bad);
        }
        return Ok(false);
    }
    if !req.body.is_empty() || matches!(req.method, Method::Post | Method::Put | Method::Patch) {
        req.headers
            .append("Content-Length", req.body.len().to_string());
    }
    Ok(false)
}

/// The framing of a streamed body of `len` bytes (`None`: unknown, so chunked); returns
/// whether it is chunked. Headers set on the request must agree; a whole body must not be
/// set too.
fn stream_framing(req: &mut super::Request, len: Option<u64>) -> Result<bool, ClientError> {
    let bad = ClientError::InvalidRequest(EncodeError::InvalidHeaderValue);
    if !req.body.is_empty() {
        return Err(ClientError::InvalidRequest(EncodeError::BodyLengthMismatch));
    }
    let te = req.headers.contains("transfer-encoding");
    let cl = req.headers.contains("content-length");
    match len {
        Some(n) => {
            let n = n.to_string();
            if te
                || req
                    .headers
                    .get_all("content-length")
                    .any(|v| v != n.as_bytes())
            {
                return Err(bad);
            }
            if !cl {
                req.headers.append("Content-Length", n);
            }
            Ok(false)
        }
        None => {
            if cl || te && !te_ends_chunked(&req.headers) {
                return Err(bad);
            }
            if !te {
                req.headers.append("Transfer-Encoding", "chunked");
            }
            Ok(true)
        }
    }
}

/// Sends what a streamed body's source has, while less than [`UPLOAD_LOW`] bytes wait in
/// the output; called once its head is written, when the output drains, and on resume.
fn pump(base: &mut EventBase, key: Key) {
    for _ in 0..UPLOAD_STEPS {
        let Some(st) = get(base, key) else { return };
        let Some(bev) = st.bev.filter(|_| st.phase == Phase::Connected) else {
            return;
        };
        // Never pipelined, so a streamed request in flight is the last (and only) one.
        let Some(req) = st.in_flight.back() else {
            return;
        };
        let id = req.id;
        if !req
            .upload
            .as_ref()
            .is_some_and(|u| !u.done && !u.waiting && u.source.is_some())
        {
            return;
        }
        if bev.output(base).map_or(true, |o| o.len() >= UPLOAD_LOW) {
            // The write callback calls again once the output has drained.
            return;
        }
        let Some(mut source) = upload_of(base, key, id).and_then(|u| u.source.take()) else {
            return;
        };
        let handle = RequestHandle {
            conn: Connection { key },
            id,
        };
        let chunk = source(base, handle);
        // The request may be gone (cancelled, or answered) by now.
        let Some(up) = upload_of(base, key, id) else {
            return;
        };
        let mut wire = Vec::new();
        let mismatch = ClientError::InvalidRequest(EncodeError::BodyLengthMismatch);
        let chunked = up.len.is_none();
        match chunk {
            BodyChunk::Data(data) => {
                up.sent = up.sent.saturating_add(data.len() as u64);
                if up.len.is_some_and(|n| up.sent > n) {
                    fail_front(base, key, mismatch);
                    return;
                }
                if chunked && !data.is_empty() {
                    encode_chunk(&data, &mut wire);
                } else {
                    wire = data;
                }
                up.source = Some(source);
            }
            BodyChunk::Wait => {
                up.source = Some(source);
                if std::mem::take(&mut up.woken) {
                    continue;
                }
                up.waiting = true;
                return;
            }
            BodyChunk::End => {
                if up.len.is_some_and(|n| up.sent != n) {
                    fail_front(base, key, mismatch);
                    return;
                }
                up.done = true;
                if chunked {
                    let _ = encode_last_chunk(&Headers::new(), &mut wire);
                }
            }
        }
        if !wire.is_empty() {
            if let Err(e) = bev.write(base, &wire) {
                conn_failed(base, key, ClientError::BufferError(Arc::new(e)));
                return;
            }
        }
        if upload_of(base, key, id).is_none_or(|u| u.done) {
            return;
        }
    }
    // The source keeps giving: carry on from the loop.
    kick(base, key);
}

/// The upload of in-flight request `id`.
fn upload_of(base: &mut EventBase, key: Key, id: u64) -> Option<&mut Upload> {
    get(base, key)?
        .in_flight
        .iter_mut()
        .find(|r| r.id == id)?
        .upload
        .as_deref_mut()
}

pub(crate) fn resume_body(base: &mut EventBase, key: Key, id: u64) -> bool {
    let Some(st) = get(base, key) else {
        return false;
    };
    let Some(up) = st
        .in_flight
        .iter_mut()
        .chain(st.queue.iter_mut())
        .find(|r| r.id == id)
        .and_then(|r| r.upload.as_deref_mut())
        .filter(|u| !u.done)
    else {
        return false;
    };
    if up.waiting {
        up.waiting = false;
        kick(base, key);
    } else {
        up.woken = true;
    }
    true
}

/// Runs `notes` from the loop on a zero timer: used where the caller is an API call, which
/// must not run user callbacks itself.
fn defer(base: &mut EventBase, notes: Vec<CompleteFn>, err: ClientError) {
    if notes.is_empty() {
        return;
    }
    let _ = base.once(-1, What::empty(), Some(Duration::ZERO), move |base, _| {
        for cb in notes {
            cb(base, Err(err.clone()));
        }
    });
}

pub(crate) fn cancel(base: &mut EventBase, key: Key, id: u64) -> bool {
    let Some(st) = get(base, key) else {
        return false;
    };
    if let Some(i) = st.queue.iter().position(|r| r.id == id) {
        let req = st.queue.remove(i).expect("position found it");
        defer(
            base,
            req.on_complete.into_iter().collect(),
            ClientError::Cancelled,
        );
        kick(base, key);
        return true;
    }
    let Some(i) = st.in_flight.iter().position(|r| r.id == id) else {
        return false;
    };
    // Sent: the only way to stop its response is to drop the connection. The requests
    // pipelined with it go back to the queue, to be sent again on a new connection.
    let req = st.in_flight.remove(i).expect("position found it");
    let notes = close_socket(base, key);
    defer(
        base,
        req.on_complete.into_iter().collect(),
        ClientError::Cancelled,
    );
    if !notes.is_empty() {
        // The close callback, too, runs from the loop.
        let _ = base.once(-1, What::empty(), Some(Duration::ZERO), move |base, _| {
            run_notes(base, key, notes);
        });
    }
    kick(base, key);
    true
}

pub(crate) fn resume(base: &mut EventBase, key: Key, id: u64) -> bool {
    let Some(st) = get(base, key) else {
        return false;
    };
    if !st.paused || st.in_flight.front().map(|r| r.id) != Some(id) {
        return false;
    }
    st.paused = false;
    if let Some(bev) = st.bev {
        let _ = bev.enable(base, What::READ);
    }
    update_timeouts(base, key);
    kick(base, key);
    true
}

pub(crate) fn free(base: &mut EventBase, key: Key) -> io::Result<()> {
    let mut st = base
        .extension::<Conns>()
        .slab
        .remove(key)
        .ok_or_else(stale)?;
    if let Some(bev) = st.bev.take() {
        let _ = bev.free(base);
    }
    for ev in [st.kick_ev, st.connect_timer, st.retry_timer] {
        let _ = base.free(ev);
    }
    let notes: Vec<CompleteFn> = st
        .in_flight
        .drain(..)
        .chain(st.queue.drain(..))
        .filter_map(|r| r.on_complete)
        .collect();
    defer(base, notes, ClientError::Closed);
    Ok(())
}

pub(crate) fn pending(base: &mut EventBase, key: Key) -> Option<usize> {
    get(base, key).map(|st| st.queue.len() + st.in_flight.len())
}

pub(crate) fn is_connected(base: &mut EventBase, key: Key) -> Option<bool> {
    get(base, key).map(|st| st.phase == Phase::Connected)
}

/// The current bufferevent if it is a TLS one.
#[cfg(feature = "openssl")]
pub(crate) fn tls_bev(base: &mut EventBase, key: Key) -> io::Result<Option<BufferEvent>> {
    let st = state(base, key)?;
    Ok(st.bev.filter(|_| st.secured))
}

pub(crate) fn apply_timeouts(base: &mut EventBase, key: Key) {
    update_timeouts(base, key);
}

// ---------------------------------------------------------------------------------------
// the kick: connect, send, process buffered input

fn on_kick(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    st.kick_pending = false;
    if st.queue.is_empty() && st.in_flight.is_empty() {
        if st.free_on_completion {
            let _ = free(base, key);
        }
        return;
    }
    match st.phase {
        Phase::Closed => {
            if !st.retry_armed && !st.queue.is_empty() {
                start_connect(base, key);
            }
        }
        Phase::Connecting => {}
        Phase::Connected => {
            send_ready(base, key);
            pump(base, key);
            process(base, key);
        }
    }
}

fn start_connect(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    st.phase = Phase::Connecting;
    st.attempt += 1;
    st.connects += 1;
    let attempt = st.attempt;
    let factory = st.factory.take();
    let (target, connect_timeout, write_timeout, family) = (
        st.target.clone(),
        st.cfg.connect_timeout,
        st.cfg.write_timeout,
        st.cfg.family,
    );
    let local = (st.cfg.local_addr.is_some() || st.cfg.local_port.is_some())
        .then_some((st.cfg.local_addr, st.cfg.local_port.unwrap_or(0)));
    let resolver = Rc::clone(&st.resolver);
    let timer = st.connect_timer;
    let made = match factory {
        Some(mut f) => {
            let r = f(base);
            if let Some(st) = get(base, key) {
                st.factory = Some(f);
            }
            r
        }
        None => BufferEvent::socket(base, None, BevOptions::CLOSE_ON_FREE),
    };
    let bev = match made {
        Ok(b) => b,
        Err(e) => {
            connect_failed(base, key, ClientError::Connect(Arc::new(e)));
            return;
        }
    };
    if let Err(e) = hook(base, key, bev, write_timeout) {
        let _ = bev.free(base);
        connect_failed(base, key, ClientError::Connect(Arc::new(e)));
        return;
    }
    match get(base, key) {
        Some(st) => {
            st.bev = Some(bev);
            #[cfg(feature = "openssl")]
            {
                st.secured = false;
            }
        }
        None => {
            let _ = bev.free(base);
            return;
        }
    }
    let _ = base.add(timer, Some(connect_timeout));
    match target {
        Target::Tcp { host, port } => {
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(&host)
                .to_owned();
            match local {
                None => {
                    if let Err(e) = bev.connect_hostname(base, &*resolver, family, &host, port) {
                        connect_failed(base, key, ClientError::Connect(Arc::new(e)));
                    }
                }
                Some(local) => {
                    let done = Box::new(
                        move |base: &mut EventBase, r: io::Result<Vec<SocketAddr>>| {
                            connect_bound(base, key, attempt, bev, local, r);
                        },
                    );
                    resolver.resolve(base, &host, port, family, done);
                }
            }
        }
        Target::Unix(path) => match connect_unix(&path) {
            Ok(sock) => {
                let r = bev.setfd(base, sock.into());
                match r {
                    Ok(()) => transport_up(base, key),
                    Err(e) => connect_failed(base, key, ClientError::Connect(Arc::new(e))),
                }
            }
            Err(e) => connect_failed(base, key, ClientError::Connect(Arc::new(e))),
        },
    }
}

/// Points `bev`'s callbacks at connection `key`.
fn hook(
    base: &mut EventBase,
    key: Key,
    bev: BufferEvent,
    write_timeout: Duration,
) -> io::Result<()> {
    bev.on_read(base, move |base, _| on_readable(base, key))?;
    bev.on_write(base, move |base, _| pump(base, key))?;
    bev.on_event(base, move |base, bev, ev| on_bev_event(base, key, bev, ev))?;
    bev.set_timeouts(base, None, Some(write_timeout))
}

/// Takes `bev`, already connected, as the connection's socket.
pub(crate) fn adopt(base: &mut EventBase, key: Key, bev: BufferEvent) -> io::Result<()> {
    let st = state(base, key)?;
    if st.bev.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the connection has a socket already",
        ));
    }
    let write_timeout = st.cfg.write_timeout;
    hook(base, key, bev, write_timeout)?;
    #[cfg(feature = "openssl")]
    let secured = {
        use oxevent_openssl::SslBufferEvent;
        bev.is_handshake_done(base).is_ok()
    };
    let st = state(base, key)?;
    st.bev = Some(bev);
    #[cfg(feature = "openssl")]
    {
        st.secured = secured;
    }
    st.connects += 1;
    connected(base, key);
    Ok(())
}

fn connect_unix(path: &std::path::Path) -> io::Result<Socket> {
    let sock = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
    sock.connect(&SockAddr::unix(path)?)?;
    Ok(sock)
}

/// The resolver's answer for a connection with a local address or port: bind, then connect
/// to the first address of the local address's family (any family without an address).
fn connect_bound(
    base: &mut EventBase,
    key: Key,
    attempt: u64,
    bev: BufferEvent,
    local: (Option<IpAddr>, u16),
    r: io::Result<Vec<SocketAddr>>,
) {
    match get(base, key) {
        Some(st) if st.attempt == attempt && st.bev == Some(bev) => {}
        _ => return,
    }
    let addr = match r {
        Ok(addrs) => addrs
            .into_iter()
            .find(|a| local.0.is_none_or(|l| a.is_ipv4() == l.is_ipv4())),
        Err(e) => {
            connect_failed(base, key, ClientError::Connect(Arc::new(e)));
            return;
        }
    };
    let Some(addr) = addr else {
        let e = io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address of the local address's family",
        );
        connect_failed(base, key, ClientError::Connect(Arc::new(e)));
        return;
    };
    let r = (|| -> io::Result<()> {
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            None,
        )?;
        let ip = local.0.unwrap_or(if addr.is_ipv4() {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        });
        sock.bind(&SocketAddr::new(ip, local.1).into())?;
        bev.setfd(base, sock.into())?;
        bev.connect(base, addr)
    })();
    if let Err(e) = r {
        connect_failed(base, key, ClientError::Connect(Arc::new(e)));
    }
}

fn on_connect_timeout(base: &mut EventBase, key: Key) {
    match get(base, key) {
        Some(st) if st.phase == Phase::Connecting => {}
        _ => return,
    }
    connect_failed(base, key, ClientError::Timeout(TimeoutKind::Connect));
}

/// The socket is connected: for HTTPS, TLS starts over it (the connection is connected
/// once the handshake is done); otherwise the connection is connected.
fn transport_up(base: &mut EventBase, key: Key) {
    #[cfg(feature = "openssl")]
    {
        let Some(st) = get(base, key) else { return };
        if let (Some(cfg), false, Some(plain)) = (st.tls.clone(), st.secured, st.bev) {
            let host = match &st.target {
                Target::Tcp { host, .. } => host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host)
                    .to_owned(),
                Target::Unix(_) => "localhost".to_owned(),
            };
            let write_timeout = st.cfg.write_timeout;
            match super::tls::wrap(base, &cfg, &host, plain) {
                Ok(bev) => {
                    let Some(st) = get(base, key) else {
                        let _ = bev.free(base);
                        return;
                    };
                    // The TLS bufferevent owns the socket's now.
                    st.bev = Some(bev);
                    st.secured = true;
                    if let Err(e) = hook(base, key, bev, write_timeout) {
                        connect_failed(base, key, ClientError::Connect(Arc::new(e)));
                    }
                }
                Err(e) => connect_failed(base, key, ClientError::Tls(Arc::new(e))),
            }
            return;
        }
    }
    connected(base, key);
}

fn connected(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    st.phase = Phase::Connected;
    st.reused = false;
    st.tunnel = false;
    let timer = st.connect_timer;
    let bev = st.bev;
    let _ = base.del(timer);
    if let Some(bev) = bev {
        let _ = bev.enable(base, What::READ | What::WRITE);
    }
    send_ready(base, key);
}

/// Connecting failed: requests with retries left wait for the backoff, the others fail.
fn connect_failed(base: &mut EventBase, key: Key, err: ClientError) {
    let Some(st) = get(base, key) else { return };
    let timer = st.connect_timer;
    let bev = st.bev.take();
    st.phase = Phase::Closed;
    let _ = base.del(timer);
    if let Some(bev) = bev {
        let _ = bev.free(base);
    }
    let Some(st) = get(base, key) else { return };
    let mut notes = Vec::new();
    let mut kept = VecDeque::new();
    // Nothing was sent, so every request may be retried, idempotent or not.
    for mut r in st.in_flight.drain(..).chain(st.queue.drain(..)) {
        if r.retries_left > 0 {
            r.retries_left -= 1;
            kept.push_back(r);
        } else if let Some(cb) = r.on_complete.take() {
            notes.push(Notify::Complete(cb, Err(err.clone())));
        }
    }
    st.queue = kept;
    if !st.queue.is_empty() {
        schedule_retry(base, key);
    }
    run_notes(base, key, notes);
}

fn schedule_retry(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    st.failures = st.failures.saturating_add(1);
    let shift = (st.failures - 1).min(20);
    let delay = st
        .cfg
        .initial_retry
        .checked_mul(1 << shift)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    st.retry_armed = true;
    let timer = st.retry_timer;
    let _ = base.add(timer, Some(delay));
}

/// Writes as many queued requests as the pipelining rules allow.
fn send_ready(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    if st.phase != Phase::Connected {
        return;
    }
    let Some(bev) = st.bev else { return };
    let mut out = Vec::new();
    while let Some(next) = st.queue.front() {
        let can = match st.in_flight.back() {
            None => true,
            // RFC 9112 §9.3.2: pipeline only idempotent requests, never after a CONNECT.
            Some(last) => {
                st.in_flight.len() < st.cfg.max_in_flight
                    && last.idempotent
                    && next.idempotent
                    && last.method != Method::Connect
                    && next.method != Method::Connect
            }
        };
        if !can {
            break;
        }
        let req = st.queue.pop_front().expect("front exists");
        out.extend_from_slice(&req.wire);
        st.in_flight.push_back(req);
    }
    if out.is_empty() {
        return;
    }
    if let Err(e) = bev.write(base, &out) {
        conn_failed(base, key, ClientError::BufferError(Arc::new(e)));
        return;
    }
    update_timeouts(base, key);
    pump(base, key);
}

/// The read timeout runs only while a response is awaited and reading is not paused.
fn update_timeouts(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    let Some(bev) = st.bev else { return };
    if st.phase != Phase::Connected {
        return;
    }
    let read = (!st.in_flight.is_empty() && !st.paused).then_some(st.cfg.read_timeout);
    let write = Some(st.cfg.write_timeout);
    let _ = bev.set_timeouts(base, read, write);
}

// ---------------------------------------------------------------------------------------
// bufferevent callbacks

fn on_bev_event(base: &mut EventBase, key: Key, bev: BufferEvent, ev: BevEvent) {
    let Some(st) = get(base, key) else { return };
    if st.bev != Some(bev) {
        return;
    }
    let (phase, secured) = (st.phase, st.secured());
    if ev.what.contains(BevFlags::CONNECTED) {
        if phase == Phase::Connecting {
            transport_up(base, key);
        }
        return;
    }
    if phase == Phase::Connecting {
        let err = if ev.what.contains(BevFlags::TIMEOUT) {
            ClientError::Timeout(TimeoutKind::Connect)
        } else if secured {
            tls_handshake_error(base, bev)
        } else {
            let e = match (ev.io_error(), bev.dns_error(base).ok().flatten()) {
                (_, Some(dns)) => io::Error::new(io::ErrorKind::NotFound, dns),
                (Some(e), None) => e,
                (None, None) => io::Error::other("connect failed"),
            };
            ClientError::Connect(Arc::new(e))
        };
        connect_failed(base, key, err);
        return;
    }
    // Whatever came with the event is processed first.
    on_readable(base, key);
    match get(base, key) {
        Some(st) if st.bev == Some(bev) => {}
        _ => return,
    }
    if ev.what.contains(BevFlags::TIMEOUT) {
        let kind = if ev.what.contains(BevFlags::WRITING) {
            TimeoutKind::Write
        } else {
            TimeoutKind::Read
        };
        conn_failed(base, key, ClientError::Timeout(kind));
    } else if ev.what.contains(BevFlags::EOF) {
        on_eof(base, key);
    } else if ev.what.contains(BevFlags::ERROR) {
        #[cfg(feature = "openssl")]
        if secured {
            match super::tls::session_error(base, bev) {
                Some(super::tls::SessionError::DirtyClose) => {
                    server_closed(base, key, false);
                    return;
                }
                Some(super::tls::SessionError::Failed(f)) => {
                    conn_failed(base, key, ClientError::Tls(Arc::new(f)));
                    return;
                }
                None => {}
            }
        }
        let e = ev
            .io_error()
            .unwrap_or_else(|| io::Error::other("connection error"));
        conn_failed(base, key, ClientError::BufferError(Arc::new(e)));
    }
}

/// Why the TLS handshake on `bev` failed.
#[cfg(feature = "openssl")]
fn tls_handshake_error(base: &mut EventBase, bev: BufferEvent) -> ClientError {
    ClientError::Tls(Arc::new(super::tls::handshake_failure(base, bev)))
}

#[cfg(not(feature = "openssl"))]
fn tls_handshake_error(_: &mut EventBase, _: BufferEvent) -> ClientError {
    ClientError::Connect(Arc::new(io::Error::other("connect failed")))
}

/// Whether a body delimited by the close may end with a close that is not clean (a TLS
/// connection closed without close_notify).
fn truncation_allowed(st: &ConnState) -> bool {
    #[cfg(feature = "openssl")]
    if st.secured {
        return st
            .tls
            .as_ref()
            .is_none_or(super::TlsConfig::allows_truncation);
    }
    let _ = st;
    true
}

/// The error of a body cut short by a close that is not clean.
fn truncated() -> ClientError {
    #[cfg(feature = "openssl")]
    return ClientError::Tls(Arc::new(super::TlsFailure::Truncated));
    #[cfg(not(feature = "openssl"))]
    return ClientError::Eof;
}

fn on_readable(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    let Some(bev) = st.bev else { return };
    let mut tmp = Buffer::new();
    if bev.read_buffer(base, &mut tmp).is_err() {
        return;
    }
    let Some(st) = get(base, key) else { return };
    if !tmp.is_empty() && st.inbuf.add_buffer(&mut tmp).is_err() {
        conn_failed(
            base,
            key,
            ClientError::BufferError(Arc::new(io::Error::other("input buffer error"))),
        );
        return;
    }
    process(base, key);
}

/// What one step of [`process`] asks for after releasing the state.
enum Step {
    Stop,
    Again,
    Head(u64, ResponseHead),
    Chunk(u64, Vec<u8>),
    Done,
    Fail(ClientError),
    Garbage,
}

/// Parses buffered input into responses, running the head, chunk and completion callbacks.
fn process(base: &mut EventBase, key: Key) {
    // Bounded: every turn either consumes input, completes a request, or stops.
    loop {
        let step = {
            let Some(st) = get(base, key) else { return };
            if st.paused || st.phase != Phase::Connected {
                return;
            }
            let ConnState {
                inbuf,
                reader,
                in_flight,
                cfg,
                ..
            } = st;
            match in_flight.front_mut() {
                None => {
                    if inbuf.is_empty() {
                        Step::Stop
                    } else {
                        Step::Garbage
                    }
                }
                Some(front) => match reader {
                    None => {
                        *reader =
                            Some(Reader::Head(ResponseParser::new(cfg.limits, &front.method)));
                        Step::Again
                    }
                    Some(Reader::Head(parser)) => {
                        if inbuf.is_empty() {
                            Step::Stop
                        } else {
                            front.got_bytes = true;
                            let n = inbuf
                                .len()
                                .min(cfg.limits.max_header_bytes.saturating_add(4));
                            match inbuf.pullup(n) {
                                Err(_) => Step::Fail(ClientError::BufferError(Arc::new(
                                    io::Error::other("input buffer error"),
                                ))),
                                Ok(buf) => match parser.parse(buf) {
                                    Ok(Status::Partial) => Step::Stop,
                                    Err(e) => Step::Fail(ClientError::from_head(e)),
                                    Ok(Status::Complete(head, used)) => {
                                        let _ = inbuf.drain(used);
                                        if (100..200).contains(&head.status) && head.status != 101 {
                                            // Interim responses are skipped.
                                            *reader = None;
                                            Step::Again
                                        } else {
                                            *reader = Some(Reader::Body(BodyDecoder::new(
                                                head.body,
                                                &cfg.limits,
                                            )));
                                            Step::Head(front.id, head)
                                        }
                                    }
                                },
                            }
                        }
                    }
                    Some(Reader::Body(dec)) => {
                        if dec.is_done() {
                            Step::Done
                        } else if inbuf.is_empty() {
                            Step::Stop
                        } else {
                            body_step(inbuf, dec, front)
                        }
                    }
                },
            }
        };
        match step {
            Step::Stop => return,
            Step::Again => {}
            Step::Garbage => {
                // Bytes nobody asked for: the server is confused; drop the connection.
                let notes = close_socket(base, key);
                run_notes(base, key, notes);
                kick(base, key);
                return;
            }
            Step::Fail(e) => {
                fail_front(base, key, e);
                return;
            }
            Step::Head(id, head) => {
                let handle = RequestHandle {
                    conn: Connection { key },
                    id,
                };
                let cb = get(base, key)
                    .and_then(|st| st.in_flight.front_mut())
                    .and_then(|r| r.on_head.take());
                if let Some(mut cb) = cb {
                    cb(base, handle, &head);
                    if let Some(r) = front_with(base, key, id) {
                        r.on_head = Some(cb);
                    }
                }
                match front_with(base, key, id) {
                    Some(r) => r.head = Some(head),
                    None => return,
                }
            }
            Step::Chunk(id, data) => {
                let handle = RequestHandle {
                    conn: Connection { key },
                    id,
                };
                let cb = front_with(base, key, id).and_then(|r| r.on_chunk.take());
                if let Some(mut cb) = cb {
                    let flow = cb(base, handle, &data);
                    let Some(r) = front_with(base, key, id) else {
                        return;
                    };
                    r.on_chunk = Some(cb);
                    if flow == Flow::Pause {
                        pause(base, key);
                        return;
                    }
                }
            }
            Step::Done => complete_front(base, key),
        }
    }
}

/// The front in-flight request, if it is still `id`.
fn front_with(base: &mut EventBase, key: Key, id: u64) -> Option<&mut Req> {
    get(base, key)
        .and_then(|st| st.in_flight.front_mut())
        .filter(|r| r.id == id)
}

fn body_step(inbuf: &mut Buffer, dec: &mut BodyDecoder, front: &mut Req) -> Step {
    let first = inbuf.peek(usize::MAX).next().map(<[u8]>::len).unwrap_or(0);
    // A file segment cannot be peeked; input never has one, but pull up to be safe.
    let n = if first == 0 { inbuf.len() } else { first };
    let piece = match inbuf.pullup(n) {
        Ok(p) => p,
        Err(_) => {
            return Step::Fail(ClientError::BufferError(Arc::new(io::Error::other(
                "input buffer error",
            ))));
        }
    };
    let s = match dec.step(piece) {
        Ok(s) => s,
        Err(e) => return Step::Fail(ClientError::from_body(e)),
    };
    let data = &piece[s.data.clone()];
    let chunk = if data.is_empty() {
        None
    } else if front.on_chunk.is_some() {
        Some(data.to_vec())
    } else {
        front.body.extend_from_slice(data);
        None
    };
    let _ = inbuf.drain(s.consumed);
    match chunk {
        Some(c) => Step::Chunk(front.id, c),
        None if s.done => Step::Done,
        None if s.consumed == 0 => Step::Stop,
        None => Step::Again,
    }
}

fn pause(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    st.paused = true;
    if let Some(bev) = st.bev {
        let _ = bev.disable(base, What::READ);
    }
    update_timeouts(base, key);
}

/// The front response is complete: deliver it, and close the socket if the server asked.
fn complete_front(base: &mut EventBase, key: Key) {
    let Some(st) = get(base, key) else { return };
    let Some(mut req) = st.in_flight.pop_front() else {
        return;
    };
    st.reader = None;
    st.failures = 0;
    let Some(head) = req.head.take() else { return };
    let tunnel = req.method == Method::Connect && (200..300).contains(&head.status);
    // After a 101 the connection speaks another protocol: it is not reused. Nor is one
    // whose streamed request body was cut short by an early response.
    let upload_done = req.upload.as_ref().is_none_or(|u| u.done);
    let keep = (head.keep_alive || tunnel) && head.status != 101 && upload_done;
    let mut notes = Vec::new();
    if !keep {
        notes = close_socket(base, key);
    } else {
        st.reused = true;
        st.tunnel |= tunnel;
        update_timeouts(base, key);
    }
    if let Some(cb) = req.on_complete.take() {
        let body = std::mem::take(&mut req.body);
        notes.insert(0, Notify::Complete(cb, Ok(Response { head, body })));
    }
    run_notes(base, key, notes);
    kick(base, key);
}

/// The front request failed in a way that loses the connection's framing.
fn fail_front(base: &mut EventBase, key: Key, err: ClientError) {
    let Some(st) = get(base, key) else { return };
    let req = st.in_flight.pop_front();
    let mut notes = close_socket(base, key);
    if let Some(cb) = req.and_then(|r| r.on_complete) {
        notes.insert(0, Notify::Complete(cb, Err(err)));
    }
    run_notes(base, key, notes);
    kick(base, key);
}

/// The server closed the connection.
fn on_eof(base: &mut EventBase, key: Key) {
    server_closed(base, key, true);
}

/// The server closed the connection, cleanly or not (`clean` is false for a TLS connection
/// closed without close_notify, which may end a body delimited by the close only if the
/// configuration allows truncation).
fn server_closed(base: &mut EventBase, key: Key, clean: bool) {
    let Some(st) = get(base, key) else { return };
    let may_end = clean || truncation_allowed(st);
    if st.in_flight.is_empty() {
        // An idle keep-alive connection closed by the server.
        let notes = close_socket(base, key);
        run_notes(base, key, notes);
        kick(base, key);
        return;
    }
    if let Some(Reader::Body(dec)) = &mut st.reader {
        match dec.finish() {
            Ok(()) if !may_end => fail_front(base, key, truncated()),
            Ok(()) => {
                complete_front(base, key);
                // Whatever was pipelined behind it went back to the queue.
                let notes = close_socket(base, key);
                run_notes(base, key, notes);
                kick(base, key);
            }
            Err(e) => fail_front(base, key, ClientError::from_body(e)),
        }
        return;
    }
    conn_failed(base, key, ClientError::Eof);
}

/// The connection failed (EOF before a response, I/O error, timeout): the front request is
/// retried if it may be, or fails; the requests behind it go back to the queue.
fn conn_failed(base: &mut EventBase, key: Key, err: ClientError) {
    let Some(st) = get(base, key) else { return };
    let front = st.in_flight.pop_front();
    let (reused, tunnel) = (st.reused, st.tunnel);
    let mut notes = close_socket(base, key);
    let mut retry = false;
    if let Some(mut req) = front {
        let stale = reused
            && !tunnel
            && req.idempotent
            && !req.got_bytes
            && !req.stale_retried
            && matches!(err, ClientError::Eof | ClientError::BufferError(_));
        if stale {
            // The server closed a kept-alive connection as the request went out: that
            // says nothing about the request, which is sent again at once, once, on a
            // fresh connection, without using a retry.
            req.stale_retried = true;
            if let Some(st) = get(base, key) {
                st.queue.push_front(req);
            }
        } else if req.idempotent && req.retries_left > 0 && !req.got_bytes && !tunnel {
            req.retries_left -= 1;
            req.got_bytes = false;
            req.head = None;
            req.body.clear();
            if let Some(st) = get(base, key) {
                st.queue.push_front(req);
            }
            retry = true;
        } else if let Some(cb) = req.on_complete.take() {
            notes.insert(0, Notify::Complete(cb, Err(err)));
        }
    }
    if retry {
        schedule_retry(base, key);
    }
    run_notes(base, key, notes);
    kick(base, key);
}

/// Frees the socket; the in-flight requests go back to the front of the queue (in order),
/// to be sent again on the next connection (on a `CONNECT` tunnel they fail with
/// [`ClientError::Eof`] instead). Returns those failures and the close notification, if a
/// connection was open.
fn close_socket(base: &mut EventBase, key: Key) -> Vec<Notify> {
    let Some(st) = get(base, key) else {
        return Vec::new();
    };
    let was_connected = st.phase == Phase::Connected;
    st.phase = Phase::Closed;
    st.reader = None;
    st.paused = false;
    let _ = st.inbuf.clear();
    let mut notes = Vec::new();
    if st.tunnel {
        // Re-sending them would send them to the proxy, not through the tunnel.
        for r in st.in_flight.drain(..) {
            if let Some(cb) = r.on_complete {
                notes.push(Notify::Complete(cb, Err(ClientError::Eof)));
            }
        }
    }
    st.tunnel = false;
    // A streamed body that has started cannot be sent again.
    let (uploads, rest): (VecDeque<Req>, VecDeque<Req>) =
        st.in_flight.drain(..).partition(|r| r.upload.is_some());
    st.in_flight = rest;
    for r in uploads {
        if let Some(cb) = r.on_complete {
            notes.push(Notify::Complete(cb, Err(ClientError::Eof)));
        }
    }
    while let Some(mut r) = st.in_flight.pop_back() {
        r.got_bytes = false;
        r.head = None;
        r.body.clear();
        st.queue.push_front(r);
    }
    let bev = st.bev.take();
    let timer = st.connect_timer;
    let _ = base.del(timer);
    if let Some(bev) = bev {
        let _ = bev.free(base);
    }
    if was_connected {
        notes.push(Notify::Closed);
    }
    notes
}

fn run_notes(base: &mut EventBase, key: Key, notes: Vec<Notify>) {
    for n in notes {
        match n {
            Notify::Complete(cb, r) => cb(base, r),
            Notify::Closed => {
                let cb = get(base, key).and_then(|st| st.closecb.take());
                if let Some(mut cb) = cb {
                    cb(base, Connection { key });
                    if let Some(st) = get(base, key) {
                        if st.closecb.is_none() {
                            st.closecb = Some(cb);
                        }
                    }
                }
            }
        }
    }
}
