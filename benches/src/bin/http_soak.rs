//! The HTTP keep-alive soak client: no event library, just std sockets.
//!
//! `http_soak -p PORT -i IMPL -k CONNS -r RATE -T SECONDS [--pid PID]`: opens CONNS keep-alive
//! connections to 127.0.0.1:PORT, then for SECONDS sends `GET /` round-robin over them at
//! RATE requests per second in all, checking every response (status 200, `Content-Length:
//! 13`, body `Hello, World!`). Two threads share the connections; each sends its share of
//! the rate on a 1 ms tick and reads the responses as `mio` reports the sockets readable (a
//! response is late after 10 s: an error).
//!
//! Prints `RESULT` lines: `http.soak.ok`, `http.soak.errors`, `http.soak.latency_p99` (ms),
//! and with `--pid` the server's CPU time per response (`http.soak.cpu_per_response`, µs,
//! from `/proc/PID/stat`) and its resident memory per connection (`http.soak.rss_per_conn`,
//! kB, from `/proc/PID/status`: after connecting minus before, over CONNS).

#![forbid(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use oxevent_benches::die;

const USAGE: &str = "usage: http_soak -p PORT -i IMPL -k CONNS -r RATE -T SECONDS [--pid PID]";
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";
const THREADS: usize = 2;
const LATE: Duration = Duration::from_secs(10);

struct Opts {
    port: u16,
    imp: String,
    conns: usize,
    rate: u64,
    secs: u64,
    pid: Option<u32>,
}

fn parse() -> Opts {
    let mut o = Opts {
        port: 0,
        imp: "oxevent".into(),
        conns: 1000,
        rate: 10_000,
        secs: 10,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_else(|| die(USAGE));
        let num = || v.parse::<u64>().unwrap_or_else(|_| die(USAGE));
        match a.as_str() {
            "-p" => o.port = u16::try_from(num()).unwrap_or_else(|_| die(USAGE)),
            "-i" => o.imp = v.clone(),
            "-k" => o.conns = usize::try_from(num()).unwrap_or_else(|_| die(USAGE)).max(1),
            "-r" => o.rate = num().max(1),
            "-T" => o.secs = num().max(1),
            "--pid" => o.pid = Some(u32::try_from(num()).unwrap_or_else(|_| die(USAGE))),
            _ => die(USAGE),
        }
    }
    if o.port == 0 {
        die(USAGE);
    }
    o
}

/// The server's user + system CPU time (`/proc/PID/stat`, in USER_HZ = 100 ticks per second).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The server's resident memory in kB (`VmRSS` of `/proc/PID/status`).
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Conn {
    sock: mio::net::TcpStream,
    buf: Vec<u8>,
    sent: Option<Instant>,
    dead: bool,
}

/// Whether `buf` holds a complete valid response: `Some(Ok(len))` when complete and right,
/// `Some(Err(()))` when wrong, `None` when more is needed.
fn check(buf: &[u8]) -> Option<Result<usize, ()>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ()).ok()?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Some(Err(()));
    }
    let len = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if len != Some(BODY.len()) {
        return Some(Err(()));
    }
    if buf.len() < end + BODY.len() {
        return None;
    }
    if &buf[end..end + BODY.len()] == BODY {
        Some(Ok(end + BODY.len()))
    } else {
        Some(Err(()))
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    /// Latencies in microseconds.
    lat: Vec<u32>,
}

/// Reads what `c` has and checks for its response, counting it in `t`.
fn on_readable(c: &mut Conn, chunk: &mut [u8], t: &mut Tally, start: Instant) {
    if c.dead {
        return;
    }
    loop {
        match c.sock.read(chunk) {
            Ok(0) => {
                c.dead = true;
                t.errors += 1;
                return;
            }
            Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                c.dead = true;
                t.errors += 1;
                return;
            }
        }
    }
    if c.sent.is_none() {
        if !c.buf.is_empty() {
            // Bytes nobody asked for.
            c.dead = true;
            t.errors += 1;
        }
        return;
    }
    match check(&c.buf) {
        Some(Ok(len)) => {
            let sent = c.sent.take().unwrap_or(start);
            t.lat
                .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            t.ok += 1;
            c.buf.drain(..len);
        }
        Some(Err(())) => {
            c.dead = true;
            t.errors += 1;
        }
        None => {}
    }
}

