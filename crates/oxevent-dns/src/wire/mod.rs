//! The DNS wire format: the only module of the crate that touches
//! `hickory-proto` (BRIEF invariant 6).
//!
//! The resolver's hot path (encoding a query, parsing the response) is a
//! small hand-written codec: it allocates one `Vec` for the answers and one
//! `String` per record name, and its name decompression is bounded (pointers
//! must point strictly backwards, at most 255 bytes per name, at most 128
//! jumps), so a malformed packet is an error, never a loop or a crash (the
//! class of CVE-2016-10195). The server side parses requests with
//! hickory-proto, a full and well-fuzzed parser, and converts them to the
//! crate's own [`Question`]s; its responses are encoded here. The unit tests
//! cross-check the hand-written codec against hickory-proto.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::record::{CLASS_IN, Question, RData, Record, RecordType};

/// The longest name on the wire, length bytes included (RFC 1035 2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label.
pub const MAX_LABEL_LEN: usize = 63;
/// The most compression pointers followed in one name.
const MAX_JUMPS: usize = 128;
/// The length of a DNS header.
pub const HEADER_LEN: usize = 12;

/// Why a message could not be parsed or encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The message ends in the middle of a field.
    Truncated,
    /// A compression pointer that does not point strictly backwards (a
    /// loop), or too many of them.
    BadPointer,
    /// A name longer than 255 bytes.
    NameTooLong,
    /// A label longer than 63 bytes, or an empty label inside a name.
    BadLabel,
    /// A label type other than a plain label or a pointer.
    BadLabelType,
    /// An RDATA whose length does not fit its type.
    BadRdata,
    /// The message is not a response (or not a query, for a server).
    WrongDirection,
    /// Unparseable by the request parser.
    Invalid,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "message truncated",
            Self::BadPointer => "bad compression pointer",
            Self::NameTooLong => "name longer than 255 bytes",
            Self::BadLabel => "bad label",
            Self::BadLabelType => "unsupported label type",
            Self::BadRdata => "bad record data",
            Self::WrongDirection => "wrong message direction",
            Self::Invalid => "invalid message",
        })
    }
}

impl std::error::Error for WireError {}

/// Header flag bits (the second 16-bit word of the header, minus opcode
/// and rcode).
pub mod flags {
    /// Query (0) or response (1).
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
}

fn be16(b: &[u8], pos: usize) -> Result<u16, WireError> {
    match b.get(pos..pos + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(WireError::Truncated),
    }
}

fn be32(b: &[u8], pos: usize) -> Result<u32, WireError> {
    match b.get(pos..pos + 4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(WireError::Truncated),
    }
}

