//! Workloads of `bench compare` for HTTP (issue 6): `http_hello` under wrk against evhttp
//! (`benches/c/http_hello_libevent.c`) and hyper (`http_hello_hyper`), and the keep-alive
//! soak (`http_soak`, our own client with no event library).
//!
//! - hello: `wrk -t2 -c64 --latency` on `GET /` (13 bytes), servers with TCP_NODELAY; once
//!   with one server thread and once with two (`-j 2`, SO_REUSEPORT);
//! - large: `wrk -t2 -c16 --latency` on `GET /large` (1 MiB), TCP_NODELAY;
//! - soak: `http_soak` holds K keep-alive connections and sends `GET /` round-robin at a
//!   bounded total rate, checking every response; it reads the server's CPU time and RSS from
//!   `/proc`.
//!
//! wrk's own figures are turned into `RESULT` lines here: `http.hello.rps`,
//! `http.hello.latency_p99`, `http.large.rps`, `http.large.throughput` (body bytes per
//! second, from the request rate).

use std::process::Command;
use std::time::Duration;

use super::{Mode, Server, Workload, run_capture_within};
use crate::{Result, root, target_dir};

/// The soak client, an `oxevent-benches` binary.
const SOAK_CLIENT: &str = "http_soak";

/// The body of `GET /large`.
const LARGE: u64 = 1 << 20;

/// This module's workloads (small versions with `quick`).
pub(super) fn workloads(quick: bool) -> Vec<Workload> {
    let secs = if quick { 3 } else { 10 };
    let mut v = vec![
        wrk_load("hello", 64, secs, 1),
        wrk_load("large", 16, secs, 1),
        wrk_load("hello", 64, secs, 2),
    ];
    if quick {
        v.push(soak(500, 5000, 5));
    } else {
        v.push(soak(9000, 20_000, 30));
    }
    v
}

fn peers() -> super::EchoServers {
    (
        vec![("hyper", "http_hello_hyper")],
        vec![("libevent", "http_hello_libevent".into())],
    )
}

/// wrk against `GET /` (`hello`) or `GET /large` (`large`) with `conns` connections for `secs`
/// seconds, the servers running `threads` threads.
fn wrk_load(kind: &str, conns: u32, secs: u64, threads: u32) -> Workload {
    let (rust_peers, c_programs) = peers();
    Workload {
        label: format!("http {kind} c{conns}_j{threads} ({secs} s)"),
        bin: "http_hello",
        rust_peers,
        c_programs,
        args: vec![
            kind.into(),
            conns.to_string(),
            secs.to_string(),
            threads.to_string(),
        ],
        mode: Mode::Custom(drive_wrk),
    }
}

/// The keep-alive soak: `conns` connections, `rate` requests per second in all, `secs`
/// seconds.
fn soak(conns: u32, rate: u32, secs: u64) -> Workload {
    let (rust_peers, c_programs) = peers();
    Workload {
        label: format!("http soak k{conns}_r{rate} ({secs} s)"),
        bin: "http_hello",
        rust_peers,
        c_programs,
        args: vec![conns.to_string(), rate.to_string(), secs.to_string()],
        mode: Mode::Custom(drive_soak),
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Result<T> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("http workload: bad argument {i} in {args:?}"))
}

/// What the server's stop said, as a note if it was not clean.
fn stop_note(srv: &mut Server, imp: &str) -> Option<String> {
    match srv.stop() {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "the {imp} HTTP server exited with {s} after SIGTERM"
        )),
        Err(e) => Some(e),
    }
}

