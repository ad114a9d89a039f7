//! The resolver (libevent's `evdns_base`): nameservers, requests, the UDP
//! socket pool, TCP fallback, timeouts and nameserver health.
//!
//! Every resolver lives in the base (an [`EventBase::extension`]), so each
//! event callback reaches it through `&mut EventBase`; [`DnsBase`] is a
//! generational handle to it. User callbacks run only after every borrow of
//! the resolver has ended, so from inside them the resolver may be used,
//! requests cancelled, or the resolver freed.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use oxevent_core::{Event, EventBase, What};
use socket2::{Domain, Protocol, Socket, Type};

use crate::cache::Cache;
use crate::config::{ConfParts, Hosts, Options, ResolvConf, parse_nameserver, reverse_name};
use crate::error::{Error, Result};
use crate::record::{RData, Record, RecordType};
use crate::rng::Rng;
use crate::wire;
use oxevent_bufferevent::slab::{Key, Slab};

/// What a resolve request calls with its outcome, on the loop's thread.
pub type ResolveCallback = Box<dyn FnOnce(&mut EventBase, Result<Answer>)>;

/// What a request of [`DnsBase::resolve_ref`] calls with its outcome: the
/// answer is lent for the call only (clone it to keep it).
pub type ResolveRefCallback = Box<dyn FnOnce(&mut EventBase, Result<&Answer>)>;

/// A request's callback: given the answer, or lent it.
enum Callback {
    Owned(ResolveCallback),
    Borrowed(ResolveRefCallback),
}

impl Callback {
    /// Runs the callback with an error.
    fn fail(self, base: &mut EventBase, e: Error) {
        match self {
            Self::Owned(cb) => cb(base, Err(e)),
            Self::Borrowed(cb) => cb(base, Err(e)),
        }
    }
}

/// Flags of a resolve request (libevent's `DNS_QUERY_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryFlags(pub u8);

impl QueryFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// Do not apply the search list (`DNS_QUERY_NO_SEARCH`).
    pub const NO_SEARCH: Self = Self(1);
    /// Use TCP for this request (`DNS_QUERY_USEVC`).
    pub const USE_VC: Self = Self(2);

    /// Whether every flag of `other` is set.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for QueryFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A successful answer: the name that was answered (after the search
/// list), the type asked, and the answer section, CNAMEs included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The name whose answer this is.
    pub name: String,
    /// The type asked for.
    pub qtype: RecordType,
    /// The answer section as received (CNAME records, then the records of
    /// the type asked, usually).
    pub records: Vec<Record>,
}

impl Answer {
    /// The addresses of the A or AAAA records.
    #[must_use]
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.records
            .iter()
            .filter_map(|r| match r.data {
                RData::A(a) if self.qtype == RecordType::A => Some(IpAddr::V4(a)),
                RData::Aaaa(a) if self.qtype == RecordType::AAAA => Some(IpAddr::V6(a)),
                _ => None,
            })
            .collect()
    }

    /// The names of the PTR records.
    #[must_use]
    pub fn ptrs(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter_map(|r| match &r.data {
                RData::Ptr(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The CNAME chain, in the order received.
    #[must_use]
    pub fn cnames(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter_map(|r| match &r.data {
                RData::Cname(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The canonical name: the last CNAME target, or the name asked.
    #[must_use]
    pub fn canonical_name(&self) -> &str {
        self.cnames().last().copied().unwrap_or(&self.name)
    }

    /// The smallest TTL of the records of the type asked.
    #[must_use]
    pub fn ttl(&self) -> u32 {
        self.records
            .iter()
            .filter(|r| r.rtype == self.qtype)
            .map(|r| r.ttl)
            .min()
            .unwrap_or(0)
    }
}

/// A handle to a resolver kept in an [`EventBase`] (libevent's
/// `struct evdns_base`). It is `Copy`; a handle to a freed resolver finds
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsBase(Key);

/// A handle to a pending resolve request (libevent's `evdns_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    dns: DnsBase,
    key: Key,
}

/// How [`DnsBase::new`] configures the resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Init {
    /// Empty: no nameserver, no search list, default options.
    #[default]
    Empty,
    /// From `/etc/resolv.conf` and `/etc/hosts`
    /// (`EVDNS_BASE_INITIALIZE_NAMESERVERS`).
    System,
}

/// Where [`Init::System`] reads the system's resolver configuration.
pub(crate) struct SystemFiles<'a> {
    pub(crate) resolv_conf: &'a Path,
    pub(crate) hosts: &'a Path,
}

impl SystemFiles<'static> {
    /// The system's files: `/etc/resolv.conf` and `/etc/hosts`.
    fn system() -> Self {
        Self {
            resolv_conf: Path::new("/etc/resolv.conf"),
            hosts: Path::new("/etc/hosts"),
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    resolvers: Slab<Box<Resolver>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("resolvers", &self.resolvers.len())
            .finish()
    }
}

pub(crate) fn get(base: &mut EventBase, h: DnsBase) -> Option<&mut Resolver> {
    base.extension::<Registry>()
        .resolvers
        .get_mut(h.0)
        .map(|b| &mut **b)
}

fn get_or(base: &mut EventBase, h: DnsBase) -> Result<&mut Resolver> {
    get(base, h).ok_or(Error::Shutdown)
}

/// How a request is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    None,
    Udp { server: u64, sock: u64 },
    Tcp { server: u64 },
}

struct Req {
    qtype: RecordType,
    names: Names,
    name_idx: usize,
    query: Vec<u8>,
    qend: usize,
    id: Option<u16>,
    via: Via,
    /// Transmissions of the current name.
    tx: u8,
    max_tx: u8,
    /// Bumped on every transmission; a timeout entry for an older one is
    /// stale.
    seq: u32,
    tcp: bool,
    pin: Option<u64>,
    probe: bool,
    waiting: bool,
    cb: Option<Callback>,
}

/// The names a request tries in turn: one (the common case: no list to
/// allocate) or the search-list expansion.
enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(v) => v.len(),
        }
    }

    fn at(&self, i: usize) -> &String {
        match self {
            Self::One(n) => n,
            Self::Many(v) => &v[i.min(v.len() - 1)],
        }
    }

    fn at_mut(&mut self, i: usize) -> &mut String {
        match self {
            Self::One(n) => n,
            Self::Many(v) => {
                let last = v.len() - 1;
                &mut v[i.min(last)]
            }
        }
    }
}

struct UdpSock {
    id: u64,
    sock: UdpSocket,
    ev: Event,
    sent: u32,
    /// When it was opened plus [`Options::socket_rotate_interval`]: it is
    /// replaced when picked after that (or after [`Options::socket_rotate`]
    /// queries).
    retire_at: Instant,
    outstanding: u32,
    armed: bool,
    /// How many datagrams the next read asks for (at most [`RECV_BATCH`];
    /// one is read with a plain `recv`): twice the last read's count when
    /// it was full, as many as came when it was short. A client that keeps
    /// up with its server finds about one answer per wakeup, and a
    /// `recvmmsg` of 32 that finds one pays for 32 slots and a second,
    /// failed receive (about 0.4 µs more than a `recv` on this VM); one
    /// that falls behind finds many, and reads them in few calls.
    hint: u8,
}

struct TcpConn {
    stream: TcpStream,
    read_ev: Event,
    write_ev: Event,
    connecting: bool,
    write_armed: bool,
    out: Vec<u8>,
    inbuf: Vec<u8>,
}

struct Server {
    id: u64,
    addr: SocketAddr,
    socks: Vec<UdpSock>,
    retiring: Vec<UdpSock>,
    tcp: Option<TcpConn>,
    down: bool,
    timeouts_in_row: u32,
    probe_timer: Option<Event>,
    probe_delay: Duration,
}

struct Timeout {
    deadline: Instant,
    req: Key,
    seq: u32,
}

/// The state of one resolver.
pub(crate) struct Resolver {
    pub(crate) opts: Options,
    search: Vec<String>,
    pub(crate) hosts: Hosts,
    servers: Vec<Server>,
    next_server: usize,
    suspended: bool,
    rng: Rng,
    reqs: Slab<Req>,
    ids: HashMap<u16, Key, IdHash>,
    waiting: VecDeque<Key>,
    inflight: usize,
    timeouts: VecDeque<Timeout>,
    timer: Option<Event>,
    timer_armed: bool,
    /// Where datagrams are received (a batch of slots) and TCP reads land.
    recv_buf: Vec<u8>,
    /// Name strings of finished requests (and of lent answers), reused.
    names: Vec<String>,
    /// The record list of the last lent answer, reused (with its owner
    /// names) for the next answer read.
    spare: Vec<Record>,
    /// Query buffers of finished requests, reused.
    buffers: Vec<Vec<u8>>,
    next_id: u64,
    pub(crate) cache: Cache,
    pub(crate) gais: Slab<crate::getaddrinfo::Gai>,
}

/// Transaction ids come from a CSPRNG, so they hash as themselves.
#[derive(Clone, Copy, Default)]
struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread the 16 bits over the top too (hashbrown uses the top 7
        // bits as a tag).
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u16(&mut self, v: u16) {
        self.0 = u64::from(v);
    }
}

/// Most datagrams read in one wakeup of a socket (the pool's other ready
/// sockets wait for their turn meanwhile).
const MAX_RECV_PER_WAKEUP: usize = 64;
/// Most read errors (ICMP reports) skipped in one wakeup of a socket.
const MAX_RECV_ERRORS: usize = 4;
/// Most datagrams one `recvmmsg` reads.
const RECV_BATCH: usize = 32;
/// The receive area: [`RECV_BATCH`] slots of the EDNS size advertised (512
/// bytes without EDNS), fewer past 2 KiB; TCP reads land here too.
const RECV_BUF_LEN: usize = 65536;