/// Appends the wire form of the presentation-form `name` ("a.b.c", an
/// optional final dot, `\.` and `\DDD` escapes) to `out`.
///
/// # Errors
///
/// [`WireError::BadLabel`] for an empty or over-long label,
/// [`WireError::NameTooLong`] past 255 bytes.
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." {
        out.push(0);
        return Ok(());
    }
    // The common case: no escapes. The name is copied whole after a length
    // byte (one copy); then the dots are found eight bytes at a time, and
    // each dot's own byte becomes the length byte of the label after it.
    // An escape sends the name to the general loop below.
    let body = bytes.strip_suffix(b".").unwrap_or(bytes);
    if body.len() + 2 <= MAX_NAME_LEN {
        out.reserve(body.len() + 2);
        out.push(0);
        out.extend_from_slice(body);
        match label_lengths_in_place(&mut out[start..]) {
            Ok(true) => {
                out.push(0);
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
        out.truncate(start);
    } else if !bytes.contains(&b'\\') {
        return Err(WireError::NameTooLong);
    }
    let mut i = 0;
    let r = loop {
        let len_pos = out.len();
        out.push(0);
        let mut label_len = 0usize;
        let mut bad = false;
        while i < bytes.len() {
            let c = bytes[i];
            i += 1;
            let byte = match c {
                b'.' => break,
                b'\\' => {
                    let d = &bytes[i..];
                    if d.len() >= 3 && d[..3].iter().all(u8::is_ascii_digit) {
                        let v = u32::from(d[0] - b'0') * 100
                            + u32::from(d[1] - b'0') * 10
                            + u32::from(d[2] - b'0');
                        i += 3;
                        if let Ok(x) = u8::try_from(v) {
                            x
                        } else {
                            bad = true;
                            break;
                        }
                    } else if let Some(&x) = d.first() {
                        i += 1;
                        x
                    } else {
                        bad = true;
                        break;
                    }
                }
                other => other,
            };
            out.push(byte);
            label_len += 1;
        }
        if bad || label_len == 0 || label_len > MAX_LABEL_LEN {
            break Err(WireError::BadLabel);
        }
        out[len_pos] = label_len as u8;
        if out.len() - start >= MAX_NAME_LEN {
            break Err(WireError::NameTooLong);
        }
        if i == bytes.len() {
            out.push(0);
            break Ok(());
        }
    };
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Appends a label in presentation form (only ASCII comes out).
fn push_label_bytes(label: &[u8], out: &mut Vec<u8>) {
    if label
        .iter()
        .all(|&b| b.is_ascii_graphic() && b != b'.' && b != b'\\')
    {
        out.extend_from_slice(label);
        return;
    }
    for &b in label {
        match b {
            b'.' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x21..=0x7e => out.push(b),
            _ => {
                out.extend_from_slice(&[b'\\', b'0' + b / 100, b'0' + (b / 10) % 10, b'0' + b % 10])
            }
        }
    }
}

/// Turns `wire`, a zero byte followed by a name without its final dot, into
/// the name's labels: each dot becomes the length of the label after it,
/// the first byte the length of the first label. `Ok(false)` (and `wire`
/// half done) when the name holds an escape (`\\`), for the general path.
///
/// # Errors
///
/// [`WireError::BadLabel`] for an empty or over-long label.
fn label_lengths_in_place(wire: &mut [u8]) -> Result<bool, WireError> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = ONES * 0x7F;
    const HIGH: u64 = ONES * 0x80;
    // The top bit of every zero byte of `v`, and of no other byte (the
    // sums stay within their bytes).
    let zeros = |v: u64| !(((v & LOW7) + LOW7) | v) & HIGH;
    let mut len_pos = 0;
    let mut at = 1;
    let n = wire.len();
    while at < n {
        let take = (n - at).min(8);
        let x = if take == 8 {
            u64::from_le_bytes(wire[at..at + 8].try_into().expect("eight bytes"))
        } else if n >= 8 {
            // The last eight bytes, shifted so the ones already seen
            // (dots among them included) fall off: no copy of a variable
            // length.
            u64::from_le_bytes(wire[n - 8..].try_into().expect("eight bytes")) >> (8 * (8 - take))
        } else {
            let mut b = [0u8; 8];
            b[..take].copy_from_slice(&wire[at..]);
            u64::from_le_bytes(b)
        };
        let escapes = zeros(x ^ (ONES * u64::from(b'\\')));
        if escapes != 0 {
            return Ok(false);
        }
        let mut dots = zeros(x ^ (ONES * u64::from(b'.')));
        while dots != 0 {
            let pos = at + (dots.trailing_zeros() / 8) as usize;
            let len = pos - len_pos - 1;
            if len == 0 || len > MAX_LABEL_LEN {
                return Err(WireError::BadLabel);
            }
            wire[len_pos] = len as u8;
            len_pos = pos;
            dots &= dots - 1;
        }
        at += take;
    }
    let len = wire.len() - len_pos - 1;
    if len == 0 || len > MAX_LABEL_LEN {
        return Err(WireError::BadLabel);
    }
    wire[len_pos] = len as u8;
    Ok(true)
}

/// Whether `name` (presentation form) is a valid name, without encoding
/// it anywhere.
///
/// # Errors
///
/// As [`encode_name`].
pub fn check_name(name: &str) -> Result<(), WireError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." {
        return Ok(());
    }
    if bytes.contains(&b'\\') {
        let mut v = Vec::with_capacity(bytes.len() + 2);
        return encode_name(name, &mut v);
    }
    let body = bytes.strip_suffix(b".").unwrap_or(bytes);
    if body.len() + 2 > MAX_NAME_LEN {
        return Err(WireError::NameTooLong);
    }
    let mut label = 0usize;
    for &b in body {
        if b == b'.' {
            if label == 0 || label > MAX_LABEL_LEN {
                return Err(WireError::BadLabel);
            }
            label = 0;
        } else {
            label += 1;
        }
    }
    if label == 0 || label > MAX_LABEL_LEN {
        return Err(WireError::BadLabel);
    }
    Ok(())
}

