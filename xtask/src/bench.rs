//! `cargo xtask bench build|compare`: the Rust benchmark binaries and their C counterparts.
//!
//! The C programs live in `benches/c/bench_*.c`; each is one translation unit compiled with
//! `cc -O2` into `benches/c/build/`, linked against the library its name says
//! (`*_libevent`, `*_libev`, `*_libuv`, `*_epoll` = no library; anything else links libevent).
//! The Rust programs are the `oxevent-benches` binaries in `<target>/release/`.
//!
//! `compare` runs every implementation of a workload alternately, `reps` times, in one session,
//! parses the `RESULT` lines they print and shows, per cfg and metric, the median value of each
//! implementation and the ratio oxevent / other (lower is better for every metric).

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::{Result, cargo, describe, root, run, target_dir};

/// Usage of `cargo xtask bench`.
const BENCH_USAGE: &str = "\
usage: cargo xtask bench build
       cargo xtask bench compare [--quick] [--reps N] [--no-build] [--pin CPU]

  build        cargo build --release -p oxevent-benches; compile benches/c/*.c into benches/c/build/
  compare      build, then run oxevent, libevent, libev, libuv (and the raw-epoll floor) in turn
    --quick    small sizes, one repetition: a smoke test of the harness, not a measurement
    --reps N   repetitions of each program per workload (default 5; medians are compared)
    --no-build use the binaries as they are
    --pin CPU  run every program under `taskset -c CPU`
";

/// The C implementations, in the order they run after oxevent.
const C_IMPLS: &[&str] = &["libevent", "libev", "libuv", "epoll"];

/// Implementations whose best figure is the target (the raw-epoll floor is reported apart).
const PEERS: &[&str] = &["libevent", "libev", "libuv"];

/// No single benchmark run may take longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

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

/// Compiles every `benches/c/bench_*.c` whose binary is missing or older than its sources.
/// Returns the names of the programs that failed to compile.
fn build_c() -> Vec<String> {
    eprintln!("\n==> bench: compiling the C programs into benches/c/build/");
    let dir = c_dir();
    let mut sources: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "c")
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("bench_"))
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
}

impl CompareOpts {
    fn parse(args: &[String]) -> Result<Self> {
        let mut opts = CompareOpts {
            quick: false,
            reps: 0,
            build: true,
            pin: None,
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
                other => return Err(format!("unknown option `{other}`\n\n{BENCH_USAGE}")),
            }
        }
        if opts.reps == 0 {
            opts.reps = if opts.quick { 1 } else { 5 };
        }
        Ok(opts)
    }
}

/// One workload: a Rust binary, its C counterparts and the arguments all of them get.
#[derive(Debug)]
struct Workload {
    /// Human-readable label.
    label: String,
    /// Rust binary name in `<target>/release/`.
    bin: &'static str,
    /// The C counterparts: (impl, program name in `benches/c/build/`).
    c_programs: Vec<(&'static str, String)>,
    /// Arguments, identical for every implementation.
    args: Vec<String>,
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
        c_programs: c_programs("bench_pipes", C_IMPLS),
        args,
    }
}

fn timers(k: u32, min_ms: u32, max_ms: u32) -> Workload {
    Workload {
        label: format!("million timers n{k}_ms{min_ms}-{max_ms}"),
        bin: "bench_timers",
        c_programs: c_programs("bench_timers", PEERS),
        args: vec![
            "-n".into(),
            k.to_string(),
            "-m".into(),
            min_ms.to_string(),
            "-M".into(),
            max_ms.to_string(),
        ],
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
        c_programs: vec![("libevent", "bench_buffer".into())],
        args: Vec::new(),
    }
}

/// The workloads of issue 2 (or small versions of them with `--quick`), then the buffer
/// micro-benchmarks.
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

/// Runs one program with a time limit; returns its stdout.
fn run_capture(mut cmd: Command) -> Result<String> {
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
            Ok(None) if started.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{line}` took longer than {} s and was killed",
                    RUN_TIMEOUT.as_secs()
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
    let loads = workloads(opts.quick);
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
                cmd.args(&load.args).current_dir(root());
                match run_capture(cmd) {
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

/// The comparison table: one row per (cfg, metric), the median of each implementation, and
/// oxevent's ratio to each other one, to the best of libevent/libev/libuv and to the floor.
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
    let impls: Vec<&str> = std::iter::once("oxevent")
        .chain(C_IMPLS.iter().copied())
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
        "\nbench compare: medians of {} rep(s){}; lower is better; ratio = oxevent / other\n\n",
        opts.reps,
        if opts.quick {
            " (--quick: smoke sizes, not a measurement)"
        } else {
            ""
        }
    ));
    let mut header = format!("{:<20} {:<26} {:<13}", "cfg", "metric", "unit");
    for imp in &impls {
        header.push_str(&format!(" {imp:>11}"));
    }
    for imp in C_IMPLS {
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
        let mut line = format!("{cfg:<20} {name:<26} {unit:<13}");
        let ours = get(cfg, name, "oxevent");
        for imp in &impls {
            line.push_str(&fmt_val(get(cfg, name, imp)));
        }
        for imp in C_IMPLS {
            line.push_str(&fmt_ratio(ours, get(cfg, name, imp)));
        }
        let best = PEERS
            .iter()
            .filter_map(|imp| get(cfg, name, imp))
            .min_by(f64::total_cmp);
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
        ];
        let rs: Vec<_> = lines.iter().filter_map(|l| parse_result(l)).collect();
        let opts = CompareOpts {
            quick: false,
            reps: 3,
            build: false,
            pin: None,
        };
        let t = render_table(&rs, &opts);
        let row = t.lines().find(|l| l.starts_with("c ")).unwrap();
        // libev median 80 -> 0.62x; libevent 0.25x; best (libev) 0.62x
        assert!(row.contains("0.25x"), "{row}");
        assert!(row.matches("0.62x").count() == 2, "{row}");
        assert!(row.contains(" -"), "{row}");
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
