//! DNS server ports (libevent's `evdns_server_port`): UDP and TCP sockets
//! whose requests reach a callback as [`ServerRequest`]s, answered with
//! reply builders and [`ServerRequest::respond`].
//!
//! A port lives in the base (an extension), like the resolver. A request
//! owns everything needed to answer it: it can be answered inside the
//! callback or kept and answered later; dropping it without responding
//! sends nothing (`evdns_server_request_drop`).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use oxevent_core::{Event, EventBase, What};

use crate::config::reverse_name;
use crate::record::{CLASS_IN, Question, RData, Rcode, Record, RecordType};
use crate::wire;
use oxevent_bufferevent::slab::{Key, Slab};

/// Header flags a response may set (`evdns_server_request_set_flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerFlags(pub u16);

impl ServerFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// Authoritative answer (`EVDNS_FLAGS_AA`).
    pub const AA: Self = Self(wire::flags::AA);
    /// Recursion available (`EVDNS_FLAGS_RA`; libevent's
    /// `EVDNS_FLAGS_RD` echoes recursion desired, which is always echoed
    /// here).
    pub const RA: Self = Self(wire::flags::RA);
}

impl std::ops::BitOr for ServerFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Which section a record goes to (`EVDNS_ANSWER_SECTION`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Section {
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

type RequestCallback = Box<dyn FnMut(&mut EventBase, ServerRequest)>;

/// A handle to a server port kept in an [`EventBase`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerPort(Key);

struct Client {
    stream: TcpStream,
    read_ev: Option<Event>,
    write_ev: Option<Event>,
    write_armed: bool,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Requests of this client not yet answered or dropped: each holds a
    /// [`Pending`] ticket on it.
    pending: Arc<AtomicU32>,
}

/// A TCP request's hold on its client's count of requests in flight,
/// released when the request is answered, discarded or dropped.
#[derive(Debug)]
struct Pending(Arc<AtomicU32>);

impl Pending {
    fn new(count: &Arc<AtomicU32>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

struct Port {
    udp: Option<(UdpSocket, Event)>,
    tcp: Option<(TcpListener, Event)>,
    clients: Slab<Client>,
    cb: Option<RequestCallback>,
    max_clients: usize,
    idle_timeout: Duration,
    buf: Vec<u8>,
}

#[derive(Default)]
struct Registry {
    ports: Slab<Port>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRegistry")
            .field("ports", &self.ports.len())
            .finish()
    }
}

fn port(base: &mut EventBase, p: ServerPort) -> Option<&mut Port> {
    base.extension::<Registry>().ports.get_mut(p.0)
}

/// Requests in flight at most on one TCP connection.
const MAX_PENDING_PER_CLIENT: u32 = 64;
/// The most bytes buffered for one TCP client's output.
const MAX_CLIENT_OUT: usize = 1 << 20;

/// A request to a server port (libevent's `evdns_server_request`).
///
/// End it with [`respond`](Self::respond) or [`discard`](Self::discard);
/// dropping it is the same as discarding it. A TCP connection has at most
/// 64 requests in flight (past that it is closed); a request stops counting
/// as soon as it is answered, discarded or dropped.
#[derive(Debug)]
pub struct ServerRequest {
    port: ServerPort,
    client: Option<Key>,
    /// Over TCP: the hold on the client's count of requests in flight.
    pending: Option<Pending>,
    peer: SocketAddr,
    max_len: usize,
    parts: wire::ResponseParts,
}

impl ServerPort {
    /// A server port over a bound UDP socket, a listening TCP socket, or
    /// both (`evdns_add_server_port_with_base`). `cb` gets every request.
    /// TCP clients are limited to 128 and closed after 10 s idle by
    /// default (see [`set_tcp_limits`](Self::set_tcp_limits)).
    ///
    /// # Errors
    ///
    /// The OS error making a socket non-blocking or watching it.
    #[doc(alias = "evdns_add_server_port_with_base")]
    pub fn new(
        base: &mut EventBase,
        udp: Option<UdpSocket>,
        tcp: Option<TcpListener>,
        cb: impl FnMut(&mut EventBase, ServerRequest) + 'static,
    ) -> io::Result<Self> {
        if let Some(u) = &udp {
            u.set_nonblocking(true)?;
        }
        if let Some(t) = &tcp {
            t.set_nonblocking(true)?;
        }
        let key = base.extension::<Registry>().ports.insert(Port {
            udp: None,
            tcp: None,
            clients: Slab::default(),
            cb: Some(Box::new(cb)),
            max_clients: 128,
            idle_timeout: Duration::from_secs(10),
            buf: vec![0; 65536],
        });
        let p = Self(key);
        let r = (|| {
            if let Some(u) = udp {
                let ev =
                    base.event_new(u.as_raw_fd(), What::READ | What::PERSIST, move |b, _, _| {
                        on_udp(b, p);
                    })?;
                base.add(ev, None)?;
                if let Some(pt) = port(base, p) {
                    pt.udp = Some((u, ev));
                }
            }
            if let Some(t) = tcp {
                let ev =
                    base.event_new(t.as_raw_fd(), What::READ | What::PERSIST, move |b, _, _| {
                        on_accept(b, p);
                    })?;
                base.add(ev, None)?;
                if let Some(pt) = port(base, p) {
                    pt.tcp = Some((t, ev));
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            p.close(base);
            return Err(e);
        }
        Ok(p)
    }

    /// Sets the most TCP clients at once (past it new connections are
    /// closed at once) and the idle timeout of a TCP client.
    pub fn set_tcp_limits(self, base: &mut EventBase, max_clients: usize, idle: Duration) {
        if let Some(pt) = port(base, self) {
            pt.max_clients = max_clients;
            pt.idle_timeout = idle;
        }
    }

    /// The number of TCP clients connected.
    #[must_use]
    pub fn tcp_clients(self, base: &mut EventBase) -> usize {
        port(base, self).map_or(0, |pt| pt.clients.len())
    }

    /// Closes the port and its TCP clients (`evdns_close_server_port`).
    /// Requests still held can no longer be answered.
    #[doc(alias = "evdns_close_server_port")]
    pub fn close(self, base: &mut EventBase) {
        let Some(mut pt) = base.extension::<Registry>().ports.remove(self.0) else {
            return;
        };
        // Not `fd_closing` for these two: they came from the caller, who
        // may hold duplicates (see its documentation).
        if let Some((_, ev)) = pt.udp.take() {
            let _ = base.free(ev);
        }
        if let Some((_, ev)) = pt.tcp.take() {
            let _ = base.free(ev);
        }
        for c in pt.clients.drain() {
            free_client(base, c);
        }
    }
}

/// Runs the port's callback with `req`, the callback taken out while it
/// runs.
fn deliver(base: &mut EventBase, p: ServerPort, req: ServerRequest) {
    let Some(mut cb) = port(base, p).and_then(|pt| pt.cb.take()) else {
        return;
    };
    cb(base, req);
    if let Some(pt) = port(base, p) {
        if pt.cb.is_none() {
            pt.cb = Some(cb);
        }
    }
}

/// The request parsed from `msg`, or the FORMERR response to send back
/// (nothing for a message that is not a query at all).
fn parse(
    msg: &[u8],
    p: ServerPort,
    client: Option<Key>,
    peer: SocketAddr,
) -> Result<ServerRequest, Option<Vec<u8>>> {
    match wire::parse_request(msg) {
        Ok(rq) => {
            let max_len = if client.is_some() {
                65535
            } else {
                usize::from(rq.edns_payload.unwrap_or(512).max(512))
            };
            Ok(ServerRequest {
                port: p,
                client,
                pending: None,
                peer,
                max_len,
                parts: wire::ResponseParts {
                    id: rq.id,
                    opcode: rq.opcode,
                    flags: rq.flags & wire::flags::RD,
                    rcode: 0,
                    questions: rq.questions,
                    ..Default::default()
                },
            })
        }
        Err(wire::WireError::WrongDirection) => Err(None),
        Err(_) if msg.len() >= wire::HEADER_LEN => {
            // Echo the id with FORMERR and no question.
            let parts = wire::ResponseParts {
                id: u16::from_be_bytes([msg[0], msg[1]]),
                opcode: (msg[2] >> 3) & 0xF,
                rcode: Rcode::FORMERR.0,
                ..Default::default()
            };
            Err(wire::encode_response(&parts, 512).ok())
        }
        Err(_) => Err(None),
    }
}

fn on_udp(base: &mut EventBase, p: ServerPort) {
    for _ in 0..64 {
        let Some(pt) = port(base, p) else { return };
        let Port { udp, buf, .. } = pt;
        let Some((sock, _)) = udp.as_ref() else {
            return;
        };
        let (n, peer) = match sock.recv_from(buf) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => continue,
        };
        match parse(&buf[..n], p, None, peer) {
            Ok(req) => deliver(base, p, req),
            Err(Some(formerr)) => {
                let _ = sock.send_to(&formerr, peer);
            }
            Err(None) => {}
        }
    }
}

fn on_accept(base: &mut EventBase, p: ServerPort) {
    for _ in 0..64 {
        let Some(pt) = port(base, p) else { return };
        let Some((l, _)) = pt.tcp.as_ref() else {
            return;
        };
        let (stream, peer) = match l.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => return,
        };
        if pt.clients.len() >= pt.max_clients || stream.set_nonblocking(true).is_err() {
            continue; // dropped: closed at once
        }
        let idle = pt.idle_timeout;
        let fd = stream.as_raw_fd();
        let key = pt.clients.insert(Client {
            stream,
            read_ev: None,
            write_ev: None,
            write_armed: false,
            inbuf: Vec::new(),
            out: Vec::new(),
            pending: Arc::new(AtomicU32::new(0)),
        });
        let evs = (|| {
            let r = base.event_new(fd, What::READ | What::PERSIST, move |b, _, what| {
                on_client_read(b, p, key, peer, what);
            })?;
            let w = match base.event_new(fd, What::WRITE | What::PERSIST, move |b, _, _| {
                on_client_write(b, p, key);
            }) {
                Ok(w) => w,
                Err(e) => {
                    let _ = base.free(r);
                    return Err(e);
                }
            };
            base.add(r, Some(idle))?;
            Ok::<_, io::Error>((r, w))
        })();
        let Some(pt) = port(base, p) else { return };
        match evs {
            Ok((r, w)) => {
                if let Some(c) = pt.clients.get_mut(key) {
                    c.read_ev = Some(r);
                    c.write_ev = Some(w);
                }
            }
            Err(_) => {
                pt.clients.remove(key);
            }
        }
    }
}

fn close_client(base: &mut EventBase, p: ServerPort, key: Key) {
    let Some(pt) = port(base, p) else { return };
    if let Some(c) = pt.clients.remove(key) {
        free_client(base, c);
    }
}

/// Frees a client's events, then closes its socket, telling the base first
/// ([`EventBase::fd_closing`]: no removal left for the changelist to send
/// on a closed descriptor).
fn free_client(base: &mut EventBase, c: Client) {
    use std::os::fd::AsRawFd;
    for ev in [c.read_ev, c.write_ev].into_iter().flatten() {
        let _ = base.free(ev);
    }
    base.fd_closing(c.stream.as_raw_fd());
    drop(c);
}

fn on_client_read(base: &mut EventBase, p: ServerPort, key: Key, peer: SocketAddr, what: What) {
    if what.contains(What::TIMEOUT) {
        close_client(base, p, key);
        return;
    }
    let Some(pt) = port(base, p) else { return };
    let Port { clients, buf, .. } = pt;
    let Some(c) = clients.get_mut(key) else {
        return;
    };
    let n = match c.stream.read(&mut buf[..16384]) {
        Ok(0) => {
            close_client(base, p, key);
            return;
        }
        Ok(n) => n,
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            return;
        }
        Err(_) => {
            close_client(base, p, key);
            return;
        }
    };
    c.inbuf.extend_from_slice(&buf[..n]);
    let frames = wire::split_tcp_frames(&mut c.inbuf);
    for f in frames {
        let Some(c) = port(base, p).and_then(|pt| pt.clients.get_mut(key)) else {
            return;
        };
        if c.pending.load(Ordering::Relaxed) >= MAX_PENDING_PER_CLIENT {
            close_client(base, p, key);
            return;
        }
        match parse(&f, p, Some(key), peer) {
            Ok(mut req) => {
                req.pending = Some(Pending::new(&c.pending));
                deliver(base, p, req);
            }
            Err(Some(formerr)) => queue_tcp(base, p, key, &formerr),
            Err(None) => {
                close_client(base, p, key);
                return;
            }
        }
    }
}

fn on_client_write(base: &mut EventBase, p: ServerPort, key: Key) {
    let Some(c) = port(base, p).and_then(|pt| pt.clients.get_mut(key)) else {
        return;
    };
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(0) => break,
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                close_client(base, p, key);
                return;
            }
        }
    }
    if c.out.is_empty() && c.write_armed {
        c.write_armed = false;
        if let Some(ev) = c.write_ev {
            let _ = base.del(ev);
        }
    }
}

