//! Resolver configuration: [`Options`], `resolv.conf` parsing and the
//! hosts file ([`Hosts`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Resolver options (libevent's `evdns_base_set_option` keys in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Names with at least this many dots are tried as-is before the
    /// search list (`ndots:`, default 1).
    pub ndots: u8,
    /// The time to wait for one attempt (`timeout:`, default 5 s).
    pub timeout: Duration,
    /// Transmissions per request before it fails with a timeout
    /// (`attempts:`, default 3).
    pub attempts: u8,
    /// Timeouts in a row before a nameserver is marked down
    /// (`max-timeouts:`, default 3).
    pub max_timeouts: u32,
    /// Requests on the wire at once; the rest wait (`max-inflight:`,
    /// default 64).
    pub max_inflight: usize,
    /// Requests accepted but waiting at most; past it a request is refused
    /// (`max-pending:`, default 65536).
    pub max_pending: usize,
    /// Spread requests over the nameservers (`rotate`).
    pub rotate: bool,
    /// The UDP payload size advertised with EDNS0, or `None` for no EDNS0
    /// (`edns-udp-size:` / the `edns0` option of resolv.conf, which means
    /// 1232).
    pub edns_udp_size: Option<u16>,
    /// Always use TCP (`use-vc`).
    pub use_vc: bool,
    /// Ignore the TC bit instead of retrying over TCP (`ignore-tc:`).
    pub ignore_tc: bool,
    /// 0x20 case randomisation of the question, checked on the answer
    /// (`randomize-case:`, default on).
    pub randomize_case: bool,
    /// The first delay before probing a down nameserver
    /// (`initial-probe-timeout:`, default 10 s).
    pub initial_probe_timeout: Duration,
    /// The longest delay between probes (`max-probe-timeout:`, default 3600 s).
    pub max_probe_timeout: Duration,
    /// The factor the probe delay grows by (`probe-backoff-factor:`,
    /// default 3).
    pub probe_backoff_factor: u32,
    /// A TCP connection to a nameserver idle this long is closed
    /// (`tcp-idle-timeout:`, default 10 s).
    pub tcp_idle_timeout: Duration,
    /// UDP sockets per nameserver, each bound to a random port
    /// (`socket-pool:`, default 4).
    pub socket_pool: usize,
    /// Queries sent on a UDP socket before it is replaced by a fresh one
    /// on another random port (`socket-rotate:`, default 2048).
    pub socket_rotate: u32,
    /// The age past which a UDP socket is replaced when it is next picked,
    /// whatever its count of queries (`socket-rotate-interval:`, default
    /// 5 s): a port stays in use for seconds, not for as long as a slow
    /// trickle of queries takes to reach [`socket_rotate`](Self::socket_rotate).
    pub socket_rotate_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 3,
            max_timeouts: 3,
            max_inflight: 64,
            max_pending: 65536,
            rotate: false,
            edns_udp_size: None,
            use_vc: false,
            ignore_tc: false,
            randomize_case: true,
            initial_probe_timeout: Duration::from_secs(10),
            max_probe_timeout: Duration::from_secs(3600),
            probe_backoff_factor: 3,
            tcp_idle_timeout: Duration::from_secs(10),
            socket_pool: 4,
            socket_rotate: 2048,
            socket_rotate_interval: Duration::from_secs(5),
        }
    }
}

fn parse_secs(v: &str) -> Option<Duration> {
    let f: f64 = v.trim().parse().ok()?;
    (f.is_finite() && f > 0.0 && f < 1e6).then(|| Duration::from_secs_f64(f))
}