impl DnsBase {
    /// A new resolver in `base` (`evdns_base_new`).
    ///
    /// # Errors
    ///
    /// With [`Init::System`], an unreadable `/etc/resolv.conf` is not an
    /// error (127.0.0.1 is used, as libevent does); an OS error creating
    /// the timer is.
    #[doc(alias = "evdns_base_new")]
    pub fn new(base: &mut EventBase, init: Init) -> Result<Self> {
        Self::new_from(base, init, &SystemFiles::system())
    }

    /// [`new`](Self::new) with the system files read from `files` (tests
    /// point it at files of their own).
    pub(crate) fn new_from(
        base: &mut EventBase,
        init: Init,
        files: &SystemFiles<'_>,
    ) -> Result<Self> {
        let reg = base.extension::<Registry>();
        let key = reg.resolvers.insert(Box::new(Resolver {
            opts: Options::default(),
            search: Vec::new(),
            hosts: Hosts::default(),
            servers: Vec::new(),
            next_server: 0,
            suspended: false,
            rng: Rng::default(),
            reqs: Slab::default(),
            ids: HashMap::with_hasher(IdHash),
            waiting: VecDeque::new(),
            inflight: 0,
            timeouts: VecDeque::new(),
            timer: None,
            timer_armed: false,
            recv_buf: vec![0; RECV_BUF_LEN],
            names: Vec::new(),
            spare: Vec::new(),
            buffers: Vec::new(),
            next_id: 1,
            cache: Cache::default(),
            gais: Slab::default(),
        }));
        let h = Self(key);
        let timer = base.timer_new(move |base, _, _| on_timer(base, h));
        if let Some(r) = get(base, h) {
            r.timer = Some(timer);
        }
        if init == Init::System {
            let conf = ResolvConf::load(files.resolv_conf).unwrap_or_default();
            h.apply_resolv_conf_from(base, &conf, ConfParts::ALL, files.hosts)?;
            if h.count_nameservers(base) == 0 {
                h.nameserver_sockaddr_add(base, SocketAddr::from(([127, 0, 0, 1], 53)))?;
            }
        }
        Ok(h)
    }

    /// Frees the resolver (`evdns_base_free`). With `fail_requests`, every
    /// pending request's callback runs with [`Error::Shutdown`]; otherwise
    /// they are dropped without a call.
    #[doc(alias = "evdns_base_free")]
    pub fn free(self, base: &mut EventBase, fail_requests: bool) {
        let Some(mut r) = base.extension::<Registry>().resolvers.remove(self.0) else {
            return;
        };
        if let Some(t) = r.timer.take() {
            let _ = base.free(t);
        }
        for s in r.servers.drain(..) {
            release_server(base, s);
        }
        let gais = r.gais.drain();
        let reqs = r.reqs.drain();
        drop(r);
        if fail_requests {
            for g in gais {
                g.fail(base, Error::Shutdown);
            }
            for q in reqs {
                if let Some(cb) = q.cb {
                    cb.fail(base, Error::Shutdown);
                }
            }
        }
    }

    /// Whether the resolver still exists.
    #[must_use]
    pub fn is_valid(self, base: &mut EventBase) -> bool {
        get(base, self).is_some()
    }

    /// Applies a parsed resolv.conf: the parts chosen of its nameservers,
    /// search list and options.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] for a freed resolver; an OS error creating a
    /// nameserver's sockets.
    pub fn apply_resolv_conf(
        self,
        base: &mut EventBase,
        conf: &ResolvConf,
        parts: ConfParts,
    ) -> Result<()> {
        self.apply_resolv_conf_from(base, conf, parts, SystemFiles::system().hosts)
    }

    /// [`apply_resolv_conf`](Self::apply_resolv_conf) with the hosts file
    /// read from `hosts_path`.
    fn apply_resolv_conf_from(
        self,
        base: &mut EventBase,
        conf: &ResolvConf,
        parts: ConfParts,
        hosts_path: &Path,
    ) -> Result<()> {
        let r = get_or(base, self)?;
        if parts.contains(ConfParts::SEARCH) {
            r.search.clone_from(&conf.search);
        }
        if parts.contains(ConfParts::MISC) {
            for (k, v) in &conf.options {
                // Unknown resolv.conf options are ignored, as the C library does.
                let _ = r.opts.set(k, v);
            }
        }
        if parts.contains(ConfParts::HOSTSFILE) {
            if let Ok(h) = Hosts::load(hosts_path) {
                r.hosts = h;
            }
        }
        if parts.contains(ConfParts::NAMESERVERS) {
            for a in &conf.nameservers {
                self.nameserver_sockaddr_add(base, *a)?;
            }
        }
        Ok(())
    }

    /// Reads a resolv.conf file and applies the parts chosen
    /// (`evdns_base_resolv_conf_parse`).
    ///
    /// # Errors
    ///
    /// The I/O error reading the file; as [`apply_resolv_conf`](Self::apply_resolv_conf).
    #[doc(alias = "evdns_base_resolv_conf_parse")]
    pub fn resolv_conf_parse(
        self,
        base: &mut EventBase,
        parts: ConfParts,
        path: &Path,
    ) -> Result<()> {
        let conf = ResolvConf::load(path)?;
        self.apply_resolv_conf(base, &conf, parts)
    }

    /// Adds a nameserver (`evdns_base_nameserver_sockaddr_add`). Adding one
    /// already present does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] for a freed resolver.
    #[doc(alias = "evdns_base_nameserver_sockaddr_add")]
    #[doc(alias = "evdns_base_nameserver_add")]
    pub fn nameserver_sockaddr_add(self, base: &mut EventBase, addr: SocketAddr) -> Result<()> {
        let r = get_or(base, self)?;
        if r.servers.iter().any(|s| s.addr == addr) {
            return Ok(());
        }
        let id = r.next_id;
        r.next_id += 1;
        let delay = r.opts.initial_probe_timeout;
        r.servers.push(Server {
            id,
            addr,
            socks: Vec::new(),
            retiring: Vec::new(),
            tcp: None,
            down: false,
            timeouts_in_row: 0,
            probe_timer: None,
            probe_delay: delay,
        });
        Ok(())
    }

    /// Adds a nameserver given as text: an IP (port 53), `ip:port` or
    /// `[ip6]:port` (`evdns_base_nameserver_ip_add`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unparseable address.
    #[doc(alias = "evdns_base_nameserver_ip_add")]
    pub fn nameserver_ip_add(self, base: &mut EventBase, addr: &str) -> Result<()> {
        let a = parse_nameserver(addr)?;
        self.nameserver_sockaddr_add(base, a)
    }

    /// The number of nameservers (`evdns_base_count_nameservers`).
    #[doc(alias = "evdns_base_count_nameservers")]
    #[must_use]
    pub fn count_nameservers(self, base: &mut EventBase) -> usize {
        get(base, self).map_or(0, |r| r.servers.len())
    }

    /// The nameservers and whether each is up.
    #[must_use]
    pub fn nameservers(self, base: &mut EventBase) -> Vec<(SocketAddr, bool)> {
        get(base, self).map_or_else(Vec::new, |r| {
            r.servers.iter().map(|s| (s.addr, !s.down)).collect()
        })
    }

    /// Removes every nameserver and holds new requests until
    /// [`resume`](Self::resume) (`evdns_base_clear_nameservers_and_suspend`).
    /// Requests on the wire go back to waiting and are sent again on resume.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] for a freed resolver.
    #[doc(alias = "evdns_base_clear_nameservers_and_suspend")]
    pub fn clear_nameservers_and_suspend(self, base: &mut EventBase) -> Result<()> {
        let r = get_or(base, self)?;
        r.suspended = true;
        let servers: Vec<Server> = r.servers.drain(..).collect();
        // Every request on the wire goes back to the front of the queue.
        let mut back = Vec::new();
        for (k, q) in r.reqs.iter() {
            if !q.waiting {
                back.push(k);
            }
        }
        for k in back {
            if let Some(id) = r.reqs.get_mut(k).and_then(|q| {
                q.waiting = true;
                q.via = Via::None;
                q.seq = q.seq.wrapping_add(1);
                q.id.take()
            }) {
                r.ids.remove(&id);
            }
            r.inflight = r.inflight.saturating_sub(1);
            r.waiting.push_front(k);
        }
        for s in servers {
            release_server(base, s);
        }
        Ok(())
    }

    /// Resumes after [`clear_nameservers_and_suspend`](Self::clear_nameservers_and_suspend)
    /// (`evdns_base_resume`): the waiting requests are sent.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] for a freed resolver.
    #[doc(alias = "evdns_base_resume")]
    pub fn resume(self, base: &mut EventBase) -> Result<()> {
        get_or(base, self)?.suspended = false;
        start_waiting(base, self);
        Ok(())
    }

    /// Appends a domain to the search list (`evdns_base_search_add`).
    #[doc(alias = "evdns_base_search_add")]
    pub fn search_add(self, base: &mut EventBase, domain: &str) {
        if let Some(r) = get(base, self) {
            if r.search.len() < 32 {
                r.search.push(domain.trim_end_matches('.').to_owned());
            }
        }
    }

    /// Empties the search list (`evdns_base_search_clear`).
    #[doc(alias = "evdns_base_search_clear")]
    pub fn search_clear(self, base: &mut EventBase) {
        if let Some(r) = get(base, self) {
            r.search.clear();
        }
    }