/// Appends a framed message to a client's output and arms its write.
fn queue_tcp(base: &mut EventBase, p: ServerPort, key: Key, msg: &[u8]) {
    let Some(c) = port(base, p).and_then(|pt| pt.clients.get_mut(key)) else {
        return;
    };
    if c.out.len() + msg.len() > MAX_CLIENT_OUT {
        close_client(base, p, key);
        return;
    }
    c.out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    c.out.extend_from_slice(msg);
    if !c.write_armed {
        if let Some(ev) = c.write_ev {
            c.write_armed = true;
            let _ = base.add(ev, None);
        }
    }
}

impl ServerRequest {
    /// The questions asked.
    #[must_use]
    pub fn questions(&self) -> &[Question] {
        &self.parts.questions
    }

    /// The address the request came from
    /// (`evdns_server_request_get_requesting_addr`).
    #[doc(alias = "evdns_server_request_get_requesting_addr")]
    #[must_use]
    pub fn requesting_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the request came over TCP.
    #[must_use]
    pub fn is_tcp(&self) -> bool {
        self.client.is_some()
    }

    /// The transaction id.
    #[must_use]
    pub fn id(&self) -> u16 {
        self.parts.id
    }

    /// Adds any record (`evdns_server_request_add_reply`).
    #[doc(alias = "evdns_server_request_add_reply")]
    pub fn add_reply(&mut self, section: Section, record: Record) {
        match section {
            Section::Answer => self.parts.answers.push(record),
            Section::Authority => self.parts.authority.push(record),
            Section::Additional => self.parts.additional.push(record),
        }
    }

