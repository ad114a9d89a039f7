//! The resolver against a real dnsmasq on loopback (libevent's
//! `test/regress_dns.c` in spirit): A, AAAA, PTR, CNAME, NXDOMAIN, search
//! list and ndots, cancellation, freeing, getaddrinfo.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use oxevent_core::EventBase;
use oxevent_dns::{
    Answer, DnsBase, Error, Family, GaiFlags, GaiHints, Init, QueryFlags, RecordType,
};
use oxevent_test_support::Watchdog;

use crate::common::{Dnsmasq, Log, log, run_until};

type Outcome = Result<Answer, String>;

fn setup() -> (EventBase, DnsBase, Dnsmasq) {
    let d = Dnsmasq::start();
    let mut base = EventBase::new().unwrap();
    let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
    dns.nameserver_sockaddr_add(&mut base, d.addr).unwrap();
    (base, dns, d)
}

fn push(l: &Log<Outcome>) -> impl FnOnce(&mut EventBase, oxevent_dns::Result<Answer>) + 'static {
    let l = l.clone();
    move |_, r| l.borrow_mut().push(r.map_err(|e| e.to_string()))
}

fn wait1(base: &mut EventBase, l: &Log<Outcome>) -> Outcome {
    assert!(run_until(base, Duration::from_secs(10), || !l
        .borrow()
        .is_empty()));
    l.borrow()[0].clone()
}

