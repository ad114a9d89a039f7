//! Smoke tests of the HTTP examples (`http-server`, `http-connect`), against curl.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use oxevent_test_support::{LineChild, TempDir};

use crate::examples::{example, stop_with};

/// A docroot (`root/`) beside a file it must not serve, removed on drop.
fn docroot(tag: &str) -> TempDir {
    let dir = TempDir::new(&format!("http-server-{tag}"));
    std::fs::create_dir_all(dir.join("root/sub")).unwrap();
    std::fs::write(dir.join("root/hello.txt"), "hello from a file\n").unwrap();
    std::fs::write(dir.join("root/<b>&.txt"), "escaped\n").unwrap();
    std::fs::write(dir.join("root/sub/big.bin"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(dir.join("secret.txt"), "outside\n").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("root/link")).unwrap();
    dir
}

/// Starts the example on port 0 and returns it (killed on drop) with its base URL.
fn start(root: &Path, extra: &[&str]) -> (LineChild, String) {
    let server = LineChild::spawn(
        Command::new(example("http-server"))
            .args(["--addr", "127.0.0.1:0", "--docroot"])
            .arg(root)
            .args(extra),
    );
    let url = server
        .wait_for(Duration::from_secs(20), |l| {
            Some(l.strip_prefix("listening on ")?.to_owned())
        })
        .expect("listening on http://ADDR");
    (server, url)
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--path-as-is",
            "-w",
            "%{http_code}",
            "-o",
            "-",
        ])
        .args(args)
        .output()
        .expect("curl");
    let mut body = out.stdout;
    let code = String::from_utf8_lossy(&body[body.len().saturating_sub(3)..]).into_owned();
    body.truncate(body.len().saturating_sub(3));
    (code, body)
}

fn stop(server: LineChild) {
    stop_with(server, "-TERM");
}

#[test]
fn http_server_serves_files_and_listings_and_refuses_escapes() {
    let dir = docroot("files");
    let (guard, url) = start(&dir.join("root"), &[]);
    let (code, body) = curl(&[&format!("{url}/hello.txt")]);
    assert_eq!(
        (code.as_str(), &body[..]),
        ("200", &b"hello from a file\n"[..])
    );
    let (code, body) = curl(&[&format!("{url}/sub/big.bin")]);
    assert_eq!(code, "200");
    assert_eq!(body.len(), 3 << 20);
    assert!(body.iter().all(|&b| b == 7));
    let (code, body) = curl(&[&format!("{url}/")]);
    let page = String::from_utf8_lossy(&body);
    assert_eq!(code, "200");
    assert!(page.contains("&lt;b&gt;&amp;.txt"), "{page}");
    assert!(!page.contains("<b>&"), "{page}");
    assert!(page.contains("sub/"), "{page}");
    for evil in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/link",
        "/sub/%00",
    ] {
        let (code, body) = curl(&[&format!("{url}{evil}")]);
        assert_eq!(code, "404", "{evil}");
        assert!(
            !String::from_utf8_lossy(&body).contains("outside"),
            "{evil}"
        );
    }
    stop(guard);
}

#[test]
fn http_server_with_two_threads_shares_the_port() {
    let dir = docroot("threads");
    let (guard, url) = start(&dir.join("root"), &["--threads", "2"]);
    for _ in 0..20 {
        let (code, _) = curl(&[&format!("{url}/hello.txt")]);
        assert_eq!(code, "200");
    }
    stop(guard);
}

#[cfg(not(feature = "openssl"))]
#[test]
fn http_server_tls_flags_without_tls_support() {
    let out = Command::new(example("http-server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .output()
        .expect("spawn");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("built without TLS support"), "{err}");
}

#[cfg(feature = "openssl")]
#[test]
fn http_server_over_tls_with_curl() {
    let dir = docroot("tls");
    let pki = oxevent_test_support::TestPki::new("http-server-tls");
    let (cert, key) = (pki.cert_path(), pki.key_path());
    let cert_s = cert.to_string_lossy().into_owned();
    let key_s = key.to_string_lossy().into_owned();
    let (guard, url) = start(
        &dir.join("root"),
        &["--tls-cert", &cert_s, "--tls-key", &key_s],
    );
    assert!(url.starts_with("https://"), "{url}");
    let (code, body) = curl(&["-k", &format!("{url}/hello.txt")]);
    assert_eq!(
        (code.as_str(), &body[..]),
        ("200", &b"hello from a file\n"[..])
    );
    let (code, body) = curl(&["-k", &format!("{url}/sub/big.bin")]);
    assert_eq!(code, "200");
    assert_eq!(body.len(), 3 << 20);
    stop(guard);
}
