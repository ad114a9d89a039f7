//! Smoke tests of the DNS examples (`dns-example`), against dig and our own resolver.

use std::process::{Command, Stdio};
use std::time::Duration;

use oxevent_test_support::LineChild;

use crate::examples::{example, wait_bounded};

const HOSTS: &str = "10.5.0.1 web.test www.web.test\nfd00::5 web.test\n10.5.0.2 other.test\n";

/// Starts `dns-example serve` on a free port; returns it and its address.
fn serve(tag: &str) -> (LineChild, String, std::path::PathBuf) {
    let hosts =
        std::env::temp_dir().join(format!("oxevent-dns-example-{tag}-{}", std::process::id()));
    std::fs::write(&hosts, HOSTS).unwrap();
    let server = LineChild::spawn(
        Command::new(example("dns-example"))
            .args(["serve", "--addr", "127.0.0.1:0", "--hosts"])
            .arg(&hosts),
    );
    let addr = server
        .wait_for(Duration::from_secs(20), |l| {
            Some(l.trim().strip_prefix("listening on ")?.to_owned())
        })
        .expect("dns-example printed listening on ADDR");
    (server, addr, hosts)
}

fn dig(addr: &str, args: &[&str]) -> String {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let child = Command::new("dig")
        .arg(format!("@{ip}"))
        .args(["-p", port, "+time=2", "+tries=1"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("dig is installed");
    let out = wait_bounded(child, Duration::from_secs(20));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dig_against_serve() {
    let (_g, addr, hosts) = serve("dig");
    for tcp in [&[][..], &["+tcp"][..]] {
        let a = dig(&addr, &[tcp, &["+short", "web.test"]].concat());
        assert_eq!(a.trim(), "10.5.0.1");
        let a = dig(&addr, &[tcp, &["+short", "AAAA", "WEB.test"]].concat());
        assert_eq!(a.trim(), "fd00::5");
        let a = dig(&addr, &[tcp, &["+short", "-x", "10.5.0.2"]].concat());
        assert_eq!(a.trim(), "other.test.");
        let full = dig(&addr, &[tcp, &["nope.test"]].concat());
        assert!(full.contains("status: NXDOMAIN"), "{full}");
    }
    let _ = std::fs::remove_file(hosts);
}

#[test]
fn resolve_against_serve() {
    let (_g, addr, hosts) = serve("resolve");
    let child = Command::new(example("dns-example"))
        .args(["resolve", "--nameserver", &addr, "web.test", "www.web.test"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "web.test A 10.5.0.1 60",
            "web.test AAAA fd00::5 60",
            "www.web.test A 10.5.0.1 60",
        ],
        "{text}"
    );
    // Reverse, and a name that does not exist (status 1, message on stderr).
    let child = Command::new(example("dns-example"))
        .args(["resolve", "--nameserver", &addr, "--reverse", "10.5.0.1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(30));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1.0.5.10.in-addr.arpa PTR web.test 60"
    );
    let child = Command::new(example("dns-example"))
        .args(["resolve", "--nameserver", &addr, "nope.test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name does not exist"));
    // The same through a resolv.conf.
    let conf =
        std::env::temp_dir().join(format!("oxevent-dns-example-conf-{}", std::process::id()));
    let (ip, port) = addr.rsplit_once(':').unwrap();
    std::fs::write(&conf, format!("nameserver {ip}:{port}\nsearch test\n")).unwrap();
    let child = Command::new(example("dns-example"))
        .args(["resolve", "--resolv-conf"])
        .arg(&conf)
        .arg("other")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "other.test A 10.5.0.2 60"
    );
    let _ = std::fs::remove_file(conf);
    let _ = std::fs::remove_file(hosts);
}
