//! The echo benchmark's load client: plain blocking `std` sockets, no event
//! library, so that it treats every server alike.
//!
//! ```text
//! echo_client -p PORT -c CONNS -s MSG_BYTES -T SECONDS [-i IMPL] [-w WARMUP_SECONDS]
//! echo_client -p PORT --idle N --pid SERVER_PID [-i IMPL]
//! ```
//!
//! Load mode: CONNS connections to 127.0.0.1:PORT (TCP_NODELAY, one thread
//! each). Every connection sends one message of MSG_BYTES bytes (a fixed
//! pseudo-random pattern, shifted by one byte from one message to the next),
//! reads until the whole message is back, checks it byte for byte, records
//! the round trip and sends the next. After WARMUP seconds (default 1) the
//! round trips completed in the next SECONDS are counted. Prints
//! `echo.throughput` (payload bytes echoed per second, one direction,
//! MB = 1e6 bytes), `echo.rtt_p50` and `echo.rtt_p99` (us), with
//! `cfg=c<CONNS>_s<MSG_BYTES>`.
//!
//! Idle mode: reads the server's `VmRSS` (`/proc/PID/status`), opens N
//! connections, waits until the server holds them (its fd count, best
//! effort) and one more second, reads `VmRSS` again, then sends one byte on
//! every connection and reads it back to prove they are all live. Prints
//! `echo.idle_rss_per_conn` in bytes per connection, `cfg=n<N>`.
//!
//! Every step is bounded in time; any error, short read or mismatch exits
//! with status 1 and a message on stderr.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use oxevent::util;
use oxevent_benches::echo::{
    CONNECT_TIMEOUT, IO_TIMEOUT, Opts, SHIFTS, percentile, run_conn, vm_rss,
};
use oxevent_benches::{Rng, median, result};

const USAGE: &str = "\
usage: echo_client -p PORT -c CONNS -s MSG_BYTES -T SECONDS [-i IMPL] [-w WARMUP_SECONDS]
       echo_client -p PORT --idle N --pid SERVER_PID [-i IMPL]
  -p PORT        the server, on 127.0.0.1
  -c CONNS       connections, one thread each (default 64)
  -s MSG_BYTES   message size, 1..=65536 (default 4096)
  -T SECONDS     measured duration (default 10)
  -w SECONDS     warm-up before measuring (default 1)
  -i IMPL        the impl= of the RESULT lines: the server being measured (default unknown)
  --idle N       idle-memory mode: N connections, server RSS per connection
  --pid PID      the server's process id (idle mode)";

/// Upper bound on opening all the idle-mode connections.
const IDLE_CONNECT_BOUND: Duration = Duration::from_secs(120);

/// Prints `msg` and exits with status 1: the run is invalid.
fn fail(msg: &str) -> ! {
    eprintln!("echo_client: error: {msg}");
    std::process::exit(1)
}

fn connect(port: u16) -> io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn load(o: &Opts) {
    let mut rng = Rng::new(0x00ec_4001);
    let pattern: Arc<Vec<u8>> =
        Arc::new((0..o.size + SHIFTS).map(|_| rng.next_u64() as u8).collect());
    let streams: Vec<TcpStream> = (0..o.conns)
        .map(|i| connect(o.port).unwrap_or_else(|e| fail(&format!("connection {i}: {e}"))))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (warm, secs) = (
        Duration::from_secs_f64(o.warmup),
        Duration::from_secs_f64(o.secs),
    );
    // the common clock: spawning the threads takes a few ms of the warm-up
    let t0 = Instant::now();
    let (measure_from, end) = (t0 + warm, t0 + warm + secs);
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (pattern, stop) = (pattern.clone(), stop.clone());
            let size = o.size;
            thread::Builder::new()
                .name(format!("conn{i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut s = s;
                    let r = run_conn(&mut s, &pattern, size, measure_from, end, &stop);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r.map_err(|e| format!("connection {i}: {e}"))
                })
                .unwrap_or_else(|e| fail(&format!("spawning thread {i}: {e}")))
        })
        .collect();
    let mut msgs = 0u64;
    let mut rtts: Vec<f64> = Vec::new();
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(t)) => {
                msgs += t.msgs;
                rtts.extend(t.rtt_us);
            }
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a connection thread panicked".into()),
        }
    }
    if !errors.is_empty() {
        fail(&format!(
            "{} connection(s) failed; first: {}",
            errors.len(),
            errors[0]
        ));
    }
    if msgs == 0 {
        fail("no message came back within the measured window");
    }
    let mbps = (msgs * o.size as u64) as f64 / 1e6 / o.secs;
    rtts.sort_by(f64::total_cmp);
    let cfg = format!("c{}_s{}", o.conns, o.size);
    let extra = format!("msgs={msgs} secs={}", o.secs);
    result("echo.throughput", &o.imp, &cfg, mbps, "MB_per_s", &extra);
    result(
        "echo.rtt_p50",
        &o.imp,
        &cfg,
        median(&mut rtts),
        "us",
        &extra,
    );
    result(
        "echo.rtt_p99",
        &o.imp,
        &cfg,
        percentile(&rtts, 0.99),
        "us",
        &extra,
    );
}

