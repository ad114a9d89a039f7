//! A throw-away test PKI (the `tls` feature): a CA and a leaf certificate for
//! `localhost` and `127.0.0.1` signed by it, made with the `openssl` crate and
//! written as PEM files into a fresh temporary directory.
//!
//! Peers such as `openssl s_server`, `curl` or Python's `ssl` take the files;
//! tests that build `SslAcceptor`s or connectors themselves take the
//! in-memory [`X509`]/[`PKey`]s. For an "untrusted" CA, make a second
//! [`TestPki`]: its CA has not signed the first one's leaf.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslOptions};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509Name, X509NameBuilder};

use crate::{LineChild, TempDir, free_port};

/// A test CA and a `localhost`/`127.0.0.1` server leaf (P-256 keys, valid
/// for two days), with PEM files in a private directory removed on drop:
///
/// | file | path |
/// | --- | --- |
/// | the CA certificate | [`TestPki::ca_pem_path`] (`ca.pem`) |
/// | the leaf certificate | [`TestPki::cert_path`] (`leaf.pem`) |
/// | the leaf's private key (PKCS#8) | [`TestPki::key_path`] (`leaf.key`) |
///
/// The directory ([`TestPki::dir`]) is the test's own: it may add files (a
/// docroot, say), which go with it.
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
    ca: X509,
    ca_key: PKey<Private>,
    leaf: X509,
    leaf_key: PKey<Private>,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("PKey")
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().expect("bignum");
    bn.rand(64, MsbOption::MAYBE_ZERO, false).expect("random");
    bn.to_asn1_integer().expect("serial")
}

fn name(cn: &str) -> X509Name {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("CN");
    name.build()
}

fn ca(key: &PKey<Private>) -> Result<X509, openssl::error::ErrorStack> {
    let subject = name("oxevent test CA");
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&serial())?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(key)?;
    b.set_not_before(Asn1Time::days_from_now(0)?.as_ref())?;
    b.set_not_after(Asn1Time::days_from_now(2)?.as_ref())?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

fn leaf(
    ca: &X509,
    ca_key: &PKey<Private>,
    key: &PKey<Private>,
) -> Result<X509, openssl::error::ErrorStack> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&serial())?;
    b.set_subject_name(&name("localhost"))?;
    b.set_issuer_name(ca.subject_name())?;
    b.set_pubkey(key)?;
    b.set_not_before(Asn1Time::days_from_now(0)?.as_ref())?;
    b.set_not_after(Asn1Time::days_from_now(2)?.as_ref())?;
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(san)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build())
}

impl TestPki {
    /// Makes a new CA and leaf and writes them to a fresh directory named
    /// after `tag` (see [`TempDir::new`]).
    ///
    /// # Panics
    ///
    /// If OpenSSL fails to make the keys or certificates, or the files cannot
    /// be written.
    #[must_use]
    pub fn new(tag: &str) -> Self {
        let ca_key = ec_key();
        let ca = ca(&ca_key).expect("make the test CA");
        let leaf_key = ec_key();
        let leaf = leaf(&ca, &ca_key, &leaf_key).expect("make the test leaf");
        let pki = Self {
            dir: TempDir::new(tag),
            ca,
            ca_key,
            leaf,
            leaf_key,
        };
        let write = |path: PathBuf, pem: Vec<u8>| {
            std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        };
        write(pki.ca_pem_path(), pki.ca.to_pem().expect("CA PEM"));
        write(pki.cert_path(), pki.leaf.to_pem().expect("leaf PEM"));
        write(
            pki.key_path(),
            pki.leaf_key.private_key_to_pem_pkcs8().expect("key PEM"),
        );
        pki
    }