    /// Adds A records (`evdns_server_request_add_a_reply`).
    #[doc(alias = "evdns_server_request_add_a_reply")]
    pub fn add_a_reply(&mut self, name: &str, addrs: &[Ipv4Addr], ttl: u32) {
        for a in addrs {
            self.add_reply(
                Section::Answer,
                record(name, RecordType::A, ttl, RData::A(*a)),
            );
        }
    }

    /// Adds AAAA records (`evdns_server_request_add_aaaa_reply`).
    #[doc(alias = "evdns_server_request_add_aaaa_reply")]
    pub fn add_aaaa_reply(&mut self, name: &str, addrs: &[Ipv6Addr], ttl: u32) {
        for a in addrs {
            self.add_reply(
                Section::Answer,
                record(name, RecordType::AAAA, ttl, RData::Aaaa(*a)),
            );
        }
    }

    /// Adds a PTR record for an address or a reverse name
    /// (`evdns_server_request_add_ptr_reply`).
    #[doc(alias = "evdns_server_request_add_ptr_reply")]
    pub fn add_ptr_reply(
        &mut self,
        addr: Option<IpAddr>,
        name: Option<&str>,
        hostname: &str,
        ttl: u32,
    ) {
        let owner = match (addr, name) {
            (Some(a), _) => reverse_name(a),
            (None, Some(n)) => n.to_owned(),
            (None, None) => return,
        };
        self.add_reply(
            Section::Answer,
            record(
                &owner,
                RecordType::PTR,
                ttl,
                RData::Ptr(hostname.to_owned()),
            ),
        );
    }