    /// Sets `ndots` (`evdns_base_search_ndots_set`).
    #[doc(alias = "evdns_base_search_ndots_set")]
    pub fn search_ndots_set(self, base: &mut EventBase, ndots: u8) {
        if let Some(r) = get(base, self) {
            r.opts.ndots = ndots;
        }
    }

    /// Sets one option by its libevent name (`evdns_base_set_option`; see
    /// [`Options::set`]).
    ///
    /// # Errors
    ///
    /// An unknown option or a bad value; [`Error::Shutdown`].
    #[doc(alias = "evdns_base_set_option")]
    pub fn set_option(self, base: &mut EventBase, option: &str, value: &str) -> Result<()> {
        get_or(base, self)?.opts.set(option, value)
    }

    /// The current options.
    #[must_use]
    pub fn options(self, base: &mut EventBase) -> Option<Options> {
        get(base, self).map(|r| r.opts.clone())
    }

    /// Replaces every option.
    pub fn set_options(self, base: &mut EventBase, opts: Options) {
        if let Some(r) = get(base, self) {
            r.opts = opts;
        }
        start_waiting(base, self);
    }

    /// Loads a hosts file, `/etc/hosts` if `None` (`evdns_base_load_hosts`);
    /// its entries are added to the ones present.
    ///
    /// # Errors
    ///
    /// The I/O error reading it; [`Error::Shutdown`].
    #[doc(alias = "evdns_base_load_hosts")]
    pub fn load_hosts(self, base: &mut EventBase, path: Option<&Path>) -> Result<()> {
        let text = std::fs::read_to_string(path.unwrap_or(Path::new("/etc/hosts")))?;
        get_or(base, self)?.hosts.add_text(&text);
        Ok(())
    }

    /// Adds one hosts entry.
    pub fn hosts_add(self, base: &mut EventBase, name: &str, ip: IpAddr) {
        if let Some(r) = get(base, self) {
            r.hosts.add(name, ip);
        }
    }

    /// Resolves the A records of `name` (`evdns_base_resolve_ipv4`). The
    /// callback runs later, from the loop, exactly once (with
    /// [`Error::Cancelled`] if cancelled, [`Error::Shutdown`] if the
    /// resolver is freed with `fail_requests`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::NoServers`] (and no callback).
    #[doc(alias = "evdns_base_resolve_ipv4")]
    pub fn resolve_ipv4(
        self,
        base: &mut EventBase,
        name: &str,
        flags: QueryFlags,
        cb: impl FnOnce(&mut EventBase, Result<Answer>) + 'static,
    ) -> Result<Request> {
        self.resolve(base, name, RecordType::A, flags, cb)
    }

    /// Resolves the AAAA records of `name` (`evdns_base_resolve_ipv6`).
    ///
    /// # Errors
    ///
    /// As [`resolve_ipv4`](Self::resolve_ipv4).
    #[doc(alias = "evdns_base_resolve_ipv6")]
    pub fn resolve_ipv6(
        self,
        base: &mut EventBase,
        name: &str,
        flags: QueryFlags,
        cb: impl FnOnce(&mut EventBase, Result<Answer>) + 'static,
    ) -> Result<Request> {
        self.resolve(base, name, RecordType::AAAA, flags, cb)
    }

    /// Resolves the PTR record of an IPv4 address
    /// (`evdns_base_resolve_reverse`).
    ///
    /// # Errors
    ///
    /// As [`resolve_ipv4`](Self::resolve_ipv4).
    #[doc(alias = "evdns_base_resolve_reverse")]
    pub fn resolve_reverse(
        self,
        base: &mut EventBase,
        ip: Ipv4Addr,
        flags: QueryFlags,
        cb: impl FnOnce(&mut EventBase, Result<Answer>) + 'static,
    ) -> Result<Request> {
        self.resolve(
            base,
            &reverse_name(IpAddr::V4(ip)),
            RecordType::PTR,
            flags | QueryFlags::NO_SEARCH,
            cb,
        )
    }

    /// Resolves the PTR record of an IPv6 address
    /// (`evdns_base_resolve_reverse_ipv6`).
    ///
    /// # Errors
    ///
    /// As [`resolve_ipv4`](Self::resolve_ipv4).
    #[doc(alias = "evdns_base_resolve_reverse_ipv6")]
    pub fn resolve_reverse_ipv6(
        self,
        base: &mut EventBase,
        ip: Ipv6Addr,
        flags: QueryFlags,
        cb: impl FnOnce(&mut EventBase, Result<Answer>) + 'static,
    ) -> Result<Request> {
        self.resolve(
            base,
            &reverse_name(IpAddr::V6(ip)),
            RecordType::PTR,
            flags | QueryFlags::NO_SEARCH,
            cb,
        )
    }

    /// Resolves records of any type: the generic form of the calls above.
    /// A NOERROR answer with no record of `qtype` is [`Error::NoData`]; an
    /// NXDOMAIN or NODATA moves on to the next search-list candidate.
    ///
    /// # Errors
    ///
    /// As [`resolve_ipv4`](Self::resolve_ipv4).
    pub fn resolve(
        self,
        base: &mut EventBase,
        name: &str,
        qtype: RecordType,
        flags: QueryFlags,
        cb: impl FnOnce(&mut EventBase, Result<Answer>) + 'static,
    ) -> Result<Request> {
        self.resolve_cb(base, name, qtype, flags, Callback::Owned(Box::new(cb)))
    }

    /// [`resolve`](Self::resolve) with the answer lent to the callback
    /// instead of given: like libevent's callbacks, whose addresses are
    /// valid only during the call. The resolver reuses the answer's
    /// allocations for the next one, so a lookup allocates nothing for its
    /// answer; `answer.clone()` gives the owned form.
    ///
    /// ```no_run
    /// # use oxevent_core::EventBase;
    /// # use oxevent_dns::{DnsBase, Init, QueryFlags, RecordType};
    /// # let mut base = EventBase::new().unwrap();
    /// # let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
    /// dns.resolve_ref(&mut base, "example.test", RecordType::A, QueryFlags::NONE, |_, res| {
    ///     if let Ok(answer) = res {
    ///         println!("{:?}", answer.addrs());
    ///     }
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`resolve_ipv4`](Self::resolve_ipv4).
    pub fn resolve_ref(
        self,
        base: &mut EventBase,
        name: &str,
        qtype: RecordType,
        flags: QueryFlags,
        cb: impl FnOnce(&mut EventBase, Result<&Answer>) + 'static,
    ) -> Result<Request> {
        self.resolve_cb(base, name, qtype, flags, Callback::Borrowed(Box::new(cb)))
    }

    fn resolve_cb(
        self,
        base: &mut EventBase,
        name: &str,
        qtype: RecordType,
        flags: QueryFlags,
        cb: Callback,
    ) -> Result<Request> {
        let r = get_or(base, self)?;
        let names = candidates(
            name,
            &r.search,
            r.opts.ndots,
            flags.contains(QueryFlags::NO_SEARCH),
            &mut r.names,
        )?;
        let max_tx = r.opts.attempts.max(1);
        // One look-up of the resolver in the base for the whole request.
        let (key, direct) = enqueue(
            r,
            names,
            qtype,
            flags.contains(QueryFlags::USE_VC),
            None,
            max_tx,
            cb,
        )?;
        Ok(self.launch(base, key, direct))
    }

    #[allow(clippy::too_many_arguments)] // internal: one call site per kind of request
    fn submit(
        self,
        base: &mut EventBase,
        names: Names,
        qtype: RecordType,
        tcp: bool,
        pin: Option<u64>,
        max_tx: u8,
        cb: ResolveCallback,
    ) -> Result<Request> {
        let r = get_or(base, self)?;
        let (key, direct) = enqueue(r, names, qtype, tcp, pin, max_tx, Callback::Owned(cb))?;
        Ok(self.launch(base, key, direct))
    }

    /// Sends a request [`enqueue`] prepared for sending at once, or starts
    /// waiting ones.
    fn launch(self, base: &mut EventBase, key: Key, direct: bool) -> Request {
        if direct {
            transmit(base, self, key);
        } else {
            start_waiting(base, self);
        }
        Request { dns: self, key }
    }

    /// Sends one probe to a down nameserver.
    fn probe(self, base: &mut EventBase, server: u64) {
        let h = self;
        let r = self.submit(
            base,
            Names::One(".".to_owned()),
            RecordType::NS,
            false,
            Some(server),
            1,
            Box::new(move |base, res| {
                let Some(r) = get(base, h) else { return };
                let Some(s) = r.servers.iter_mut().find(|s| s.id == server) else {
                    return;
                };
                match res {
                    // Any answer at all, even an error rcode, shows it is up.
                    Err(Error::Timeout | Error::Io(_) | Error::Cancelled | Error::Shutdown) => {
                        let f = r.opts.probe_backoff_factor;
                        let max = r.opts.max_probe_timeout;
                        s.probe_delay = (s.probe_delay * f).min(max);
                        let (t, d) = (s.probe_timer, s.probe_delay);
                        if let Some(t) = t {
                            let _ = base.add(t, Some(d));
                        }
                    }
                    _ => {
                        tracing_up(s.addr);
                        s.down = false;
                        s.timeouts_in_row = 0;
                        s.probe_delay = r.opts.initial_probe_timeout;
                    }
                }
            }),
        );
        if r.is_err() {
            // No way to send: try again after the next delay.
            if let Some(s) = get(base, self).and_then(|r| r.servers.iter().find(|s| s.id == server))
            {
                let (t, d) = (s.probe_timer, s.probe_delay);
                if let Some(t) = t {
                    let _ = base.add(t, Some(d));
                }
            }
        }
    }
}

fn tracing_up(_addr: SocketAddr) {}

