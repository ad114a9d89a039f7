//! `getaddrinfo` over the resolver (libevent's `evdns_getaddrinfo`): the
//! numeric fast path, the hosts file, the cache, then A and AAAA queries in
//! parallel; and the resolver as `oxevent-bufferevent`'s [`Resolve`].

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use oxevent_bufferevent::{Family, Resolve, ResolveDone, ResolvePart};
use oxevent_core::EventBase;

use crate::error::{Error, Result};
use crate::record::RecordType;
use crate::resolver::{Answer, DnsBase, QueryFlags, Request, get};
use oxevent_bufferevent::slab::Key;

/// getaddrinfo flags (libevent's `EVUTIL_AI_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaiFlags(pub u8);

impl GaiFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// With no node, the wildcard address instead of loopback
    /// (`EVUTIL_AI_PASSIVE`).
    pub const PASSIVE: Self = Self(1);
    /// Report the canonical name (`EVUTIL_AI_CANONNAME`).
    pub const CANONNAME: Self = Self(2);
    /// The node must be a numeric address (`EVUTIL_AI_NUMERICHOST`).
    pub const NUMERICHOST: Self = Self(4);
    /// The service must be a number (`EVUTIL_AI_NUMERICSERV`).
    pub const NUMERICSERV: Self = Self(8);

    /// Whether every flag of `other` is set.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for GaiFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// getaddrinfo hints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaiHints {
    /// The address family wanted.
    pub family: Family,
    /// Flags.
    pub flags: GaiFlags,
}

/// A getaddrinfo result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrInfo {
    /// The addresses, IPv6 first, then IPv4.
    pub addrs: Vec<SocketAddr>,
    /// The canonical name, if [`GaiFlags::CANONNAME`] was given.
    pub canonname: Option<String>,
}

/// What getaddrinfo calls with its outcome.
pub type GaiCallback = Box<dyn FnOnce(&mut EventBase, Result<AddrInfo>)>;

/// A handle to a pending getaddrinfo (libevent's
/// `evdns_getaddrinfo_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GaiRequest {
    dns: DnsBase,
    key: Key,
}

enum Part {
    NotAsked,
    Pending(Request),
    Done(Result<Answer>),
    Cached(Vec<IpAddr>),
}

/// A getaddrinfo in progress.
pub(crate) struct Gai {
    cb: Option<GaiCallback>,
    port: u16,
    name: String,
    canon: bool,
    v4: Part,
    v6: Part,
}

impl Gai {
    pub(crate) fn fail(mut self, base: &mut EventBase, e: Error) {
        if let Some(cb) = self.cb.take() {
            cb(base, Err(e));
        }
    }
}

/// Parses a service: a port number or one of a few well-known names.
///
/// # Errors
///
/// [`Error::Service`] for anything else.
pub fn parse_service(service: Option<&str>, numeric_only: bool) -> Result<u16> {
    let Some(s) = service else { return Ok(0) };
    if let Ok(p) = s.parse::<u16>() {
        return Ok(p);
    }
    if numeric_only {
        return Err(Error::Service(s.to_owned()));
    }
    Ok(match s {
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "http" | "www" => 80,
        "pop3" => 110,
        "imap" => 143,
        "https" => 443,
        "imaps" => 993,
        "pop3s" => 995,
        _ => return Err(Error::Service(s.to_owned())),
    })
}

fn family_ok(family: Family, ip: &IpAddr) -> bool {
    match family {
        Family::Any => true,
        Family::V4 => ip.is_ipv4(),
        Family::V6 => ip.is_ipv6(),
    }
}

/// IPv6 first, then IPv4, each in the order given.
fn order(ips: impl IntoIterator<Item = IpAddr>, port: u16) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    v.sort_by_key(|a| a.is_ipv4());
    v.dedup();
    v
}

