//! `cargo xtask bench build|compare`: the Rust benchmark binaries and their C counterparts.
//!
//! The C programs live in `benches/c/bench_*.c` and `benches/c/echo_*.c`; each is one
//! translation unit compiled with `cc -O2` into `benches/c/build/`, linked against the library
//! its name says (`*_libevent`, `*_libev`, `*_libuv`, `*_epoll` = no library; anything else
//! links libevent). The Rust programs are the `oxevent-benches` binaries in `<target>/release/`
//! (oxevent's, and the tokio echo server, a Rust peer).
//!
//! `compare` runs every implementation of a workload alternately, `reps` times, in one session,
//! parses the `RESULT` lines they print and shows, per cfg and metric, the median value of each
//! implementation and the ratio oxevent / other. Most metrics are times (lower is better);
//! rates (`*_per_s` units, such as echo throughput) are better higher, and the table says which.
//!
//! Standalone workloads are one program run with the workload's arguments. Echo workloads are a
//! server (`echo_server`, `echo_server_libevent`, `echo_server_tokio`, each started with
//! `-p 0 -T <bound>` and waited for until it prints `READY port=N`) and the `echo_client` load
//! client run against it; the server is stopped with SIGTERM afterwards, and killed on any
//! failure path.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::{Result, cargo, describe, root, run, target_dir};

mod dns;
mod http;
mod tls;