fn push_label(label: &[u8], out: &mut String) {
    let mut v = Vec::with_capacity(label.len());
    push_label_bytes(label, &mut v);
    out.push_str(&String::from_utf8_lossy(&v));
}

fn ascii_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Reads the (possibly compressed) name at `pos` of `msg` into `out` in
/// presentation form without the final dot (the root is `"."`). Returns
/// the position just after the name in the original stream.
///
/// # Errors
///
/// [`WireError`] for a truncated name, a pointer that is not strictly
/// backwards, a name past 255 bytes or an unknown label type.
pub fn decode_name(msg: &[u8], pos: usize, out: &mut String) -> Result<usize, WireError> {
    let mut v = Vec::with_capacity(32);
    let end = decode_name_bytes(msg, pos, &mut v)?;
    if out.is_empty() {
        *out = ascii_string(v);
    } else {
        out.push_str(&ascii_string(v));
    }
    Ok(end)
}

fn decode_name_bytes(msg: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Result<usize, WireError> {
    let mut end = None;
    let mut wire_len = 1usize;
    let mut jumps = 0usize;
    // The lowest position visited: every pointer must point below it.
    let mut floor = pos;
    let first = out.len();
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated)?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    if out.len() == first {
                        out.push(b'.');
                    }
                    return Ok(end.unwrap_or(pos + 1));
                }
                let l = usize::from(len);
                wire_len += l + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                let label = msg.get(pos + 1..pos + 1 + l).ok_or(WireError::Truncated)?;
                if out.len() != first {
                    out.push(b'.');
                }
                push_label_bytes(label, out);
                pos += 1 + l;
            }
            0xC0 => {
                let lo = *msg.get(pos + 1).ok_or(WireError::Truncated)?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(lo);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                jumps += 1;
                if target >= floor || jumps > MAX_JUMPS {
                    return Err(WireError::BadPointer);
                }
                floor = target;
                pos = target;
            }
            _ => return Err(WireError::BadLabelType),
        }
    }
}

/// Skips the name at `pos` without decoding it; returns the position after.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, WireError> {
    let mut wire_len = 1usize;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Truncated)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => {
                wire_len += usize::from(len) + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                pos += 1 + usize::from(len);
            }
            0xC0 => {
                if pos + 2 > msg.len() {
                    return Err(WireError::Truncated);
                }
                return Ok(pos + 2);
            }
            _ => return Err(WireError::BadLabelType),
        }
    }
}

/// Encodes a query with one question into `out` (cleared first). `edns`
/// adds an OPT record advertising that UDP payload size. Returns the end
/// of the question section.
///
/// # Errors
///
/// [`WireError`] for an invalid name.
pub fn encode_query(
    id: u16,
    name: &str,
    qtype: RecordType,
    recursion_desired: bool,
    edns: Option<u16>,
    out: &mut Vec<u8>,
) -> Result<usize, WireError> {
    out.clear();
    out.extend_from_slice(&id.to_be_bytes());
    let fl = if recursion_desired { flags::RD } else { 0 };
    out.extend_from_slice(&fl.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    encode_name(name, out)?;
    out.extend_from_slice(&qtype.0.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    let qend = out.len();
    if let Some(size) = edns {
        out.push(0);
        out.extend_from_slice(&RecordType::OPT.0.to_be_bytes());
        out.extend_from_slice(&size.max(512).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    Ok(qend)
}

/// A parsed response: the header, and the answer section decoded into the
/// crate's records (authority and additional sections are checked and
/// skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The transaction id.
    pub id: u16,
    /// The header flag bits (see [`flags`]).
    pub flags: u16,
    /// The response code (the low 4 bits; extended rcodes are not read).
    pub rcode: u8,
    /// The number of questions.
    pub qdcount: u16,
    /// The answer section.
    pub answers: Vec<Record>,
}

impl Response {
    /// Whether the TC bit is set.
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.flags & flags::TC != 0
    }
}

/// Reads the record at `pos` into `rec`, reusing the allocation of its
/// owner name; returns the position after it.
fn parse_record_into(
    msg: &[u8],
    pos: usize,
    qname: Option<&str>,
    rec: &mut Record,
) -> Result<usize, WireError> {
    let mut name = std::mem::take(&mut rec.name);
    name.clear();
    let p = match qname {
        // A pointer to the question's name (offset 12): the name asked.
        Some(q) if msg.get(pos..pos + 2) == Some(&[0xC0, HEADER_LEN as u8]) => {
            name.push_str(q);
            pos + 2
        }
        _ => decode_name(msg, pos, &mut name)?,
    };
    let rtype = RecordType(be16(msg, p)?);
    let class = be16(msg, p + 2)?;
    let ttl = be32(msg, p + 4)?;
    let rdlen = usize::from(be16(msg, p + 8)?);
    let rstart = p + 10;
    let rend = rstart + rdlen;
    let rdata = msg.get(rstart..rend).ok_or(WireError::Truncated)?;
    let data = match rtype {
        RecordType::A => RData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| WireError::BadRdata)?,
        )),
        RecordType::AAAA => RData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| WireError::BadRdata)?,
        )),
        RecordType::CNAME | RecordType::PTR => {
            let mut target = String::new();
            let after = decode_name(msg, rstart, &mut target)?;
            if after != rend {
                return Err(WireError::BadRdata);
            }
            if rtype == RecordType::CNAME {
                RData::Cname(target)
            } else {
                RData::Ptr(target)
            }
        }
        _ => RData::Other(rdata.to_vec()),
    };
    // The TTL's top bit set means zero (RFC 2181 8).
    let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
    *rec = Record {
        name,
        rtype,
        class,
        ttl,
        data,
    };
    Ok(rend)
}

