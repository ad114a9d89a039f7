//! The resolver against fake servers: a silent socket (timeouts, never a
//! hang), wrong ids and wrong questions (ignored), truncated answers (TC,
//! then TCP), SERVFAIL, malformed answers, 0x20 case checks, nameserver
//! health with probes, suspend and resume.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use oxevent_core::EventBase;
use oxevent_dns::{Answer, DnsBase, Init, QueryFlags};
use oxevent_test_support::Watchdog;

use crate::common::{Dnsmasq, Log, log, run_until};

/// What the fake server does with each query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Silent = 0,
    Answer = 1,
    /// A wrong id, then a wrong question, then the right answer.
    Noise = 2,
    /// TC over UDP; the full answer over TCP.
    Truncate = 3,
    ServFail = 4,
    /// The question echoed in lower case (breaks 0x20).
    Lowercase = 5,
    /// A matching header and question, then garbage.
    Malformed = 6,
}

struct Fake {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The answer to `q`: header and question copied, one A record 10.9.9.9.
fn answer(q: &[u8], qend: usize, tc: bool, rcode: u8) -> Vec<u8> {
    let mut r = q[..qend].to_vec();
    r[2] = 0x81 | if tc { 0x02 } else { 0 };
    r[3] = 0x80 | rcode;
    r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    if !tc && rcode == 0 {
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 9, 9]);
    }
    r
}

fn question_end(q: &[u8]) -> Option<usize> {
    let mut p = 12;
    while *q.get(p)? != 0 {
        p += usize::from(q[p]) + 1;
    }
    (p + 5 <= q.len()).then_some(p + 5)
}

fn respond(mode: Mode, q: &[u8]) -> Vec<Vec<u8>> {
    let Some(qend) = question_end(q) else {
        return Vec::new();
    };
    match mode {
        Mode::Silent => Vec::new(),
        Mode::Answer => vec![answer(q, qend, false, 0)],
        Mode::Noise => {
            let mut wrong_id = answer(q, qend, false, 0);
            wrong_id[0] ^= 0x55;
            let mut wrong_q = answer(q, qend, false, 0);
            wrong_q[13] ^= 0x01; // another first letter
            vec![wrong_id, wrong_q, answer(q, qend, false, 0)]
        }
        Mode::Truncate => vec![answer(q, qend, true, 0)],
        Mode::ServFail => vec![answer(q, qend, false, 2)],
        Mode::Lowercase => {
            let mut a = answer(q, qend, false, 0);
            a[12..qend - 4].make_ascii_lowercase();
            vec![a]
        }
        Mode::Malformed => {
            let mut a = answer(q, qend, false, 0);
            a[7] = 3; // three answers claimed, one present
            vec![a]
        }
    }
}

impl Fake {
    fn start(mode: Mode) -> Self {
        let (udp, tcp) = crate::common::udp_and_tcp();
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let m = Arc::new(AtomicU8::new(mode as u8));
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m2, q2, s2) = (m.clone(), queries.clone(), stop.clone());
        let t1 = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s2.load(Ordering::Acquire) {
                let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                q2.fetch_add(1, Ordering::AcqRel);
                let mode = mode_of(m2.load(Ordering::Acquire));
                for r in respond(mode, &buf[..n]) {
                    let _ = udp.send_to(&r, peer);
                }
            }
        });
        let s3 = stop.clone();
        let t2 = std::thread::spawn(move || {
            while !s3.load(Ordering::Acquire) {
                let Ok((mut c, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut inbuf = Vec::new();
                while !s3.load(Ordering::Acquire) {
                    let mut b = [0u8; 4096];
                    match c.read(&mut b) {
                        Ok(0) => break,
                        Ok(n) => inbuf.extend_from_slice(&b[..n]),
                        Err(_) => {}
                    }
                    while inbuf.len() >= 2 {
                        let len = usize::from(u16::from_be_bytes([inbuf[0], inbuf[1]]));
                        if inbuf.len() < 2 + len {
                            break;
                        }
                        let q: Vec<u8> = inbuf.drain(..2 + len).skip(2).collect();
                        if let Some(qend) = question_end(&q) {
                            let a = answer(&q, qend, false, 0);
                            let _ = c.write_all(&(a.len() as u16).to_be_bytes());
                            let _ = c.write_all(&a);
                        }
                    }
                }
            }
        });
        Self {
            addr,
            mode: m,
            queries,
            stop,
            threads: vec![t1, t2],
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }
}

fn mode_of(v: u8) -> Mode {
    match v {
        1 => Mode::Answer,
        2 => Mode::Noise,
        3 => Mode::Truncate,
        4 => Mode::ServFail,
        5 => Mode::Lowercase,
        6 => Mode::Malformed,
        _ => Mode::Silent,
    }
}

type Outcome = Result<Answer, String>;

fn push(l: &Log<Outcome>) -> impl FnOnce(&mut EventBase, oxevent_dns::Result<Answer>) + 'static {
    let l = l.clone();
    move |_, r| l.borrow_mut().push(r.map_err(|e| e.to_string()))
}