/// What can be answered without the network: no node, a numeric node,
/// or (with a resolver) the hosts file. `Ok(None)` means ask the network.
fn fast_path(
    node: Option<&str>,
    port: u16,
    hints: &GaiHints,
    hosts: Option<&crate::config::Hosts>,
) -> Result<Option<AddrInfo>> {
    let fam = hints.family;
    let Some(node) = node else {
        let passive = hints.flags.contains(GaiFlags::PASSIVE);
        let (v4, v6): (IpAddr, IpAddr) = if passive {
            (Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into())
        } else {
            (Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into())
        };
        let ips = [v6, v4].into_iter().filter(|ip| family_ok(fam, ip));
        return Ok(Some(AddrInfo {
            addrs: order(ips, port),
            canonname: None,
        }));
    };
    let bare = node
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(node);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if !family_ok(fam, &ip) {
            return Err(Error::Family);
        }
        return Ok(Some(AddrInfo {
            addrs: vec![SocketAddr::new(ip, port)],
            canonname: hints
                .flags
                .contains(GaiFlags::CANONNAME)
                .then(|| node.to_owned()),
        }));
    }
    if hints.flags.contains(GaiFlags::NUMERICHOST) {
        return Err(Error::NoName);
    }
    if let Some(h) = hosts {
        let ips: Vec<IpAddr> = h
            .lookup(node)
            .iter()
            .copied()
            .filter(|ip| family_ok(fam, ip))
            .collect();
        if !ips.is_empty() {
            return Ok(Some(AddrInfo {
                addrs: order(ips, port),
                canonname: hints
                    .flags
                    .contains(GaiFlags::CANONNAME)
                    .then(|| node.to_owned()),
            }));
        }
    }
    Ok(None)
}

/// Resolves with the numeric fast path, then the system's blocking
/// resolver (`evutil_getaddrinfo`). It blocks; [`DnsBase::getaddrinfo`]
/// does not.
///
/// # Errors
///
/// [`Error::Service`], [`Error::Family`], [`Error::NoName`], or the
/// system resolver's error as [`Error::Io`].
#[doc(alias = "evutil_getaddrinfo")]
pub fn getaddrinfo_blocking(
    node: Option<&str>,
    service: Option<&str>,
    hints: &GaiHints,
) -> Result<AddrInfo> {
    let port = parse_service(service, hints.flags.contains(GaiFlags::NUMERICSERV))?;
    if let Some(ai) = fast_path(node, port, hints, None)? {
        return Ok(ai);
    }
    let node = node.unwrap_or("localhost");
    let ips: Vec<IpAddr> = (node, port)
        .to_socket_addrs()?
        .map(|a| a.ip())
        .filter(|ip| family_ok(hints.family, ip))
        .collect();
    if ips.is_empty() {
        return Err(Error::NoData);
    }
    Ok(AddrInfo {
        addrs: order(ips, port),
        canonname: None,
    })
}

impl DnsBase {
    /// Resolves `node` and `service` to socket addresses
    /// (`evdns_getaddrinfo`). A numeric node, a hosts-file name or a cached
    /// one is answered at once: the callback runs before this returns and
    /// the result is `None`. Otherwise A and AAAA are asked in parallel (as
    /// the family allows), the answers are cached for their TTL, and the
    /// callback runs from the loop; the handle can cancel it.
    #[doc(alias = "evdns_getaddrinfo")]
    pub fn getaddrinfo(
        self,
        base: &mut EventBase,
        node: Option<&str>,
        service: Option<&str>,
        hints: &GaiHints,
        cb: impl FnOnce(&mut EventBase, Result<AddrInfo>) + 'static,
    ) -> Option<GaiRequest> {
        match parse_service(service, hints.flags.contains(GaiFlags::NUMERICSERV)) {
            Ok(port) => self.getaddrinfo_port(base, node, port, hints, Box::new(cb)),
            Err(e) => {
                cb(base, Err(e));
                None
            }
        }
    }

