//! The TLS echo benchmark's load client: blocking `std` sockets under
//! OpenSSL (the `openssl` crate), no event library, so that it treats every
//! server alike.
//!
//! ```text
//! tls_echo_client -p PORT -c CONNS -s MSG_BYTES -T SECONDS [-i IMPL] [-w WARMUP_SECONDS]
//! tls_echo_client -p PORT --idle N --pid SERVER_PID [-i IMPL]
//! ```
//!
//! Every connection is TLS 1.3 with the one cipher suite
//! TLS_AES_128_GCM_SHA256 (as the servers are configured), without
//! certificate verification (the servers use a throw-away certificate).
//!
//! Load mode: CONNS connections to 127.0.0.1:PORT (TCP_NODELAY, one thread
//! each). Every connection sends one message of MSG_BYTES bytes (one TLS
//! record for 16 KiB), reads until the whole message is back, checks it
//! byte for byte, records the round trip and sends the next. After WARMUP
//! seconds (default 1) the round trips completed in the next SECONDS are
//! counted. Prints `tls_echo.throughput` (payload bytes echoed per second,
//! one direction, MB = 1e6 bytes), `tls_echo.rtt_p50` and `tls_echo.rtt_p99`
//! (us), with `cfg=c<CONNS>_s<MSG_BYTES>`.
//!
//! Idle mode: reads the server's `VmRSS`, opens N TLS connections (each
//! handshaken and proven live by a one-byte echo), waits one second, reads
//! `VmRSS` again. Prints `tls_echo.idle_rss` in bytes per connection,
//! `cfg=n<N>`.
//!
//! Every step is bounded in time; any error, short read or mismatch exits
//! with status 1 and a message on stderr.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use oxevent::util;
use oxevent_benches::echo::{
    CONNECT_TIMEOUT, IO_TIMEOUT, Opts, SHIFTS, percentile, run_conn, vm_rss,
};
use oxevent_benches::{Rng, median, result};

const USAGE: &str = "\
usage: tls_echo_client -p PORT -c CONNS -s MSG_BYTES -T SECONDS [-i IMPL] [-w WARMUP_SECONDS]
       tls_echo_client -p PORT --idle N --pid SERVER_PID [-i IMPL]
  -p PORT        the server, on 127.0.0.1
  -c CONNS       connections, one thread each (default 16)
  -s MSG_BYTES   message size, 1..=65536 (default 16384)
  -T SECONDS     measured duration (default 10)
  -w SECONDS     warm-up before measuring (default 1)
  -i IMPL        the impl= of the RESULT lines (default unknown)
  --idle N       idle-memory mode: N connections, server RSS per connection
  --pid PID      the server's process id (idle mode)";

const IDLE_CONNECT_BOUND: Duration = Duration::from_secs(180);

fn fail(msg: &str) -> ! {
    eprintln!("tls_echo_client: error: {msg}");
    std::process::exit(1)
}

/// The client context: TLS 1.3 with TLS_AES_128_GCM_SHA256 only, no
/// verification (a throw-away certificate on loopback).
fn connector() -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client())
        .unwrap_or_else(|e| fail(&format!("SSL context: {e}")));
    b.set_min_proto_version(Some(SslVersion::TLS1_3))
        .unwrap_or_else(|e| fail(&format!("TLS 1.3: {e}")));
    b.set_ciphersuites("TLS_AES_128_GCM_SHA256")
        .unwrap_or_else(|e| fail(&format!("cipher suite: {e}")));
    b.set_verify(SslVerifyMode::NONE);
    b.build()
}

fn connect(c: &SslConnector, port: u16) -> io::Result<SslStream<TcpStream>> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let cfg = c
        .configure()
        .map_err(io::Error::other)?
        .verify_hostname(false)
        .use_server_name_indication(false);
    let tls = cfg
        .connect("localhost", s)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let cipher = tls.ssl().current_cipher().map(|c| c.standard_name());
    if cipher != Some(Some("TLS_AES_128_GCM_SHA256")) || tls.ssl().version_str() != "TLSv1.3" {
        return Err(io::Error::other(format!(
            "negotiated {} {cipher:?}, not TLS 1.3 with TLS_AES_128_GCM_SHA256",
            tls.ssl().version_str()
        )));
    }
    Ok(tls)
}

fn load(o: &Opts) {
    let mut rng = Rng::new(0x0071_5ec0);
    let pattern: Arc<Vec<u8>> =
        Arc::new((0..o.size + SHIFTS).map(|_| rng.next_u64() as u8).collect());
    let c = connector();
    let streams: Vec<_> = (0..o.conns)
        .map(|i| connect(&c, o.port).unwrap_or_else(|e| fail(&format!("connection {i}: {e}"))))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (warm, secs) = (
        Duration::from_secs_f64(o.warmup),
        Duration::from_secs_f64(o.secs),
    );
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
                    let _ = s.shutdown();
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
    result(
        "tls_echo.throughput",
        &o.imp,
        &cfg,
        mbps,
        "MB_per_s",
        &extra,
    );
    let p99 = percentile(&rtts, 0.99);
    result(
        "tls_echo.rtt_p50",
        &o.imp,
        &cfg,
        median(&mut rtts),
        "us",
        &extra,
    );
    result("tls_echo.rtt_p99", &o.imp, &cfg, p99, "us", &extra);
}

fn idle(o: &Opts, n: usize, pid: u32) {
    let c = connector();
    // One connection first, so that the server's one-time allocations (the
    // first handshake's tables) are not charged to the idle connections.
    let mut first = connect(&c, o.port).unwrap_or_else(|e| fail(&format!("warm-up: {e}")));
    ping(&mut first, 0);
    thread::sleep(Duration::from_millis(200));
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
        let mut s = connect(&c, o.port).unwrap_or_else(|e| fail(&format!("connection {i}: {e}")));
        // The server has finished its handshake once it echoes.
        ping(&mut s, i);
        conns.push(s);
    }
    let opened = began.elapsed();
    thread::sleep(Duration::from_secs(1));
    let after = vm_rss(pid).unwrap_or_else(|e| fail(&e));
    for (i, s) in conns.iter_mut().enumerate() {
        ping(s, i);
    }
    let per_conn = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "tls_echo_client: {n} TLS connections opened in {:.2} s; server VmRSS {} -> {} kB",
        opened.as_secs_f64(),
        before / 1024,
        after / 1024
    );
    result(
        "tls_echo.idle_rss",
        &o.imp,
        &format!("n{n}"),
        per_conn,
        "B_per_conn",
        &format!("rss_before={before} rss_after={after}"),
    );
}

/// One byte there and back.
fn ping(s: &mut SslStream<TcpStream>, i: usize) {
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

fn main() {
    let o = Opts::parse(USAGE, 16, 16_384);
    let want = o.idle.unwrap_or(o.conns) as u64 + 100;
    match util::raise_fd_limit(65_536) {
        Ok(lim) if lim < want => fail(&format!(
            "RLIMIT_NOFILE is {lim}, below the {want} descriptors needed"
        )),
        Ok(_) => {}
        Err(e) => eprintln!("tls_echo_client: warning: raising RLIMIT_NOFILE: {e}"),
    }
    match (o.idle, o.pid) {
        (Some(n), Some(pid)) => idle(&o, n.max(1), pid),
        _ => load(&o),
    }
}