fn resolver(base: &mut EventBase, servers: &[SocketAddr]) -> DnsBase {
    let dns = DnsBase::new(base, Init::Empty).unwrap();
    for s in servers {
        dns.nameserver_sockaddr_add(base, *s).unwrap();
    }
    dns.set_option(base, "timeout:", "0.2").unwrap();
    dns
}

fn one(base: &mut EventBase, dns: DnsBase, name: &str) -> Outcome {
    let l = log();
    dns.resolve_ipv4(base, name, QueryFlags::NONE, push(&l))
        .unwrap();
    assert!(run_until(base, Duration::from_secs(15), || !l
        .borrow()
        .is_empty()));
    l.borrow()[0].clone()
}

const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9));

#[test]
fn a_silent_server_times_out_after_the_attempts() {
    let _w = Watchdog::new("silent", Duration::from_secs(30));
    let fake = Fake::start(Mode::Silent);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr]);
    dns.set_option(&mut base, "attempts:", "3").unwrap();
    let e = one(&mut base, dns, "x.test").unwrap_err();
    assert_eq!(e, "request timed out");
    assert!(run_until(&mut base, Duration::from_secs(5), || fake
        .queries
        .load(Ordering::Acquire)
        >= 3));
    // Down now: still no hang, the request fails after its attempts.
    assert_eq!(dns.nameservers(&mut base), vec![(fake.addr, false)]);
    assert_eq!(
        one(&mut base, dns, "y.test").unwrap_err(),
        "request timed out"
    );
    // No servers at all: refused at once.
    let empty = DnsBase::new(&mut base, Init::Empty).unwrap();
    assert!(
        empty
            .resolve_ipv4(&mut base, "x.test", QueryFlags::NONE, |_, _| ())
            .is_err()
    );
    dns.free(&mut base, true);
}

#[test]
fn wrong_ids_and_questions_are_ignored() {
    let _w = Watchdog::new("noise", Duration::from_secs(30));
    let fake = Fake::start(Mode::Noise);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr]);
    for _ in 0..5 {
        let a = one(&mut base, dns, "noise.test").unwrap();
        assert_eq!(a.addrs(), vec![ADDR]);
    }
    // Only one query each: the noise did not cause retries.
    assert_eq!(fake.queries.load(Ordering::Acquire), 5);
}

#[test]
fn truncated_answers_are_fetched_over_tcp() {
    let _w = Watchdog::new("truncate", Duration::from_secs(30));
    let fake = Fake::start(Mode::Truncate);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr]);
    let l = log();
    for i in 0..4 {
        dns.resolve_ipv4(
            &mut base,
            &format!("tc{i}.test"),
            QueryFlags::NONE,
            push(&l),
        )
        .unwrap();
    }
    assert!(run_until(&mut base, Duration::from_secs(10), || l
        .borrow()
        .len()
        == 4));
    assert!(
        l.borrow()
            .iter()
            .all(|r| r.as_ref().is_ok_and(|a| a.addrs() == vec![ADDR]))
    );
    // ignore-tc: the empty truncated answer is taken as it is.
    dns.set_option(&mut base, "ignore-tc:", "1").unwrap();
    assert_eq!(
        one(&mut base, dns, "tc.test").unwrap_err(),
        "no records in the reply"
    );
}

