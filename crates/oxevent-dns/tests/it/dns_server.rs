//! Our server ports queried by `dig` over UDP and TCP, and by our own
//! resolver: reply builders, flags, rcodes, drop, requesting address,
//! truncation to TCP, TCP limits, malformed requests.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use oxevent_core::EventBase;
use oxevent_dns::{
    Answer, CLASS_IN, DnsBase, Init, QueryFlags, RData, Rcode, Record, RecordType, Section,
    ServerFlags, ServerPort, ServerRequest,
};
use oxevent_test_support::Watchdog;

use crate::common::{log, run_child_with_loop, run_until, run_until_b};

/// Answers like a tiny authoritative server.
fn answer(base: &mut EventBase, mut req: ServerRequest, seen: &Rc<RefCell<Vec<SocketAddr>>>) {
    seen.borrow_mut().push(req.requesting_addr());
    let Some(q) = req.questions().first().cloned() else {
        req.respond(base, Rcode::FORMERR).unwrap();
        return;
    };
    let name = q.name.to_ascii_lowercase();
    match (name.as_str(), q.qtype) {
        ("www.example.test", RecordType::A) => {
            req.add_a_reply(&q.name, &[Ipv4Addr::new(192, 0, 2, 1)], 60);
        }
        ("www.example.test", RecordType::AAAA) => {
            req.add_aaaa_reply(&q.name, &["2001:db8::1".parse::<Ipv6Addr>().unwrap()], 60);
        }
        ("1.2.0.192.in-addr.arpa", RecordType::PTR) => {
            req.add_ptr_reply(
                Some(IpAddr::from([192, 0, 2, 1])),
                None,
                "www.example.test",
                60,
            );
        }
        ("alias.example.test", RecordType::A) => {
            req.add_cname_reply(&q.name, "www.example.test", 30);
            req.add_a_reply("www.example.test", &[Ipv4Addr::new(192, 0, 2, 1)], 60);
        }
        ("txt.example.test", RecordType::TXT) => {
            req.add_reply(
                Section::Answer,
                Record {
                    name: q.name.clone(),
                    rtype: RecordType::TXT,
                    class: CLASS_IN,
                    ttl: 5,
                    data: RData::Other(b"\x05hello".to_vec()),
                },
            );
        }
        ("big.example.test", RecordType::A) => {
            let addrs: Vec<Ipv4Addr> = (0..60).map(|i| Ipv4Addr::new(10, 2, 0, i)).collect();
            req.add_a_reply(&q.name, &addrs, 60);
        }
        ("fail.example.test", _) => {
            req.respond(base, Rcode::SERVFAIL).unwrap();
            return;
        }
        ("drop.example.test", _) => {
            req.discard(base);
            return;
        }
        ("silent.example.test", _) => {
            // Neither answered nor discarded: just dropped.
            drop(req);
            return;
        }
        _ => {
            req.set_flags(ServerFlags::AA);
            req.respond(base, Rcode::NXDOMAIN).unwrap();
            return;
        }
    }
    req.set_flags(ServerFlags::AA);
    req.respond(base, Rcode::NOERROR).unwrap();
}

fn start(base: &mut EventBase) -> (ServerPort, SocketAddr, Rc<RefCell<Vec<SocketAddr>>>) {
    let (udp, tcp) = crate::common::udp_and_tcp();
    let addr = udp.local_addr().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let port =
        ServerPort::new(base, Some(udp), Some(tcp), move |b, req| answer(b, req, &s)).unwrap();
    (port, addr, seen)
}

fn dig(base: &mut EventBase, addr: SocketAddr, args: &[&str]) -> String {
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+time=2", "+tries=1"])
        .args(args);
    run_child_with_loop(base, &mut cmd)
}

