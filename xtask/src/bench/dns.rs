//! Workloads of `bench compare` for DNS (issue 7): `dns_bench` against a dnsmasq on loopback,
//! beside the same client over libevent's evdns and a raw UDP + epoll floor.
//!
//! The driver starts dnsmasq on a free port (`--no-daemon --no-resolv --no-hosts`, a generated
//! `--addn-hosts` file mapping `name<i>.bench.test` to 10.0.0.0 + i + 1, a large cache), waits
//! until it answers, runs the client with `-s 127.0.0.1:PORT -i IMPL` plus the workload's
//! arguments, and kills dnsmasq on every path (a drop guard).

use std::fs;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Mode, Workload};
use crate::Result;

/// The names served.
const NAMES: u32 = 1000;

/// This module's workloads (small versions with `quick`).
pub(super) fn workloads(quick: bool) -> Vec<Workload> {
    let q: u32 = if quick { 20_000 } else { 100_000 };
    let args = ["-q", &q.to_string(), "-f", "100", "-n", &NAMES.to_string()]
        .iter()
        .map(ToString::to_string)
        .collect();
    vec![Workload {
        label: format!("dns resolve q{q} f100 (dnsmasq)"),
        bin: "dns_bench",
        rust_peers: Vec::new(),
        c_programs: vec![
            ("libevent", "dns_bench_libevent".into()),
            ("epoll", "dns_bench_epoll".into()),
        ],
        args,
        mode: Mode::Custom(drive),
    }]
}

/// dnsmasq on loopback; killed (and its hosts file removed) on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    /// Removed on drop (`None` while a retry still needs it).
    hosts: Option<PathBuf>,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(h) = &self.hosts {
            let _ = fs::remove_file(h);
        }
    }
}

/// A query for `name0.bench.test` A.
const PROBE: [u8; 34] = [
    0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'n', b'a', b'm', b'e', b'0', 5, b'b', b'e', b'n',
    b'c', b'h', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
];

impl Dnsmasq {
    fn start(names: u32) -> Result<Self> {
        let hosts =
            std::env::temp_dir().join(format!("oxevent-dns-bench-{}.hosts", std::process::id()));
        let mut text = String::with_capacity(names as usize * 32);
        for i in 0..names {
            let a = 0x0A00_0000u32 + i + 1;
            text.push_str(&format!(
                "{}.{}.{}.{} name{i}.bench.test\n",
                a >> 24,
                (a >> 16) & 255,
                (a >> 8) & 255,
                a & 255
            ));
        }
        fs::write(&hosts, text).map_err(|e| format!("writing {}: {e}", hosts.display()))?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map_err(|e| format!("finding a free port: {e}"))?
                .port();
            let child = Command::new("dnsmasq")
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--cache-size=10000",
                    "--local-ttl=300",
                    "--pid-file=",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts.display()))
                .arg(format!("--user={}", user()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start dnsmasq (is it installed?): {e}"))?;
            let mut d = Dnsmasq {
                child,
                port,
                hosts: Some(hosts.clone()),
            };
            match d.wait_ready() {
                Ok(()) => return Ok(d),
                Err(e) => {
                    last = e;
                    // Keep the hosts file for the next try: only the process goes.
                    d.hosts = None;
                }
            }
        }
        let _ = fs::remove_file(&hosts);
        Err(format!("dnsmasq did not come up: {last}"))
    }

    fn wait_ready(&mut self) -> Result {
        let u = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        u.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Err(format!("dnsmasq exited with {s}"));
            }
            let _ = u.send_to(&PROBE, ("127.0.0.1", self.port));
            let mut buf = [0u8; 512];
            if u.recv_from(&mut buf).is_ok() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        Err("no answer within 5 s".into())
    }
}

/// The user dnsmasq runs as (it drops privileges to it).
fn user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nobody".into())
}

/// Runs one client against a fresh dnsmasq.
fn drive(mut cmd: Command, imp: &str, args: &[String]) -> Result<(String, Option<String>)> {
    let names = args
        .iter()
        .position(|a| a == "-n")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(NAMES);
    let d = Dnsmasq::start(names)?;
    cmd.args([
        "-s",
        &format!("127.0.0.1:{}", d.port),
        "-i",
        imp,
        "-T",
        "60",
    ])
    .args(args);
    let out = super::run_capture_within(cmd, Duration::from_secs(90));
    drop(d);
    out.map(|o| (o, None))
}