    /// Adds a CNAME record (`evdns_server_request_add_cname_reply`).
    #[doc(alias = "evdns_server_request_add_cname_reply")]
    pub fn add_cname_reply(&mut self, name: &str, cname: &str, ttl: u32) {
        self.add_reply(
            Section::Answer,
            record(name, RecordType::CNAME, ttl, RData::Cname(cname.to_owned())),
        );
    }

    /// Sets header flags of the response (`evdns_server_request_set_flags`).
    #[doc(alias = "evdns_server_request_set_flags")]
    pub fn set_flags(&mut self, flags: ServerFlags) {
        self.parts.flags |= flags.0 & (wire::flags::AA | wire::flags::RA);
    }

    /// Sends the response with `rcode` (`evdns_server_request_respond`).
    /// Over UDP, a response larger than the client allows is sent with no
    /// records and TC set.
    ///
    /// # Errors
    ///
    /// `NotFound` if the port or TCP connection is gone; `InvalidInput` for
    /// an unencodable record; the OS error sending.
    #[doc(alias = "evdns_server_request_respond")]
    pub fn respond(mut self, base: &mut EventBase, rcode: Rcode) -> io::Result<()> {
        self.parts.rcode = rcode.0;
        let msg = wire::encode_response(&self.parts, self.max_len)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let p = self.port;
        match self.client.take() {
            Some(key) => {
                if port(base, p).and_then(|pt| pt.clients.get(key)).is_none() {
                    return Err(io::ErrorKind::NotFound.into());
                }
                // The request's hold on the client's count is released
                // when `self` drops, at the end of this call.
                queue_tcp(base, p, key, &msg);
                Ok(())
            }
            None => {
                let pt = port(base, p).ok_or(io::ErrorKind::NotFound)?;
                let (sock, _) = pt.udp.as_ref().ok_or(io::ErrorKind::NotFound)?;
                sock.send_to(&msg, self.peer).map(|_| ())
            }
        }
    }

    /// Drops the request without answering (`evdns_server_request_drop`).
    /// Dropping a request has the same effect: either way a TCP request
    /// stops counting against its connection's limit of requests in
    /// flight.
    #[doc(alias = "evdns_server_request_drop")]
    pub fn discard(self, base: &mut EventBase) {
        let _ = base;
        drop(self);
    }
}

fn record(name: &str, rtype: RecordType, ttl: u32, data: RData) -> Record {
    Record {
        name: name.to_owned(),
        rtype,
        class: CLASS_IN,
        ttl,
        data,
    }
}