#[test]
fn dig_over_udp_and_tcp() {
    let _w = Watchdog::new("dig", Duration::from_secs(60));
    let mut base = EventBase::new().unwrap();
    let (_port, addr, seen) = start(&mut base);
    for tcp in [false, true] {
        let t: &[&str] = if tcp { &["+tcp"] } else { &[] };
        let a = dig(
            &mut base,
            addr,
            &[t, &["+short", "www.example.test"]].concat(),
        );
        assert_eq!(a.trim(), "192.0.2.1");
        let a = dig(
            &mut base,
            addr,
            &[t, &["+short", "AAAA", "www.example.test"]].concat(),
        );
        assert_eq!(a.trim(), "2001:db8::1");
        let a = dig(
            &mut base,
            addr,
            &[t, &["+short", "-x", "192.0.2.1"]].concat(),
        );
        assert_eq!(a.trim(), "www.example.test.");
        let a = dig(
            &mut base,
            addr,
            &[t, &["+short", "alias.example.test"]].concat(),
        );
        assert_eq!(a.trim(), "www.example.test.\n192.0.2.1");
        let a = dig(
            &mut base,
            addr,
            &[t, &["+short", "TXT", "txt.example.test"]].concat(),
        );
        assert_eq!(a.trim(), "\"hello\"");
        let full = dig(&mut base, addr, &[t, &["nothere.example.test"]].concat());
        assert!(full.contains("status: NXDOMAIN"), "{full}");
        assert!(full.contains("flags: qr aa rd"), "{full}");
        let full = dig(&mut base, addr, &[t, &["fail.example.test"]].concat());
        assert!(full.contains("status: SERVFAIL"), "{full}");
        let full = dig(
            &mut base,
            addr,
            &[t, &["+norecurse", "www.example.test"]].concat(),
        );
        assert!(full.contains("flags: qr aa;"), "{full}");
    }
    // Dropped: dig times out with no answer.
    let full = dig(&mut base, addr, &["drop.example.test"]);
    assert!(!full.contains("status:"), "{full}");
    // A big answer over UDP is truncated; dig retries over TCP by itself.
    let full = dig(&mut base, addr, &["+ignore", "big.example.test"]);
    assert!(full.contains(" tc "), "{full}");
    let full = dig(&mut base, addr, &["big.example.test"]);
    assert!(full.contains("ANSWER: 60"), "{full}");
    assert!(seen.borrow().iter().all(|a| a.ip() == addr.ip()));
}

fn push(
    l: &crate::common::Log<Result<Answer, String>>,
) -> impl FnOnce(&mut EventBase, oxevent_dns::Result<Answer>) + 'static {
    let l = l.clone();
    move |_, r| l.borrow_mut().push(r.map_err(|e| e.to_string()))
}

#[test]
fn our_resolver_against_our_server() {
    let _w = Watchdog::new("resolver_vs_server", Duration::from_secs(30));
    let mut base = EventBase::new().unwrap();
    let (port, addr, _seen) = start(&mut base);
    let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
    dns.nameserver_sockaddr_add(&mut base, addr).unwrap();
    let l = log();
    dns.resolve_ipv4(&mut base, "alias.example.test", QueryFlags::NONE, push(&l))
        .unwrap();
    // Truncated over UDP: the resolver retries over TCP and gets all 60.
    dns.resolve_ipv4(&mut base, "big.example.test", QueryFlags::NONE, push(&l))
        .unwrap();
    // SERVFAIL is an answer, not a timeout.
    dns.resolve_ipv4(&mut base, "fail.example.test", QueryFlags::NONE, push(&l))
        .unwrap();
    // use-vc: TCP from the start, pipelined on one connection.
    dns.resolve_ipv4(&mut base, "www.example.test", QueryFlags::USE_VC, push(&l))
        .unwrap();
    dns.resolve_ipv6(&mut base, "www.example.test", QueryFlags::USE_VC, push(&l))
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), || l
        .borrow()
        .len()
        == 5));
    let got = l.borrow().clone();
    let find = |name: &str, t: RecordType| {
        got.iter()
            .find(|r| r.as_ref().is_ok_and(|a| a.name == name && a.qtype == t))
            .cloned()
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        find("alias.example.test", RecordType::A).cnames(),
        vec!["www.example.test"]
    );
    assert_eq!(find("big.example.test", RecordType::A).addrs().len(), 60);
    assert_eq!(find("www.example.test", RecordType::AAAA).addrs().len(), 1);
    assert!(
        got.iter()
            .any(|r| r.as_ref().is_err_and(|e| e == "server failed"))
    );
    assert!(port.tcp_clients(&mut base) >= 1);
    // Freeing the resolver closes its connection; a resolver closes an
    // idle one by itself (the server's own idle limit is out of the way).
    dns.free(&mut base, true);
    assert!(run_until_b(&mut base, Duration::from_secs(10), |b| port
        .tcp_clients(b)
        == 0));
    port.set_tcp_limits(&mut base, 128, Duration::from_secs(600));
    let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
    dns.nameserver_sockaddr_add(&mut base, addr).unwrap();
    dns.set_option(&mut base, "tcp-idle-timeout:", "0.2")
        .unwrap();
    let l = log();
    dns.resolve_ipv4(&mut base, "www.example.test", QueryFlags::USE_VC, push(&l))
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), || l
        .borrow()
        .len()
        == 1));
    assert!(run_until_b(&mut base, Duration::from_secs(10), |b| port
        .tcp_clients(b)
        == 0));
}

