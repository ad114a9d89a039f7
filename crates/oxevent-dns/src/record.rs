//! The crate's own DNS types: record types, response codes, records and
//! questions. Only the [`wire`](crate::wire) module converts them to and
//! from bytes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A resource record type (the `TYPE` field); the common ones have names,
/// the rest keep their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordType(pub u16);

impl RecordType {
    /// An IPv4 address (`DNS_IPv4_A`).
    pub const A: Self = Self(1);
    /// A name server.
    pub const NS: Self = Self(2);
    /// A canonical name (`DNS_CNAME`).
    pub const CNAME: Self = Self(5);
    /// Start of authority.
    pub const SOA: Self = Self(6);
    /// A domain name pointer, for reverse lookups (`DNS_PTR`).
    pub const PTR: Self = Self(12);
    /// Mail exchange.
    pub const MX: Self = Self(15);
    /// Text strings.
    pub const TXT: Self = Self(16);
    /// An IPv6 address (`DNS_IPv6_AAAA`).
    pub const AAAA: Self = Self(28);
    /// The EDNS0 pseudo-record.
    pub const OPT: Self = Self(41);
    /// Any type (a query only).
    pub const ANY: Self = Self(255);
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            Self::A => "A",
            Self::NS => "NS",
            Self::CNAME => "CNAME",
            Self::SOA => "SOA",
            Self::PTR => "PTR",
            Self::MX => "MX",
            Self::TXT => "TXT",
            Self::AAAA => "AAAA",
            Self::OPT => "OPT",
            Self::ANY => "ANY",
            Self(n) => return write!(f, "TYPE{n}"),
        };
        f.write_str(s)
    }
}

/// The Internet class (`DNS_CLASS_INET`), the only one in common use.
pub const CLASS_IN: u16 = 1;

/// A response code (the `RCODE` field of the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rcode(pub u8);

impl Rcode {
    /// No error.
    pub const NOERROR: Self = Self(0);
    /// The server could not parse the query (`DNS_ERR_FORMAT`).
    pub const FORMERR: Self = Self(1);
    /// The server failed (`DNS_ERR_SERVERFAILED`).
    pub const SERVFAIL: Self = Self(2);
    /// The name does not exist (`DNS_ERR_NOTEXIST`).
    pub const NXDOMAIN: Self = Self(3);
    /// The server does not implement the query (`DNS_ERR_NOTIMPL`).
    pub const NOTIMP: Self = Self(4);
    /// The server refused (`DNS_ERR_REFUSED`).
    pub const REFUSED: Self = Self(5);
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            Self::NOERROR => "NOERROR",
            Self::FORMERR => "FORMERR",
            Self::SERVFAIL => "SERVFAIL",
            Self::NXDOMAIN => "NXDOMAIN",
            Self::NOTIMP => "NOTIMP",
            Self::REFUSED => "REFUSED",
            Self(n) => return write!(f, "RCODE{n}"),
        };
        f.write_str(s)
    }
}

/// The data of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A canonical name.
    Cname(String),
    /// A pointer (reverse lookup) name.
    Ptr(String),
    /// Any other type: the raw RDATA bytes (names in it are not decompressed).
    Other(Vec<u8>),
}

impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::A(a) => a.fmt(f),
            Self::Aaaa(a) => a.fmt(f),
            Self::Cname(n) | Self::Ptr(n) => f.write_str(n),
            Self::Other(b) => {
                f.write_str("\\#")?;
                write!(f, " {}", b.len())?;
                if !b.is_empty() {
                    f.write_str(" ")?;
                    for x in b {
                        write!(f, "{x:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The owner name, in presentation form without the final dot.
    pub name: String,
    /// The type.
    pub rtype: RecordType,
    /// The class (1 for Internet).
    pub class: u16,
    /// Time to live, in seconds.
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

/// A question: a name, a type and a class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The name, in presentation form without the final dot.
    pub name: String,
    /// The type asked for.
    pub qtype: RecordType,
    /// The class asked for.
    pub class: u16,
}
