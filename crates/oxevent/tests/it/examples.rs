//! Runs each example binary (built by `cargo test` next to this test) and
//! talks to it through real pipes, FIFOs and signals. Every run is bounded.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn example(name: &str) -> PathBuf {
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

/// Waits for the child to exit, killing it after `limit`.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "timed out; stdout: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

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