#[test]
fn tcp_client_limit_idle_timeout_and_malformed() {
    let _w = Watchdog::new("tcp_limits", Duration::from_secs(30));
    let mut base = EventBase::new().unwrap();
    let (port, addr, _seen) = start(&mut base);
    port.set_tcp_limits(&mut base, 2, Duration::from_millis(200));
    let mut c1 = TcpStream::connect(addr).unwrap();
    let _c2 = TcpStream::connect(addr).unwrap();
    assert!(run_until_b(&mut base, Duration::from_secs(5), |b| port
        .tcp_clients(b)
        == 2));
    // The third is closed at once.
    let mut c3 = TcpStream::connect(addr).unwrap();
    c3.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    run_until(&mut base, Duration::from_millis(100), || false);
    assert_eq!(port.tcp_clients(&mut base), 2);
    let mut b = [0u8; 4];
    assert_eq!(c3.read(&mut b).unwrap_or(0), 0);
    // Malformed (a name pointer loop) over TCP: FORMERR with the id.
    let bad = [
        0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1,
    ];
    c1.write_all(&(bad.len() as u16).to_be_bytes()).unwrap();
    c1.write_all(&bad).unwrap();
    c1.set_nonblocking(true).unwrap();
    let mut resp = Vec::new();
    run_until(&mut base, Duration::from_secs(5), || {
        let mut buf = [0u8; 512];
        if let Ok(n) = c1.read(&mut buf) {
            resp.extend_from_slice(&buf[..n]);
        }
        resp.len() >= 14
    });
    assert_eq!(&resp[2..4], &[0xAB, 0xCD]);
    assert_eq!(resp[5] & 0xF, 1, "FORMERR");
    // Idle clients are closed.
    assert!(run_until_b(&mut base, Duration::from_secs(5), |b| port
        .tcp_clients(b)
        == 0));
    // Malformed over UDP: FORMERR; a response sent to the server: ignored.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_nonblocking(true).unwrap();
    u.send_to(&bad, addr).unwrap();
    let mut resp = None;
    run_until(&mut base, Duration::from_secs(5), || {
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = u.recv_from(&mut buf) {
            resp = Some(buf[..n].to_vec());
        }
        resp.is_some()
    });
    let resp = resp.unwrap();
    assert_eq!((resp[0], resp[1], resp[3] & 0xF), (0xAB, 0xCD, 1));
    port.close(&mut base);
    port.close(&mut base);
    assert_eq!(port.tcp_clients(&mut base), 0);
}

/// A TCP request dropped without `respond` or `discard` stops counting
/// against its connection's limit of requests in flight (64): after 100
/// of them on one connection, it is still open and answers.
#[test]
fn dropped_tcp_requests_release_their_connection() {
    let _w = Watchdog::new("tcp_dropped", Duration::from_secs(30));
    let mut base = EventBase::new().unwrap();
    let (port, addr, _seen) = start(&mut base);
    let mut c = TcpStream::connect(addr).unwrap();
    let mut out = Vec::new();
    let mut q = Vec::new();
    for id in 0..100u16 {
        oxevent_dns::wire::encode_query(
            id,
            "silent.example.test",
            RecordType::A,
            true,
            None,
            &mut q,
        )
        .unwrap();
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(&q);
    }
    oxevent_dns::wire::encode_query(
        0xBEEF,
        "www.example.test",
        RecordType::A,
        true,
        None,
        &mut q,
    )
    .unwrap();
    out.extend_from_slice(&(q.len() as u16).to_be_bytes());
    out.extend_from_slice(&q);
    c.write_all(&out).unwrap();
    c.set_nonblocking(true).unwrap();
    let mut resp = Vec::new();
    let mut closed = false;
    run_until(&mut base, Duration::from_secs(10), || {
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        closed || resp.len() >= 2 + 12
    });
    assert!(!closed, "the connection was closed");
    assert!(resp.len() >= 14, "no answer");
    assert_eq!(&resp[2..4], &[0xBE, 0xEF], "the answer to the last query");
    assert_eq!(resp[5] & 0xF, 0, "NOERROR");
    assert_eq!(port.tcp_clients(&mut base), 1);
    port.close(&mut base);
}
