//! Helpers of the TLS tests: loop driving, a byte pattern and its checksum,
//! and thin wrappers over `oxevent-test-support`'s test PKI and `s_server`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use openssl::ssl::SslAcceptor;
use oxevent_bufferevent::BufferEvent;
use oxevent_core::{EventBase, LoopFlags};
use oxevent_test_support::{LineChild, TestPki};

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

/// Sets `bev`'s read callback to drain its input into the returned buffer.
pub(crate) fn record_reads(base: &mut EventBase, bev: BufferEvent) -> Rc<RefCell<Vec<u8>>> {
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    bev.on_read(base, move |base, bev| {
        let input = bev.input(base).unwrap();
        let mut v = vec![0; input.len()];
        input.remove(&mut v).unwrap();
        g.borrow_mut().extend_from_slice(&v);
    })
    .unwrap();
    got
}

/// A fresh test CA and `localhost` leaf (files in a private directory).
pub(crate) fn pki() -> TestPki {
    TestPki::new("tls")
}

/// Our server context for the test leaf.
pub(crate) fn acceptor(pki: &TestPki) -> SslAcceptor {
    oxevent_openssl::server_acceptor_from(pki.leaf(), pki.leaf_key()).unwrap()
}

/// `openssl s_server` on a free loopback port with the test leaf, in
/// `-www` mode (it answers `GET /` with a status page) for up to 8
/// connections. Returns it (killed on drop) once it accepts.
pub(crate) fn s_server(pki: &TestPki) -> (LineChild, SocketAddr) {
    let (server, port) = pki.s_server(pki.dir(), &["-www", "-naccept", "8"]);
    (server, SocketAddr::from(([127, 0, 0, 1], port)))
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