/// Open descriptors of `pid`, if `/proc/PID/fd` can be read.
fn fd_count(pid: u32) -> Option<usize> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(Iterator::count)
}

fn idle(o: &Opts, n: usize, pid: u32) {
    let fds_before = fd_count(pid);
    let before = vm_rss(pid).unwrap_or_else(|e| fail(&e));
    let began = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        if began.elapsed() > IDLE_CONNECT_BOUND {
            fail(&format!(
                "opened only {i} of {n} connections in {} s",
                IDLE_CONNECT_BOUND.as_secs()
            ));
        }
        conns.push(connect(o.port).unwrap_or_else(|e| fail(&format!("connection {i}: {e}"))));
    }
    let opened = began.elapsed();
    // wait (bounded) until the server has accepted them all, then let it settle
    if let Some(b) = fds_before {
        let wait_until = Instant::now() + Duration::from_secs(10);
        while fd_count(pid).is_some_and(|c| c < b + n) && Instant::now() < wait_until {
            thread::sleep(Duration::from_millis(50));
        }
        if let Some(c) = fd_count(pid) {
            if c < b + n {
                eprintln!(
                    "echo_client: warning: the server holds {} new descriptors, not {n}",
                    c.saturating_sub(b)
                );
            }
        }
    }
    thread::sleep(Duration::from_secs(1));
    let after = vm_rss(pid).unwrap_or_else(|e| fail(&e));
    // prove every connection is live: one byte there and back
    for (i, s) in conns.iter_mut().enumerate() {
        let b = [(i % 251) as u8];
        s.write_all(&b)
            .unwrap_or_else(|e| fail(&format!("connection {i}: write: {e}")));
        let mut r = [0u8; 1];
        s.read_exact(&mut r)
            .unwrap_or_else(|e| fail(&format!("connection {i}: read: {e}")));
        if r != b {
            fail(&format!(
                "connection {i}: echoed {} instead of {}",
                r[0], b[0]
            ));
        }
    }
    let per_conn = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "echo_client: {n} connections opened in {:.2} s; server VmRSS {} -> {} kB",
        opened.as_secs_f64(),
        before / 1024,
        after / 1024
    );
    result(
        "echo.idle_rss_per_conn",
        &o.imp,
        &format!("n{n}"),
        per_conn,
        "bytes_per_conn",
        &format!("rss_before={before} rss_after={after}"),
    );
}

fn main() {
    let o = Opts::parse(USAGE, 64, 4096);
    let want = o.idle.unwrap_or(o.conns) as u64 + 100;
    match util::raise_fd_limit(65_536) {
        Ok(lim) if lim < want => fail(&format!(
            "RLIMIT_NOFILE is {lim}, below the {want} descriptors needed"
        )),
        Ok(_) => {}
        Err(e) => eprintln!("echo_client: warning: raising RLIMIT_NOFILE: {e}"),
    }
    match (o.idle, o.pid) {
        (Some(n), Some(pid)) => idle(&o, n.max(1), pid),
        _ => load(&o),
    }
}