    /// Empties the getaddrinfo cache.
    pub fn clear_cache(self, base: &mut EventBase) {
        if let Some(r) = get(base, self) {
            r.cache.clear();
        }
    }

    fn getaddrinfo_port(
        self,
        base: &mut EventBase,
        node: Option<&str>,
        port: u16,
        hints: &GaiHints,
        cb: GaiCallback,
    ) -> Option<GaiRequest> {
        let now = base.now();
        let Some(r) = get(base, self) else {
            cb(base, Err(Error::Shutdown));
            return None;
        };
        let fast = fast_path(node, port, hints, Some(&r.hosts));
        let name = match (fast, node) {
            (Ok(Some(ai)), _) => {
                cb(base, Ok(ai));
                return None;
            }
            (Err(e), _) => {
                cb(base, Err(e));
                return None;
            }
            (Ok(None), Some(n)) => n.to_owned(),
            (Ok(None), None) => unreachable!("no node is answered by the fast path"),
        };
        let canon = hints.flags.contains(GaiFlags::CANONNAME);
        let want_v4 = hints.family != Family::V6;
        let want_v6 = hints.family != Family::V4;
        let cached = |r: &mut crate::resolver::Resolver, t| r.cache.get(&name, t, now);
        let v4 = if want_v4 {
            cached(r, RecordType::A).map_or(Part::NotAsked, Part::Cached)
        } else {
            Part::Done(Err(Error::NoData))
        };
        let v6 = if want_v6 {
            cached(r, RecordType::AAAA).map_or(Part::NotAsked, Part::Cached)
        } else {
            Part::Done(Err(Error::NoData))
        };
        let key = r.gais.insert(Gai {
            cb: Some(cb),
            port,
            name: name.clone(),
            canon,
            v4,
            v6,
        });
        let h = self;
        for v6 in [true, false] {
            let g = get(base, h).and_then(|r| r.gais.get(key))?;
            let part = if v6 { &g.v6 } else { &g.v4 };
            if !matches!(part, Part::NotAsked) {
                continue;
            }
            let qt = if v6 { RecordType::AAAA } else { RecordType::A };
            let sub = h.resolve(base, &name, qt, QueryFlags::NONE, move |base, res| {
                part_done(base, h, key, v6, res);
            });
            let g = get(base, h).and_then(|r| r.gais.get_mut(key))?;
            let slot = if v6 { &mut g.v6 } else { &mut g.v4 };
            *slot = match sub {
                Ok(req) => Part::Pending(req),
                Err(e) => Part::Done(Err(e)),
            };
        }
        // Both parts may be settled already (cached, or refused at once).
        complete_if_done(base, h, key);
        get(base, h)
            .and_then(|r| r.gais.get(key))
            .map(|_| GaiRequest { dns: h, key })
    }
}

impl GaiRequest {
    /// Cancels the lookup (`evdns_getaddrinfo_cancel`): its callback runs
    /// now with [`Error::Cancelled`]. Cancelling a finished one does
    /// nothing.
    #[doc(alias = "evdns_getaddrinfo_cancel")]
    pub fn cancel(self, base: &mut EventBase) {
        let Some(r) = get(base, self.dns) else { return };
        let Some(g) = r.gais.remove(self.key) else {
            return;
        };
        for p in [&g.v4, &g.v6] {
            if let Part::Pending(req) = p {
                req.cancel(base);
            }
        }
        g.fail(base, Error::Cancelled);
    }
}

fn part_done(base: &mut EventBase, h: DnsBase, key: Key, v6: bool, res: Result<Answer>) {
    let now = base.now();
    let Some(r) = get(base, h) else { return };
    if let Ok(a) = &res {
        let qt = if v6 { RecordType::AAAA } else { RecordType::A };
        r.cache.insert(&a.name, qt, a.addrs(), a.ttl(), now);
        if let Some(g) = r.gais.get(key) {
            if !g.name.eq_ignore_ascii_case(&a.name) {
                let name = g.name.clone();
                r.cache.insert(&name, qt, a.addrs(), a.ttl(), now);
            }
        }
    }
    let Some(g) = r.gais.get_mut(key) else { return };
    *(if v6 { &mut g.v6 } else { &mut g.v4 }) = Part::Done(res);
    complete_if_done(base, h, key);
}

