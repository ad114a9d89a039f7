//! Async DNS for oxevent (libevent's `evdns`): a resolver, `getaddrinfo`,
//! hosts and resolv.conf handling, and DNS server ports.
//!
//! This crate sits above `oxevent-core` and `oxevent-bufferevent`: its
//! resolver lives in an [`EventBase`](oxevent_core::EventBase) and
//! implements the bufferevent crate's [`Resolve`](oxevent_bufferevent::Resolve)
//! trait, so `BufferEvent::connect_hostname` resolves without blocking. The
//! `oxevent` facade re-exports it under the `extra` feature. Only the
//! [`wire`] module touches `hickory-proto`.
//!
//! ```no_run
//! use oxevent_core::EventBase;
//! use oxevent_dns::{DnsBase, Init, QueryFlags};
//!
//! let mut base = EventBase::new().unwrap();
//! let dns = DnsBase::new(&mut base, Init::Empty).unwrap();
//! dns.nameserver_ip_add(&mut base, "127.0.0.1:53").unwrap();
//! dns.resolve_ipv4(&mut base, "example.test", QueryFlags::NONE, |_base, res| {
//!     match res {
//!         Ok(answer) => println!("{:?}", answer.addrs()),
//!         Err(e) => println!("failed: {e}"),
//!     }
//! })
//! .unwrap();
//! base.dispatch().unwrap();
//! ```
//!
//! # Security
//!
//! Transaction ids come from the OS CSPRNG; queries leave from a pool of
//! UDP sockets bound to random ports and rotated; an answer is accepted only
//! when its id, question and source match (and, with 0x20 randomisation on,
//! the case of the question too); name decompression is bounded.
//!
//! # Feature flags
//!
//! None.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod config;
mod error;
mod getaddrinfo;
mod record;
mod resolver;
mod rng;
mod server;
pub mod wire;

pub use config::{
    ConfParts, Hosts, Options, ResolvConf, parse_nameserver, parse_reverse_name, reverse_name,
};
pub use error::{Error, Result, err_to_string};
pub use getaddrinfo::{
    AddrInfo, GaiCallback, GaiFlags, GaiHints, GaiRequest, getaddrinfo_blocking, parse_service,
};
pub use oxevent_bufferevent::Family;
pub use record::{CLASS_IN, Question, RData, Rcode, Record, RecordType};
pub use resolver::{
    Answer, DnsBase, Init, QueryFlags, Request, ResolveCallback, ResolveRefCallback,
};
pub use server::{Section, ServerFlags, ServerPort, ServerRequest};
