//! Child processes for tests: a guard that kills and reaps the child on every
//! path (a failed assertion included), and a child whose stdout lines arrive
//! on a channel so a test can wait for one with a deadline, and bounded runs
//! of a command to completion.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A child process killed and reaped when the guard drops, whatever path the
/// test takes. [`ChildGuard::into_inner`] disarms it (to wait for a clean exit).
#[derive(Debug)]
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    #[must_use]
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    /// The guarded child.
    ///
    /// # Panics
    ///
    /// Never: the child is only taken out by [`ChildGuard::into_inner`], which
    /// consumes the guard.
    pub fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("the guard holds its child until into_inner")
    }

    /// Disarms the guard and hands the child back (still running, not reaped).
    ///
    /// # Panics
    ///
    /// Never (see [`ChildGuard::child`]).
    #[must_use]
    pub fn into_inner(mut self) -> Child {
        self.0
            .take()
            .expect("the guard holds its child until into_inner")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A child process (guarded by a [`ChildGuard`]) whose stdout is read by a
/// thread, line by line, onto a channel. The thread drains stdout until the
/// child closes it, so the child never blocks on a full pipe.
#[derive(Debug)]
pub struct LineChild {
    guard: ChildGuard,
    lines: mpsc::Receiver<String>,
}

impl LineChild {
    /// Spawns `cmd` with stdin and stdout piped and stderr discarded (these
    /// override what `cmd` set). Stdin stays open until the child is dropped
    /// or the test takes it through [`LineChild::child`].
    ///
    /// # Panics
    ///
    /// If the program cannot be started (it is not installed).
    #[must_use]
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let out = child.stdout.take().expect("stdout is piped");
        let guard = ChildGuard::new(child);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // Keep draining once nobody listens.
                let _ = tx.send(line);
            }
        });
        Self { guard, lines: rx }
    }

    /// The first stdout line (from those not consumed yet) for which `f` gives
    /// something, waiting at most `limit`; `None` on timeout or once stdout
    /// is closed.
    pub fn wait_for<T>(&self, limit: Duration, mut f: impl FnMut(&str) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(t) = f(&line) {
                return Some(t);
            }
        }
    }

    /// Whether a stdout line containing `needle` arrives within `limit`.
    pub fn wait_line(&self, needle: &str, limit: Duration) -> bool {
        self.wait_for(limit, |l| l.contains(needle).then_some(()))
            .is_some()
    }

    /// The port a server prints as `READY port=N` (the benchmark servers' and the
    /// test scripts' convention), within `limit`.
    pub fn ready_port(&self, limit: Duration) -> Option<u16> {
        self.wait_for(limit, |l| {
            l.trim().strip_prefix("READY port=")?.parse().ok()
        })
    }

    /// The child process (to write to its stdin, signal it or poll its exit).
    pub fn child(&mut self) -> &mut Child {
        self.guard.child()
    }

    /// Disarms the kill-on-drop guard and hands the child back (its stdout is
    /// still drained by the reader thread).
    #[must_use]
    pub fn into_child(self) -> Child {
        self.guard.into_inner()
    }
}

/// Waits for `child` to exit, at most `limit`, and returns its output: what it
/// writes to a piped stdout or stderr is read on threads meanwhile (so a full
/// pipe never blocks it). The child is guarded while waiting.
///
/// # Panics
///
/// If the child is still running after `limit` (it is killed first; the
/// message carries its stdout and stderr so far).
pub fn output_within(mut child: Child, limit: Duration) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
        thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let mut guard = ChildGuard::new(child);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = guard.child().try_wait().expect("try_wait") {
            break Some(st);
        }
        if start.elapsed() > limit {
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // Killed and reaped here if it timed out; the readers then see EOF.
    drop(guard);
    let (stdout, stderr) = (
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    );
    let Some(status) = status else {
        panic!(
            "the child was still running after {limit:?}; stdout: {}; stderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs `cmd` with stdin closed and stdout and stderr captured, at most
/// `limit` (see [`output_within`]).
///
/// # Panics
///
/// If the program cannot be started or outlives `limit`.
pub fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    output_within(child, limit)
}

/// Spawns Python's `http.server` module serving `dir` on a free loopback port
/// and returns it with that port (read from its `Serving HTTP on ... port N`
/// line, within 20 s).
///
/// # Panics
///
/// If python3 is missing or prints no port in time.
#[must_use]
pub fn python_http_server(dir: &std::path::Path) -> (LineChild, u16) {
    let server = LineChild::spawn(
        Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir),
    );
    let port = server
        .wait_for(Duration::from_secs(20), |l| {
            l.split(" port ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("python3 -m http.server printed its port");
    (server, port)
}

/// Spawns `python3 -c script args...` and returns it with the port it prints
/// as `READY port=N` (within 20 s).
///
/// # Panics
///
/// If python3 is missing or the script prints no port in time.
#[must_use]
pub fn python_script_server<S: AsRef<std::ffi::OsStr>>(
    script: &str,
    args: impl IntoIterator<Item = S>,
) -> (LineChild, u16) {
    let server = LineChild::spawn(Command::new("python3").arg("-c").arg(script).args(args));
    let port = server
        .ready_port(Duration::from_secs(20))
        .expect("the Python server printed READY port=N");
    (server, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_and_the_child_is_killed_on_drop() {
        let mut c = LineChild::spawn(
            Command::new("sh").args(["-c", "echo one; echo READY port=4242; exec sleep 30"]),
        );
        assert!(c.wait_line("one", Duration::from_secs(10)));
        assert_eq!(c.ready_port(Duration::from_secs(10)), Some(4242));
        assert!(c.child().try_wait().unwrap().is_none());
        drop(c);
    }

    #[test]
    fn the_guard_kills_on_drop() {
        use std::io::Read;
        // Alive, it would print once its stdin closes; killed, it prints nothing.
        let mut child = Command::new("sh")
            .args(["-c", "read x; echo survived"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        drop(ChildGuard::new(child));
        drop(stdin);
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
    }

    #[test]
    fn wait_for_gives_up_at_the_end_of_output() {
        let c = LineChild::spawn(Command::new("sh").args(["-c", "echo only"]));
        assert!(!c.wait_line("never", Duration::from_secs(10)));
    }

    #[test]
    fn run_within_captures_both_streams() {
        let out = run_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    #[should_panic(expected = "still running")]
    fn output_within_kills_a_child_past_its_limit() {
        let child = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = output_within(child, Duration::from_millis(50));
    }

    #[test]
    fn into_inner_disarms_the_guard() {
        let g = ChildGuard::new(Command::new("true").spawn().unwrap());
        let mut child = g.into_inner();
        assert!(child.wait().unwrap().success());
    }
}
