//! `connect_hostname` with Happy Eyeballs (RFC 8305): a first address that
//! never answers or refuses does not stop the connection; and the resolver
//! plugged in as `oxevent-bufferevent`'s `Resolve`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use oxevent_bufferevent::{BevFlags, BevOptions, BufferEvent, Family, Resolve, ResolveDone};
use oxevent_core::EventBase;
use oxevent_dns::{DnsBase, Init, Rcode, RecordType, ServerPort, ServerRequest};
use oxevent_test_support::Watchdog;
use socket2::{Domain, Socket, Type};

use crate::common::{Log, log, run_until};

/// A resolver answering a fixed list.
struct Fixed(Vec<SocketAddr>);

impl Resolve for Fixed {
    fn resolve(&self, base: &mut EventBase, _: &str, _: u16, _: Family, done: ResolveDone) {
        done(base, Ok(self.0.clone()));
    }
}

/// A DNS server on loopback UDP and a resolver using it. `answer` gets the
/// question's name in lower case (the resolver randomises its case, 0x20),
/// the name as asked (for the owner of the records it adds), the type and
/// the request; it returns the response code.
fn resolver_of(
    base: &mut EventBase,
    answer: impl Fn(&str, &str, RecordType, &mut ServerRequest) -> Rcode + 'static,
) -> (ServerPort, DnsBase) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    let server = ServerPort::new(base, Some(udp), None, move |base, mut req| {
        let q = req.questions()[0].clone();
        let rc = answer(&q.name.to_ascii_lowercase(), &q.name, q.qtype, &mut req);
        req.respond(base, rc).unwrap();
    })
    .unwrap();
    let dns = DnsBase::new(base, Init::Empty).unwrap();
    dns.nameserver_sockaddr_add(base, addr).unwrap();
    (server, dns)
}

/// A listener whose accept queue is full: SYNs to it are dropped, so a
/// connect to it hangs (a black hole on loopback). The clients filling the
/// queue are kept alive with it.
fn black_hole() -> (Socket, Vec<Socket>, SocketAddr) {
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let c = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        c.set_nonblocking(true).unwrap();
        let _ = c.connect(&addr.into());
        fillers.push(c);
    }
    std::thread::sleep(Duration::from_millis(50));
    (l, fillers, addr)
}

fn connect(base: &mut EventBase, resolver: &dyn Resolve, host: &str, port: u16) -> Log<BevFlags> {
    let got: Log<BevFlags> = log();
    let g = got.clone();
    let bev = BufferEvent::socket(base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(base, move |_, _, ev| g.borrow_mut().push(ev.what))
        .unwrap();
    bev.connect_hostname(base, resolver, Family::Any, host, port)
        .unwrap();
    got
}

fn accepted(l: &TcpListener) -> bool {
    l.set_nonblocking(true).unwrap();
    let mut ok = false;
    for _ in 0..200 {
        match l.accept() {
            Ok(_) => {
                ok = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    ok
}

#[test]
fn a_black_hole_first_still_connects() {
    let _w = Watchdog::new("he_black_hole", Duration::from_secs(30));
    let (_bh, _fill, hole) = black_hole();
    let good = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut base = EventBase::new().unwrap();
    let r = Fixed(vec![hole, hole, good.local_addr().unwrap()]);
    let got = connect(&mut base, &r, "x.test", 0);
    assert!(run_until(&mut base, Duration::from_secs(10), || !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0], BevFlags::CONNECTED);
    assert!(accepted(&good));
}

#[test]
fn a_refusing_address_first_still_connects() {
    let _w = Watchdog::new("he_refused", Duration::from_secs(30));
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let good = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut base = EventBase::new().unwrap();
    let r = Fixed(vec![dead, good.local_addr().unwrap()]);
    let got = connect(&mut base, &r, "x.test", 0);
    assert!(run_until(&mut base, Duration::from_secs(10), || !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0], BevFlags::CONNECTED);
    assert!(accepted(&good));
    // Everything dead or black-holed: an error, in bounded time.
    let (_bh, _fill, hole) = black_hole();
    let r = Fixed(vec![dead, dead]);
    let got = connect(&mut base, &r, "x.test", 0);
    assert!(run_until(&mut base, Duration::from_secs(10), || !got
        .borrow()
        .is_empty()));
    assert!(got.borrow()[0].contains(BevFlags::ERROR));
    let _ = hole;
}

#[test]
fn connect_hostname_through_our_resolver() {
    let _w = Watchdog::new("he_resolver", Duration::from_secs(30));
    let mut base = EventBase::new().unwrap();
    let good = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = good.local_addr().unwrap().port();
    // Our server: svc.test is ::1 (nothing listens there on that port, or
    // no IPv6 at all) and 127.0.0.1.
    let (_server, dns) = resolver_of(&mut base, |name, owner, qtype, req| {
        match (name, qtype) {
            ("svc.test", RecordType::A) => req.add_a_reply(owner, &[Ipv4Addr::LOCALHOST], 60),
            ("svc.test", RecordType::AAAA) => req.add_aaaa_reply(owner, &[Ipv6Addr::LOCALHOST], 60),
            _ => {}
        }
        if name == "svc.test" {
            Rcode::NOERROR
        } else {
            Rcode::NXDOMAIN
        }
    });
    let got = connect(&mut base, &dns, "svc.test", port);
    assert!(run_until(&mut base, Duration::from_secs(10), || !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0], BevFlags::CONNECTED);
    assert!(accepted(&good));
    // A missing name: the DNS error reaches the bufferevent.
    let got: Log<BevFlags> = log();
    let g = got.clone();
    let bev = BufferEvent::socket(&mut base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev.what))
        .unwrap();
    bev.connect_hostname(&mut base, &dns, Family::V4, "nope.test", port)
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), || !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0], BevFlags::ERROR);
    assert_eq!(
        bev.dns_error(&mut base).unwrap().as_deref(),
        Some("name does not exist")
    );
    let _ = TcpStream::connect(good.local_addr().unwrap());
}

