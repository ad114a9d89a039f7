//! `cargo xtask`: the single source of truth for CI and the chores around the oxevent workspace.
//!
//! Run `cargo xtask` (an alias in `.cargo/config.toml`) with one of the subcommands listed by
//! [`USAGE`]. Every subcommand runs cargo through the `CARGO` environment variable (falling back
//! to `cargo`) from the workspace root, prints each command before running it, and exits non-zero
//! at the first failure. Only `std` is used so that the tool itself compiles in a second.

mod bench;
mod mapping;
mod tidy;

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// What `cargo xtask` prints with no arguments, `help` or an unknown subcommand.
const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  fmt                   cargo fmt --all --check
  lint                  cargo clippy --workspace --all-targets --locked -- -D warnings,
                        then clippy on the facade with --no-default-features
  test                  cargo nextest run --workspace (or cargo test), cargo test --doc,
                        then oxevent-core, oxevent-bufferevent and oxevent once per other backend
                        (EVENT_NOEPOLL / EVENT_NOPOLL / EVENT_NOMIO, like libevent's test.sh)
  docs                  RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --locked
  tidy                  source checks: module docs, SAFETY comments and where unsafe lives,
                        no todo!/dbg!/unimplemented!, doc aliases listed in docs/libevent-mapping.md
                        and its generated table up to date
  mapping               regenerate the table of docs/libevent-mapping.md from the doc aliases
  bench build           cargo build --release -p oxevent-benches, and compile benches/c/*.c
                        into benches/c/build/
  bench compare [--quick] [--reps N] [--no-build] [--pin CPU]
                        run oxevent and the C libevent/libev/libuv/raw-epoll programs
                        alternately on every workload and print oxevent/other ratios
  fuzz-smoke [SECS]     every fuzz/fuzz_targets target for SECS seconds (default 10) with
                        cargo-fuzz and RUSTC_BOOTSTRAP=1; without cargo-fuzz, only compiles them
  ci                    fmt, lint, docs, tidy, test, in that order; stops at the first failure
";

/// Result type of every step: the error is a message for the user.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let outcome = match cmd.as_str() {
        "fmt" => no_args(cmd, rest).and_then(|()| fmt()),
        "lint" => no_args(cmd, rest).and_then(|()| lint()),
        "test" => no_args(cmd, rest).and_then(|()| test()),
        "docs" => no_args(cmd, rest).and_then(|()| docs()),
        "tidy" => no_args(cmd, rest).and_then(|()| tidy_cmd()),
        "mapping" => no_args(cmd, rest).and_then(|()| mapping::run(&root())),
        "bench" => bench::main(rest),
        "fuzz-smoke" => fuzz_smoke(rest),
        "ci" => no_args(cmd, rest).and_then(|()| ci()),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("\nxtask {cmd}: FAILED: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Rejects extra arguments for subcommands that take none.
fn no_args(cmd: &str, rest: &[String]) -> Result {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd}` takes no arguments, got {rest:?}\n\n{USAGE}"
        ))
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` if set (relative to the root), else `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// A `cargo` command (through `$CARGO`), run from the workspace root.
pub(crate) fn cargo() -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    cmd
}

/// Renders a command as a shell-like line, environment overrides first.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            line.push_str(&format!("{}={:?} ", key.to_string_lossy(), value));
        }
    }
    let program = Path::new(cmd.get_program());
    let program = if program.file_stem().is_some_and(|s| s == "cargo") {
        "cargo".into()
    } else {
        program.to_string_lossy()
    };
    line.push_str(&program);
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        line.push(' ');
        if arg.contains([' ', '|', '"', '$']) {
            line.push_str(&format!("'{arg}'"));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// Runs `cmd` to completion, printing it first; a failure names `what`.
pub(crate) fn run(what: &str, mut cmd: Command) -> Result {
    let line = describe(&cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: `{line}` exited with {status}"))
    }
}

/// Prints a section header.
fn section(title: &str) {
    eprintln!("\n==> {title}");
}

/// `cargo xtask fmt`.
fn fmt() -> Result {
    let mut cmd = cargo();
    cmd.args(["fmt", "--all", "--check"]);
    run("fmt", cmd)
}

/// `cargo xtask lint`.
fn lint() -> Result {
    let mut all = cargo();
    all.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("clippy (workspace)", all)?;
    let mut facade = cargo();
    facade.args([
        "clippy",
        "-p",
        "oxevent",
        "--no-default-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("clippy (oxevent --no-default-features)", facade)
}

/// `cargo xtask docs`.
fn docs() -> Result {
    let mut cmd = cargo();
    cmd.env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--workspace", "--no-deps", "--locked"]);
    run("docs", cmd)
}

/// Every `EVENT_NO<NAME>` variable a backend may read, so each run starts from a clean slate.
const EVENT_NO_VARS: &[&str] = &[
    "EVENT_NOEPOLL",
    "EVENT_NOPOLL",
    "EVENT_NOMIO",
    "EVENT_NOURING",
    "EVENT_NOSELECT",
    "EVENT_NOKQUEUE",
];

/// The backends whose test reruns `cargo xtask test` does, with the variable that disables each.
const BACKENDS: &[(&str, &str)] = &[
    ("epoll", "EVENT_NOEPOLL"),
    ("poll", "EVENT_NOPOLL"),
    ("mio", "EVENT_NOMIO"),
];

/// This platform's default backend, which the main test run already covers.
fn default_backend() -> &'static str {
    if cfg!(target_os = "linux") {
        "epoll"
    } else {
        "mio"
    }
}

/// Whether `cargo nextest` is installed.
fn have_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A test command over the workspace, nextest when available. With `only`, just the tests of
/// those packages: nextest filters the workspace build (`-E package(=name)`, so nothing is
/// rebuilt), while cargo test selects them with `-p` (which may rebuild with fewer features).
fn test_command(nextest: bool, only: &[&str]) -> Command {
    let mut cmd = cargo();
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--locked"]);
        if !only.is_empty() {
            let filter: Vec<String> = only.iter().map(|p| format!("package(={p})")).collect();
            cmd.args(["--no-tests=warn", "-E", &filter.join(" | ")]);
        }
    } else {
        cmd.args(["test", "--locked"]);
        if only.is_empty() {
            cmd.arg("--workspace");
        }
        for p in only {
            cmd.args(["-p", p]);
        }
    }
    for var in EVENT_NO_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// `cargo xtask test`.
fn test() -> Result {
    let nextest = have_nextest();
    if !nextest {
        eprintln!("note: cargo-nextest not found; using cargo test");
    }
    section("test: workspace");
    run("tests", test_command(nextest, &[]))?;

    section("test: doctests");
    let mut doc = cargo();
    doc.args(["test", "--doc", "--workspace", "--locked"]);
    run("doctests", doc)?;

    // libevent's test.sh runs the regression suite once per backend by disabling the others
    // through EVENT_NO* variables; we do the same for the reactor and the facade.
    for &(name, _) in BACKENDS {
        if name == default_backend() {
            eprintln!("\n==> test: backend {name}: covered by the workspace run above (default)");
            continue;
        }
        if name == "epoll" && !cfg!(target_os = "linux") {
            continue;
        }
        section(&format!(
            "test: backend {name} (oxevent-core, oxevent-bufferevent, oxevent)"
        ));
        let mut cmd = test_command(nextest, &["oxevent-core", "oxevent-bufferevent", "oxevent"]);
        for &(other, var) in BACKENDS {
            if other != name {
                cmd.env(var, "1");
            }
        }
        cmd.env("EVENT_NOURING", "1");
        run(&format!("tests on the {name} backend"), cmd)?;
    }
    Ok(())
}

/// `cargo xtask tidy`.
fn tidy_cmd() -> Result {
    let root = root();
    let problems = tidy::check_all(&root)?;
    if problems.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("{p}");
    }
    Err(format!("tidy: {} problem(s)", problems.len()))
}

/// `cargo xtask fuzz-smoke [SECS]`: a short run of every fuzz target (not part of `ci`).
fn fuzz_smoke(args: &[String]) -> Result {
    let secs: u32 = match args {
        [] => 10,
        [s] => s
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("fuzz-smoke: bad duration `{s}` (seconds)"))?,
        _ => return Err(format!("fuzz-smoke takes at most one argument\n\n{USAGE}")),
    };
    let fuzz_dir = root().join("fuzz");
    let targets_dir = fuzz_dir.join("fuzz_targets");
    let mut targets: Vec<String> = std::fs::read_dir(&targets_dir)
        .map_err(|e| format!("cannot read {}: {e}", targets_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    targets.sort();
    let have_fuzz = cargo()
        .args(["fuzz", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_fuzz {
        eprintln!(
            "note: cargo-fuzz is not installed (`cargo install cargo-fuzz`); only checking that \
             the fuzz targets {targets:?} compile"
        );
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir)
            .args(["check", "--locked", "--bins"]);
        return run("fuzz targets (check)", cmd);
    }
    for t in &targets {
        section(&format!("fuzz-smoke: {t} for {secs} s"));
        let mut cmd = cargo();
        // cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets a stable toolchain accept them.
        cmd.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", t, "--"])
            .arg(format!("-max_total_time={secs}"));
        run(&format!("fuzz target {t}"), cmd)?;
    }
    Ok(())
}

/// A named step of `cargo xtask ci`.
type Step = (&'static str, fn() -> Result);

/// `cargo xtask ci`: every gate, in order, stopping at the first failure.
fn ci() -> Result {
    let steps: [Step; 5] = [
        ("fmt", fmt),
        ("lint", lint),
        ("docs", docs),
        ("tidy", tidy_cmd),
        ("test", test),
    ];
    let started = Instant::now();
    for (i, (name, step)) in steps.iter().enumerate() {
        let t = Instant::now();
        eprintln!(
            "\n======== xtask ci: step {}/{}: {name} ========",
            i + 1,
            steps.len()
        );
        step().map_err(|e| {
            format!("step `{name}` failed: {e}\n(re-run it alone with `cargo xtask {name}`)")
        })?;
        eprintln!(
            "======== xtask ci: {name} ok ({:.1} s) ========",
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "\nxtask ci: all steps passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
