//! `dns-example`: resolves names, or serves them from a hosts file, after
//! libevent's `sample/dns-example.c`.
//!
//! ```text
//! cargo run --features extra --example dns-example -- resolve [--nameserver 127.0.0.1:PORT] [--reverse] [--resolv-conf FILE] NAME...
//! cargo run --features extra --example dns-example -- serve --addr 127.0.0.1:PORT --hosts FILE
//! ```
//!
//! `resolve` asks for the A and AAAA records of each NAME (the PTR record
//! of each address with `--reverse`) and prints one line per answer record,
//! `NAME TYPE VALUE TTL` (CNAMEs included); failures go to stderr. It uses
//! the nameserver given, else the resolv.conf given, else the system's.
//! Exits with status 1 if a name got no answer at all.
//!
//! `serve` answers A, AAAA and PTR questions from a hosts-format file over
//! UDP and TCP on ADDR (port 0 picks one), NXDOMAIN otherwise, and prints
//! `listening on ADDR` once bound.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;

use oxevent::EventBase;
use oxevent::dns::{
    Answer, ConfParts, DnsBase, Error, Hosts, Init, QueryFlags, Rcode, RecordType, ServerFlags,
    ServerPort, ServerRequest, parse_reverse_name,
};

const USAGE: &str = "usage: dns-example resolve [--nameserver ADDR] [--reverse] [--resolv-conf FILE] NAME...\n       dns-example serve --addr 127.0.0.1:PORT --hosts FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("resolve") => resolve(&args[1..]),
        Some("serve") => serve(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dns-example: {e}");
            ExitCode::from(2)
        }
    }
}

/// One query's outcome, kept until every query is done.
type Outcome = (String, RecordType, Result<Answer, Error>);

fn resolve(args: &[String]) -> Result<ExitCode, String> {
    let mut nameserver = None;
    let mut conf = None;
    let mut reverse = false;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nameserver" => nameserver = Some(it.next().ok_or(USAGE)?.clone()),
            "--resolv-conf" => conf = Some(it.next().ok_or(USAGE)?.clone()),
            "--reverse" => reverse = true,
            n if n.starts_with("--") => return Err(USAGE.to_owned()),
            n => names.push(n.to_owned()),
        }
    }
    if names.is_empty() {
        return Err(USAGE.to_owned());
    }
    let mut base = EventBase::new().map_err(|e| e.to_string())?;
    let init = if nameserver.is_some() || conf.is_some() {
        Init::Empty
    } else {
        Init::System
    };
    let dns = DnsBase::new(&mut base, init).map_err(|e| e.to_string())?;
    if let Some(c) = &conf {
        dns.resolv_conf_parse(&mut base, ConfParts::ALL, Path::new(c))
            .map_err(|e| format!("{c}: {e}"))?;
    }
    if let Some(ns) = &nameserver {
        dns.nameserver_ip_add(&mut base, ns)
            .map_err(|e| format!("{ns}: {e}"))?;
    }
    let results: Rc<RefCell<Vec<Outcome>>> = Rc::new(RefCell::new(Vec::new()));
    // How many outcomes to wait for: known once every query is started.
    let total = Rc::new(Cell::new(usize::MAX));
    let mut expected = 0;
    for name in &names {
        let queries: Vec<RecordType> = if reverse {
            vec![RecordType::PTR]
        } else {
            vec![RecordType::A, RecordType::AAAA]
        };
        for qt in queries {
            let res = results.clone();
            let tot = total.clone();
            let n = name.clone();
            let cb = move |base: &mut EventBase, r: oxevent::dns::Result<Answer>| {
                let mut v = res.borrow_mut();
                v.push((n, qt, r));
                if v.len() == tot.get() {
                    base.loopbreak();
                }
            };
            let started = if reverse {
                match name.parse::<IpAddr>() {
                    Ok(IpAddr::V4(a)) => dns.resolve_reverse(&mut base, a, QueryFlags::NONE, cb),
                    Ok(IpAddr::V6(a)) => {
                        dns.resolve_reverse_ipv6(&mut base, a, QueryFlags::NONE, cb)
                    }
                    Err(_) => Err(Error::InvalidName(name.clone())),
                }
            } else {
                dns.resolve(&mut base, name, qt, QueryFlags::NONE, cb)
            };
            match started {
                Ok(_) => expected += 1,
                Err(e) => results.borrow_mut().push((name.clone(), qt, Err(e))),
            }
        }
    }
    total.set(expected + results.borrow().len());
    if results.borrow().len() < total.get() {
        base.dispatch().map_err(|e| e.to_string())?;
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for name in &names {
        let all = std::mem::take(&mut *results.borrow_mut());
        let (mut ordered, rest): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|(n, _, _)| n == name);
        *results.borrow_mut() = rest;
        let mut any = false;
        ordered.sort_by_key(|(_, qt, _)| qt.0);
        for (_, qt, r) in ordered {
            match r {
                Ok(a) => {
                    any = true;
                    for rec in &a.records {
                        let _ =
                            writeln!(out, "{} {} {} {}", rec.name, rec.rtype, rec.data, rec.ttl);
                    }
                }
                // A name with only one of A and AAAA is fine.
                Err(Error::NoData) => {}
                Err(e) => eprintln!("{name} {qt}: {e}"),
            }
        }
        if !any {
            failed = true;
        }
    }
    let _ = out.flush();
    dns.free(&mut base, false);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn serve(args: &[String]) -> Result<ExitCode, String> {
    let mut addr = None;
    let mut hosts = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--addr" => addr = Some(it.next().ok_or(USAGE)?.clone()),
            "--hosts" => hosts = Some(it.next().ok_or(USAGE)?.clone()),
            _ => return Err(USAGE.to_owned()),
        }
    }
    let (Some(addr), Some(hosts)) = (addr, hosts) else {
        return Err(USAGE.to_owned());
    };
    let addr: SocketAddr = addr.parse().map_err(|_| format!("bad address {addr}"))?;
    let table = Rc::new(Hosts::load(Path::new(&hosts)).map_err(|e| format!("{hosts}: {e}"))?);
    let (udp, tcp, bound) = bind_both(addr)?;
    let mut base = EventBase::new().map_err(|e| e.to_string())?;
    let t = table.clone();
    let _port = ServerPort::new(&mut base, Some(udp), Some(tcp), move |base, req| {
        answer(base, req, &t);
    })
    .map_err(|e| e.to_string())?;
    println!("listening on {bound}");
    let _ = std::io::stdout().flush();
    base.dispatch().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// A UDP socket and a TCP listener on the same address. With port 0, the
