//! DNS resolver benchmark client (issue 7): Q lookups of `name<i>.bench.test`
//! (i from a seeded PRNG below NAMES) with F in flight, against one
//! nameserver, with one base and one resolver (no resolv.conf, no hosts, no
//! search list, no cache).
//!
//! `dns_bench -s 127.0.0.1:PORT -q Q -f F -n NAMES [-S SEED] [-T LIMIT_SECONDS] [-i IMPL]`
//!
//! A lookup is ok when the answer is NOERROR with exactly one A record equal
//! to 10.0.0.0 + i + 1. Prints `dns.resolve.rate`, `dns.resolve.p50`,
//! `dns.resolve.p99` and `dns.resolve.client_cpu` RESULT lines; exits
//! non-zero on any error.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent::EventBase;
use oxevent::dns::{DnsBase, Init, QueryFlags, RData, RecordType};

struct Args {
    server: SocketAddr,
    q: u64,
    f: u64,
    names: u64,
    seed: u64,
    limit: u64,
    imp: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: dns_bench -s 127.0.0.1:PORT -q Q -f F -n NAMES [-S SEED] [-T LIMIT_SECONDS] [-i IMPL]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        server: SocketAddr::from(([127, 0, 0, 1], 53)),
        q: 0,
        f: 0,
        names: 0,
        seed: 1,
        limit: 60,
        imp: "oxevent".into(),
    };
    let mut server = None;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let num = || v.parse::<u64>().unwrap_or_else(|_| usage());
        match k.as_str() {
            "-s" => server = Some(v.parse().unwrap_or_else(|_| usage())),
            "-q" => a.q = num(),
            "-f" => a.f = num(),
            "-n" => a.names = num(),
            "-S" => a.seed = num(),
            "-T" => a.limit = num(),
            "-i" => a.imp = v,
            _ => usage(),
        }
    }
    a.server = server.unwrap_or_else(|| usage());
    if a.q == 0 || a.f == 0 || a.names == 0 || a.names > 1 << 24 {
        usage();
    }
    a
}

/// xorshift64*: the same sequence as the C clients.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct State {
    /// Q, F and NAMES (copied from the arguments, so a callback captures
    /// one `Rc`).
    q: u64,
    f: u64,
    names: u64,
    prng: Prng,
    started: u64,
    done: u64,
    ok: u64,
    errors: u64,
    lat_ns: Vec<u64>,
    /// The buffer the next name is written into.
    name: String,
}

/// Writes `name<i>.bench.test` into `buf` (cleared first; its capacity is
/// kept, so no allocation per lookup, like the C clients' stack buffer).
fn name_of(i: u64, buf: &mut String) {
    let mut digits = [0u8; 20];
    let mut n = i;
    let mut k = digits.len();
    loop {
        k -= 1;
        digits[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.clear();
    buf.push_str("name");
    for &d in &digits[k..] {
        buf.push(char::from(d));
    }
    buf.push_str(".bench.test");
}

fn launch(base: &mut EventBase, dns: DnsBase, st: &Rc<RefCell<State>>) {
    loop {
        let mut s = st.borrow_mut();
        if s.started >= s.q || s.started - s.done >= s.f {
            return;
        }
        s.started += 1;
        // NAMES is at most 2^24 (checked), so `i` fits in a u32.
        let i = (s.prng.next() % s.names) as u32;
        let mut name = std::mem::take(&mut s.name);
        drop(s);
        name_of(u64::from(i), &mut name);
        let t0 = Instant::now();
        let st2 = st.clone();
        // The answer lent, like evdns's callbacks get theirs (no copy).
        let r = dns.resolve_ref(
            base,
            &name,
            RecordType::A,
            QueryFlags::NO_SEARCH,
            move |base, res| {
                let ns = t0.elapsed().as_nanos() as u64;
                {
                    let want = Ipv4Addr::from(0x0A00_0000u32 + i + 1);
                    let mut s = st2.borrow_mut();
                    s.done += 1;
                    let good = matches!(&res, Ok(ans) if ans.records.len() == 1
                    && ans.records[0].data == RData::A(want));
                    if good {
                        s.ok += 1;
                        s.lat_ns.push(ns);
                    } else {
                        s.errors += 1;
                        if s.errors <= 5 {
                            eprintln!("lookup of name{i}.bench.test failed: {res:?}");
                        }
                    }
                    if s.done == s.q {
                        base.loopbreak();
                        return;
                    }
                }
                launch(base, dns, &st2);
            },
        );
        st.borrow_mut().name = name;
        if let Err(e) = r {
            let mut s = st.borrow_mut();
            s.done += 1;
            s.errors += 1;
            eprintln!("cannot start a lookup: {e}");
        }
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() -> ExitCode {
    let a = parse_args();
    let mut base = EventBase::new().expect("base");
    let dns = DnsBase::new(&mut base, Init::Empty).expect("resolver");
    dns.nameserver_sockaddr_add(&mut base, a.server)
        .expect("nameserver");
    dns.set_option(&mut base, "max-inflight:", &a.f.to_string())
        .expect("max-inflight");
    let st = Rc::new(RefCell::new(State {
        q: a.q,
        f: a.f,
        names: a.names,
        prng: Prng(a.seed.max(1)),
        started: 0,
        done: 0,
        ok: 0,
        errors: 0,
        lat_ns: Vec::with_capacity(a.q as usize),
        name: String::with_capacity(48),
    }));
    base.loopexit(Some(Duration::from_secs(a.limit)))
        .expect("loopexit");
    let cpu0 = oxevent::util::process_cpu_time().unwrap_or_default();
    let t0 = Instant::now();
    launch(&mut base, dns, &st);
    base.dispatch().expect("loop");
    let wall = t0.elapsed();
    let cpu = oxevent::util::process_cpu_time().unwrap_or_default() - cpu0;
    let mut s = st.borrow_mut();
    if s.done < a.q {
        eprintln!(
            "stopped after {} s with {} of {} lookups done",
            a.limit, s.done, a.q
        );
        s.errors += a.q - s.done;
    }
    s.lat_ns.sort_unstable();
    let cfg = format!("q{}_f{}", a.q, a.f);
    let imp = &a.imp;
    let rate = s.ok as f64 / wall.as_secs_f64();
    println!(
        "RESULT name=dns.resolve.rate impl={imp} cfg={cfg} value={rate:.0} unit=per_s errors={} ok={}",
        s.errors, s.ok
    );
    println!(
        "RESULT name=dns.resolve.p50 impl={imp} cfg={cfg} value={:.1} unit=us",
        pct(&s.lat_ns, 0.50)
    );
    println!(
        "RESULT name=dns.resolve.p99 impl={imp} cfg={cfg} value={:.1} unit=us",
        pct(&s.lat_ns, 0.99)
    );
    let per = if s.ok > 0 {
        cpu.as_nanos() as f64 / s.ok as f64
    } else {
        0.0
    };
    println!("RESULT name=dns.resolve.client_cpu impl={imp} cfg={cfg} value={per:.0} unit=ns");
    if s.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