    /// The private directory holding the PEM files (removed on drop).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate, PEM (`ca.pem`): what a client trusts.
    #[must_use]
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The leaf certificate, PEM (`leaf.pem`): what a server presents.
    #[must_use]
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("leaf.pem")
    }

    /// The leaf's private key, PKCS#8 PEM (`leaf.key`).
    #[must_use]
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("leaf.key")
    }

    /// The CA certificate.
    #[must_use]
    pub fn ca(&self) -> &X509 {
        &self.ca
    }

    /// The CA's private key (to sign further certificates).
    #[must_use]
    pub fn ca_key(&self) -> &PKey<Private> {
        &self.ca_key
    }

    /// The leaf certificate (subject `CN=localhost`; SAN `DNS:localhost`,
    /// `IP:127.0.0.1`; extended key usage server auth).
    #[must_use]
    pub fn leaf(&self) -> &X509 {
        &self.leaf
    }

    /// The leaf's private key.
    #[must_use]
    pub fn leaf_key(&self) -> &PKey<Private> {
        &self.leaf_key
    }

    /// A client context that trusts this CA only (not the system's roots),
    /// verifies the peer (the default of [`SslConnector`]) and refuses
    /// renegotiation.
    ///
    /// # Panics
    ///
    /// If OpenSSL cannot build the context.
    #[must_use]
    pub fn connector(&self) -> SslConnector {
        let mut b = SslConnector::builder(SslMethod::tls_client()).expect("connector");
        b.cert_store_mut()
            .add_cert(self.ca.clone())
            .expect("trust the CA");
        b.set_options(SslOptions::NO_RENEGOTIATION);
        b.build()
    }

    /// `openssl s_server` on a free loopback port with the leaf, run in
    /// `cwd` (where `-WWW` finds its files) with `args` added (a mode such as
    /// `-www`, `-naccept N`...). Returns it (killed on drop) with its port once
    /// it prints `ACCEPT`; a port taken meanwhile is retried with another.
    ///
    /// # Panics
    ///
    /// If the server does not start after five ports.
    #[must_use]
    pub fn s_server(&self, cwd: &Path, args: &[&str]) -> (LineChild, u16) {
        for _ in 0..5 {
            let port = free_port();
            let server = LineChild::spawn(
                Command::new("openssl")
                    .current_dir(cwd)
                    .args(["s_server", "-accept"])
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("-cert")
                    .arg(self.cert_path())
                    .arg("-key")
                    .arg(self.key_path())
                    .args(args),
            );
            if server.wait_line("ACCEPT", Duration::from_secs(10)) {
                return (server, port);
            }
        }
        panic!("openssl s_server did not start");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ssl::{SslAcceptor, SslVerifyMode};
    use openssl::x509::X509VerifyResult;

    #[test]
    fn the_leaf_is_signed_by_the_ca_and_the_files_match() {
        let pki = TestPki::new("pki-test");
        assert_eq!(pki.ca().issued(pki.leaf()), X509VerifyResult::OK);
        assert!(pki.leaf().verify(&pki.ca().public_key().unwrap()).unwrap());
        let other = TestPki::new("pki-test");
        // Same CA name, another key: not the signer.
        assert!(
            !pki.leaf()
                .verify(&other.ca().public_key().unwrap())
                .unwrap()
        );
        let pem = std::fs::read(pki.cert_path()).unwrap();
        assert_eq!(X509::from_pem(&pem).unwrap(), *pki.leaf());
        let pem = std::fs::read(pki.ca_pem_path()).unwrap();
        assert_eq!(X509::from_pem(&pem).unwrap(), *pki.ca());
        let key = PKey::private_key_from_pem(&std::fs::read(pki.key_path()).unwrap()).unwrap();
        assert!(key.public_eq(pki.leaf_key()));
        let dir = pki.dir().to_owned();
        drop(pki);
        assert!(!dir.exists());
    }

    #[test]
    fn s_server_answers_a_client_trusting_the_ca() {
        use std::io::{Read, Write};
        let pki = TestPki::new("pki-s-server");
        let (_server, port) = pki.s_server(pki.dir(), &["-www", "-naccept", "1"]);
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = pki.connector().connect("localhost", tcp).unwrap();
        tls.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut page = Vec::new();
        let _ = tls.read_to_end(&mut page);
        assert!(
            page.starts_with(b"HTTP/1.0 200"),
            "{}",
            String::from_utf8_lossy(&page)
        );
    }

    #[test]
    fn a_handshake_with_the_connector_verifies_localhost() {
        use std::io::{Read, Write};
        let pki = TestPki::new("pki-hs");
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        b.set_certificate(pki.leaf()).unwrap();
        b.set_private_key(pki.leaf_key()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let acceptor = b.build();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut tls = acceptor.accept(s).unwrap();
            tls.write_all(b"ok").unwrap();
            let _ = tls.shutdown();
        });
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = pki.connector().connect("localhost", tcp).unwrap();
        let mut got = [0u8; 2];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok");
        server.join().unwrap();
    }
}