impl Options {
    /// Sets one option by its libevent name, with or without the trailing
    /// colon (`evdns_base_set_option`): `ndots`, `timeout`, `attempts`,
    /// `max-timeouts`, `max-inflight`, `max-pending`, `edns-udp-size`,
    /// `edns0`, `use-vc`, `ignore-tc`, `rotate`, `randomize-case`,
    /// `initial-probe-timeout`, `max-probe-timeout`, `probe-backoff-factor`,
    /// `tcp-idle-timeout`, `socket-pool`, `socket-rotate`,
    /// `socket-rotate-interval`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (`InvalidInput`) for an unknown option or a bad value.
    #[doc(alias = "evdns_base_set_option")]
    pub fn set(&mut self, option: &str, value: &str) -> Result<()> {
        let bad = || {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad value {value:?} for option {option:?}"),
            ))
        };
        let int = |max: u64| -> Result<u64> {
            value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|v| *v <= max)
                .ok_or_else(bad)
        };
        let flag = || -> Result<bool> {
            match value.trim() {
                "" | "1" | "yes" | "true" => Ok(true),
                "0" | "no" | "false" => Ok(false),
                _ => Err(bad()),
            }
        };
        match option.trim_end_matches(':') {
            "ndots" => self.ndots = int(15)? as u8,
            "timeout" => self.timeout = parse_secs(value).ok_or_else(bad)?,
            "attempts" => self.attempts = int(255)?.max(1) as u8,
            "max-timeouts" => self.max_timeouts = int(255)?.max(1) as u32,
            "max-inflight" => self.max_inflight = int(65535)?.max(1) as usize,
            "max-pending" => self.max_pending = int(1 << 24)?.max(1) as usize,
            "edns-udp-size" => {
                let v = int(65535)? as u16;
                self.edns_udp_size = (v >= 512).then_some(v);
            }
            "edns0" => self.edns_udp_size = flag()?.then_some(1232),
            "use-vc" => self.use_vc = flag()?,
            "ignore-tc" => self.ignore_tc = flag()?,
            "rotate" => self.rotate = flag()?,
            "randomize-case" => self.randomize_case = flag()?,
            "initial-probe-timeout" => {
                self.initial_probe_timeout = parse_secs(value).ok_or_else(bad)?;
            }
            "max-probe-timeout" => self.max_probe_timeout = parse_secs(value).ok_or_else(bad)?,
            "probe-backoff-factor" => self.probe_backoff_factor = int(100)?.max(1) as u32,
            "tcp-idle-timeout" => self.tcp_idle_timeout = parse_secs(value).ok_or_else(bad)?,
            "socket-pool" => self.socket_pool = int(64)?.max(1) as usize,
            "socket-rotate" => self.socket_rotate = int(u64::from(u32::MAX))?.max(1) as u32,
            "socket-rotate-interval" => {
                self.socket_rotate_interval = parse_secs(value).ok_or_else(bad)?;
            }
            _ => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown option {option:?}"),
                )));
            }
        }
        Ok(())
    }
}

/// What to take from a resolv.conf (libevent's `DNS_OPTION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfParts(pub u8);

impl ConfParts {
    /// The `search` and `domain` lines (`DNS_OPTION_SEARCH`).
    pub const SEARCH: Self = Self(1);
    /// The `nameserver` lines (`DNS_OPTION_NAMESERVERS`).
    pub const NAMESERVERS: Self = Self(2);
    /// The `options` line (`DNS_OPTION_MISC`).
    pub const MISC: Self = Self(4);
    /// Also load `/etc/hosts` (`DNS_OPTION_HOSTSFILE`).
    pub const HOSTSFILE: Self = Self(8);
    /// Everything (`DNS_OPTIONS_ALL`).
    pub const ALL: Self = Self(15);

    /// Whether every part of `other` is in `self`.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A parsed resolv.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvConf {
    /// The nameservers, port 53 unless given as `[addr]:port`-style.
    pub nameservers: Vec<SocketAddr>,
    /// The search list (`search`, or the one `domain`).
    pub search: Vec<String>,
    /// The `options` given, as name and value.
    pub options: Vec<(String, String)>,
}

/// The most lines or entries read from a configuration file.
const MAX_CONF_ENTRIES: usize = 4096;

/// Parses a nameserver address: an IP (port 53), `ip:port` or `[ip6]:port`.
///
/// # Errors
///
/// `InvalidInput` for anything else.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad nameserver address {s:?}"),
        ))
    })
}