impl Request {
    /// Cancels the request (`evdns_cancel_request`): its callback runs now
    /// with [`Error::Cancelled`]. Cancelling a finished request does
    /// nothing.
    #[doc(alias = "evdns_cancel_request")]
    pub fn cancel(self, base: &mut EventBase) {
        finish(base, self.dns, self.key, Err(Error::Cancelled));
    }

    /// Whether the request is still pending.
    #[must_use]
    pub fn is_pending(self, base: &mut EventBase) -> bool {
        get(base, self.dns).is_some_and(|r| r.reqs.get(self.key).is_some())
    }
}

/// The names to try for `name`, in order (search list and ndots).
fn candidates(
    name: &str,
    search: &[String],
    ndots: u8,
    no_search: bool,
    pool: &mut Vec<String>,
) -> Result<Names> {
    let check = |n: &str| -> Result<()> {
        wire::check_name(n).map_err(|_| Error::InvalidName(n.to_owned()))
    };
    if name.is_empty() {
        return Err(Error::InvalidName(String::new()));
    }
    if (no_search || search.is_empty()) && !name.ends_with('.') {
        // Tried as given: checked once, where it is encoded (or by
        // `enqueue` when it is queued), not here as well (`check_name` and
        // `encode_name` accept the same names).
        let mut n = pool.pop().unwrap_or_default();
        n.push_str(name);
        return Ok(Names::One(n));
    }
    check(name)?;
    if let Some(abs) = name.strip_suffix('.') {
        return Ok(Names::One(if abs.is_empty() {
            ".".into()
        } else {
            abs.into()
        }));
    }
    if no_search || search.is_empty() {
        return Ok(Names::One(name.to_owned()));
    }
    let dots = name.bytes().filter(|b| *b == b'.').count();
    let mut out = Vec::with_capacity(search.len() + 1);
    let with: Vec<String> = search
        .iter()
        .map(|d| format!("{name}.{d}"))
        .filter(|n| check(n).is_ok())
        .collect();
    if dots >= usize::from(ndots) {
        out.push(name.to_owned());
        out.extend(with);
    } else {
        out.extend(with);
        out.push(name.to_owned());
    }
    Ok(Names::Many(out))
}

fn release_server(base: &mut EventBase, mut s: Server) {
    for u in s.socks.drain(..).chain(s.retiring.drain(..)) {
        close_udp(base, u.ev, u.sock);
    }
    if let Some(c) = s.tcp.take() {
        close_tcp_conn(base, c);
    }
    if let Some(t) = s.probe_timer.take() {
        let _ = base.free(t);
    }
}

/// Adds a request: prepared for sending at once when there is room on
/// the wire (`true`: the caller transmits it), else queued (`false`).
#[allow(clippy::too_many_arguments)] // internal: one call site per kind of request
fn enqueue(
    r: &mut Resolver,
    names: Names,
    qtype: RecordType,
    tcp: bool,
    pin: Option<u64>,
    max_tx: u8,
    cb: Callback,
) -> Result<(Key, bool)> {
    if r.servers.is_empty() && !r.suspended {
        return Err(Error::NoServers);
    }
    if r.reqs.len() >= r.opts.max_pending + r.opts.max_inflight {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            "too many pending dns requests",
        )));
    }
    let tcp = tcp || r.opts.use_vc;
    let key = r.reqs.insert(Req {
        qtype,
        names,
        name_idx: 0,
        query: r.buffers.pop().unwrap_or_else(|| Vec::with_capacity(64)),
        qend: 0,
        id: None,
        via: Via::None,
        tx: 0,
        max_tx,
        seq: 0,
        tcp,
        pin,
        probe: pin.is_some(),
        waiting: true,
        cb: Some(cb),
    });
    if !r.suspended && r.inflight < r.opts.max_inflight && r.waiting.is_empty() {
        // Room on the wire: straight out, no queueing.
        if let Some(q) = r.reqs.get_mut(key) {
            q.waiting = false;
        }
        r.inflight += 1;
        if let Err(e) = prepare_query(r, key) {
            if let Some(id) = r.reqs.remove(key).and_then(|q| q.id) {
                r.ids.remove(&id);
            }
            r.inflight -= 1;
            return Err(e);
        }
        Ok((key, true))
    } else {
        // Sent later: a bad single name is still an error now (search-list
        // names were checked by `candidates`).
        if let Some(Names::One(n)) = r.reqs.get(key).map(|q| &q.names) {
            if wire::check_name(n).is_err() {
                let n = n.clone();
                r.reqs.remove(key);
                return Err(Error::InvalidName(n));
            }
        }
        r.waiting.push_back(key);
        Ok((key, false))
    }
}

/// Starts waiting requests while there is room in flight.
fn start_waiting(base: &mut EventBase, h: DnsBase) {
    loop {
        let Some(r) = get(base, h) else { return };
        if r.suspended || r.inflight >= r.opts.max_inflight {
            return;
        }
        let Some(key) = r.waiting.pop_front() else {
            return;
        };
        let Some(q) = r.reqs.get_mut(key) else {
            continue;
        };
        q.waiting = false;
        r.inflight += 1;
        if let Err(e) = prepare_query(r, key) {
            finish(base, h, key, Err(e));
            continue;
        }
        transmit(base, h, key);
    }
}

/// Encodes the query for the current name with a fresh id.
fn prepare_query(r: &mut Resolver, key: Key) -> Result<()> {
    let Resolver {
        reqs,
        ids,
        rng,
        opts,
        ..
    } = r;
    let Some(q) = reqs.get_mut(key) else {
        return Ok(());
    };
    if let Some(old) = q.id.take() {
        ids.remove(&old);
    }
    // A CSPRNG id that is not in flight already.
    let id = loop {
        let id = rng.u16();
        if !ids.contains_key(&id) {
            break id;
        }
    };
    ids.insert(id, key);
    q.id = Some(id);
    q.tx = 0;
    let name = q.names.at(q.name_idx);
    let edns = if q.tcp { None } else { opts.edns_udp_size };
    q.qend = wire::encode_query(id, name, q.qtype, true, edns, &mut q.query)
        .map_err(|_| Error::InvalidName(name.clone()))?;
    if opts.randomize_case {
        let qend = q.qend;
        wire::randomize_case(&mut q.query, qend, || rng.u64());
    }
    Ok(())
}

/// Picks the nameserver for the next transmission: the pinned one; else
/// the first one up from the rotation point; when every one is down, the
/// next in turn anyway, so requests fail after their attempts instead of
/// hanging (libevent #106).
fn pick_server(r: &mut Resolver, pin: Option<u64>, advance: bool) -> Option<usize> {
    if let Some(p) = pin {
        return r.servers.iter().position(|s| s.id == p);
    }
    let n = r.servers.len();
    if n == 0 {
        return None;
    }
    let start = if r.opts.rotate || advance {
        r.next_server = (r.next_server + 1) % n;
        r.next_server
    } else {
        0
    };
    (0..n)
        .map(|i| (start + i) % n)
        .find(|&i| !r.servers[i].down)
        .or(Some(start))
}

/// Base work left over after a change made inside the resolver.
enum EvAction {
    Del(Event),
    /// A retired socket's last answer is in: its event is freed, then the
    /// socket closed (in that order, so the base never asks the OS about
    /// a closed descriptor, or one already reused by a new socket).
    Free(Event, UdpSocket),
}

fn apply(base: &mut EventBase, a: Option<EvAction>) {
    match a {
        Some(EvAction::Del(ev)) => {
            let _ = base.del(ev);
        }
        Some(EvAction::Free(ev, sock)) => close_udp(base, ev, sock),
        None => {}
    }
}

/// Frees a pool socket's event, then closes the socket, telling the base
/// first ([`EventBase::fd_closing`]): the removal its changelist would
/// send at the next iteration would find the descriptor closed (`EBADF`),
/// or taken by the socket that replaces it (`MOD` failing before `ADD`).
fn close_udp(base: &mut EventBase, ev: Event, sock: UdpSocket) {
    use std::os::fd::AsRawFd;
    let _ = base.free(ev);
    base.fd_closing(sock.as_raw_fd());
    drop(sock);
}

/// [`close_udp`] for the TCP connection to a nameserver.
fn close_tcp_conn(base: &mut EventBase, c: TcpConn) {
    use std::os::fd::AsRawFd;
    let _ = base.free(c.read_ev);
    let _ = base.free(c.write_ev);
    base.fd_closing(c.stream.as_raw_fd());
    drop(c);
}

/// Takes the request off the socket it was sent on; returns what the base
/// must do (disarm an idle socket, free a retired one).
fn detach_r(r: &mut Resolver, key: Key) -> Option<EvAction> {
    let q = r.reqs.get_mut(key)?;
    let via = std::mem::replace(&mut q.via, Via::None);
    let Via::Udp { server, sock } = via else {
        return None;
    };
    let s = r.servers.iter_mut().find(|s| s.id == server)?;
    if let Some(u) = s.socks.iter_mut().find(|u| u.id == sock) {
        u.outstanding = u.outstanding.saturating_sub(1);
        if u.outstanding == 0 && u.armed {
            u.armed = false;
            return Some(EvAction::Del(u.ev));
        }
    } else if let Some(i) = s.retiring.iter().position(|u| u.id == sock) {
        let u = &mut s.retiring[i];
        u.outstanding = u.outstanding.saturating_sub(1);
        if u.outstanding == 0 {
            let u = s.retiring.swap_remove(i);
            return Some(EvAction::Free(u.ev, u.sock));
        }
    }
    None
}

