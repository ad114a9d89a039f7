//! Name resolution for `connect_hostname`: the [`Resolve`] trait and its
//! blocking default. The async DNS crate plugs its resolver in here.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use oxevent_core::EventBase;

/// Which address family `connect_hostname` may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 or IPv6 (`AF_UNSPEC`).
    #[default]
    Any,
    /// IPv4 only (`AF_INET`).
    V4,
    /// IPv6 only (`AF_INET6`).
    V6,
}

/// What a resolver calls with its answer, on the loop's thread.
pub type ResolveDone = Box<dyn FnOnce(&mut EventBase, io::Result<Vec<SocketAddr>>)>;

/// What a resolver calls with part of its answer, on the loop's thread:
/// the addresses (or the error) of one lookup as it completes, and whether
/// this is the last part.
pub type ResolvePart = Box<dyn FnMut(&mut EventBase, io::Result<Vec<SocketAddr>>, bool)>;

/// A name resolver for [`BufferEvent::connect_hostname`](super::BufferEvent::connect_hostname)
/// (libevent's `evdns_base` argument). An implementation calls `done`
/// exactly once, now or later from the loop, with the addresses in the
/// order to try.
pub trait Resolve {
    /// Resolves `host`, then calls `done` with the addresses for `port`.
    fn resolve(
        &self,
        base: &mut EventBase,
        host: &str,
        port: u16,
        family: Family,
        done: ResolveDone,
    );

    /// Resolves `host`, calling `part` as answers arrive, with `last` set on
    /// the final call: a resolver that asks for AAAA and A separately hands
    /// over each family as soon as it has it. Happy Eyeballs (RFC 8305
    /// section 3) uses this to start on IPv6 at once, and to wait a short
    /// resolution delay for AAAA when A came first. The default calls
    /// [`resolve`](Self::resolve) and hands everything over in one last part.
    fn resolve_parts(
        &self,
        base: &mut EventBase,
        host: &str,
        port: u16,
        family: Family,
        mut part: ResolvePart,
    ) {
        self.resolve(
            base,
            host,
            port,
            family,
            Box::new(move |base, r| part(base, r, true)),
        );
    }
}

/// Resolves with the system's blocking `getaddrinfo` (what libevent does
/// without an `evdns_base`). It blocks the loop for the lookup; the async
/// resolver of `oxevent-dns` does not.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingResolver;

impl Resolve for BlockingResolver {
    fn resolve(
        &self,
        base: &mut EventBase,
        host: &str,
        port: u16,
        family: Family,
        done: ResolveDone,
    ) {
        let r = (host, port).to_socket_addrs().map(|it| {
            let mut v: Vec<SocketAddr> = it
                .filter(|a| super::socket::family_matches(family, a))
                .collect();
            v.dedup();
            v
        });
        done(base, r);
    }
}
