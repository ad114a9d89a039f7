//! Workloads of `bench compare` for TLS echo (issue 5): `tls_echo_server` against libevent's
//! bufferevent_openssl (`benches/c/tls_echo_server_libevent.c`) and tokio with tokio-openssl
//! (`tls_echo_server_tokio`), all three under the `tls_echo_client` load client.
//!
//! Every side runs TLS 1.3 with TLS_AES_128_GCM_SHA256 only, with the same OpenSSL settings.
//! The server certificate is a throw-away P-256 one made with the `openssl` command into
//! `<target>/bench/tls/` the first time it is needed.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Mode, Server, Workload, run_capture_within};
use crate::{Result, root, run, target_dir};

/// The load client, an `oxevent-benches` binary.
const CLIENT: &str = "tls_echo_client";

/// The servers' own time limit (`-T`): a bound if the harness dies.
const SERVER_SECS: u64 = 600;

/// The client is killed after this long.
const CLIENT_BOUND: Duration = Duration::from_secs(400);

/// This module's workloads (small versions with `quick`).
pub(super) fn workloads(quick: bool) -> Vec<Workload> {
    if quick {
        vec![load(16, 16_384, 2), idle(200)]
    } else {
        vec![load(16, 16_384, 10), idle(2000)]
    }
}

fn peers() -> super::EchoServers {
    (
        vec![("tokio", "tls_echo_server_tokio")],
        vec![("libevent", "tls_echo_server_libevent".into())],
    )
}

/// TLS echo throughput and round trips: `conns` connections, `size`-byte messages.
fn load(conns: u32, size: u32, secs: u64) -> Workload {
    let (rust_peers, c_programs) = peers();
    Workload {
        label: format!("tls c{conns}_s{size} ({secs} s)"),
        bin: "tls_echo_server",
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
            "1".into(),
        ],
        mode: Mode::Custom(drive),
    }
}

/// Server memory per idle TLS connection (after the handshake), with `n` connections. (The
/// labels avoid the words `echo` and `idle`, which select the plain echo workloads.)
fn idle(n: u32) -> Workload {
    let (rust_peers, c_programs) = peers();
    Workload {
        label: format!("tls memory per connection n{n}"),
        bin: "tls_echo_server",
        rust_peers,
        c_programs,
        args: vec!["--idle".into(), n.to_string()],
        mode: Mode::Custom(drive),
    }
}

/// The certificate and key of the servers, made once.
fn cert_files() -> Result<(PathBuf, PathBuf)> {
    let dir = target_dir().join("bench").join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
    ])
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    run("making the TLS benchmark certificate", cmd)?;
    Ok((cert, key))
}

/// One run: starts the server with the certificate, runs the client against it (with the
/// server's pid in idle mode), stops the server.
fn drive(mut server: Command, imp: &str, args: &[String]) -> Result<(String, Option<String>)> {
    let (cert, key) = cert_files()?;
    server
        .args(["-p", "0", "-T", &SERVER_SECS.to_string(), "-c"])
        .arg(&cert)
        .arg("-k")
        .arg(&key);
    let (mut srv, port) = Server::start(server)?;
    let mut cmd = Command::new(target_dir().join("release").join(CLIENT));
    cmd.args(["-p", &port.to_string(), "-i", imp])
        .args(args)
        .current_dir(root());
    if args.iter().any(|a| a == "--idle") {
        cmd.args(["--pid", &srv.pid().to_string()]);
    }
    let out = run_capture_within(cmd, CLIENT_BOUND);
    let stopped = srv.stop();
    let out = out?;
    let note = match stopped {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "the {imp} TLS echo server exited with {s} after SIGTERM"
        )),
        Err(e) => Some(e),
    };
    Ok((out, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_workloads() {
        let w = workloads(false);
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|w| w.bin == "tls_echo_server"));
        assert_eq!(
            w[0].args,
            ["-c", "16", "-s", "16384", "-T", "10", "-w", "1"]
        );
        assert_eq!(w[1].args, ["--idle", "2000"]);
        assert!(w.iter().all(|w| w.label.contains("tls")));
        assert!(super::super::is_c_program("tls_echo_server_libevent.c"));
        assert!(
            super::super::c_flags("tls_echo_server_libevent")
                .iter()
                .any(|f| f.contains("ssl"))
        );
    }
}