/// One thread's share: sends `rate` requests per second over `conns` until `until`, reading
/// responses as mio reports the sockets readable.
fn worker(mut conns: Vec<Conn>, rate: u64, start: Instant, until: Instant) -> Tally {
    let mut t = Tally::default();
    let mut poll = mio::Poll::new().unwrap_or_else(|e| die(&format!("poll: {e}")));
    for (i, c) in conns.iter_mut().enumerate() {
        if poll
            .registry()
            .register(&mut c.sock, mio::Token(i), mio::Interest::READABLE)
            .is_err()
        {
            c.dead = true;
            t.errors += 1;
        }
    }
    let mut events = mio::Events::with_capacity(4096);
    let mut sent_total: u64 = 0;
    let mut next = 0usize;
    let mut chunk = [0u8; 4096];
    let mut last_scan = start;
    loop {
        let now = Instant::now();
        let running = now < until;
        if !running && (now > until + LATE || !conns.iter().any(|c| c.sent.is_some() && !c.dead)) {
            break;
        }
        if running {
            let due = (now - start).as_micros() as u64 * rate / 1_000_000;
            let mut tries = 0;
            while sent_total < due && tries < conns.len() {
                let i = next;
                next = (next + 1) % conns.len();
                tries += 1;
                let c = &mut conns[i];
                if c.dead || c.sent.is_some() {
                    continue;
                }
                tries = 0;
                match c.sock.write(REQUEST) {
                    Ok(n) if n == REQUEST.len() => {
                        c.sent = Some(Instant::now());
                        sent_total += 1;
                    }
                    _ => {
                        c.dead = true;
                        t.errors += 1;
                    }
                }
            }
            if sent_total < due {
                // Every live connection is busy: the server is behind.
                sent_total = due;
            }
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(1)))
            .is_err()
        {
            continue;
        }
        for ev in &events {
            if let Some(c) = conns.get_mut(ev.token().0) {
                on_readable(c, &mut chunk, &mut t, start);
            }
        }
        if now.duration_since(last_scan) > Duration::from_millis(100) {
            last_scan = now;
            for c in &mut conns {
                if !c.dead && c.sent.is_some_and(|s| s.elapsed() > LATE) {
                    c.dead = true;
                    t.errors += 1;
                }
            }
        }
    }
    for c in &conns {
        if !c.dead && c.sent.is_some() {
            t.errors += 1;
        }
    }
    t
}

fn main() {
    let o = parse();
    if let Err(e) = oxevent::util::raise_fd_limit(o.conns as u64 + 1024) {
        eprintln!("warning: raising RLIMIT_NOFILE: {e}");
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, o.port));
    let rss_before = o.pid.and_then(rss_kb);
    let mut all = Vec::with_capacity(o.conns);
    let mut connect_errors = 0u64;
    for _ in 0..o.conns {
        // A full accept queue makes connect wait for the SYN retry: allow for it.
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                if s.set_nonblocking(true).is_err() {
                    connect_errors += 1;
                    continue;
                }
                all.push(Conn {
                    sock: mio::net::TcpStream::from_std(s),
                    buf: Vec::new(),
                    sent: None,
                    dead: false,
                });
            }
            Err(e) => {
                connect_errors += 1;
                if connect_errors == 1 {
                    eprintln!("warning: connect: {e}");
                }
            }
        }
    }
    // Let the server accept them all (its accept loop takes a bounded number per wake-up).
    std::thread::sleep(Duration::from_millis(500));
    let rss_after_connect = o.pid.and_then(rss_kb);
    let cpu_before = o.pid.and_then(cpu_time);
    let start = Instant::now();
    let until = start + Duration::from_secs(o.secs);
    let per_thread = all.len().div_ceil(THREADS).max(1);
    let mut handles = Vec::new();
    while !all.is_empty() {
        let rest = all.split_off(all.len().saturating_sub(per_thread));
        let share = o.rate * rest.len() as u64 / o.conns.max(1) as u64;
        handles.push(std::thread::spawn(move || {
            worker(rest, share.max(1), start, until)
        }));
    }
    let mut total = Tally::default();
    for h in handles {
        let t = h
            .join()
            .unwrap_or_else(|_| die("http_soak: a worker panicked"));
        total.ok += t.ok;
        total.errors += t.errors;
        total.lat.extend(t.lat);
    }
    let cpu_after = o.pid.and_then(cpu_time);
    total.errors += connect_errors;
    total.lat.sort_unstable();
    let p99 = if total.lat.is_empty() {
        0.0
    } else {
        f64::from(total.lat[(total.lat.len() * 99 / 100).min(total.lat.len() - 1)]) / 1e3
    };
    let cfg = format!("k{}_r{}", o.conns, o.rate);
    let imp = &o.imp;
    println!(
        "RESULT name=http.soak.ok impl={imp} cfg={cfg} value={} unit=responses",
        total.ok
    );
    println!(
        "RESULT name=http.soak.errors impl={imp} cfg={cfg} value={} unit=errors",
        total.errors
    );
    println!("RESULT name=http.soak.latency_p99 impl={imp} cfg={cfg} value={p99:.3} unit=ms");
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        if total.ok > 0 {
            let us = (b - a).as_secs_f64() * 1e6 / total.ok as f64;
            println!(
                "RESULT name=http.soak.cpu_per_response impl={imp} cfg={cfg} value={us:.2} unit=us"
            );
        }
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after_connect) {
        let per = after.saturating_sub(before) as f64 / o.conns as f64;
        println!("RESULT name=http.soak.rss_per_conn impl={imp} cfg={cfg} value={per:.2} unit=kB");
    }
    let _ = std::io::stdout().flush();
}