fn complete_if_done(base: &mut EventBase, h: DnsBase, key: Key) {
    let Some(r) = get(base, h) else { return };
    let Some(g) = r.gais.get(key) else { return };
    let settled = |p: &Part| matches!(p, Part::Done(_) | Part::Cached(_));
    if !settled(&g.v4) || !settled(&g.v6) {
        return;
    }
    let Some(mut g) = r.gais.remove(key) else {
        return;
    };
    let mut ips = Vec::new();
    let mut canonname = None;
    let mut errors = Vec::new();
    for p in [&g.v6, &g.v4] {
        match p {
            Part::Cached(v) => ips.extend(v.iter().copied()),
            Part::Done(Ok(a)) => {
                ips.extend(a.addrs());
                if canonname.is_none() {
                    canonname = Some(a.canonical_name().to_owned());
                }
            }
            Part::Done(Err(e)) => errors.push(e.duplicate()),
            _ => {}
        }
    }
    let res = if ips.is_empty() {
        Err(if errors.iter().any(Error::is_not_exist) {
            Error::NotExist
        } else {
            errors
                .into_iter()
                .find(|e| !matches!(e, Error::NoData))
                .unwrap_or(Error::NoData)
        })
    } else {
        Ok(AddrInfo {
            addrs: order(ips, g.port),
            canonname: if g.canon {
                Some(canonname.unwrap_or_else(|| g.name.clone()))
            } else {
                None
            },
        })
    };
    if let Some(cb) = g.cb.take() {
        cb(base, res);
    }
}

/// The resolver plugs into `BufferEvent::connect_hostname` (and the HTTP
/// client): lookups go through [`DnsBase::getaddrinfo`], without blocking
/// the loop.
impl Resolve for DnsBase {
    fn resolve(
        &self,
        base: &mut EventBase,
        host: &str,
        port: u16,
        family: Family,
        done: ResolveDone,
    ) {
        let hints = GaiHints {
            family,
            flags: GaiFlags::NONE,
        };
        self.getaddrinfo_port(
            base,
            Some(host),
            port,
            &hints,
            Box::new(move |base, res| {
                done(base, res.map(|ai| ai.addrs).map_err(io::Error::from));
            }),
        );
    }

    /// For [`Family::Any`], AAAA and A are two lookups in parallel, each
    /// handed over as soon as it completes, so that Happy Eyeballs can start
    /// on IPv6 at once, or wait its resolution delay for AAAA when A came
    /// first (RFC 8305 section 3). One family is one part.
    fn resolve_parts(
        &self,
        base: &mut EventBase,
        host: &str,
        port: u16,
        family: Family,
        mut part: ResolvePart,
    ) {
        if family != Family::Any {
            self.resolve(
                base,
                host,
                port,
                family,
                Box::new(move |base, r| part(base, r, true)),
            );
            return;
        }
        // The part callback and how many lookups are still out.
        let shared = Rc::new(RefCell::new((Some(part), 2u8)));
        for fam in [Family::V6, Family::V4] {
            let sh = Rc::clone(&shared);
            self.resolve(
                base,
                host,
                port,
                fam,
                Box::new(move |base, r| {
                    let (cb, last) = {
                        let mut g = sh.borrow_mut();
                        g.1 -= 1;
                        (g.0.take(), g.1 == 0)
                    };
                    // Called outside the borrow: it may start connections.
                    if let Some(mut cb) = cb {
                        cb(base, r, last);
                        if !last {
                            sh.borrow_mut().0 = Some(cb);
                        }
                    }
                }),
            );
        }
    }
}