/// port the kernel gives the UDP socket may be taken for TCP: try again.
fn bind_both(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), String> {
    let tries = if addr.port() == 0 { 50 } else { 1 };
    let mut last = String::new();
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
        let bound = udp.local_addr().map_err(|e| e.to_string())?;
        match TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e) => last = format!("binding {bound} (TCP): {e}"),
        }
    }
    Err(last)
}

/// Answers from the hosts table: A, AAAA and PTR; NXDOMAIN otherwise.
fn answer(base: &mut EventBase, mut req: ServerRequest, hosts: &Hosts) {
    const TTL: u32 = 60;
    let questions = req.questions().to_vec();
    let mut found = false;
    for q in &questions {
        match q.qtype {
            RecordType::A | RecordType::AAAA => {
                for ip in hosts.lookup(&q.name) {
                    match ip {
                        IpAddr::V4(a) if q.qtype == RecordType::A => {
                            req.add_a_reply(&q.name, &[*a], TTL);
                            found = true;
                        }
                        IpAddr::V6(a) if q.qtype == RecordType::AAAA => {
                            req.add_aaaa_reply(&q.name, &[*a], TTL);
                            found = true;
                        }
                        _ => {}
                    }
                }
            }
            RecordType::PTR => {
                if let Some(host) = parse_reverse_name(&q.name).and_then(|ip| hosts.reverse(ip)) {
                    req.add_ptr_reply(None, Some(&q.name), host, TTL);
                    found = true;
                }
            }
            _ => {}
        }
    }
    req.set_flags(ServerFlags::AA);
    let rcode = if found {
        Rcode::NOERROR
    } else {
        Rcode::NXDOMAIN
    };
    if let Err(e) = req.respond(base, rcode) {
        eprintln!("dns-example: cannot answer: {e}");
    }
}