#[test]
fn servfail_is_an_answer_and_malformed_is_an_error() {
    let _w = Watchdog::new("servfail", Duration::from_secs(30));
    let fake = Fake::start(Mode::ServFail);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr]);
    assert_eq!(one(&mut base, dns, "sf.test").unwrap_err(), "server failed");
    assert_eq!(
        fake.queries.load(Ordering::Acquire),
        1,
        "no retry on SERVFAIL"
    );
    assert_eq!(
        dns.nameservers(&mut base),
        vec![(fake.addr, true)],
        "still up"
    );
    fake.set(Mode::Malformed);
    assert!(
        one(&mut base, dns, "bad.test")
            .unwrap_err()
            .starts_with("malformed message")
    );
}

#[test]
fn case_randomisation_is_checked() {
    let _w = Watchdog::new("0x20", Duration::from_secs(30));
    let fake = Fake::start(Mode::Lowercase);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr]);
    dns.set_option(&mut base, "attempts:", "2").unwrap();
    // A long name: its case is randomised, the lower-cased echo is refused.
    let name = "abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz.test";
    assert_eq!(one(&mut base, dns, name).unwrap_err(), "request timed out");
    dns.set_option(&mut base, "randomize-case:", "0").unwrap();
    assert_eq!(one(&mut base, dns, name).unwrap().addrs(), vec![ADDR]);
}

#[test]
fn a_down_server_is_skipped_then_probed_back_up() {
    let _w = Watchdog::new("health", Duration::from_secs(60));
    let d = Dnsmasq::start();
    let fake = Fake::start(Mode::Silent);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr, d.addr]);
    dns.set_option(&mut base, "max-timeouts:", "1").unwrap();
    dns.set_option(&mut base, "initial-probe-timeout:", "0.3")
        .unwrap();
    // The first server is silent: marked down, the request goes on to the second.
    let a = one(&mut base, dns, "a.test").unwrap();
    assert_eq!(a.addrs(), vec![IpAddr::from([10, 1, 0, 1])]);
    assert_eq!(
        dns.nameservers(&mut base),
        vec![(fake.addr, false), (d.addr, true)]
    );
    // While down, requests go straight to the second one.
    let before = fake.queries.load(Ordering::Acquire);
    for _ in 0..3 {
        assert!(one(&mut base, dns, "b.test").is_ok());
    }
    // The probes keep going to the down one; once it answers, it is up again.
    fake.set(Mode::Answer);
    assert!(run_until(&mut base, Duration::from_secs(20), || {
        fake.queries.load(Ordering::Acquire) > before
    }));
    let mut up = false;
    crate::common::run_until_b(&mut base, Duration::from_secs(20), |b| {
        up = dns.nameservers(b)[0].1;
        up
    });
    assert!(up, "probed back up");
    dns.free(&mut base, false);
}

#[test]
fn suspend_and_resume() {
    let _w = Watchdog::new("suspend", Duration::from_secs(30));
    let d = Dnsmasq::start();
    let fake = Fake::start(Mode::Silent);
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[fake.addr]);
    let l = log();
    dns.resolve_ipv4(&mut base, "a.test", QueryFlags::NONE, push(&l))
        .unwrap();
    dns.clear_nameservers_and_suspend(&mut base).unwrap();
    assert_eq!(dns.count_nameservers(&mut base), 0);
    dns.resolve_ipv4(&mut base, "b.test", QueryFlags::NONE, push(&l))
        .unwrap();
    run_until(&mut base, Duration::from_millis(300), || false);
    assert!(l.borrow().is_empty(), "held while suspended");
    dns.nameserver_sockaddr_add(&mut base, d.addr).unwrap();
    dns.resume(&mut base).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), || l
        .borrow()
        .len()
        == 2));
    assert!(l.borrow().iter().all(Result::is_ok));
}