#[test]
fn a_aaaa_ptr_and_cname() {
    let _w = Watchdog::new("a_aaaa_ptr_and_cname", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    assert_eq!(dns.count_nameservers(&mut base), 1);

    let l = log();
    dns.resolve_ipv4(&mut base, "a.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.addrs(), vec![IpAddr::from([10, 1, 0, 1])]);
    assert!(a.ttl() > 0);

    let l = log();
    dns.resolve_ipv4(&mut base, "multi.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let mut got = wait1(&mut base, &l).unwrap().addrs();
    got.sort();
    assert_eq!(
        got,
        vec![IpAddr::from([10, 1, 0, 4]), IpAddr::from([10, 1, 0, 5])]
    );

    let l = log();
    dns.resolve_ipv6(&mut base, "a.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.addrs(), vec![IpAddr::V6("fd00::1".parse().unwrap())]);

    let l = log();
    dns.resolve_reverse(
        &mut base,
        Ipv4Addr::new(10, 1, 0, 2),
        QueryFlags::NONE,
        push(&l),
    )
    .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.ptrs(), vec!["b.test"]);

    let l = log();
    dns.resolve_reverse_ipv6(
        &mut base,
        "fd00::1".parse::<Ipv6Addr>().unwrap(),
        QueryFlags::NONE,
        push(&l),
    )
    .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.ptrs(), vec!["a.test"]);

    // CNAME chain reported, final address given.
    let l = log();
    dns.resolve_ipv4(&mut base, "alias2.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.cnames(), vec!["alias.test", "a.test"]);
    assert_eq!(a.canonical_name(), "a.test");
    assert_eq!(a.addrs(), vec![IpAddr::from([10, 1, 0, 1])]);
    assert!(a.records.iter().any(|r| r.rtype == RecordType::CNAME));
}

#[test]
fn nxdomain_and_nodata_are_errors() {
    let _w = Watchdog::new("nxdomain", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    let l = log();
    dns.resolve_ipv4(&mut base, "nope.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let e = wait1(&mut base, &l).unwrap_err();
    assert_eq!(e, Error::NotExist.to_string());

    let l = log();
    dns.resolve_ipv6(&mut base, "b.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let e = wait1(&mut base, &l).unwrap_err();
    assert_eq!(e, Error::NoData.to_string());

    // Invalid names are refused at once, with no callback.
    let long = "a".repeat(64) + ".test";
    assert!(matches!(
        dns.resolve_ipv4(&mut base, &long, QueryFlags::NONE, |_, _| panic!(
            "no callback"
        )),
        Err(Error::InvalidName(_))
    ));
    assert!(
        dns.resolve_ipv4(&mut base, "a..b", QueryFlags::NONE, |_, _| panic!())
            .is_err()
    );
}

#[test]
fn search_list_and_ndots() {
    let _w = Watchdog::new("search", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    dns.search_add(&mut base, "search.test");

    // No dot (< ndots 1): the search list first.
    let l = log();
    dns.resolve_ipv4(&mut base, "x", QueryFlags::NONE, push(&l))
        .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.name, "x.search.test");
    assert_eq!(a.addrs(), vec![IpAddr::from([10, 1, 0, 3])]);

    // Two dots >= ndots 1: as-is first.
    let l = log();
    dns.resolve_ipv4(&mut base, "two.dots.test", QueryFlags::NONE, push(&l))
        .unwrap();
    assert_eq!(
        wait1(&mut base, &l).unwrap().addrs(),
        vec![IpAddr::from([10, 1, 0, 6])]
    );

    // ndots 5: the search list first.
    dns.search_ndots_set(&mut base, 5);
    let l = log();
    dns.resolve_ipv4(&mut base, "two.dots.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let a = wait1(&mut base, &l).unwrap();
    assert_eq!(a.name, "two.dots.test.search.test");
    assert_eq!(a.addrs(), vec![IpAddr::from([10, 1, 0, 7])]);

    // Not found with the suffix: falls back to the bare name.
    let l = log();
    dns.resolve_ipv4(&mut base, "a.test", QueryFlags::NONE, push(&l))
        .unwrap();
    assert_eq!(wait1(&mut base, &l).unwrap().name, "a.test");

    // NO_SEARCH and a final dot skip the list.
    let l = log();
    dns.resolve_ipv4(&mut base, "x", QueryFlags::NO_SEARCH, push(&l))
        .unwrap();
    assert!(wait1(&mut base, &l).is_err());
    let l = log();
    dns.resolve_ipv4(&mut base, "x.", QueryFlags::NONE, push(&l))
        .unwrap();
    assert!(wait1(&mut base, &l).is_err());

    dns.search_clear(&mut base);
    let l = log();
    dns.resolve_ipv4(&mut base, "x", QueryFlags::NONE, push(&l))
        .unwrap();
    assert!(wait1(&mut base, &l).is_err());
}

#[test]
fn resolv_conf_configures_the_resolver() {
    let _w = Watchdog::new("resolv_conf", Duration::from_secs(30));
    let d = Dnsmasq::start();
    let conf = crate::common::TempFile::new(
        "resolv",
        &format!(
            "# test\nnameserver {}\nsearch search.test other.test\noptions ndots:2 timeout:2 attempts:4 rotate edns0\n",
            d.addr
        ),
    );
    let mut base = EventBase::new().unwrap();
    let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
    dns.resolv_conf_parse(&mut base, oxevent_dns::ConfParts::ALL, &conf.0)
        .unwrap();
    assert_eq!(dns.count_nameservers(&mut base), 1);
    let o = dns.options(&mut base).unwrap();
    assert_eq!((o.ndots, o.attempts, o.rotate), (2, 4, true));
    assert_eq!(o.timeout, Duration::from_secs(2));
    assert_eq!(o.edns_udp_size, Some(1232));
    let l = log();
    dns.resolve_ipv4(&mut base, "x", QueryFlags::NONE, push(&l))
        .unwrap();
    assert_eq!(
        wait1(&mut base, &l).unwrap().addrs(),
        vec![IpAddr::from([10, 1, 0, 3])]
    );
}

/// `Init::System` reads the machine's own /etc/resolv.conf: the same
/// nameservers (127.0.0.1:53 when it names none or is missing) and options
/// as parsing the file directly gives.
#[test]
fn init_system_reads_the_system_resolv_conf() {
    let path = std::path::Path::new("/etc/resolv.conf");
    let conf = oxevent_dns::ResolvConf::load(path).unwrap_or_default();
    let mut want: Vec<std::net::SocketAddr> = Vec::new();
    for a in &conf.nameservers {
        if !want.contains(a) {
            want.push(*a);
        }
    }
    if want.is_empty() {
        want.push(std::net::SocketAddr::from(([127, 0, 0, 1], 53)));
    }
    let mut opts = oxevent_dns::Options::default();
    for (k, v) in &conf.options {
        let _ = opts.set(k, v);
    }
    let mut base = EventBase::new().unwrap();
    let dns = DnsBase::new(&mut base, Init::System).unwrap();
    let got: Vec<_> = dns
        .nameservers(&mut base)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(got, want);
    assert_eq!(dns.options(&mut base).unwrap(), opts);
    dns.free(&mut base, false);
}

#[test]
fn many_in_flight_with_a_small_window() {
    let _w = Watchdog::new("inflight", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    dns.set_option(&mut base, "max-inflight:", "3").unwrap();
    dns.set_option(&mut base, "socket-rotate:", "5").unwrap();
    let l = log();
    for i in 0..60 {
        let name = if i % 2 == 0 { "a.test" } else { "b.test" };
        dns.resolve_ipv4(&mut base, name, QueryFlags::NONE, push(&l))
            .unwrap();
    }
    assert!(run_until(&mut base, Duration::from_secs(20), || l
        .borrow()
        .len()
        == 60));
    assert!(l.borrow().iter().all(Result::is_ok));
}

/// Lookups started from the callbacks of answers (read in batches), with
/// the pool rotating fast: every one gets the right answer, and a lookup
/// started and cancelled inside a callback reports `Cancelled` and never
/// an answer.
#[test]
fn lookups_started_from_answer_callbacks() {
    use std::cell::Cell;
    use std::rc::Rc;
    let _w = Watchdog::new("chained", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    dns.set_option(&mut base, "max-inflight:", "40").unwrap();
    dns.set_option(&mut base, "socket-rotate:", "7").unwrap();
    const TOTAL: usize = 400;
    let l: Log<(usize, Outcome)> = log();
    let cancelled: Log<Outcome> = log();
    let started = Rc::new(Cell::new(0usize));
    fn start(
        base: &mut EventBase,
        dns: DnsBase,
        started: &Rc<Cell<usize>>,
        l: &Log<(usize, Outcome)>,
        cancelled: &Log<Outcome>,
    ) {
        let i = started.get();
        if i >= TOTAL {
            return;
        }
        started.set(i + 1);
        let name = if i % 2 == 0 { "a.test" } else { "b.test" };
        let (started2, l2, c2) = (started.clone(), l.clone(), cancelled.clone());
        dns.resolve_ipv4(base, name, QueryFlags::NONE, move |base, r| {
            l2.borrow_mut().push((i, r.map_err(|e| e.to_string())));
            if i % 50 == 0 {
                // Started and cancelled inside the callback.
                let c3 = c2.clone();
                let req = dns
                    .resolve_ipv4(base, "a.test", QueryFlags::NONE, move |_, r| {
                        c3.borrow_mut().push(r.map_err(|e| e.to_string()));
                    })
                    .unwrap();
                req.cancel(base);
            }
            start(base, dns, &started2, &l2, &c2);
        })
        .unwrap();
    }
    for _ in 0..40 {
        start(&mut base, dns, &started, &l, &cancelled);
    }
    assert!(run_until(&mut base, Duration::from_secs(20), || l
        .borrow()
        .len()
        == TOTAL));
    for (i, r) in l.borrow().iter() {
        let want = if i % 2 == 0 {
            [10, 1, 0, 1]
        } else {
            [10, 1, 0, 2]
        };
        assert_eq!(
            r.as_ref().map(Answer::addrs),
            Ok(vec![IpAddr::from(want)]),
            "lookup {i}"
        );
    }
    let c = cancelled.borrow();
    assert_eq!(c.len(), TOTAL / 50);
    assert!(c.iter().all(|r| r == &Err(Error::Cancelled.to_string())));
}

/// `resolve_ref` lends the answer; one after another (so the resolver
/// reuses the allocations of the last answer for the next) they match what
/// `resolve` gives: one record, two, a CNAME chain, one record again, an
/// NXDOMAIN; the name asked comes back in the case asked.
#[test]
fn resolve_ref_lends_answers_equal_to_owned_ones() {
    let _w = Watchdog::new("resolve_ref", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    let names = [
        "a.test",
        "multi.test",
        "alias2.test",
        "B.Test",
        "a.test",
        "missing.test",
        "alias.test",
    ];
    // All the lent ones first, so each reuses the last one's allocations.
    let mut lent = Vec::new();
    for name in names {
        let l: Log<Outcome> = log();
        let l2 = l.clone();
        dns.resolve_ref(
            &mut base,
            name,
            RecordType::A,
            QueryFlags::NONE,
            move |_, r| l2.borrow_mut().push(r.cloned().map_err(|e| e.to_string())),
        )
        .unwrap();
        lent.push(wait1(&mut base, &l));
    }
    for (name, got) in names.into_iter().zip(lent) {
        let owned = log();
        dns.resolve(
            &mut base,
            name,
            RecordType::A,
            QueryFlags::NONE,
            push(&owned),
        )
        .unwrap();
        let want = wait1(&mut base, &owned);
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                assert_eq!(g.name, name, "{name}");
                assert_eq!(g.cnames(), w.cnames(), "{name}");
                let (mut ga, mut wa) = (g.addrs(), w.addrs());
                ga.sort();
                wa.sort();
                assert_eq!(ga, wa, "{name}");
                assert!(!ga.is_empty(), "{name}");
                assert_eq!(g.records.len(), w.records.len(), "{name}");
            }
            (Err(g), Err(w)) => assert_eq!(g, w, "{name}"),
            _ => panic!("{name}: lent {got:?}, owned {want:?}"),
        }
    }
}

#[test]
fn cancel_from_inside_callbacks() {
    let _w = Watchdog::new("cancel", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    let l: Log<Outcome> = log();
    let second = dns
        .resolve_ipv4(&mut base, "b.test", QueryFlags::NONE, push(&l))
        .unwrap();
    let l2 = l.clone();
    // The first callback cancels the second, which then reports Cancelled
    // (or it may have finished first: then cancel does nothing).
    dns.resolve_ipv4(&mut base, "a.test", QueryFlags::NONE, move |base, r| {
        l2.borrow_mut().push(r.map_err(|e| e.to_string()));
        second.cancel(base);
        second.cancel(base);
    })
    .unwrap();
    // A cancel right away runs the callback with Cancelled.
    let l3: Log<Outcome> = log();
    let third = dns
        .resolve_ipv4(&mut base, "a.test", QueryFlags::NONE, push(&l3))
        .unwrap();
    third.cancel(&mut base);
    assert_eq!(l3.borrow().len(), 1);
    assert!(l3.borrow()[0].as_ref().unwrap_err().contains("cancel"));
    assert!(!third.is_pending(&mut base));
    assert!(run_until(&mut base, Duration::from_secs(10), || l
        .borrow()
        .len()
        == 2));
    // Freeing the resolver from inside a callback, with requests pending.
    let l4: Log<Outcome> = log();
    let l5 = l4.clone();
    dns.resolve_ipv4(&mut base, "a.test", QueryFlags::NONE, move |base, r| {
        l5.borrow_mut().push(r.map_err(|e| e.to_string()));
        dns.free(base, true);
    })
    .unwrap();
    dns.resolve_ipv4(&mut base, "nope.test", QueryFlags::NONE, push(&l4))
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), || l4
        .borrow()
        .len()
        == 2));
    assert!(!dns.is_valid(&mut base));
    // The loop exits: nothing left.
    base.dispatch().unwrap();
}

#[test]
fn getaddrinfo_numeric_hosts_dns_and_cache() {
    let _w = Watchdog::new("getaddrinfo", Duration::from_secs(30));
    let (mut base, dns, _d) = setup();
    type G = Result<oxevent_dns::AddrInfo, String>;
    let l: Log<G> = log();
    let push_g = |l: &Log<G>| {
        let l = l.clone();
        move |_: &mut EventBase, r: oxevent_dns::Result<oxevent_dns::AddrInfo>| {
            l.borrow_mut().push(r.map_err(|e| e.to_string()));
        }
    };
    // Numeric: at once.
    let h = GaiHints::default();
    assert!(
        dns.getaddrinfo(&mut base, Some("10.9.9.9"), Some("80"), &h, push_g(&l))
            .is_none()
    );
    assert_eq!(
        l.borrow()[0].as_ref().unwrap().addrs,
        vec!["10.9.9.9:80".parse().unwrap()]
    );
    // Hosts file wins over DNS.
    dns.hosts_add(&mut base, "a.test", IpAddr::from([192, 0, 2, 1]));
    assert!(
        dns.getaddrinfo(&mut base, Some("A.test"), Some("http"), &h, push_g(&l))
            .is_none()
    );
    assert_eq!(
        l.borrow()[1].as_ref().unwrap().addrs,
        vec!["192.0.2.1:80".parse().unwrap()]
    );
    // NUMERICHOST refuses names; bad services are refused.
    let nh = GaiHints {
        family: Family::Any,
        flags: GaiFlags::NUMERICHOST,
    };
    dns.getaddrinfo(&mut base, Some("b.test"), None, &nh, push_g(&l));
    assert!(l.borrow()[2].is_err());
    dns.getaddrinfo(
        &mut base,
        Some("b.test"),
        Some("nosuchservice"),
        &h,
        push_g(&l),
    );
    assert!(l.borrow()[3].as_ref().unwrap_err().contains("service"));
    // From DNS: A and AAAA in parallel; v6 first.
    let l: Log<G> = log();
    let canon = GaiHints {
        family: Family::Any,
        flags: GaiFlags::CANONNAME,
    };
    dns.hosts_add(&mut base, "unrelated.test", IpAddr::from([192, 0, 2, 9]));
    assert!(
        dns.getaddrinfo(
            &mut base,
            Some("alias.test"),
            Some("443"),
            &canon,
            push_g(&l)
        )
        .is_some()
    );
    assert!(run_until(&mut base, Duration::from_secs(10), || !l
        .borrow()
        .is_empty()));
    let ai = l.borrow()[0].clone().unwrap();
    assert_eq!(
        ai.addrs,
        vec![
            "[fd00::1]:443".parse().unwrap(),
            "10.1.0.1:443".parse().unwrap()
        ]
    );
    assert_eq!(ai.canonname.as_deref(), Some("a.test"));
    // Now cached: answered at once.
    assert!(
        dns.getaddrinfo(&mut base, Some("alias.test"), Some("443"), &h, push_g(&l))
            .is_none()
    );
    assert_eq!(l.borrow()[1].as_ref().unwrap().addrs.len(), 2);
    // Only IPv4; a missing name; a cancelled one.
    let v4 = GaiHints {
        family: Family::V4,
        flags: GaiFlags::NONE,
    };
    dns.getaddrinfo(&mut base, Some("b.test"), None, &v4, push_g(&l));
    dns.getaddrinfo(&mut base, Some("nope.test"), None, &h, push_g(&l));
    let c = dns
        .getaddrinfo(&mut base, Some("multi.test"), None, &h, push_g(&l))
        .unwrap();
    c.cancel(&mut base);
    c.cancel(&mut base);
    assert!(run_until(&mut base, Duration::from_secs(10), || l
        .borrow()
        .len()
        == 5));
    let got = l.borrow();
    assert!(got[2..].iter().any(|r| {
        r.as_ref()
            .is_ok_and(|a| a.addrs == vec!["10.1.0.2:0".parse().unwrap()])
    }));
    assert!(
        got[2..]
            .iter()
            .any(|r| r.as_ref().is_err_and(|e| e.contains("does not exist")))
    );
    assert!(
        got[2..]
            .iter()
            .any(|r| r.as_ref().is_err_and(|e| e.contains("cancel")))
    );
}