fn drive_wrk(mut server: Command, imp: &str, args: &[String]) -> Result<(String, Option<String>)> {
    let kind: String = arg(args, 0)?;
    let conns: u32 = arg(args, 1)?;
    let secs: u64 = arg(args, 2)?;
    let threads: u32 = arg(args, 3)?;
    server.args(["-p", "0", "-T", &(secs + 120).to_string(), "-N"]);
    server.args(["-b", &LARGE.to_string(), "-j", &threads.to_string()]);
    let (mut srv, port) = Server::start(server)?;
    let path = if kind == "large" { "/large" } else { "/" };
    let mut wrk = Command::new("wrk");
    wrk.args([
        "-t2",
        "-c",
        &conns.to_string(),
        "-d",
        &format!("{secs}s"),
        "--latency",
    ])
    .arg(format!("http://127.0.0.1:{port}{path}"));
    let out = run_capture_within(wrk, Duration::from_secs(secs + 60));
    let note = stop_note(&mut srv, imp);
    let out = out?;
    let w = parse_wrk(&out).ok_or_else(|| format!("cannot read wrk's output:\n{out}"))?;
    let cfg = format!("c{conns}_j{threads}");
    let mut lines = format!(
        "RESULT name=http.{kind}.rps impl={imp} cfg={cfg} value={:.1} unit=req_per_s\n",
        w.rps
    );
    if kind == "large" {
        let mbs = w.rps * LARGE as f64 / 1e6;
        lines.push_str(&format!(
            "RESULT name=http.large.throughput impl={imp} cfg={cfg} value={mbs:.1} unit=MB_per_s\n"
        ));
    }
    lines.push_str(&format!(
        "RESULT name=http.{kind}.latency_p99 impl={imp} cfg={cfg} value={:.3} unit=ms\n",
        w.p99_ms
    ));
    let note = match (note, w.errors) {
        (n, 0) => n,
        (Some(n), e) => Some(format!("{n}; wrk saw {e} errors")),
        (None, e) => Some(format!("wrk saw {e} errors against {imp}")),
    };
    Ok((lines, note))
}

fn drive_soak(mut server: Command, imp: &str, args: &[String]) -> Result<(String, Option<String>)> {
    let conns: u32 = arg(args, 0)?;
    let rate: u32 = arg(args, 1)?;
    let secs: u64 = arg(args, 2)?;
    server.args(["-p", "0", "-T", &(secs + 300).to_string(), "-b", "1024"]);
    let (mut srv, port) = Server::start(server)?;
    let mut cmd = Command::new(target_dir().join("release").join(SOAK_CLIENT));
    cmd.args(["-p", &port.to_string(), "-i", imp])
        .args(["-k", &conns.to_string(), "-r", &rate.to_string()])
        .args(["-T", &secs.to_string(), "--pid", &srv.pid().to_string()])
        .current_dir(root());
    let out = run_capture_within(cmd, Duration::from_secs(secs + 240));
    let note = stop_note(&mut srv, imp);
    Ok((out?, note))
}

/// What wrk reports.
#[derive(Debug, PartialEq)]
struct Wrk {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

/// A wrk duration (`812.00us`, `1.40ms`, `2.00s`, `1.00m`) in milliseconds.
fn wrk_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3600e3,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Option<Wrk> {
    let mut rps = None;
    let mut p99 = None;
    let mut errors = 0;
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = wrk_ms(v.trim());
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors += v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Some(Wrk {
        rps: rps?,
        p99_ms: p99?,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let out = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n\
                   \x20 Latency Distribution\n     50%  814.00us\n     99%    8.56ms\n\
                   \x20 313920 requests in 5.02s, 34.43MB read\n\
                   \x20 Socket errors: connect 0, read 2, write 0, timeout 1\n\
                   Requests/sec:  62473.31\nTransfer/sec:      6.85MB\n";
        assert_eq!(
            parse_wrk(out),
            Some(Wrk {
                rps: 62473.31,
                p99_ms: 8.56,
                errors: 3
            })
        );
        assert_eq!(wrk_ms("812.00us"), Some(0.812));
        assert_eq!(wrk_ms("2.00s"), Some(2000.0));
        assert!(parse_wrk("nothing").is_none());
    }

    #[test]
    fn workloads_have_every_argument() {
        for quick in [true, false] {
            for w in workloads(quick) {
                assert!(w.label.starts_with("http "), "{}", w.label);
                assert!(w.args.len() >= 3);
            }
        }
    }
}