/// One part of a `resolve_parts` answer: the addresses (or the error) and
/// whether it was the last part.
type Part = (Result<Vec<SocketAddr>, String>, bool);

#[test]
fn resolve_parts_hands_over_each_family_as_it_comes() {
    // RFC 8305 section 3 needs AAAA and A separately: `Family::Any` gives
    // two parts (the last one flagged), one family gives one.
    let _w = Watchdog::new("resolve_parts", Duration::from_secs(30));
    let mut base = EventBase::new().unwrap();
    let (_server, dns) = resolver_of(&mut base, |name, owner, qtype, req| {
        match (name, qtype) {
            ("dual.test" | "v4only.test", RecordType::A) => {
                req.add_a_reply(owner, &[Ipv4Addr::new(10, 0, 0, 1)], 60)
            }
            ("dual.test", RecordType::AAAA) => {
                req.add_aaaa_reply(owner, &[Ipv6Addr::LOCALHOST], 60)
            }
            _ => {}
        }
        Rcode::NOERROR
    });
    let collect = |base: &mut EventBase, host: &str, family: Family| -> Vec<Part> {
        let parts: Log<Part> = log();
        let p = parts.clone();
        dns.resolve_parts(
            base,
            host,
            443,
            family,
            Box::new(move |_, r, last| {
                p.borrow_mut()
                    .push((r.map_err(|e: io::Error| e.to_string()), last))
            }),
        );
        assert!(run_until(base, Duration::from_secs(10), || parts
            .borrow()
            .last()
            .is_some_and(|(_, last)| *last)));
        parts.take()
    };
    let dual = collect(&mut base, "dual.test", Family::Any);
    assert_eq!(dual.len(), 2, "{dual:?}");
    assert!(!dual[0].1 && dual[1].1, "{dual:?}");
    let mut addrs: Vec<SocketAddr> = dual.iter().flat_map(|(r, _)| r.clone().unwrap()).collect();
    addrs.sort();
    assert_eq!(
        addrs,
        vec![
            SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 443)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, 443)),
        ]
    );
    // No AAAA: that part is an error, the A part still comes.
    let v4only = collect(&mut base, "v4only.test", Family::Any);
    assert_eq!(v4only.len(), 2, "{v4only:?}");
    assert_eq!(v4only.iter().filter(|(r, _)| r.is_err()).count(), 1);
    assert!(
        v4only
            .iter()
            .any(|(r, _)| r.as_ref().is_ok_and(|a| a.len() == 1))
    );
    // One family: one part.
    let one = collect(&mut base, "dual.test", Family::V6);
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(one[0].1);
}