/// A record to parse into (no allocation).
fn empty_record() -> Record {
    Record {
        name: String::new(),
        rtype: RecordType(0),
        class: 0,
        ttl: 0,
        data: RData::Other(Vec::new()),
    }
}

/// Parses a response (the resolver side; the fuzz target
/// `dns_response_parse` drives this).
///
/// # Errors
///
/// A [`WireError`] for anything malformed, or a message that is not a
/// response.
pub fn parse_response(msg: &[u8]) -> Result<Response, WireError> {
    parse_response_for(msg, None)
}

/// [`parse_response`] for a response whose question was already checked
/// (by [`question_matches`]) to be the one question `qname`, ending at
/// `qend`: the question is not walked again, and owner names that point at
/// it are given as `qname`, without decoding them again.
pub(crate) fn parse_response_for(
    msg: &[u8],
    known: Option<(&str, usize)>,
) -> Result<Response, WireError> {
    let mut out = Response {
        id: 0,
        flags: 0,
        rcode: 0,
        qdcount: 0,
        answers: Vec::new(),
    };
    parse_response_into(msg, known, &mut out)?;
    Ok(out)
}

/// [`parse_response_for`] into `out`, reusing the allocations of its
/// answer list and of the owner names of the records already in it (the
/// resolver keeps them from one answer to the next). On an error `out`
/// holds a partial answer.
pub(crate) fn parse_response_into(
    msg: &[u8],
    known: Option<(&str, usize)>,
    out: &mut Response,
) -> Result<(), WireError> {
    let qname = known.map(|(n, _)| n);
    if msg.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let id = be16(msg, 0)?;
    let fl = be16(msg, 2)?;
    if fl & flags::QR == 0 {
        return Err(WireError::WrongDirection);
    }
    let qd = be16(msg, 4)?;
    let an = be16(msg, 6)?;
    let ns = be16(msg, 8)?;
    let ar = be16(msg, 10)?;
    let mut pos = HEADER_LEN;
    match known {
        // One question, byte-for-byte the query's (case aside).
        Some((_, qend)) if qd == 1 && qend <= msg.len() => pos = qend,
        _ => {
            for _ in 0..qd {
                pos = skip_name(msg, pos)? + 4;
                if pos > msg.len() {
                    return Err(WireError::Truncated);
                }
            }
        }
    }
    // Each record takes at least 11 bytes: the capacity is bounded by the
    // message, not by the count the peer claims.
    let an = usize::from(an);
    let answers = &mut out.answers;
    answers.reserve(an.min(msg.len() / 11).saturating_sub(answers.len()));
    for i in 0..an {
        if i == answers.len() {
            answers.push(empty_record());
        }
        pos = parse_record_into(msg, pos, qname, &mut answers[i])?;
    }
    answers.truncate(an);
    for _ in 0..u32::from(ns) + u32::from(ar) {
        let p = skip_name(msg, pos)?;
        let rdlen = usize::from(be16(msg, p + 8)?);
        pos = p + 10 + rdlen;
        if pos > msg.len() {
            return Err(WireError::Truncated);
        }
    }
    out.id = id;
    out.flags = fl & !0x780F;
    out.rcode = (fl & 0x000F) as u8;
    out.qdcount = qd;
    Ok(())
}

