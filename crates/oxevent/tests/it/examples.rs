//! Runs each example binary (built by `cargo test` next to this test) and
//! talks to it through real pipes, FIFOs and signals. Every run is bounded.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Waits for the child to exit, killing it after `limit`.
pub(crate) fn wait_bounded(mut child: Child, limit: Duration) -> Output {
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

/// Reads the child's stdout until a `listening on ADDR` line; returns ADDR.
fn listening_addr(child: &mut Child) -> std::net::SocketAddr {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.parse().expect("an address"));
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the example printed its address")
}

#[test]
fn hello_world_greets_each_client_and_exits_on_sigint() {
    use std::io::Read;
    let mut child = Command::new(example("hello-world"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = listening_addr(&mut child);
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got)
            .expect("the server closes after the greeting");
        assert_eq!(got, b"Hello, World!\n");
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = wait_bounded(child, Duration::from_secs(15));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn le_proxy_relays_a_mebibyte_both_ways() {
    use std::io::Read;
    // The backend: an echo server on a plain thread.
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = backend.accept() {
            let mut buf = [0u8; 65536];
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
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
        }
    });
    let mut child = Command::new(example("le-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--connect",
            &backend_addr.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let addr = listening_addr(&mut child);
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
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = wait_bounded(child, Duration::from_secs(15));
    assert!(out.status.success(), "{out:?}");
}
