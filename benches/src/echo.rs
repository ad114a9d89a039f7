//! What the echo benchmarks share. The load clients (`echo_client`, plain TCP, and
//! `tls_echo_client`, TLS): their command line, the per-connection echo loop, the round-trip
//! percentile and the server's RSS. The oxevent servers (`echo_server`, `tls_echo_server`):
//! the bufferevent callbacks that echo.

use std::fs;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use oxevent::bufferevent::{BevEvent, BevFlags, BufferEvent};
use oxevent::{EventBase, What};

use crate::die;

/// A message larger than this could deadlock a server that stops reading
/// while its writes are blocked; every workload uses 16 KiB at most.
pub const MAX_MSG: u64 = 65_536;

/// Socket read and write timeout: a server that stalls this long fails the run.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Timeout of one `connect`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Message `k` is `pattern[k % SHIFTS..][..size]`; the pattern is `size + SHIFTS` bytes.
pub const SHIFTS: usize = 251;

/// The echo clients' options.
#[derive(Debug)]
pub struct Opts {
    /// The server's port on 127.0.0.1 (`-p`).
    pub port: u16,
    /// Connections (`-c`).
    pub conns: usize,
    /// Message size in bytes (`-s`).
    pub size: usize,
    /// Measured seconds (`-T`).
    pub secs: f64,
    /// Warm-up seconds before measuring (`-w`).
    pub warmup: f64,
    /// The implementation's name for the `RESULT` lines (`-i`).
    pub imp: String,
    /// Idle-memory mode: this many connections (`--idle`).
    pub idle: Option<usize>,
    /// The server's pid, for its RSS (`--pid`).
    pub pid: Option<u32>,
}

impl Opts {
    /// Parses the process arguments, with `conns` and `size` as the defaults of `-c` and
    /// `-s`; exits with `usage` on anything wrong.
    #[must_use]
    pub fn parse(usage: &str, conns: usize, size: usize) -> Self {
        let mut o = Self {
            port: 0,
            conns,
            size,
            secs: 10.0,
            warmup: 1.0,
            imp: "unknown".into(),
            idle: None,
            pid: None,
        };
        let mut it = std::env::args().skip(1);
        let num = |opt: &str, v: Option<String>| -> u64 {
            v.and_then(|v| v.parse().ok())
                .unwrap_or_else(|| die(&format!("{opt}: needs a number\n{usage}")))
        };
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-p" => {
                    o.port = u16::try_from(num("-p", it.next()))
                        .unwrap_or_else(|_| die(&format!("-p: not a port\n{usage}")));
                }
                "-c" => o.conns = num("-c", it.next()) as usize,
                "-s" => o.size = num("-s", it.next()) as usize,
                "-T" => o.secs = num("-T", it.next()) as f64,
                "-w" => o.warmup = num("-w", it.next()) as f64,
                "-i" => o.imp = it.next().unwrap_or_else(|| die(usage)),
                "--idle" => o.idle = Some(num("--idle", it.next()) as usize),
                "--pid" => {
                    o.pid = Some(
                        u32::try_from(num("--pid", it.next()))
                            .unwrap_or_else(|_| die(&format!("--pid: not a pid\n{usage}"))),
                    );
                }
                "-h" | "--help" => die(usage),
                other => die(&format!("unknown argument `{other}`\n{usage}")),
            }
        }
        if o.port == 0 {
            die(&format!("-p PORT is required\n{usage}"));
        }
        if o.conns == 0 || o.conns > 10_000 {
            die("-c: 1..=10000 connections");
        }
        if o.size == 0 || o.size as u64 > MAX_MSG {
            die(&format!("-s: 1..={MAX_MSG} bytes"));
        }
        if !(o.secs > 0.0 && o.secs <= 3600.0) || o.warmup > 600.0 {
            die("-T: 1..=3600 seconds, -w: at most 600");
        }
        if o.idle.is_some() != o.pid.is_some() {
            die(&format!("--idle and --pid go together\n{usage}"));
        }
        o
    }
}

/// What one connection measured.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages echoed within the measured window.
    pub msgs: u64,
    /// Their round trips, in microseconds.
    pub rtt_us: Vec<f64>,
}

/// One connection's loop until `end`: write a message, read it back whole and compare.
/// Round trips that start at or after `measure_from` and finish by `end` are counted.
///
/// # Errors
///
/// A failed write or read, an early close, or echoed bytes that differ.
pub fn run_conn<S: Read + Write>(
    s: &mut S,
    pattern: &[u8],
    size: usize,
    measure_from: Instant,
    end: Instant,
    stop: &AtomicBool,
) -> Result<Tally, String> {
    let mut back = vec![0u8; size];
    let mut t = Tally::default();
    let mut k = 0usize;
    loop {
        let t0 = Instant::now();
        if t0 >= end || stop.load(Ordering::Relaxed) {
            break;
        }
        let msg = &pattern[k % SHIFTS..][..size];
        s.write_all(msg).map_err(|e| format!("write: {e}"))?;
        let mut got = 0;
        while got < size {
            match s.read(&mut back[got..]) {
                Ok(0) => return Err(format!("server closed after {got} of {size} bytes")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read ({got} of {size} bytes back): {e}")),
            }
        }
        let t1 = Instant::now();
        if back != msg {
            let at = back.iter().zip(msg).position(|(a, b)| a != b).unwrap_or(0);
            return Err(format!("message {k}: echoed bytes differ at offset {at}"));
        }
        if t0 >= measure_from && t1 <= end {
            t.msgs += 1;
            t.rtt_us.push((t1 - t0).as_secs_f64() * 1e6);
        }
        k += 1;
    }
    Ok(t)
}

/// The value at quantile `q` of the sorted `sorted` (nearest rank); 0 when empty.
#[must_use]
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `VmRSS` of `pid`, in bytes.
///
/// # Errors
///
/// `/proc/PID/status` cannot be read or has no `VmRSS` line.
pub fn vm_rss(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no VmRSS in {path}"))
}

/// Makes `bev` echo: whatever it reads goes to its output (moved, not copied), and it is freed
/// on EOF or error. On failure `bev` is freed.
///
/// # Errors
///
/// Setting the callbacks or enabling reading failed.
pub fn serve(base: &mut EventBase, bev: BufferEvent) -> io::Result<()> {
    let setup = |base: &mut EventBase| -> io::Result<()> {
        bev.on_read(base, |base: &mut EventBase, bev: BufferEvent| {
            if let Ok((input, output)) = bev.buffers(base) {
                if let Err(e) = output.add_buffer(input) {
                    die(&format!("add_buffer: {e}"));
                }
            }
        })?;
        bev.on_event(
            base,
            |base: &mut EventBase, bev: BufferEvent, ev: BevEvent| {
                if ev.what.intersects(BevFlags::EOF | BevFlags::ERROR) {
                    let _ = bev.free(base);
                }
            },
        )?;
        bev.enable(base, What::READ)
    };
    setup(base).inspect_err(|_| {
        let _ = bev.free(base);
    })
}