impl ResolvConf {
    /// Parses resolv.conf text. Unknown lines are ignored, like the C
    /// library does.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut c = Self::default();
        for line in text.lines().take(MAX_CONF_ENTRIES) {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(a) = words.next().and_then(|w| parse_nameserver(w).ok()) {
                        c.nameservers.push(a);
                    }
                }
                Some("domain") => {
                    if let Some(d) = words.next() {
                        c.search = vec![d.trim_end_matches('.').to_owned()];
                    }
                }
                Some("search") => {
                    c.search = words
                        .take(32)
                        .map(|d| d.trim_end_matches('.').to_owned())
                        .collect();
                }
                Some("options") => {
                    for w in words.take(32) {
                        let (k, v) = w.split_once(':').unwrap_or((w, ""));
                        c.options.push((k.to_owned(), v.to_owned()));
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// Reads and parses a resolv.conf file.
    ///
    /// # Errors
    ///
    /// The I/O error reading it.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }
}

/// A hosts file: names to addresses and addresses to names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    by_name: HashMap<String, Vec<IpAddr>>,
    by_addr: HashMap<IpAddr, String>,
}

impl Hosts {
    /// Parses hosts-file text (`ADDRESS NAME [ALIAS...]`, `#` comments).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut h = Self::default();
        h.add_text(text);
        h
    }

    /// Adds the entries of hosts-file text.
    pub fn add_text(&mut self, text: &str) {
        for line in text.lines().take(MAX_CONF_ENTRIES * 16) {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                continue;
            };
            for name in words.take(64) {
                self.add(name, ip);
            }
        }
    }

    /// Reads a hosts file (`evdns_base_load_hosts`).
    ///
    /// # Errors
    ///
    /// The I/O error reading it.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// Adds one entry; the first name given for an address answers reverse
    /// lookups.
    pub fn add(&mut self, name: &str, ip: IpAddr) {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        if key.is_empty() {
            return;
        }
        let v = self.by_name.entry(key).or_default();
        if !v.contains(&ip) {
            v.push(ip);
        }
        self.by_addr
            .entry(ip)
            .or_insert_with(|| name.trim_end_matches('.').to_owned());
    }

    /// The addresses of `name` (any case, with or without the final dot).
    #[must_use]
    pub fn lookup(&self, name: &str) -> &[IpAddr] {
        let key = name.trim_end_matches('.');
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            return self
                .by_name
                .get(&key.to_ascii_lowercase())
                .map_or(&[], Vec::as_slice);
        }
        self.by_name.get(key).map_or(&[], Vec::as_slice)
    }

    /// The name of `ip`.
    #[must_use]
    pub fn reverse(&self, ip: IpAddr) -> Option<&str> {
        self.by_addr.get(&ip).map(String::as_str)
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The reverse-lookup name of `ip`: `4.3.2.1.in-addr.arpa` or the nibble
/// form under `ip6.arpa`.
#[must_use]
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for b in a.octets().iter().rev() {
                for nib in [b & 0xF, b >> 4] {
                    s.push(char::from_digit(u32::from(nib), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// The address named by a reverse-lookup name, if it is one.
#[must_use]
pub fn parse_reverse_name(name: &str) -> Option<IpAddr> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = n.strip_suffix(".in-addr.arpa") {
        let parts: Vec<u8> = rest
            .split('.')
            .map(|p| p.parse::<u8>().ok())
            .collect::<Option<_>>()?;
        if parts.len() != 4 {
            return None;
        }
        return Some(IpAddr::from([parts[3], parts[2], parts[1], parts[0]]));
    }
    let rest = n.strip_suffix(".ip6.arpa")?;
    let nibs: Vec<u8> = rest
        .split('.')
        .map(|p| {
            let mut c = p.chars();
            let d = c.next()?.to_digit(16)?;
            c.next().is_none().then_some(d as u8)
        })
        .collect::<Option<_>>()?;
    if nibs.len() != 32 {
        return None;
    }
    let mut o = [0u8; 16];
    for (i, pair) in nibs.chunks(2).enumerate() {
        o[15 - i] = pair[0] | (pair[1] << 4);
    }
    Some(IpAddr::from(o))
}