/// Sends on an existing, unworn socket of the pool without touching the
/// base; `None` when the pool must grow or rotate (the slow path).
///
/// The query leaves at once, even from the callback of an answer read in
/// a batch. Holding the queries of a batch until it was handled (to send
/// them with one `sendmmsg`) saved no CPU (on loopback the kernel's cost is
/// per datagram, and `sendmmsg` copies a header per message), held the
/// first answers' queries back behind the last answers' callbacks, and
/// sent the queries in bursts.
fn udp_send_fast(
    r: &mut Resolver,
    si: usize,
    key: Key,
    now: Instant,
) -> Option<io::Result<Option<Event>>> {
    let pool = r.opts.socket_pool.max(1);
    let Resolver {
        servers,
        rng,
        reqs,
        opts,
        ..
    } = r;
    let s = &mut servers[si];
    if s.socks.len() < pool {
        return None;
    }
    let idx = rng.below(s.socks.len() as u32) as usize;
    if worn(&s.socks[idx], opts, now) {
        return None;
    }
    let server = s.id;
    let q = reqs.get_mut(key)?;
    let u = &mut s.socks[idx];
    if let Err(e) = u.sock.send(&q.query) {
        return Some(Err(e));
    }
    u.sent = u.sent.saturating_add(1);
    u.outstanding += 1;
    q.via = Via::Udp { server, sock: u.id };
    if u.armed {
        Some(Ok(None))
    } else {
        u.armed = true;
        Some(Ok(Some(u.ev)))
    }
}

/// Sends (or re-sends) the request's query and arms its timeout.
fn transmit(base: &mut EventBase, h: DnsBase, key: Key) {
    let now = base.now();
    let Some(r) = get(base, h) else { return };
    let act = detach_r(r, key);
    let Some(q) = r.reqs.get(key) else {
        apply(base, act);
        return;
    };
    let (pin, advance, tcp) = (q.pin, q.tx > 0, q.tcp);
    let Some(si) = pick_server(r, pin, advance) else {
        apply(base, act);
        finish(base, h, key, Err(Error::NoServers));
        return;
    };
    if !tcp {
        if let Some(res) = udp_send_fast(r, si, key, now) {
            // The common case: sent on the pool without touching the base,
            // so the bookkeeping needs no second look-up of the resolver.
            let (ok, arm) = match res {
                Ok(arm) => (true, arm),
                Err(_) => (false, None),
            };
            let timer = note_sent(r, key, now, ok);
            apply(base, act);
            if let Some(ev) = arm {
                let _ = base.add(ev, None);
            }
            if let Some((t, d)) = timer {
                let _ = base.add(t, Some(d));
            }
            return;
        }
    }
    apply(base, act);
    let sent = if tcp {
        tcp_send(base, h, si, key)
    } else {
        udp_send(base, h, si, key, now)
    };
    let Some(r) = get(base, h) else { return };
    if let Some((t, d)) = note_sent(r, key, now, sent.is_ok()) {
        let _ = base.add(t, Some(d));
    }
}

/// Counts a transmission of the request and queues its timeout; returns
/// the resolver's timer and its delay when the timer must be armed.
fn note_sent(r: &mut Resolver, key: Key, now: Instant, ok: bool) -> Option<(Event, Duration)> {
    let q = r.reqs.get_mut(key)?;
    q.tx = q.tx.saturating_add(1);
    q.seq = q.seq.wrapping_add(1);
    let seq = q.seq;
    // A failed send (no socket, say) counts as a failed attempt at once,
    // rather than after a whole timeout.
    let deadline = if ok { now + r.opts.timeout } else { now };
    r.timeouts.push_back(Timeout {
        deadline,
        req: key,
        seq,
    });
    if r.timer_armed {
        return None;
    }
    let t = r.timer?;
    r.timer_armed = true;
    let d = r.timeouts.front().map_or(deadline, |f| f.deadline);
    Some((t, d.saturating_duration_since(now)))
}

/// Whether a pool socket is due for replacement by a fresh one on a new
/// random port: after [`Options::socket_rotate`] queries, or once older
/// than [`Options::socket_rotate_interval`], whichever comes first.
fn worn(u: &UdpSock, opts: &Options, now: Instant) -> bool {
    u.sent >= opts.socket_rotate.max(1) || now >= u.retire_at
}

/// A UDP socket bound to a random port and connected to `addr`.
fn new_udp_socket(rng: &mut Rng, addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = Domain::for_address(addr);
    let sock = Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    let any: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let any = if addr.ip().is_loopback() {
        addr.ip()
    } else {
        any
    };
    // A random port above 1024; a few tries, then the kernel's choice.
    let mut bound = false;
    for _ in 0..8 {
        let port = 1025 + rng.below(65535 - 1025) as u16;
        if sock.bind(&SocketAddr::new(any, port).into()).is_ok() {
            bound = true;
            break;
        }
    }
    if !bound {
        sock.bind(&SocketAddr::new(any, 0).into())?;
    }
    sock.connect(&addr.into())?;
    Ok(sock.into())
}

fn udp_send(base: &mut EventBase, h: DnsBase, si: usize, key: Key, now: Instant) -> io::Result<()> {
    let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
    let pool = r.opts.socket_pool.max(1);
    let interval = r.opts.socket_rotate_interval;
    let Resolver {
        servers,
        rng,
        reqs,
        next_id,
        opts,
        ..
    } = r;
    let s = &mut servers[si];
    let (server_id, addr) = (s.id, s.addr);
    // Grow the pool up to its size, then pick a random socket of it.
    let mut fresh = None;
    let idx = if s.socks.len() < pool {
        let sock = new_udp_socket(rng, addr)?;
        let id = *next_id;
        *next_id += 1;
        fresh = Some((id, sock));
        s.socks.len()
    } else {
        rng.below(pool as u32) as usize
    };
    if let Some((id, sock)) = fresh {
        use std::os::fd::AsRawFd;
        let fd = sock.as_raw_fd();
        let ev = base.event_new(fd, What::READ | What::PERSIST, move |base, _, _| {
            on_udp_readable(base, h, server_id, id);
        })?;
        let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
        r.servers[si].socks.push(UdpSock {
            id,
            sock,
            ev,
            sent: 0,
            retire_at: now + interval,
            outstanding: 0,
            armed: false,
            hint: 1,
        });
        return udp_send_on(base, h, si, idx, key);
    }
    // Rotate a worn socket: a fresh one on a new random port takes its
    // place; the old one stays until its last answer is in.
    if worn(&s.socks[idx], opts, now) {
        let sock = new_udp_socket(rng, addr)?;
        let id = *next_id;
        *next_id += 1;
        let _ = reqs;
        use std::os::fd::AsRawFd;
        let fd = sock.as_raw_fd();
        let ev = base.event_new(fd, What::READ | What::PERSIST, move |base, _, _| {
            on_udp_readable(base, h, server_id, id);
        })?;
        let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
        let s = &mut r.servers[si];
        let old = std::mem::replace(
            &mut s.socks[idx],
            UdpSock {
                id,
                sock,
                ev,
                sent: 0,
                retire_at: now + interval,
                outstanding: 0,
                armed: false,
                hint: 1,
            },
        );
        if old.outstanding == 0 {
            close_udp(base, old.ev, old.sock);
        } else {
            get(base, h)
                .ok_or_else(|| io::Error::other("gone"))?
                .servers[si]
                .retiring
                .push(old);
        }
    }
    udp_send_on(base, h, si, idx, key)
}

fn udp_send_on(
    base: &mut EventBase,
    h: DnsBase,
    si: usize,
    idx: usize,
    key: Key,
) -> io::Result<()> {
    let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
    let Resolver { servers, reqs, .. } = r;
    let q = reqs.get_mut(key).ok_or_else(|| io::Error::other("gone"))?;
    let s = &mut servers[si];
    let server = s.id;
    let u = &mut s.socks[idx];
    u.sock.send(&q.query)?;
    u.sent = u.sent.saturating_add(1);
    u.outstanding += 1;
    q.via = Via::Udp { server, sock: u.id };
    if !u.armed {
        u.armed = true;
        let ev = u.ev;
        base.add(ev, None)?;
    }
    Ok(())
}