/// Takes the complete messages off the front of `inbuf`, the bytes read so
/// far from a DNS-over-TCP stream (each message after its two-byte length,
/// RFC 1035 section 4.2.2); an incomplete one stays for the next read. A
/// message is at most 65,535 bytes, so `inbuf` never holds more than one
/// incomplete message and one read.
pub(crate) fn split_tcp_frames(inbuf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while inbuf.len() - pos >= 2 {
        let len = usize::from(u16::from_be_bytes([inbuf[pos], inbuf[pos + 1]]));
        if inbuf.len() - pos < 2 + len {
            break;
        }
        frames.push(inbuf[pos + 2..pos + 2 + len].to_vec());
        pos += 2 + len;
    }
    inbuf.drain(..pos);
    frames
}

/// Whether the question section of `response` is byte-for-byte the
/// question of `query` (which ends at `query_qend`); ASCII case is ignored
/// unless `exact` (0x20 randomisation checks the case too).
#[must_use]
pub fn question_matches(response: &[u8], query: &[u8], query_qend: usize, exact: bool) -> bool {
    if response.len() < query_qend || query.len() < query_qend || query_qend < HEADER_LEN {
        return false;
    }
    if response[4..6] != [0, 1] {
        return false;
    }
    let (a, b) = (
        &response[HEADER_LEN..query_qend],
        &query[HEADER_LEN..query_qend],
    );
    if exact {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

/// Randomises the case of the letters of the question name in `query`
/// (0x20 encoding), one bit per letter from the words `random` gives.
pub fn randomize_case(query: &mut [u8], qend: usize, mut random: impl FnMut() -> u64) {
    let end = qend.saturating_sub(4).min(query.len());
    let Some(name) = query.get_mut(HEADER_LEN..end) else {
        return;
    };
    // Byte i of the name takes bit i of the random stream (one 64-bit
    // word per 64 bytes, so at most 4 words for a 255-byte name); only
    // letters change. Eight bytes at a time, without a branch per byte.
    let mut word = 0u64;
    let mut chunks = name.chunks_exact_mut(8);
    let mut k = 0usize;
    for chunk in &mut chunks {
        if k % 8 == 0 {
            word = random();
        }
        let bits = (word >> (8 * (k % 8))) as u8;
        k += 1;
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let x = u64::from_le_bytes(b);
        chunk.copy_from_slice(&(x ^ case_flips(x, bits)).to_le_bytes());
    }
    // The last bytes (fewer than 8), one at a time.
    let rest = chunks.into_remainder();
    if rest.is_empty() {
        return;
    }
    if k % 8 == 0 {
        word = random();
    }
    let mut bits = (word >> (8 * (k % 8))) as u8;
    for b in rest {
        let letter = u8::from((*b | 0x20).wrapping_sub(b'a') < 26);
        *b ^= (letter & bits) << 5;
        bits >>= 1;
    }
}

/// The 0x20 bits to flip in the eight bytes `x` (little-endian): byte j
/// is flipped when it is an ASCII letter and bit j of `bits` is set.
fn case_flips(x: u64, bits: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = ONES * 0x7F;
    const HIGH: u64 = ONES * 0x80;
    const CASE: u64 = ONES * 0x20;
    // Every byte below 0x80 after the masking, so no sum carries into the
    // next byte.
    let y = (x | CASE) & LOW7;
    let ge_a = y + ONES * (0x80 - u64::from(b'a'));
    let gt_z = y + ONES * (0x80 - u64::from(b'z') - 1);
    let letters = ge_a & !gt_z & !x & HIGH;
    // Bit j of `bits` to the top bit of byte j.
    let spread = (u64::from(bits) * ONES) & 0x8040_2010_0804_0201;
    let chosen = (spread + LOW7) & HIGH;
    (letters & chosen) >> 2
}

/// A parsed request (the server side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The transaction id.
    pub id: u16,
    /// The opcode (0 for a standard query).
    pub opcode: u8,
    /// The header flag bits (see [`flags`]).
    pub flags: u16,
    /// The questions.
    pub questions: Vec<Question>,
    /// The UDP payload size the client advertised with EDNS0, if any.
    pub edns_payload: Option<u16>,
}

/// The presentation form of a hickory name, in the crate's convention.
fn hickory_name(name: &hickory_proto::rr::Name) -> String {
    let mut out = String::new();
    for label in name.iter() {
        if !out.is_empty() {
            out.push('.');
        }
        push_label(label, &mut out);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The most questions a request may carry.
const MAX_QUESTIONS: usize = 16;

/// Parses a request (the server side; the fuzz target `dns_request_parse`
/// drives this), with hickory-proto.
///
/// # Errors
///
/// A [`WireError`] for anything malformed, a response, or more than 16
/// questions.
pub fn parse_request(msg: &[u8]) -> Result<Request, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let fl = be16(msg, 2)?;
    if fl & flags::QR != 0 {
        return Err(WireError::WrongDirection);
    }
    if usize::from(be16(msg, 4)?) > MAX_QUESTIONS {
        return Err(WireError::Invalid);
    }
    let m = hickory_proto::op::Message::from_vec(msg).map_err(|_| WireError::Invalid)?;
    let questions = m
        .queries()
        .iter()
        .map(|q| Question {
            name: hickory_name(q.name()),
            qtype: RecordType(u16::from(q.query_type())),
            class: u16::from(q.query_class()),
        })
        .collect();
    Ok(Request {
        id: m.id(),
        opcode: u8::from(m.op_code()),
        flags: fl & !0x780F,
        questions,
        edns_payload: m.extensions().as_ref().map(|e| e.max_payload()),
    })
}

/// A response to encode (the server side).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseParts {
    /// The transaction id.
    pub id: u16,
    /// The opcode to echo.
    pub opcode: u8,
    /// Header flag bits (QR is always set).
    pub flags: u16,
    /// The response code.
    pub rcode: u8,
    /// The questions to echo.
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section.
    pub additional: Vec<Record>,
}

fn encode_record(r: &Record, out: &mut Vec<u8>) -> Result<(), WireError> {
    encode_name(&r.name, out)?;
    out.extend_from_slice(&r.rtype.0.to_be_bytes());
    out.extend_from_slice(&r.class.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let len_pos = out.len();
    out.extend_from_slice(&[0, 0]);
    match &r.data {
        RData::A(a) => out.extend_from_slice(&a.octets()),
        RData::Aaaa(a) => out.extend_from_slice(&a.octets()),
        RData::Cname(n) | RData::Ptr(n) => encode_name(n, out)?,
        RData::Other(b) => out.extend_from_slice(b),
    }
    let rdlen = u16::try_from(out.len() - len_pos - 2).map_err(|_| WireError::BadRdata)?;
    out[len_pos..len_pos + 2].copy_from_slice(&rdlen.to_be_bytes());
    Ok(())
}

/// Encodes a response. Past `max_len` bytes the records are dropped and
/// the TC bit set, so a UDP client retries over TCP.
///
/// # Errors
///
/// [`WireError`] for an invalid name or an RDATA over 65535 bytes.
pub fn encode_response(parts: &ResponseParts, max_len: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(512);
    let header = |out: &mut Vec<u8>, tc: bool, an: usize, ns: usize, ar: usize| {
        out.clear();
        out.extend_from_slice(&parts.id.to_be_bytes());
        let mut fl = (parts.flags & !0x780F) | flags::QR;
        if tc {
            fl |= flags::TC;
        }
        fl |= u16::from(parts.opcode & 0xF) << 11;
        fl |= u16::from(parts.rcode & 0xF);
        out.extend_from_slice(&fl.to_be_bytes());
        for n in [parts.questions.len(), an, ns, ar] {
            out.extend_from_slice(&(n.min(65535) as u16).to_be_bytes());
        }
    };
    let questions = |out: &mut Vec<u8>| -> Result<(), WireError> {
        for q in &parts.questions {
            encode_name(&q.name, out)?;
            out.extend_from_slice(&q.qtype.0.to_be_bytes());
            out.extend_from_slice(&q.class.to_be_bytes());
        }
        Ok(())
    };
    header(
        &mut out,
        false,
        parts.answers.len(),
        parts.authority.len(),
        parts.additional.len(),
    );
    questions(&mut out)?;
    for r in parts
        .answers
        .iter()
        .chain(&parts.authority)
        .chain(&parts.additional)
    {
        encode_record(r, &mut out)?;
    }
    if out.len() > max_len {
        header(&mut out, true, 0, 0, 0);
        questions(&mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