/// Usage of `cargo xtask bench`.
const BENCH_USAGE: &str = "\
usage: cargo xtask bench build
       cargo xtask bench compare [--quick] [--reps N] [--no-build] [--pin CPU] [--only WORD]...

  build        cargo build --release -p oxevent-benches; compile benches/c/*.c into benches/c/build/
  compare      build, then run oxevent, libevent, libev, libuv (and the raw-epoll floor) in turn,
               and the echo servers (oxevent, libevent, tokio) under echo_client
    --quick    small sizes, one repetition: a smoke test of the harness, not a measurement
    --reps N   repetitions of each program per workload (default 5; medians are compared)
    --no-build use the binaries as they are
    --pin CPU  run every program under `taskset -c CPU` (for echo: the server, not the client)
    --only W   only the workloads whose label contains W (`pipe`, `timers`, `buffer`, `echo`,
               `idle`, `c64_s4096`, ...); may be repeated
";

/// The C implementations, in the order they run after oxevent.
const C_IMPLS: &[&str] = &["libevent", "libev", "libuv", "epoll"];

/// Every implementation but oxevent, in the table's column order.
const OTHER_IMPLS: &[&str] = &["libevent", "libev", "libuv", "epoll", "tokio", "hyper"];

/// Implementations whose best figure is the target (the raw-epoll floor is reported apart).
const PEERS: &[&str] = &["libevent", "libev", "libuv", "tokio", "hyper"];

/// No single benchmark run may take longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The echo load client, an `oxevent-benches` binary.
const ECHO_CLIENT: &str = "echo_client";

/// How long an echo server may take to print `READY port=N`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an echo server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point for `cargo xtask bench ...`.
pub(crate) fn main(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        Some("build") if args.len() == 1 => build_all(),
        Some("compare") => compare(&CompareOpts::parse(&args[1..])?),
        None => Err(format!("missing subcommand\n\n{BENCH_USAGE}")),
        Some(_) => Err(format!("bad arguments {args:?}\n\n{BENCH_USAGE}")),
    }
}

/// `bench build`: the C programs first (cheap), then the Rust binaries; fails if either does.
fn build_all() -> Result {
    let failed_c = build_c();
    let rust = build_rust();
    match (failed_c.is_empty(), rust) {
        (true, Ok(())) => Ok(()),
        (_, rust) => {
            let mut msg = Vec::new();
            if !failed_c.is_empty() {
                msg.push(format!("C programs that did not compile: {failed_c:?}"));
            }
            if let Err(e) = rust {
                msg.push(e);
            }
            Err(msg.join("; "))
        }
    }
}

/// `cargo build --release -p oxevent-benches`.
fn build_rust() -> Result {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "-p", "oxevent-benches"]);
    run("building oxevent-benches", cmd)
}

/// Where the C sources are.
fn c_dir() -> PathBuf {
    root().join("benches").join("c")
}

/// Where the C binaries go.
fn c_build_dir() -> PathBuf {
    c_dir().join("build")
}

/// Linker (and include) flags for the C program `stem`, from its name.
fn c_flags(stem: &str) -> Vec<String> {
    if stem.ends_with("_epoll") {
        Vec::new()
    } else if stem.ends_with("_libuv") {
        pkg_config("libuv").unwrap_or_else(|| vec!["-luv".into()])
    } else if stem.starts_with("tls_") && stem.ends_with("_libevent") {
        // bufferevent_openssl: libevent_openssl, libevent and OpenSSL
        pkg_config("libevent_openssl openssl").unwrap_or_else(|| {
            ["-levent_openssl", "-levent", "-lssl", "-lcrypto"]
                .map(String::from)
                .to_vec()
        })
    } else if stem.ends_with("_libev") {
        // Debian's libev-dev ships no .pc file
        vec!["-lev".into()]
    } else {
        pkg_config("libevent").unwrap_or_else(|| vec!["-levent".into()])
    }
}

/// `pkg-config --cflags --libs lib`, split on whitespace.
fn pkg_config(lib: &str) -> Option<Vec<String>> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", lib])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    })
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Whether `benches/c/<name>` is a benchmark program's source: `bench_*.c`, `echo_*.c` or
/// `tls_echo_*.c`.
fn is_c_program(name: &str) -> bool {
    name.ends_with(".c")
        && (name.starts_with("bench_")
            || name.starts_with("echo_")
            || name.starts_with("tls_echo_")
            || name.starts_with("dns_bench_")
            || name.starts_with("http_hello_"))
}

/// Compiles every `benches/c/bench_*.c` and `echo_*.c` whose binary is missing or older than
/// its sources. Returns the names of the programs that failed to compile.
fn build_c() -> Vec<String> {
    eprintln!("\n==> bench: compiling the C programs into benches/c/build/");
    let dir = c_dir();
    let mut sources: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| is_c_program(&n.to_string_lossy()))
            })
            .collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return vec!["benches/c".into()];
        }
    };
    sources.sort();
    let out_dir = c_build_dir();
    if let Err(e) = fs::create_dir_all(&out_dir) {
        eprintln!("cannot create {}: {e}", out_dir.display());
        return vec!["benches/c/build".into()];
    }
    let header = mtime(&dir.join("bench_common.h"));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut failed = Vec::new();
    for src in sources {
        let stem = src
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bin = out_dir.join(&stem);
        let newest_input = mtime(&src).max(header);
        if let (Some(b), Some(i)) = (mtime(&bin), newest_input) {
            if b >= i {
                eprintln!("   {stem}: up to date");
                continue;
            }
        }
        let mut cmd = Command::new(&cc);
        cmd.current_dir(&dir)
            .args(["-O2", "-Wall", "-Wextra", "-o"])
            .arg(&bin)
            .arg(&src)
            .args(c_flags(&stem));
        if let Err(e) = run(&format!("compiling {stem}"), cmd) {
            eprintln!("   {e}");
            failed.push(stem);
        }
    }
    failed
}

/// Options of `bench compare`.
#[derive(Debug)]
struct CompareOpts {
    quick: bool,
    reps: usize,
    build: bool,
    pin: Option<String>,
    /// Label filters (`--only`); empty = every workload.
    only: Vec<String>,
}

impl CompareOpts {
    fn parse(args: &[String]) -> Result<Self> {
        let mut opts = CompareOpts {
            quick: false,
            reps: 0,
            build: true,
            pin: None,
            only: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--no-build" => opts.build = false,
                "--reps" => {
                    opts.reps = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            format!("--reps needs a positive number\n\n{BENCH_USAGE}")
                        })?;
                }
                "--pin" => {
                    opts.pin = Some(
                        it.next()
                            .ok_or_else(|| format!("--pin needs a CPU number\n\n{BENCH_USAGE}"))?
                            .clone(),
                    );
                }
                "--only" => opts.only.push(
                    it.next()
                        .ok_or_else(|| format!("--only needs a word\n\n{BENCH_USAGE}"))?
                        .clone(),
                ),
                other => return Err(format!("unknown option `{other}`\n\n{BENCH_USAGE}")),
            }
        }
        if opts.reps == 0 {
            opts.reps = if opts.quick { 1 } else { 5 };
        }
        Ok(opts)
    }
}

/// How the programs of a workload are run.
#[derive(Debug, Clone)]
enum Mode {
    /// Each program runs on its own with the workload's `args` and prints `RESULT` lines.
    Standalone,
    /// Each program is an echo server, started with `-p 0 -T <server_secs>`; `echo_client`
    /// runs against it with `-p PORT -i IMPL` and the workload's `args` (plus `--pid PID` when
    /// `idle`), within `client_bound`, and prints the `RESULT` lines.
    Echo {
        /// The server's own time limit (`-T`): a bound if the harness itself dies.
        server_secs: u64,
        /// Idle-memory mode: the client needs the server's process id.
        idle: bool,
        /// The client is killed after this long.
        client_bound: Duration,
    },
    /// Each program is run by a workload-specific driver (TLS echo, HTTP under wrk, DNS against
    /// dnsmasq; see the `tls`, `http` and `dns` submodules). The driver gets the program's
    /// command (already wrapped in `taskset` when pinning), the implementation's name and the
    /// workload's `args`; it returns the text holding the `RESULT` lines, and a note to show
    /// (e.g. a degraded run) if any.
    #[allow(
        dead_code,
        reason = "constructed by the TLS, HTTP and DNS workloads as they land"
    )]
    Custom(Driver),
}

/// A workload-specific driver; see [`Mode::Custom`].
type Driver = fn(Command, &str, &[String]) -> Result<(String, Option<String>)>;

/// One workload: a Rust binary, its counterparts and the arguments all of them get.
#[derive(Debug)]
struct Workload {
    /// Human-readable label.
    label: String,
    /// Rust binary name in `<target>/release/`.
    bin: &'static str,
    /// Rust counterparts: (impl, binary name in `<target>/release/`).
    rust_peers: Vec<(&'static str, &'static str)>,
    /// The C counterparts: (impl, program name in `benches/c/build/`).
    c_programs: Vec<(&'static str, String)>,
    /// Arguments, identical for every implementation (for echo: the client's).
    args: Vec<String>,
    /// How the programs run.
    mode: Mode,
}

fn pipes(n: u32, a: u32, w: u32, r: u32, timeouts: bool) -> Workload {
    let mut args: Vec<String> = ["-n", &n.to_string(), "-a", &a.to_string()]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.extend(["-w".into(), w.to_string(), "-r".into(), r.to_string()]);
    if timeouts {
        args.push("-t".into());
    }
    Workload {
        label: format!("pipe chain n{n}_a{a}_w{w}_t{}", u8::from(timeouts)),
        bin: "bench_pipes",
        rust_peers: Vec::new(),
        c_programs: c_programs("bench_pipes", C_IMPLS),
        args,
        mode: Mode::Standalone,
    }
}

fn timers(k: u32, min_ms: u32, max_ms: u32) -> Workload {
    Workload {
        label: format!("million timers n{k}_ms{min_ms}-{max_ms}"),
        bin: "bench_timers",
        rust_peers: Vec::new(),
        c_programs: c_programs("bench_timers", &["libevent", "libev", "libuv"]),
        args: vec![
            "-n".into(),
            k.to_string(),
            "-m".into(),
            min_ms.to_string(),
            "-M".into(),
            max_ms.to_string(),
        ],
        mode: Mode::Standalone,
    }
}

/// `<bin>_<impl>` for each implementation.
fn c_programs(bin: &str, impls: &[&'static str]) -> Vec<(&'static str, String)> {
    impls.iter().map(|&i| (i, format!("{bin}_{i}"))).collect()
}

/// `Buffer` micro-benchmarks against libevent's evbuffer (no arguments; fixed sizes).
fn buffer() -> Workload {
    Workload {
        label: "buffer micro-benchmarks".into(),
        bin: "bench_buffer",
        rust_peers: Vec::new(),
        c_programs: vec![("libevent", "bench_buffer".into())],
        args: Vec::new(),
        mode: Mode::Standalone,
    }
}

/// The echo servers: (Rust peers, C programs).
type EchoServers = (
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, String)>,
);

fn echo_servers() -> EchoServers {
    (
        vec![("tokio", "echo_server_tokio")],
        vec![("libevent", "echo_server_libevent".into())],
    )
}

/// Echo throughput and round trips: `conns` connections, `size`-byte messages, `secs` measured
/// seconds after one second of warm-up.
fn echo(conns: u32, size: u32, secs: u64) -> Workload {
    let warmup = 1;
    let (rust_peers, c_programs) = echo_servers();
    Workload {
        label: format!("echo c{conns}_s{size} ({secs} s)"),
        bin: "echo_server",
        rust_peers,
        c_programs,
        args: vec![
            "-c".into(),
            conns.to_string(),
            "-s".into(),
            size.to_string(),
            "-T".into(),
            secs.to_string(),
            "-w".into(),
            warmup.to_string(),
        ],
        mode: Mode::Echo {
            server_secs: secs + warmup + 60,
            idle: false,
            client_bound: Duration::from_secs(secs + warmup + 60),
        },
    }
}

/// Server memory per idle connection, with `n` connections.
fn echo_idle(n: u32) -> Workload {
    let (rust_peers, c_programs) = echo_servers();
    Workload {
        label: format!("echo idle memory n{n}"),
        bin: "echo_server",
        rust_peers,
        c_programs,
        args: vec!["--idle".into(), n.to_string()],
        mode: Mode::Echo {
            // the client opens the connections within 120 s and waits at most 11 s more
            server_secs: 240,
            idle: true,
            client_bound: Duration::from_secs(200),
        },
    }
}

/// The workloads of issue 2 (or small versions of them with `--quick`), the buffer
/// micro-benchmarks, then the echo workloads of issue 4.
fn workloads(quick: bool) -> Vec<Workload> {
    let mut loads = if quick {
        vec![
            pipes(100, 10, 100, 5, false),
            pipes(100, 10, 100, 5, true),
            pipes(100, 10, 1000, 5, false),
            pipes(100, 10, 1000, 5, true),
            timers(100_000, 1, 100),
        ]
    } else {
        vec![
            pipes(1000, 100, 100, 25, false),
            pipes(1000, 100, 100, 25, true),
            pipes(1000, 100, 10_000, 25, false),
            pipes(1000, 100, 10_000, 25, true),
            timers(1_000_000, 1, 1000),
        ]
    };
    loads.push(buffer());
    if quick {
        loads.push(echo(8, 4096, 2));
        loads.push(echo_idle(1000));
    } else {
        loads.push(echo(64, 4096, 10));
        loads.push(echo(16, 16_384, 10));
        loads.push(echo_idle(10_000));
    }
    loads.extend(tls::workloads(quick));
    loads.extend(http::workloads(quick));
    loads.extend(dns::workloads(quick));
    loads
}

/// One parsed `RESULT` line.
#[derive(Debug, Clone, PartialEq)]
struct ResultLine {
    name: String,
    imp: String,
    cfg: String,
    value: f64,
    unit: String,
}

/// Parses `RESULT name=.. impl=.. cfg=.. value=.. unit=.. [k=v ...]`; `None` for other lines.
fn parse_result(line: &str) -> Option<ResultLine> {
    let rest = line.trim().strip_prefix("RESULT ")?;
    let mut fields = BTreeMap::new();
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        fields.insert(k, v);
    }
    Some(ResultLine {
        name: fields.get("name")?.to_string(),
        imp: fields.get("impl")?.to_string(),
        cfg: fields.get("cfg")?.to_string(),
        value: fields.get("value")?.parse().ok()?,
        unit: fields.get("unit")?.to_string(),
    })
}

/// Runs one program with the default time limit; returns its stdout.
fn run_capture(cmd: Command) -> Result<String> {
    run_capture_within(cmd, RUN_TIMEOUT)
}

/// Runs one program, killed after `limit`; returns its stdout.
fn run_capture_within(mut cmd: Command, limit: Duration) -> Result<String> {
    let line = describe(&cmd);
    eprintln!("$ {line}");
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{line}` took longer than {} s and was killed",
                    limit.as_secs()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for `{line}`: {e}")),
        }
    };
    let out = reader
        .join()
        .map_err(|_| "stdout reader panicked".to_string())?
        .map_err(|e| format!("reading the output of `{line}`: {e}"))?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("`{line}` exited with {status}"))
    }
}

/// A running echo server. Dropping it stops it (SIGTERM, then SIGKILL), so that no failure
/// path leaves a server behind.
#[derive(Debug)]
struct Server {
    child: Child,
    line: String,
    /// The exit status, once collected.
    status: Option<ExitStatus>,
}

impl Server {
    /// Starts `cmd` (which must not exit before it is stopped), waits for `READY port=N` on
    /// its stdout for at most [`READY_TIMEOUT`] and returns it with the port. The rest of its
    /// stdout is drained by a thread until it exits.
    fn start(mut cmd: Command) -> Result<(Server, u16)> {
        let line = describe(&cmd);
        eprintln!("$ {line} &");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{line}`: {e}"))?;
        let stdout = child.stdout.take();
        let mut server = Server {
            child,
            line,
            status: None,
        };
        let stdout = stdout.ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                // once READY was seen nobody listens: keep draining regardless
                let _ = tx.send(l);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    if let Some(port) = parse_ready(&l) {
                        return Ok((server, port));
                    }
                    eprintln!("   (server) {l}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = server.stop();
                    return Err(format!(
                        "`{}` printed no `READY port=N` within {} s",
                        server.line,
                        READY_TIMEOUT.as_secs()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.stop();
                    return Err(format!(
                        "`{}` closed its stdout without printing `READY port=N` ({})",
                        server.line,
                        status.map_or_else(|e| e, |s| s.to_string())
                    ));
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (with the `kill` command: xtask is std-only) and waits for the exit for
    /// at most [`STOP_TIMEOUT`]; then SIGKILL. Returns the exit status, or an error saying
    /// that it had to be killed.
    fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        if let Ok(Some(s)) = self.child.try_wait() {
            self.status = Some(s);
            return Ok(s);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    self.status = Some(s);
                    return Ok(s);
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let s = self.child.wait();
        if let Ok(s) = s {
            self.status = Some(s);
        }
        Err(format!(
            "`{}` did not exit within {} s of SIGTERM and was killed",
            self.line,
            STOP_TIMEOUT.as_secs()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The port of a `READY port=N` line.
fn parse_ready(line: &str) -> Option<u16> {
    line.trim()
        .strip_prefix("READY ")?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))?
        .parse()
        .ok()
        .filter(|&p| p != 0)
}

/// One echo run: starts `server` (a command without arguments yet), runs `client` against
/// it as `imp`, stops the server. Returns the client's stdout, and a note if the server did not
/// stop cleanly (the client's figures stand: it checked every byte).
fn run_echo(
    mut server: Command,
    client: &Path,
    imp: &str,
    args: &[String],
    mode: &Mode,
) -> Result<(String, Option<String>)> {
    let Mode::Echo {
        server_secs,
        idle,
        client_bound,
    } = mode
    else {
        return Err("not an echo workload".into());
    };
    server.args(["-p", "0", "-T", &server_secs.to_string()]);
    let (mut srv, port) = Server::start(server)?;
    let mut cmd = Command::new(client);
    cmd.args(["-p", &port.to_string(), "-i", imp])
        .args(args)
        .current_dir(root());
    if *idle {
        cmd.args(["--pid", &srv.pid().to_string()]);
    }
    let out = run_capture_within(cmd, *client_bound);
    let stopped = srv.stop();
    let out = out?;
    let note = match stopped {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "the {imp} echo server exited with {s} after SIGTERM"
        )),
        Err(e) => Some(e),
    };
    Ok((out, note))
}

/// Whether `taskset` can be run.
fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `bench compare`.
fn compare(opts: &CompareOpts) -> Result {
    let started = Instant::now();
    if opts.build {
        let failed = build_c();
        if !failed.is_empty() {
            eprintln!("warning: these C programs did not compile and will be skipped: {failed:?}");
        }
        if let Err(e) = build_rust() {
            eprintln!(
                "warning: {e}\nwarning: oxevent's binaries could not be built; comparing the C \
                 implementations among themselves"
            );
        }
    }
    let pin = match &opts.pin {
        Some(cpu) if have_taskset() => Some(cpu.clone()),
        Some(_) => {
            eprintln!("warning: --pin given but `taskset` is not available; not pinning");
            None
        }
        None => None,
    };
    let rust_dir = target_dir().join("release");
    let c_dir = c_build_dir();

    let mut all: Vec<ResultLine> = Vec::new();
    let mut raw_log = String::new();
    let mut notes: Vec<String> = Vec::new();
    let loads: Vec<Workload> = workloads(opts.quick)
        .into_iter()
        .filter(|w| opts.only.is_empty() || opts.only.iter().any(|o| w.label.contains(o.as_str())))
        .collect();
    if loads.is_empty() {
        return Err(format!("no workload matches --only {:?}", opts.only));
    }
    for load in &loads {
        eprintln!("\n==> bench compare: {} ({} rep(s))", load.label, opts.reps);
        // (impl, path)
        let mut programs: Vec<(String, PathBuf)> = Vec::new();
        let rust_bin = rust_dir.join(load.bin);
        if rust_bin.is_file() {
            programs.push(("oxevent".into(), rust_bin));
        } else {
            let note = format!(
                "{}: oxevent's {} is missing (build it with `cargo build --release -p \
                 oxevent-benches`); skipped",
                load.label,
                rust_bin.display()
            );
            eprintln!("note: {note}");
            notes.push(note);
        }
        for (imp, name) in &load.rust_peers {
            let bin = rust_dir.join(name);
            if bin.is_file() {
                programs.push(((*imp).into(), bin));
            } else {
                let note = format!(
                    "{}: {imp}'s {} is missing (`cargo xtask bench build`); skipped",
                    load.label,
                    bin.display()
                );
                eprintln!("note: {note}");
                notes.push(note);
            }
        }
        for (imp, name) in &load.c_programs {
            let bin = c_dir.join(name);
            if bin.is_file() {
                programs.push(((*imp).into(), bin));
            } else {
                let note = format!(
                    "{}: {} is missing (`cargo xtask bench build`); skipped",
                    load.label,
                    bin.display()
                );
                eprintln!("note: {note}");
                notes.push(note);
            }
        }
        let client = rust_dir.join(ECHO_CLIENT);
        if matches!(load.mode, Mode::Echo { .. }) && !client.is_file() {
            let note = format!(
                "{}: the load client {} is missing (`cargo xtask bench build`); skipped",
                load.label,
                client.display()
            );
            eprintln!("note: {note}");
            notes.push(note);
            continue;
        }
        let mut failed: Vec<String> = Vec::new();
        for rep in 0..opts.reps {
            // rotate the order so no implementation always runs first
            for k in 0..programs.len() {
                let (imp, bin) = &programs[(k + rep) % programs.len()];
                if failed.contains(imp) {
                    continue;
                }
                let mut cmd = match &pin {
                    Some(cpu) => {
                        let mut c = Command::new("taskset");
                        c.args(["-c", cpu]).arg(bin);
                        c
                    }
                    None => Command::new(bin),
                };
                cmd.current_dir(root());
                let outcome = match load.mode {
                    Mode::Standalone => {
                        cmd.args(&load.args);
                        run_capture(cmd)
                    }
                    Mode::Echo { .. } | Mode::Custom(_) => {
                        let run = match load.mode {
                            Mode::Custom(driver) => driver(cmd, imp, &load.args),
                            _ => run_echo(cmd, &client, imp, &load.args, &load.mode),
                        };
                        run.map(|(out, note)| {
                            if let Some(n) = note {
                                let note = format!("{}: {n}", load.label);
                                eprintln!("warning: {note}");
                                notes.push(note);
                            }
                            out
                        })
                    }
                };
                match outcome {
                    Ok(out) => {
                        let mut n = 0;
                        for line in out.lines() {
                            if let Some(r) = parse_result(line) {
                                raw_log.push_str(line);
                                raw_log.push('\n');
                                all.push(r);
                                n += 1;
                            }
                        }
                        if n == 0 {
                            let note =
                                format!("{}: {imp} printed no RESULT line; skipped", load.label);
                            eprintln!("warning: {note}");
                            notes.push(note);
                            failed.push(imp.clone());
                        }
                    }
                    Err(e) => {
                        let note = format!("{}: {imp} failed: {e}; skipped", load.label);
                        eprintln!("warning: {note}");
                        notes.push(note);
                        failed.push(imp.clone());
                    }
                }
            }
        }
    }

    let log_dir = target_dir().join("bench");
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let log_path = log_dir.join(format!("compare-{stamp}.txt"));
    match fs::create_dir_all(&log_dir).and_then(|()| fs::write(&log_path, &raw_log)) {
        Ok(()) => eprintln!("\nall RESULT lines: {}", log_path.display()),
        Err(e) => eprintln!("warning: cannot write {}: {e}", log_path.display()),
    }

    println!("{}", render_table(&all, opts));
    if !notes.is_empty() {
        println!("notes:");
        for n in &notes {
            println!("  - {n}");
        }
    }
    eprintln!(
        "bench compare: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if all.is_empty() {
        return Err("no benchmark produced a RESULT line".into());
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Whether a bigger value of a metric in `unit` is better: rates (`*_per_s`, e.g. the echo
/// throughput in `MB_per_s`). Every other unit is a time or a size, where lower is better.
fn higher_is_better(unit: &str) -> bool {
    unit == "per_s" || unit.ends_with("_per_s")
}

/// The comparison table: one row per (cfg, metric), the median of each implementation, and
/// oxevent's ratio to each other one, to the best of the peers (libevent, libev, libuv, tokio)
/// and to the floor. Columns appear for oxevent and for the implementations that printed
/// something. `better` says whether lower or higher values win for the row's metric; the best
/// peer is the lowest or the highest accordingly.
fn render_table(results: &[ResultLine], opts: &CompareOpts) -> String {
    // (cfg, metric) in order of first appearance
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut values: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for r in results {
        let key = (r.cfg.clone(), r.name.clone());
        if !rows.iter().any(|(c, m, _)| (c, m) == (&key.0, &key.1)) {
            rows.push((key.0.clone(), key.1.clone(), r.unit.clone()));
        }
        values
            .entry((r.cfg.clone(), r.name.clone(), r.imp.clone()))
            .or_default()
            .push(r.value);
    }
    let others: Vec<&str> = OTHER_IMPLS
        .iter()
        .copied()
        .filter(|imp| results.iter().any(|r| r.imp == *imp))
        .collect();
    let impls: Vec<&str> = std::iter::once("oxevent")
        .chain(others.iter().copied())
        .collect();
    let mut med = BTreeMap::new();
    for ((cfg, name, imp), v) in &mut values {
        med.insert((cfg.clone(), name.clone(), imp.clone()), median(v));
    }
    let get = |cfg: &str, name: &str, imp: &str| -> Option<f64> {
        med.get(&(cfg.to_string(), name.to_string(), imp.to_string()))
            .copied()
    };

    let mut s = String::new();
    s.push_str(&format!(
        "\nbench compare: medians of {} rep(s){}; ratio = oxevent / other\n\
         `better` is the direction that wins: for `lower` (times, sizes) a ratio below 1.00x \
         means oxevent is ahead,\nfor `higher` (rates such as MB_per_s) a ratio above 1.00x \
         does; ox/best is against the best peer in that direction\n\n",
        opts.reps,
        if opts.quick {
            " (--quick: smoke sizes, not a measurement)"
        } else {
            ""
        }
    ));
    let mut header = format!(
        "{:<20} {:<26} {:<14} {:<6}",
        "cfg", "metric", "unit", "better"
    );
    for imp in &impls {
        header.push_str(&format!(" {imp:>11}"));
    }
    for imp in &others {
        header.push_str(&format!(" {:>11}", format!("ox/{imp}")));
    }
    header.push_str(&format!(" {:>11}", "ox/best"));
    s.push_str(&header);
    s.push('\n');
    s.push_str(&"-".repeat(header.len()));
    s.push('\n');
    let fmt_val = |v: Option<f64>| match v {
        Some(v) if v.is_finite() => format!(" {v:>11.3}"),
        _ => format!(" {:>11}", "-"),
    };
    let fmt_ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(o), Some(t)) if t > 0.0 && o.is_finite() => format!(" {:>10.2}x", o / t),
        _ => format!(" {:>11}", "-"),
    };
    for (cfg, name, unit) in &rows {
        let higher = higher_is_better(unit);
        let mut line = format!(
            "{cfg:<20} {name:<26} {unit:<14} {:<6}",
            if higher { "higher" } else { "lower" }
        );
        let ours = get(cfg, name, "oxevent");
        for imp in &impls {
            line.push_str(&fmt_val(get(cfg, name, imp)));
        }
        for imp in &others {
            line.push_str(&fmt_ratio(ours, get(cfg, name, imp)));
        }
        let peers = PEERS.iter().filter_map(|imp| get(cfg, name, imp));
        let best = if higher {
            peers.max_by(f64::total_cmp)
        } else {
            peers.min_by(f64::total_cmp)
        };
        line.push_str(&fmt_ratio(ours, best));
        s.push_str(&line);
        s.push('\n');
    }
    if results.iter().all(|r| r.imp != "oxevent") {
        s.push_str("\n(no oxevent figures: ratio columns are empty)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let r = parse_result(
            "RESULT name=pipes.total impl=libev cfg=n1000_a100_w100_t0 value=12.5 \
             unit=us_per_round events=200",
        )
        .unwrap();
        assert_eq!(r.name, "pipes.total");
        assert_eq!(r.imp, "libev");
        assert_eq!(r.cfg, "n1000_a100_w100_t0");
        assert_eq!(r.value, 12.5);
        assert_eq!(r.unit, "us_per_round");
        assert!(parse_result("round 1: setup 3 us").is_none());
        assert!(parse_result("RESULT name=x impl=y cfg=z value=abc unit=ms").is_none());
        assert!(parse_result("RESULT name=x impl=y value=1 unit=ms").is_none());
    }

    #[test]
    fn table_ratios() {
        let lines = [
            "RESULT name=pipes.total impl=oxevent cfg=c value=50 unit=us_per_round",
            "RESULT name=pipes.total impl=libevent cfg=c value=200 unit=us_per_round",
            "RESULT name=pipes.total impl=libev cfg=c value=100 unit=us_per_round",
            "RESULT name=pipes.total impl=libev cfg=c value=60 unit=us_per_round",
            "RESULT name=pipes.total impl=libev cfg=c value=80 unit=us_per_round",
            "RESULT name=pipes.total impl=libuv cfg=d value=80 unit=us_per_round",
        ];
        let rs: Vec<_> = lines.iter().filter_map(|l| parse_result(l)).collect();
        let opts = CompareOpts {
            quick: false,
            reps: 3,
            build: false,
            pin: None,
            only: Vec::new(),
        };
        let t = render_table(&rs, &opts);
        let row = t.lines().find(|l| l.starts_with("c ")).unwrap();
        // libev median 80 -> 0.62x; libevent 0.25x; best (libev) 0.62x
        assert!(row.contains("0.25x"), "{row}");
        assert!(row.matches("0.62x").count() == 2, "{row}");
        assert!(row.contains(" -"), "{row}");
        assert!(row.contains(" lower "), "{row}");
        // no tokio figure anywhere: no tokio column
        assert!(!t.contains("tokio"), "{t}");
    }

    #[test]
    fn table_rates_are_better_higher() {
        let lines = [
            "RESULT name=echo.throughput impl=oxevent cfg=c64_s4096 value=400 unit=MB_per_s",
            "RESULT name=echo.throughput impl=libevent cfg=c64_s4096 value=250 unit=MB_per_s",
            "RESULT name=echo.throughput impl=tokio cfg=c64_s4096 value=320 unit=MB_per_s",
            "RESULT name=echo.rtt_p99 impl=oxevent cfg=c64_s4096 value=300 unit=us",
            "RESULT name=echo.rtt_p99 impl=libevent cfg=c64_s4096 value=600 unit=us",
            "RESULT name=echo.rtt_p99 impl=tokio cfg=c64_s4096 value=400 unit=us",
        ];
        let rs: Vec<_> = lines.iter().filter_map(|l| parse_result(l)).collect();
        let opts = CompareOpts {
            quick: true,
            reps: 1,
            build: false,
            pin: None,
            only: Vec::new(),
        };
        let t = render_table(&rs, &opts);
        let header = t.lines().find(|l| l.starts_with("cfg ")).unwrap();
        assert!(header.contains("ox/tokio"), "{header}");
        assert!(!header.contains("libuv"), "{header}");
        let tput = t.lines().find(|l| l.contains("echo.throughput")).unwrap();
        // best peer by throughput is tokio (the highest): 400 / 320
        assert!(tput.contains(" higher "), "{tput}");
        assert!(
            tput.contains("1.60x") && tput.matches("1.25x").count() == 2,
            "{tput}"
        );
        let rtt = t.lines().find(|l| l.contains("echo.rtt_p99")).unwrap();
        // best peer by p99 is tokio (the lowest): 300 / 400
        assert!(rtt.contains(" lower "), "{rtt}");
        assert!(
            rtt.contains("0.50x") && rtt.matches("0.75x").count() == 2,
            "{rtt}"
        );
    }

    #[test]
    fn ready_lines_and_c_sources() {
        assert_eq!(parse_ready("READY port=4242"), Some(4242));
        assert_eq!(parse_ready("READY port=4242\n"), Some(4242));
        assert_eq!(parse_ready("READY port=0"), None);
        assert_eq!(parse_ready("RESULT name=x"), None);
        assert!(is_c_program("bench_pipes_libev.c"));
        assert!(is_c_program("echo_server_libevent.c"));
        assert!(!is_c_program("bench_common.h"));
        assert!(!is_c_program("notes.c"));
        assert_eq!(
            c_flags("echo_server_libevent"),
            c_flags("bench_pipes_libevent")
        );
    }

    #[test]
    fn echo_workloads() {
        let full = workloads(false);
        let echo: Vec<_> = full
            .iter()
            .filter(|w| matches!(w.mode, Mode::Echo { .. }))
            .collect();
        assert_eq!(echo.len(), 3);
        for w in &echo {
            assert_eq!(w.bin, "echo_server");
            assert_eq!(w.rust_peers, vec![("tokio", "echo_server_tokio")]);
            assert_eq!(
                w.c_programs,
                vec![("libevent", "echo_server_libevent".into())]
            );
        }
        assert_eq!(
            echo[0].args,
            ["-c", "64", "-s", "4096", "-T", "10", "-w", "1"]
        );
        assert_eq!(
            echo[1].args,
            ["-c", "16", "-s", "16384", "-T", "10", "-w", "1"]
        );
        assert_eq!(echo[2].args, ["--idle", "10000"]);
        let quick = workloads(true);
        assert!(
            quick
                .iter()
                .any(|w| w.args == ["-c", "8", "-s", "4096", "-T", "2", "-w", "1"])
        );
    }

    #[test]
    fn server_start_and_stop() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting; echo READY port=4242; exec sleep 30"]);
        let (mut srv, port) = Server::start(cmd).unwrap();
        assert_eq!(port, 4242);
        let t = Instant::now();
        let status = srv.stop().unwrap();
        assert!(!status.success(), "sleep dies of SIGTERM");
        assert!(t.elapsed() < STOP_TIMEOUT);

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo no ready line"]);
        let e = Server::start(cmd).unwrap_err();
        assert!(e.contains("without printing"), "{e}");
    }

    #[test]
    fn parses_only() {
        let args: Vec<String> = ["--quick", "--only", "echo", "--only", "timers"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let o = CompareOpts::parse(&args).unwrap();
        assert_eq!(o.only, ["echo", "timers"]);
        assert_eq!(o.reps, 1);
        assert!(CompareOpts::parse(&["--only".to_string()]).is_err());
        let labels: Vec<String> = workloads(false).into_iter().map(|w| w.label).collect();
        assert_eq!(labels.iter().filter(|l| l.contains("echo")).count(), 3);
        assert_eq!(labels.iter().filter(|l| l.contains("idle")).count(), 1);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