/// Reads the answers waiting on a pool socket (as many per read as
/// [`UdpSock::hint`] says; more reads only while batches come back full)
/// and handles each in turn: the queries their callbacks issue leave at
/// once, between two answers, as they would with one `recv` per answer.
fn on_udp_readable(base: &mut EventBase, h: DnsBase, server: u64, sock: u64) {
    let (mut read, mut errors) = (0, 0);
    while read < MAX_RECV_PER_WAKEUP && errors < MAX_RECV_ERRORS {
        let Some(r) = get(base, h) else { return };
        let slot = usize::from(r.opts.edns_udp_size.unwrap_or(512)).max(512);
        let max = (RECV_BUF_LEN / slot).clamp(1, RECV_BATCH);
        let Resolver {
            servers, recv_buf, ..
        } = r;
        let Some(s) = servers.iter_mut().find(|s| s.id == server) else {
            return;
        };
        let Some(u) = s
            .socks
            .iter_mut()
            .chain(s.retiring.iter_mut())
            .find(|u| u.id == sock)
        else {
            return;
        };
        // As many as the last read suggests (see `UdpSock::hint`), and no
        // more than the answers it may still get (a stray datagram past
        // them is read by the next call): one answer in flight costs one
        // header, not 32.
        let awaited = (u.outstanding as usize).max(1);
        let count = usize::from(u.hint)
            .clamp(1, max)
            .min(awaited)
            .min(MAX_RECV_PER_WAKEUP - read);
        // The socket is connected to the nameserver: the kernel delivers
        // only datagrams from that address and port, so the source is
        // checked without `recv_from` (the unit test
        // `an_answer_from_another_address_is_ignored` checks a stranger's
        // datagram is ignored).
        let mut lens = [0usize; RECV_BATCH];
        let got = if count == 1 {
            // A plain `recv` (cheaper than a `recvmmsg` of one), one byte
            // longer than the slot so that a longer answer shows (as
            // `MSG_TRUNC` shows it to `recv_batch`).
            u.sock.recv(&mut recv_buf[..=slot]).map(|len| {
                lens[0] = len;
                1
            })
        } else {
            let mut slots: [&mut [u8]; RECV_BATCH] = Default::default();
            for (d, c) in slots
                .iter_mut()
                .zip(recv_buf[..slot * count].chunks_exact_mut(slot))
            {
                *d = c;
            }
            let fd = std::os::fd::AsFd::as_fd(&u.sock);
            oxevent_core::fdio::recv_batch(fd, &mut slots[..count], &mut lens[..count])
        };
        let n = match got {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // ICMP errors (a refused port, reported once per read) and
            // the like: the request's timeout handles them.
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        read += n;
        // A full read asks for twice as many next time, a short one for as
        // many as came.
        u.hint = if n == count {
            (count * 2).min(RECV_BATCH)
        } else {
            n
        } as u8;
        for (i, &len) in lens[..n].iter().enumerate() {
            let Some(r) = get(base, h) else { return };
            let opts_case = r.opts.randomize_case;
            let Resolver {
                recv_buf,
                ids,
                reqs,
                spare,
                ..
            } = r;
            let msg = &recv_buf[i * slot..i * slot + len.min(slot)];
            if msg.len() < wire::HEADER_LEN {
                continue;
            }
            let id = u16::from_be_bytes([msg[0], msg[1]]);
            let Some(&key) = ids.get(&id) else { continue };
            let Some(q) = reqs.get(key) else { continue };
            if q.via != (Via::Udp { server, sock }) {
                continue;
            }
            if !wire::question_matches(msg, &q.query, q.qend, opts_case) {
                continue;
            }
            let parsed = if len > slot {
                // Longer than the size asked for: read as truncated, so it
                // is asked again over TCP.
                Ok(wire::Response {
                    id,
                    flags: wire::flags::TC,
                    rcode: 0,
                    qdcount: 1,
                    answers: Vec::new(),
                })
            } else {
                // Into the records of the last lent answer: no allocation.
                let mut resp = wire::Response {
                    id: 0,
                    flags: 0,
                    rcode: 0,
                    qdcount: 0,
                    answers: std::mem::take(spare),
                };
                let known = Some((q.names.at(q.name_idx).as_str(), q.qend));
                match wire::parse_response_into(msg, known, &mut resp) {
                    Ok(()) => Ok(resp),
                    Err(e) => {
                        *spare = resp.answers;
                        Err(e)
                    }
                }
            };
            handle_response(base, h, key, server, parsed);
        }
        if n < count || count == 1 || count == awaited {
            // Drained (a short batch stops at the first datagram missing),
            // or every answer awaited is in (answers to the queries just
            // sent wake the loop again), or one answer read, as a client
            // that keeps up finds: what may be left is reported again by
            // the next poll (events are level-triggered), at no more cost
            // than a second read here that would usually find nothing.
            return;
        }
        // A full batch: answers piled up (the client fell behind, or was
        // not scheduled for a while); read on, twice as many, so the pile
        // is gone within this wakeup.
    }
}

fn handle_response(
    base: &mut EventBase,
    h: DnsBase,
    key: Key,
    server: u64,
    parsed: std::result::Result<wire::Response, wire::WireError>,
) {
    let Some(r) = get(base, h) else { return };
    // Any answer shows the server is alive.
    let mut cancel_probe = None;
    if let Some(s) = r.servers.iter_mut().find(|s| s.id == server) {
        s.timeouts_in_row = 0;
        if s.down {
            s.down = false;
            s.probe_delay = r.opts.initial_probe_timeout;
            cancel_probe = s.probe_timer;
        }
    }
    let r = if let Some(t) = cancel_probe {
        let _ = base.del(t);
        match get(base, h) {
            Some(r) => r,
            None => return,
        }
    } else {
        r
    };
    let ignore_tc = r.opts.ignore_tc;
    let Some(q) = r.reqs.get_mut(key) else { return };
    let resp = match parsed {
        Ok(resp) => resp,
        Err(w) => {
            finish(base, h, key, Err(Error::Malformed(w)));
            return;
        }
    };
    if resp.truncated() && !q.tcp && !ignore_tc {
        // Truncated: ask again over TCP, same server, same attempt count.
        q.tcp = true;
        q.pin = q.pin.or(Some(server));
        q.tx = q.tx.saturating_sub(1);
        if let Err(e) = prepare_query(r, key) {
            finish(base, h, key, Err(e));
            return;
        }
        transmit(base, h, key);
        return;
    }
    let more_names = q.name_idx + 1 < q.names.len();
    let outcome = match resp.rcode {
        0 => {
            if resp.answers.iter().any(|rec| rec.rtype == q.qtype) {
                let name = std::mem::take(q.names.at_mut(q.name_idx));
                let mut records = resp.answers;
                // Undo the 0x20 case randomisation the server echoed back:
                // owner names read as the name asked (no allocation).
                for rec in &mut records {
                    if rec.name != name && rec.name.eq_ignore_ascii_case(&name) {
                        rec.name.clear();
                        rec.name.push_str(&name);
                    }
                }
                Ok(Answer {
                    name,
                    qtype: q.qtype,
                    records,
                })
            } else {
                Err(Error::NoData)
            }
        }
        rc => Err(Error::from_rcode(rc).unwrap_or(Error::Rcode(rc))),
    };
    match outcome {
        Err(Error::NotExist | Error::NoData) if more_names => {
            q.name_idx += 1;
            if let Err(e) = prepare_query(r, key) {
                finish(base, h, key, Err(e));
                return;
            }
            transmit(base, h, key);
        }
        other => {
            // The resolver is at hand: no second look-up for `finish`.
            let done = finish_in(r, key);
            finish_out(base, h, done, other);
        }
    }
}

/// Ends a request: takes it out of every table, starts waiting ones, then
/// runs its callback.
fn finish(base: &mut EventBase, h: DnsBase, key: Key, res: Result<Answer>) {
    let Some(r) = get(base, h) else { return };
    let done = finish_in(r, key);
    finish_out(base, h, done, res);
}

/// What is left of a finished request once the resolver's tables are
/// updated: base work, whether waiting requests may start, the callback.
type Finished = (Option<EvAction>, bool, Option<Callback>);

/// The resolver's side of [`finish`] (no base work, no callback).
fn finish_in(r: &mut Resolver, key: Key) -> Finished {
    let act = detach_r(r, key);
    let Some(mut q) = r.reqs.remove(key) else {
        return (act, false, None);
    };
    if let Some(id) = q.id {
        r.ids.remove(&id);
    }
    if r.buffers.len() < 256 {
        let mut b = std::mem::take(&mut q.query);
        b.clear();
        r.buffers.push(b);
    }
    if let Names::One(n) = &mut q.names {
        // Given to the answer already, or left (an error): kept if left.
        if n.capacity() > 0 && r.names.len() < 256 {
            let mut n = std::mem::take(n);
            n.clear();
            r.names.push(n);
        }
    }
    if q.waiting {
        r.waiting.retain(|k| *k != key);
    } else {
        r.inflight = r.inflight.saturating_sub(1);
    }
    // Drop the stale timeouts at the front, so the queue stays short.
    while let Some(f) = r.timeouts.front() {
        match r.reqs.get(f.req) {
            Some(q) if q.seq == f.seq => break,
            _ => {
                r.timeouts.pop_front();
            }
        }
    }
    let more = !r.waiting.is_empty() && !r.suspended && r.inflight < r.opts.max_inflight;
    (act, more, q.cb)
}

/// The base's side of [`finish`]: the base work, waiting requests, then
/// the callback, once no borrow of the resolver is left.
fn finish_out(base: &mut EventBase, h: DnsBase, done: Finished, res: Result<Answer>) {
    let (act, more, cb) = done;
    apply(base, act);
    if more {
        start_waiting(base, h);
    }
    match (cb, res) {
        (Some(Callback::Owned(cb)), res) => cb(base, res),
        (Some(Callback::Borrowed(cb)), Ok(answer)) => {
            cb(base, Ok(&answer));
            // Its allocations serve the next answer.
            if let Some(r) = get(base, h) {
                let Answer {
                    mut name, records, ..
                } = answer;
                if r.spare.capacity() < records.capacity() {
                    r.spare = records;
                }
                if r.names.len() < 256 {
                    name.clear();
                    r.names.push(name);
                }
            }
        }
        (Some(Callback::Borrowed(cb)), Err(e)) => cb(base, Err(e)),
        (None, _) => {}
    }
}

fn on_timer(base: &mut EventBase, h: DnsBase) {
    let now = base.now();
    let Some(r) = get(base, h) else { return };
    r.timer_armed = false;
    let mut expired = Vec::new();
    while let Some(f) = r.timeouts.front() {
        if f.deadline > now {
            break;
        }
        let f = r.timeouts.pop_front().expect("front exists");
        if r.reqs
            .get(f.req)
            .is_some_and(|q| q.seq == f.seq && !q.waiting)
        {
            expired.push(f.req);
        }
    }
    for key in expired {
        attempt_timed_out(base, h, key);
    }
    let Some(r) = get(base, h) else { return };
    while let Some(f) = r.timeouts.front() {
        match r.reqs.get(f.req) {
            Some(q) if q.seq == f.seq => break,
            _ => {
                r.timeouts.pop_front();
            }
        }
    }
    if !r.timer_armed {
        if let (Some(f), Some(t)) = (r.timeouts.front(), r.timer) {
            r.timer_armed = true;
            let d = f.deadline.saturating_duration_since(now);
            let _ = base.add(t, Some(d));
        }
    }
}

fn attempt_timed_out(base: &mut EventBase, h: DnsBase, key: Key) {
    let Some(r) = get(base, h) else { return };
    let Some(q) = r.reqs.get(key) else { return };
    let (probe, tx, max_tx) = (q.probe, q.tx, q.max_tx);
    let server = match q.via {
        Via::Udp { server, .. } | Via::Tcp { server } => Some(server),
        Via::None => None,
    };
    if !probe {
        if let Some(sid) = server {
            let max_timeouts = r.opts.max_timeouts;
            let delay = r.opts.initial_probe_timeout;
            if let Some(s) = r.servers.iter_mut().find(|s| s.id == sid) {
                s.timeouts_in_row += 1;
                if !s.down && s.timeouts_in_row >= max_timeouts {
                    s.down = true;
                    s.probe_delay = delay;
                    mark_down(base, h, sid);
                }
            }
        }
    }
    if tx >= max_tx {
        finish(base, h, key, Err(Error::Timeout));
    } else {
        transmit(base, h, key);
    }
}

/// Schedules probes of a server just marked down.
fn mark_down(base: &mut EventBase, h: DnsBase, sid: u64) {
    let Some(r) = get(base, h) else { return };
    let Some(s) = r.servers.iter().find(|s| s.id == sid) else {
        return;
    };
    let delay = s.probe_delay;
    let timer = match s.probe_timer {
        Some(t) => t,
        None => {
            let t = base.timer_new(move |base, _, _| h.probe(base, sid));
            if let Some(s) = get(base, h).and_then(|r| r.servers.iter_mut().find(|s| s.id == sid)) {
                s.probe_timer = Some(t);
            }
            t
        }
    };
    let _ = base.add(timer, Some(delay));
}

// ---- TCP ----

fn tcp_send(base: &mut EventBase, h: DnsBase, si: usize, key: Key) -> io::Result<()> {
    let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
    let idle = r.opts.tcp_idle_timeout;
    let s = &mut r.servers[si];
    let (server, addr) = (s.id, s.addr);
    if s.tcp.is_none() {
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream: TcpStream = sock.into();
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        let read_ev = base.event_new(fd, What::READ | What::PERSIST, move |base, _, what| {
            on_tcp_read(base, h, server, what);
        })?;
        let write_ev = match base.event_new(fd, What::WRITE | What::PERSIST, move |base, _, _| {
            on_tcp_write(base, h, server);
        }) {
            Ok(e) => e,
            Err(e) => {
                let _ = base.free(read_ev);
                return Err(e);
            }
        };
        base.add(read_ev, Some(idle))?;
        let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
        r.servers[si].tcp = Some(TcpConn {
            stream,
            read_ev,
            write_ev,
            connecting: true,
            write_armed: false,
            out: Vec::new(),
            inbuf: Vec::new(),
        });
    }
    let r = get(base, h).ok_or_else(|| io::Error::other("gone"))?;
    let Resolver { servers, reqs, .. } = r;
    let q = reqs.get_mut(key).ok_or_else(|| io::Error::other("gone"))?;
    let c = servers
        .get_mut(si)
        .and_then(|s| s.tcp.as_mut())
        .ok_or_else(|| io::Error::other("no connection"))?;
    let len = u16::try_from(q.query.len()).map_err(|_| io::Error::other("query too long"))?;
    c.out.extend_from_slice(&len.to_be_bytes());
    c.out.extend_from_slice(&q.query);
    q.via = Via::Tcp { server };
    if !c.write_armed {
        c.write_armed = true;
        let ev = c.write_ev;
        base.add(ev, None)?;
    }
    Ok(())
}

fn close_tcp(base: &mut EventBase, h: DnsBase, server: u64) {
    let Some(r) = get(base, h) else { return };
    let Some(s) = r.servers.iter_mut().find(|s| s.id == server) else {
        return;
    };
    if let Some(c) = s.tcp.take() {
        close_tcp_conn(base, c);
    }
}

fn on_tcp_write(base: &mut EventBase, h: DnsBase, server: u64) {
    let Some(r) = get(base, h) else { return };
    let Some(s) = r.servers.iter_mut().find(|s| s.id == server) else {
        return;
    };
    let Some(c) = s.tcp.as_mut() else { return };
    if c.connecting {
        match c.stream.take_error() {
            Ok(None) => c.connecting = false,
            _ => {
                // The requests on it time out and are sent again.
                close_tcp(base, h, server);
                return;
            }
        }
    }
    let mut failed = false;
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(0) => {
                failed = true;
                break;
            }
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if failed {
        close_tcp(base, h, server);
        return;
    }
    if c.out.is_empty() && c.write_armed {
        c.write_armed = false;
        let ev = c.write_ev;
        let _ = base.del(ev);
    }
}

fn on_tcp_read(base: &mut EventBase, h: DnsBase, server: u64, what: What) {
    if what.contains(What::TIMEOUT) {
        // Idle: close. Requests still on it time out and are sent again.
        close_tcp(base, h, server);
        return;
    }
    let Some(r) = get(base, h) else { return };
    let Resolver {
        servers, recv_buf, ..
    } = r;
    let Some(s) = servers.iter_mut().find(|s| s.id == server) else {
        return;
    };
    let Some(c) = s.tcp.as_mut() else { return };
    let n = match c.stream.read(&mut recv_buf[..16384]) {
        Ok(0) => {
            close_tcp(base, h, server);
            return;
        }
        Ok(n) => n,
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            return;
        }
        Err(_) => {
            close_tcp(base, h, server);
            return;
        }
    };
    c.inbuf.extend_from_slice(&recv_buf[..n]);
    let frames = wire::split_tcp_frames(&mut c.inbuf);
    for f in frames {
        let Some(r) = get(base, h) else { return };
        let exact = r.opts.randomize_case;
        if f.len() < wire::HEADER_LEN {
            continue;
        }
        let id = u16::from_be_bytes([f[0], f[1]]);
        let Some(&key) = r.ids.get(&id) else { continue };
        let Some(q) = r.reqs.get(key) else { continue };
        if q.via != (Via::Tcp { server }) || !wire::question_matches(&f, &q.query, q.qend, exact) {
            continue;
        }
        let parsed = wire::parse_response_for(&f, Some((q.names.at(q.name_idx), q.qend)));
        handle_response(base, h, key, server, parsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A loopback UDP socket standing in for a nameserver (reads time out
    /// after 10 s), and its address.
    fn fake_nameserver() -> (UdpSocket, SocketAddr) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let addr = server.local_addr().unwrap();
        (server, addr)
    }

    /// A correct answer (one A record, `ip`) to the query `q`.
    fn answer_to(q: &[u8], ip: [u8; 4]) -> Vec<u8> {
        let mut pos = wire::HEADER_LEN;
        while q[pos] != 0 {
            pos += 1 + usize::from(q[pos]);
        }
        let qend = pos + 1 + 4;
        let mut a = q[..qend].to_vec();
        a[2] |= 0x80;
        a[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
        a.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        a.extend_from_slice(&ip);
        a
    }

    /// The source check rests on the sockets being connected: a datagram
    /// from another port, with the right id and question, is never read.
    #[test]
    fn an_answer_from_another_address_is_ignored() {
        let (server, addr) = fake_nameserver();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            // The forged answer first, then the real one.
            stranger
                .send_to(&answer_to(&buf[..n], [6, 6, 6, 6]), from)
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            server
                .send_to(&answer_to(&buf[..n], [10, 9, 8, 7]), from)
                .unwrap();
        });
        let got = resolve_v4_once(addr, "x.test");
        peer.join().unwrap();
        assert_eq!(got.unwrap(), vec![IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7))]);
    }

    /// A UDP answer longer than the receive slot (512 bytes without EDNS)
    /// is read as truncated: the question is asked again over TCP, whose
    /// answer is the one given.
    #[test]
    fn an_oversized_udp_answer_goes_to_tcp() {
        let (udp, tcp) = udp_and_tcp_on_one_port();
        let addr = udp.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            let mut big = answer_to(&buf[..n], [6, 6, 6, 6]);
            grow_to_80_records(&mut big);
            assert!(big.len() > 1000);
            udp.send_to(&big, from).unwrap();
            answer_one_tcp_query(&tcp);
        });
        let got = resolve_v4_once(addr, "big.test");
        peer.join().unwrap();
        assert_eq!(got.unwrap(), vec![IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7))]);
    }

    /// Answers that pile up on a socket are read in batches that grow
    /// (one `recv`, then `recvmmsg` of 2, 4, 8...: the hint doubles on
    /// each full read), each with the right lookup; an oversized answer
    /// read in a batch (`MSG_TRUNC`) goes to TCP as a lone one does.
    #[test]
    fn piled_up_answers_are_read_in_growing_batches() {
        const N: u8 = 12;
        let (udp, tcp) = udp_and_tcp_on_one_port();
        let addr = udp.local_addr().unwrap();
        let mut base = EventBase::new().unwrap();
        let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
        dns.nameserver_sockaddr_add(&mut base, addr).unwrap();
        dns.set_option(&mut base, "socket-pool:", "1").unwrap();
        dns.set_option(&mut base, "timeout:", "10").unwrap();
        type Got = Vec<(u8, Result<Vec<IpAddr>>)>;
        let got: Rc<RefCell<Got>> = Rc::default();
        for i in 0..N {
            let g = got.clone();
            let name = format!("x{i}.test");
            dns.resolve_ipv4(&mut base, &name, QueryFlags::NO_SEARCH, move |_, r| {
                g.borrow_mut().push((i, r.map(|a| a.addrs())));
            })
            .unwrap();
        }
        // Every query in, then every answer out before the loop runs: the
        // last one oversized (80 records, no TC bit).
        let mut queries = Vec::new();
        for _ in 0..N {
            let mut buf = [0u8; 512];
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            queries.push((buf[..n].to_vec(), from));
        }
        for (k, (q, from)) in queries.iter().enumerate() {
            let mut a = answer_to(q, [10, 0, 0, k as u8]);
            if k + 1 == usize::from(N) {
                grow_to_80_records(&mut a);
            }
            udp.send_to(&a, from).unwrap();
        }
        let last = queries.last().map(|(q, _)| q.clone()).unwrap();
        let peer = std::thread::spawn(move || answer_one_tcp_query(&tcp));
        let start = Instant::now();
        while got.borrow().len() < usize::from(N) && start.elapsed() < Duration::from_secs(10) {
            base.run(oxevent_core::LoopFlags::ONCE).unwrap();
        }
        let q = peer.join().unwrap();
        // The same question as over UDP (its 0x20 case drawn anew).
        assert!(q[wire::HEADER_LEN..].eq_ignore_ascii_case(&last[wire::HEADER_LEN..]));
        let got = got.borrow();
        assert_eq!(got.len(), usize::from(N));
        for (i, r) in got.iter() {
            // The queries left in the order of the calls, so the k-th
            // answer is lookup k's.
            let want = if *i + 1 == N {
                Ipv4Addr::new(10, 9, 8, 7)
            } else {
                Ipv4Addr::new(10, 0, 0, *i)
            };
            assert_eq!(r.as_ref().unwrap(), &vec![IpAddr::V4(want)], "x{i}");
        }
    }

    /// A pool socket is replaced once older than `socket-rotate-interval`,
    /// however few queries it sent, and not before: with one socket and a
    /// 300 ms interval, two lookups in a row leave from one port, a third
    /// one after the interval from another one (the old socket is still
    /// open when the new one binds, so the ports differ).
    #[test]
    fn a_socket_older_than_the_interval_is_replaced() {
        let (server, addr) = fake_nameserver();
        let mut base = EventBase::new().unwrap();
        let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
        dns.nameserver_sockaddr_add(&mut base, addr).unwrap();
        dns.set_option(&mut base, "socket-pool:", "1").unwrap();
        dns.set_option(&mut base, "socket-rotate-interval:", "0.3")
            .unwrap();
        let mut ports = Vec::new();
        for (i, pause) in [0u64, 0, 400].into_iter().enumerate() {
            std::thread::sleep(Duration::from_millis(pause));
            let done: Rc<RefCell<Option<Result<Vec<IpAddr>>>>> = Rc::default();
            let d = done.clone();
            let name = format!("r{i}.test");
            dns.resolve_ipv4(&mut base, &name, QueryFlags::NO_SEARCH, move |_, r| {
                *d.borrow_mut() = Some(r.map(|a| a.addrs()));
            })
            .unwrap();
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server
                .send_to(&answer_to(&buf[..n], [10, 0, 0, i as u8]), from)
                .unwrap();
            let start = Instant::now();
            while done.borrow().is_none() && start.elapsed() < Duration::from_secs(10) {
                base.run(oxevent_core::LoopFlags::ONCE).unwrap();
            }
            let got = done.borrow_mut().take().expect("an answer within 10 s");
            assert_eq!(
                got.unwrap(),
                vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8))]
            );
            ports.push(from.port());
        }
        assert_eq!(ports[0], ports[1], "rotated before the interval");
        assert_ne!(ports[1], ports[2], "not rotated after the interval");
        dns.free(&mut base, false);
    }

    /// A UDP socket and a TCP listener on the same loopback port (the
    /// nameserver of a test that falls back to TCP); the UDP side times
    /// out after 10 s.
    fn udp_and_tcp_on_one_port() -> (UdpSocket, std::net::TcpListener) {
        let (udp, tcp) = (0..100)
            .find_map(|_| {
                let u = UdpSocket::bind("127.0.0.1:0").ok()?;
                let t = std::net::TcpListener::bind(u.local_addr().ok()?).ok()?;
                Some((u, t))
            })
            .expect("a port free for UDP and TCP");
        udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (udp, tcp)
    }

    /// Repeats the last A record of the one-record answer `a` to 80
    /// records: far past 512 bytes, and no TC bit.
    fn grow_to_80_records(a: &mut Vec<u8>) {
        let rec = a[a.len() - 16..].to_vec();
        for _ in 1..80 {
            a.extend_from_slice(&rec);
        }
        a[6..8].copy_from_slice(&80u16.to_be_bytes());
    }

    /// Accepts one TCP connection on `tcp`, reads one framed query and
    /// answers it with the A record 10.9.8.7. Returns the query.
    fn answer_one_tcp_query(tcp: &std::net::TcpListener) -> Vec<u8> {
        let (mut s, _) = tcp.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut q).unwrap();
        let a = answer_to(&q, [10, 9, 8, 7]);
        s.write_all(&(a.len() as u16).to_be_bytes()).unwrap();
        s.write_all(&a).unwrap();
        q
    }

    /// Resolves the A records of `name` (no search list) against the one
    /// nameserver `addr`, on a fresh base stopped after at most 10 s.
    fn resolve_v4_once(addr: SocketAddr, name: &str) -> Result<Vec<IpAddr>> {
        let mut base = EventBase::new().unwrap();
        let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
        dns.nameserver_sockaddr_add(&mut base, addr).unwrap();
        let got = Rc::new(RefCell::new(None));
        let g = got.clone();
        dns.resolve_ipv4(&mut base, name, QueryFlags::NO_SEARCH, move |base, r| {
            *g.borrow_mut() = Some(r.map(|a| a.addrs()));
            base.loopbreak();
        })
        .unwrap();
        base.loopexit(Some(Duration::from_secs(10))).unwrap();
        base.dispatch().unwrap();
        got.borrow_mut().take().expect("an outcome")
    }

    /// A temporary file, removed on drop.
    struct Temp(std::path::PathBuf);

    impl Temp {
        fn new(tag: &str, text: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "oxevent-dns-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&p, text).unwrap();
            Self(p)
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `Init::System` through its own path: the resolv.conf gives the
    /// nameserver, search list and options, the hosts file its entries, and
    /// a lookup of a short name goes to that nameserver with the search
    /// domain appended.
    #[test]
    fn init_system_reads_resolv_conf_and_hosts() {
        let (server, addr) = fake_nameserver();
        let conf = Temp::new(
            "resolv",
            &format!(
                "# test\nnameserver {addr}\nsearch sys.test other.test\n\
                 options ndots:2 attempts:4 timeout:7\n"
            ),
        );
        let hosts = Temp::new("hosts", "10.1.2.3 host.sys.test alias\n");
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let asked = wire::parse_request(&buf[..n]).unwrap().questions[0]
                .name
                .to_ascii_lowercase();
            server
                .send_to(&answer_to(&buf[..n], [10, 9, 8, 7]), from)
                .unwrap();
            asked
        });
        let mut base = EventBase::new().unwrap();
        let files = SystemFiles {
            resolv_conf: &conf.0,
            hosts: &hosts.0,
        };
        let dns = DnsBase::new_from(&mut base, Init::System, &files).unwrap();
        assert_eq!(dns.nameservers(&mut base), vec![(addr, true)]);
        let opts = dns.options(&mut base).unwrap();
        assert_eq!(
            (opts.ndots, opts.attempts, opts.timeout),
            (2, 4, Duration::from_secs(7))
        );
        let r = get(&mut base, dns).unwrap();
        assert_eq!(
            r.search,
            vec!["sys.test".to_owned(), "other.test".to_owned()]
        );
        assert_eq!(r.hosts.lookup("alias"), &[IpAddr::from([10, 1, 2, 3])]);
        let got = Rc::new(RefCell::new(None));
        let g = got.clone();
        dns.resolve_ipv4(&mut base, "www", QueryFlags::NONE, move |base, r| {
            *g.borrow_mut() = Some(r.map(|a| (a.name.clone(), a.addrs())));
            base.loopbreak();
        })
        .unwrap();
        base.loopexit(Some(Duration::from_secs(10))).unwrap();
        base.dispatch().unwrap();
        assert_eq!(peer.join().unwrap(), "www.sys.test");
        let (name, addrs) = got.borrow_mut().take().expect("an outcome").unwrap();
        assert_eq!(name, "www.sys.test");
        assert_eq!(addrs, vec![IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7))]);
        dns.free(&mut base, false);
    }

    /// `Init::System` with no resolv.conf: 127.0.0.1:53, as libevent does.
    #[test]
    fn init_system_without_resolv_conf_uses_localhost() {
        let mut base = EventBase::new().unwrap();
        let missing = std::env::temp_dir().join(format!(
            "oxevent-dns-missing-{}/resolv.conf",
            std::process::id()
        ));
        let files = SystemFiles {
            resolv_conf: &missing,
            hosts: &missing,
        };
        let dns = DnsBase::new_from(&mut base, Init::System, &files).unwrap();
        assert_eq!(
            dns.nameservers(&mut base),
            vec![(SocketAddr::from(([127, 0, 0, 1], 53)), true)]
        );
        assert!(get(&mut base, dns).unwrap().search.is_empty());
    }
}