/// A lookup started from the callback of an answer leaves at once, before
/// the next answer read in the same batch (one `recvmmsg`) is handled: the
/// resolver does not hold the queries of a batch until it ends (which held
/// the first answers' queries back and sent them in bursts).
#[test]
fn a_query_from_a_callback_leaves_before_the_next_answer_of_its_batch() {
    let _w = Watchdog::new("immediate send", Duration::from_secs(30));
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let peek = server.try_clone().unwrap();
    let addr = server.local_addr().unwrap();
    let mut base = EventBase::new().unwrap();
    let dns = resolver(&mut base, &[addr]);
    // One socket, so both answers are read by one call; no retransmission
    // while the test thread answers.
    dns.set_option(&mut base, "socket-pool:", "1").unwrap();
    dns.set_option(&mut base, "timeout:", "10").unwrap();
    // Two answers that arrive together, so that the socket's next read
    // asks for two (a full read of one doubles it).
    let warm: Log<Outcome> = log();
    for name in ["w1.test", "w2.test"] {
        dns.resolve_ipv4(&mut base, name, QueryFlags::NONE, push(&warm))
            .unwrap();
    }
    answer_together(&server, 2);
    assert!(run_until(&mut base, Duration::from_secs(10), || warm
        .borrow()
        .len()
        == 2));
    assert!(warm.borrow().iter().all(Result::is_ok));
    let events: Log<String> = log();
    // The third query, as the server saw it during the second callback.
    let third: Log<(Vec<u8>, SocketAddr)> = log();
    let ev = events.clone();
    dns.resolve_ipv4(&mut base, "one.test", QueryFlags::NONE, move |base, r| {
        ev.borrow_mut().push(format!("one {}", r.is_ok()));
        let ev2 = ev.clone();
        dns.resolve_ipv4(base, "three.test", QueryFlags::NONE, move |_, r| {
            ev2.borrow_mut().push(format!("three {}", r.is_ok()));
        })
        .unwrap();
    })
    .unwrap();
    let (ev, third2) = (events.clone(), third.clone());
    dns.resolve_ipv4(&mut base, "two.test", QueryFlags::NONE, move |_, r| {
        // The first answer's callback ran just before: its query must be
        // at the server already.
        peek.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let got = peek.recv_from(&mut buf).ok();
        ev.borrow_mut()
            .push(format!("two {} third-sent {}", r.is_ok(), got.is_some()));
        third2
            .borrow_mut()
            .extend(got.map(|(n, from)| (buf[..n].to_vec(), from)));
    })
    .unwrap();
    // Both queries in, then both answers out before the loop runs, so the
    // resolver reads them together.
    answer_together(&server, 2);
    assert!(run_until(&mut base, Duration::from_secs(10), || events
        .borrow()
        .len()
        >= 2));
    assert_eq!(
        *events.borrow(),
        [
            "one true".to_string(),
            "two true third-sent true".to_string()
        ]
    );
    let (q, from) = third.borrow_mut().pop().expect("the third query");
    let qend = question_end(&q).unwrap();
    server.send_to(&answer(&q, qend, false, 0), from).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), || events
        .borrow()
        .len()
        == 3));
    assert_eq!(events.borrow()[2], "three true");
}

/// Reads `n` queries on `server`, then answers them all (before the
/// resolver's loop runs again, so they wait together on its socket).
fn answer_together(server: &std::net::UdpSocket, n: usize) {
    let mut queries = Vec::new();
    for _ in 0..n {
        let mut buf = [0u8; 512];
        let (len, from) = server.recv_from(&mut buf).unwrap();
        queries.push((buf[..len].to_vec(), from));
    }
    for (q, from) in &queries {
        let qend = question_end(q).unwrap();
        server.send_to(&answer(q, qend, false, 0), from).unwrap();
    }
}
