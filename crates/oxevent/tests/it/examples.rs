//! Runs each example binary (built by `cargo test` next to this test) and
//! talks to it through real pipes, FIFOs and signals. Every run is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oxevent_test_support::LineChild;

pub(crate) fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/it-xxxx -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} was not built (cargo test builds examples)",
        path.display()
    );
    path
}

/// Waits for the child to exit and returns its output; kills it and fails after `limit`.
pub(crate) use oxevent_test_support::process::output_within as wait_bounded;

#[test]
fn time_test_ticks_and_exits() {
    let child = Command::new(example("time-test"))
        .args(["--interval", "0.05", "--count", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(20));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("timeout_cb called at").count(), 3, "{text}");
}

#[test]
fn signal_test_exits_on_the_second_sigint() {
    let mut child = Command::new(example("signal-test"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until it has installed its handler: it prints its pid after that.
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    for _ in 0..2 {
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .expect("kill")
                .success()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.stdin.take();
    let out = wait_bounded(child, Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("signal_cb: got signal 2").count(), 2, "{text}");
    assert!(text.contains("signal-test: done"));
}

#[test]
fn event_read_fifo_prints_what_is_written() {
    let path = std::env::temp_dir().join(format!("oxevent-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(example("event-read-fifo"))
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the FIFO never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the example exited early"
    );
    // Opening for writing blocks until the reader has it open: bounded by the watchdog below.
    let p = path.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open fifo for writing");
        f.write_all(b"hello fifo\n").expect("write");
    });
    let out = wait_bounded(child, Duration::from_secs(10));
    writer.join().expect("writer");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Read: hello fifo"), "{text}");
    assert!(text.contains("Connection closed"), "{text}");
    assert!(!path.exists(), "the example removes its FIFO");
}

/// Starts an example (killed on drop) and waits for its `listening on ADDR` line.
fn start_listening(cmd: &mut Command) -> (LineChild, SocketAddr) {
    let child = LineChild::spawn(cmd);
    let addr = child
        .wait_for(Duration::from_secs(20), |l| {
            l.strip_prefix("listening on ")?.parse().ok()
        })
        .expect("the example printed its address");
    (child, addr)
}

/// Sends `signal` (`"-INT"`, `"-TERM"`) to the example and waits (bounded) for a clean exit.
pub(crate) fn stop_with(child: LineChild, signal: &str) {
    let child = child.into_child();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = wait_bounded(child, Duration::from_secs(20));
    assert!(out.status.success(), "{out:?}");
}

/// A backend on a plain thread that echoes one connection until it closes.
pub(crate) fn echo_backend() -> (SocketAddr, JoinHandle<()>) {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = backend.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let Ok((mut s, _)) = backend.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (addr, echo)
}

#[test]
fn hello_world_greets_each_client_and_exits_on_sigint() {
    let (child, addr) =
        start_listening(Command::new(example("hello-world")).args(["--addr", "127.0.0.1:0"]));
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got)
            .expect("the server closes after the greeting");
        assert_eq!(got, b"Hello, World!\n");
    }
    stop_with(child, "-INT");
}

#[test]
fn le_proxy_relays_a_mebibyte_both_ways() {
    let (backend_addr, _echo) = echo_backend();
    let (child, addr) = start_listening(Command::new(example("le-proxy")).args([
        "--listen",
        "127.0.0.1:0",
        "--connect",
        &backend_addr.to_string(),
    ]));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let data: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || w.write_all(&d2));
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got)
        .expect("the echo comes back through the proxy");
    writer.join().unwrap().unwrap();
    assert!(got == data, "bytes intact and in order");
    stop_with(child, "-INT");
}
