//! Helpers of the TLS tests: a test PKI made with the `openssl` crate,
//! loop driving, and child processes killed on every path.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use oxevent_core::{EventBase, LoopFlags};

/// A base on the backend the environment selects.
pub(crate) fn base() -> EventBase {
    EventBase::new().expect("event base")
}

/// Runs non-blocking loop iterations until `cond` holds or `limit` passes.
pub(crate) fn run_until(
    base: &mut EventBase,
    limit: Duration,
    mut cond: impl FnMut(&mut EventBase) -> bool,
) -> bool {
    let start = Instant::now();
    let mut spins = 0u32;
    while start.elapsed() < limit {
        if cond(base) {
            return true;
        }
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK)
            .expect("loop");
        spins += 1;
        if spins % 64 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    cond(base)
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// A certificate authority and a leaf for `127.0.0.1` and `localhost`,
/// written to PEM files in a private directory (removed on drop).
pub(crate) struct Pki {
    pub(crate) ca: X509,
    pub(crate) leaf: X509,
    pub(crate) leaf_key: PKey<Private>,
    pub(crate) dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    pub(crate) fn new() -> Pki {
        static N: AtomicU32 = AtomicU32::new(0);
        let ca_key = key();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "oxevent test CA").unwrap();
        let ca_name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&ca_name).unwrap();
        b.set_issuer_name(&ca_name).unwrap();
        b.set_pubkey(&ca_key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let ca = b.build();

        let leaf_key = key();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "localhost").unwrap();
        let leaf_name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&leaf_name).unwrap();
        b.set_issuer_name(ca.subject_name()).unwrap();
        b.set_pubkey(&leaf_key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(&ca), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
            .unwrap();
        b.sign(&ca_key, MessageDigest::sha256()).unwrap();
        let leaf = b.build();

        let dir = std::env::temp_dir().join(format!(
            "oxevent-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.to_pem().unwrap()).unwrap();
        std::fs::write(dir.join("leaf.pem"), leaf.to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.join("leaf.key"),
            leaf_key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        Pki {
            ca,
            leaf,
            leaf_key,
            dir,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Our server context for the leaf.
    pub(crate) fn acceptor(&self) -> SslAcceptor {
        oxevent_openssl::server_acceptor_from(&self.leaf, &self.leaf_key).unwrap()
    }

    /// Our client context trusting this CA only.
    pub(crate) fn connector(&self) -> SslConnector {
        let mut b = SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(self.ca.clone()).unwrap();
        b.set_options(openssl::ssl::SslOptions::NO_RENEGOTIATION);
        b.build()
    }
}

/// A free loopback port (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed and reaped on drop.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Spawns `cmd` with piped stdio; its stdout lines arrive on `lines`.
    pub(crate) fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn openssl");
        let out: ChildStdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines: rx }
    }

    /// Waits for a stdout line containing `needle`; returns the lines seen.
    pub(crate) fn wait_line(&self, needle: &str, limit: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    seen.push(l);
                    if hit {
                        return Some(seen);
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

/// `openssl s_server` on a free loopback port with the test leaf, in
/// `-www` mode (it answers `GET /` with a status page). Returns it once it
/// accepts.
pub(crate) fn s_server(pki: &Pki) -> (Proc, SocketAddr) {
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(pki.path("leaf.pem"))
            .arg("-key")
            .arg(pki.path("leaf.key"))
            .args(["-www", "-naccept", "8"]);
        let p = Proc::spawn(cmd);
        if p.wait_line("ACCEPT", Duration::from_secs(10)).is_some() {
            return (p, SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    panic!("openssl s_server did not start");
}

/// A deterministic byte pattern: byte `i` of a stream seeded `seed`.
pub(crate) fn pattern(seed: u64, offset: u64, out: &mut [u8]) {
    for (k, b) in out.iter_mut().enumerate() {
        let x = (offset + k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
        *b = (x >> 29) as u8;
    }
}

/// FNV-1a, streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fnv(pub(crate) u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}
