//! Unit tests of the wire codec: cross-checks against hickory-proto, a
//! corpus of malformed packets, and property tests of the name codec.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR};
use hickory_proto::rr::{Name, RData as HRData, Record as HRecord, RecordType as HType};
use proptest::prelude::*;

use super::*;

fn hname(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// A response built (and name-compressed) by hickory-proto.
fn hickory_response() -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(0xBEEF)
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .set_response_code(ResponseCode::NoError);
    m.add_query(Query::query(hname("www.Example.test."), HType::A));
    m.add_answer(HRecord::from_rdata(
        hname("www.Example.test."),
        30,
        HRData::CNAME(CNAME(hname("host.example.test."))),
    ));
    m.add_answer(HRecord::from_rdata(
        hname("host.example.test."),
        60,
        HRData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
    ));
    m.add_answer(HRecord::from_rdata(
        hname("host.example.test."),
        60,
        HRData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
    ));
    m.add_answer(HRecord::from_rdata(
        hname("7.2.0.192.in-addr.arpa."),
        60,
        HRData::PTR(PTR(hname("host.example.test."))),
    ));
    m.to_vec().unwrap()
}

#[test]
fn parses_what_hickory_encodes() {
    let msg = hickory_response();
    let r = parse_response(&msg).unwrap();
    assert_eq!(r.id, 0xBEEF);
    assert_eq!(r.rcode, 0);
    assert_eq!(r.qdcount, 1);
    assert!(!r.truncated());
    // hickory compresses names case-insensitively, so compare in lower case.
    let names: Vec<String> = r
        .answers
        .iter()
        .map(|a| a.name.to_ascii_lowercase())
        .collect();
    assert_eq!(
        names,
        [
            "www.example.test",
            "host.example.test",
            "host.example.test",
            "7.2.0.192.in-addr.arpa"
        ]
    );
    assert_eq!(r.answers[0].data, RData::Cname("host.example.test".into()));
    assert_eq!(r.answers[1].data, RData::A(Ipv4Addr::new(192, 0, 2, 7)));
    assert_eq!(r.answers[2].data, RData::Aaaa(Ipv6Addr::LOCALHOST));
    assert_eq!(r.answers[3].data, RData::Ptr("host.example.test".into()));
    assert_eq!((r.answers[0].ttl, r.answers[1].ttl), (30, 60));
}

#[test]
fn hickory_parses_what_we_encode() {
    let mut q = Vec::new();
    let qend = encode_query(
        0x1234,
        "a.B.test",
        RecordType::AAAA,
        true,
        Some(1232),
        &mut q,
    )
    .unwrap();
    let m = Message::from_vec(&q).unwrap();
    assert_eq!(m.id(), 0x1234);
    assert!(m.recursion_desired());
    assert_eq!(m.queries()[0].name().to_string(), "a.B.test.");
    assert_eq!(m.queries()[0].query_type(), HType::AAAA);
    assert_eq!(m.extensions().as_ref().map(|e| e.max_payload()), Some(1232));
    let rq = parse_request(&q).unwrap();
    assert_eq!(rq.questions[0].name, "a.B.test");
    assert_eq!(rq.edns_payload, Some(1232));
    assert!(qend < q.len());

    let parts = ResponseParts {
        id: 7,
        flags: flags::AA | flags::RD,
        rcode: 0,
        questions: rq.questions.clone(),
        answers: vec![
            Record {
                name: "a.B.test".into(),
                rtype: RecordType::CNAME,
                class: CLASS_IN,
                ttl: 5,
                data: RData::Cname("c.test".into()),
            },
            Record {
                name: "c.test".into(),
                rtype: RecordType::AAAA,
                class: CLASS_IN,
                ttl: 6,
                data: RData::Aaaa(Ipv6Addr::LOCALHOST),
            },
        ],
        ..Default::default()
    };
    let bytes = encode_response(&parts, 512).unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.message_type(), MessageType::Response);
    assert!(m.authoritative());
    assert_eq!(m.answers().len(), 2);
    assert_eq!(
        m.answers()[1].data(),
        &HRData::AAAA(AAAA(Ipv6Addr::LOCALHOST))
    );
    // And ours agrees.
    let r = parse_response(&bytes).unwrap();
    assert_eq!(r.answers, parts.answers);
    assert!(question_matches(&bytes, &q, qend, true));
    // Past the size limit: no records, TC set.
    let small = encode_response(&parts, 40).unwrap();
    let r = parse_response(&small).unwrap();
    assert!(r.truncated() && r.answers.is_empty());
}

#[test]
fn question_matching_and_case() {
    let mut q = Vec::new();
    let qend = encode_query(1, "abc.test", RecordType::A, true, None, &mut q).unwrap();
    let mut resp = q.clone();
    resp[2] |= 0x80;
    assert!(question_matches(&resp, &q, qend, true));
    resp[13] = b'A';
    assert!(!question_matches(&resp, &q, qend, true));
    assert!(question_matches(&resp, &q, qend, false));
    resp[13] = b'x';
    assert!(!question_matches(&resp, &q, qend, false));
    // Another type: no match.
    let mut other = q.clone();
    other[qend - 3] = 28;
    assert!(!question_matches(&other, &q, qend, false));
    // 0x20: only letters change, and only case.
    let mut r = q.clone();
    randomize_case(&mut r, qend, || 0b0101_0101);
    assert_ne!(r, q);
    assert!(question_matches(&r, &q, qend, false));
}

#[test]
fn case_randomisation_flips_exactly_the_letters_chosen() {
    // Every byte value at every position, against the plain per-byte rule:
    // byte i of the name flips its 0x20 bit iff it is a letter and bit i of
    // the random stream is set.
    let words = [
        0x5555_5555_5555_5555u64,
        0xFFFF_FFFF_FFFF_FFFF,
        0x0123_4567_89AB_CDEF,
        0,
    ];
    for start in (0u16..256).step_by(50) {
        let mut q = vec![0u8; HEADER_LEN];
        let body: Vec<u8> = (0..250u16).map(|i| ((i + start) % 256) as u8).collect();
        q.extend_from_slice(&body);
        q.extend_from_slice(&[0, 1, 0, 1]);
        let qend = q.len();
        let mut next = 0;
        let mut r = q.clone();
        randomize_case(&mut r, qend, || {
            next += 1;
            words[next - 1]
        });
        assert_eq!(next, 4);
        for (i, (&a, &b)) in body.iter().zip(&r[HEADER_LEN..qend - 4]).enumerate() {
            let bit = words[i / 64] >> (i % 64) & 1 == 1;
            let want = if bit && a.is_ascii_alphabetic() {
                a ^ 0x20
            } else {
                a
            };
            assert_eq!(b, want, "byte {i} ({a:#x})");
        }
        assert_eq!(r[..HEADER_LEN], q[..HEADER_LEN]);
        assert_eq!(r[qend - 4..], q[qend - 4..]);
    }
}

/// A response header with `an` answers and no question, then `body`.
fn with_answers(an: u16, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 0];
    m.extend_from_slice(&an.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(body);
    m
}

/// Fixed fields of an A record with `rdlen`.
const A_FIXED: [u8; 8] = [0, 1, 0, 1, 0, 0, 0, 60];

#[test]
fn malformed_packets_are_errors() {
    let mut corpus: Vec<(&str, Vec<u8>, WireError)> = Vec::new();
    corpus.push(("short header", vec![0, 1, 0x81], WireError::Truncated));
    corpus.push((
        "a query",
        vec![0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        WireError::WrongDirection,
    ));
    // A name that points at itself (offset 12).
    let mut self_ptr = vec![0xC0, 12];
    self_ptr.extend_from_slice(&A_FIXED);
    self_ptr.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
    corpus.push((
        "pointer to itself",
        with_answers(1, &self_ptr),
        WireError::BadPointer,
    ));
    // A forward pointer.
    let mut fwd = vec![0xC0, 40];
    fwd.extend_from_slice(&A_FIXED);
    fwd.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
    fwd.resize(40, 0);
    fwd.extend_from_slice(&[1, b'a', 0]);
    corpus.push((
        "forward pointer",
        with_answers(1, &fwd),
        WireError::BadPointer,
    ));
    // Two names pointing at each other: 12 -> 14 -> 12.
    let mut pair = vec![0xC0, 14, 0xC0, 12];
    pair.extend_from_slice(&A_FIXED);
    corpus.push((
        "pointer loop",
        with_answers(1, &pair),
        WireError::BadPointer,
    ));
    // A label followed by a pointer back to that label.
    let mut lab_loop = vec![1, b'a', 0xC0, 12];
    lab_loop.extend_from_slice(&A_FIXED);
    corpus.push((
        "label then loop",
        with_answers(1, &lab_loop),
        WireError::BadPointer,
    ));
    // Five labels of 63: 320 bytes.
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63);
        long.extend(std::iter::repeat_n(b'x', 63));
    }
    long.push(0);
    long.extend_from_slice(&A_FIXED);
    long.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
    corpus.push((
        "name over 255",
        with_answers(1, &long),
        WireError::NameTooLong,
    ));
    // Pointers chained to build a long name: each hop adds a 63-byte label.
    let mut chain = Vec::new();
    let mut prev: Option<usize> = None;
    for _ in 0..6 {
        let at = 12 + chain.len();
        chain.push(63);
        chain.extend(std::iter::repeat_n(b'y', 63));
        match prev {
            Some(p) => chain.extend_from_slice(&[0xC0 | (p >> 8) as u8, p as u8]),
            None => chain.push(0),
        }
        prev = Some(at);
    }
    let owner = prev.unwrap();
    let mut msg = vec![0u8; 12];
    msg.extend_from_slice(&chain);
    let name_start = msg.len();
    msg.extend_from_slice(&[0xC0 | (owner >> 8) as u8, owner as u8]);
    let mut out = String::new();
    assert_eq!(
        decode_name(&msg, name_start, &mut out),
        Err(WireError::NameTooLong)
    );
    // An unknown label type (0x40).
    let mut ext = vec![0x41, b'a', 0];
    ext.extend_from_slice(&A_FIXED);
    corpus.push((
        "extended label",
        with_answers(1, &ext),
        WireError::BadLabelType,
    ));
    // RDATA longer than the message.
    let mut trunc = vec![0];
    trunc.extend_from_slice(&A_FIXED);
    trunc.extend_from_slice(&[0, 100, 1, 2, 3, 4]);
    corpus.push((
        "rdata past the end",
        with_answers(1, &trunc),
        WireError::Truncated,
    ));
    // An A record of 5 bytes.
    let mut a5 = vec![0];
    a5.extend_from_slice(&A_FIXED);
    a5.extend_from_slice(&[0, 5, 1, 2, 3, 4, 5]);
    corpus.push(("A of 5 bytes", with_answers(1, &a5), WireError::BadRdata));
    // A CNAME whose name runs past its RDATA.
    let mut cn = vec![0, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 3, b'a', b'b', b'c', 0];
    cn.truncate(16);
    corpus.push((
        "cname past rdlen",
        with_answers(1, &cn),
        WireError::BadRdata,
    ));
    // Many answers claimed, none present.
    corpus.push((
        "answers missing",
        with_answers(65535, &[]),
        WireError::Truncated,
    ));
    // A question cut short.
    let mut q = with_answers(0, &[3, b'a', b'b']);
    q[5] = 1;
    corpus.push(("question cut", q, WireError::Truncated));
    for (what, msg, want) in corpus {
        assert_eq!(parse_response(&msg), Err(want), "{what}");
    }
}

#[test]
fn malformed_requests_are_errors() {
    // A pointer loop in the question.
    let bad = [
        0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1,
    ];
    assert!(parse_request(&bad).is_err());
    // A response.
    let mut q = Vec::new();
    encode_query(1, "x.test", RecordType::A, true, None, &mut q).unwrap();
    let mut r = q.clone();
    r[2] |= 0x80;
    assert_eq!(parse_request(&r), Err(WireError::WrongDirection));
    // Too many questions claimed.
    let mut many = q.clone();
    many[4..6].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(parse_request(&many), Err(WireError::Invalid));
    assert!(parse_request(&q[..q.len() - 2]).is_err());
    assert!(parse_request(&[]).is_err());
}

#[test]
fn names_encode_with_limits() {
    let mut v = Vec::new();
    encode_name("a.b.", &mut v).unwrap();
    assert_eq!(v, [1, b'a', 1, b'b', 0]);
    v.clear();
    encode_name(".", &mut v).unwrap();
    assert_eq!(v, [0]);
    v.clear();
    encode_name("a\\.b.c\\065", &mut v).unwrap();
    assert_eq!(v, [3, b'a', b'.', b'b', 2, b'c', b'A', 0]);
    for bad in ["a..b", ".a", "a\\", "a\\999"] {
        assert_eq!(
            encode_name(bad, &mut Vec::new()),
            Err(WireError::BadLabel),
            "{bad}"
        );
        assert!(check_name(bad).is_err(), "{bad}");
    }
    let label63 = "x".repeat(63);
    assert!(check_name(&label63).is_ok());
    assert_eq!(check_name(&"x".repeat(64)), Err(WireError::BadLabel));
    let n253 = [label63.as_str(); 4].join(".")[..253].to_string();
    assert!(check_name(&n253).is_ok());
    assert!(encode_name(&n253, &mut Vec::new()).is_ok());
    let n254 = format!("{n253}x");
    assert_eq!(check_name(&n254), Err(WireError::NameTooLong));
    assert_eq!(
        encode_name(&n254, &mut Vec::new()),
        Err(WireError::NameTooLong)
    );
}

/// Labels of any bytes, at most 255 bytes on the wire.
fn wire_name() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..=63), 0..8)
        .prop_filter("at most 255 bytes", |labels| {
            labels.iter().map(|l| l.len() + 1).sum::<usize>() < MAX_NAME_LEN
        })
}

proptest! {
    /// decode(wire) then encode gives the same wire bytes, for any label
    /// bytes (escapes included); hickory decodes the same labels.
    #[test]
    fn name_codec_round_trips(labels in wire_name()) {
        let mut wire = Vec::new();
        for l in &labels {
            wire.push(l.len() as u8);
            wire.extend_from_slice(l);
        }
        wire.push(0);
        let mut text = String::new();
        let end = decode_name(&wire, 0, &mut text).unwrap();
        prop_assert_eq!(end, wire.len());
        let mut back = Vec::new();
        encode_name(&text, &mut back).unwrap();
        prop_assert_eq!(&back, &wire);
        prop_assert!(check_name(&text).is_ok());
        let mut dec = hickory_proto::serialize::binary::BinDecoder::new(&wire);
        let h = <Name as hickory_proto::serialize::binary::BinDecodable>::read(&mut dec).unwrap();
        let hl: Vec<Vec<u8>> = h.iter().map(<[u8]>::to_vec).collect();
        prop_assert_eq!(hl, labels);
    }

    /// Random bytes never panic the parsers.
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_response(&bytes);
        let _ = parse_request(&bytes);
        let mut s = String::new();
        let _ = decode_name(&bytes, 0, &mut s);
    }

    /// A valid response with a mutated byte is parsed or refused, never a
    /// panic, and a parse that succeeds keeps every name within limits.
    #[test]
    fn mutated_responses(pos in 0usize..200, val in any::<u8>()) {
        let mut msg = hickory_response();
        let p = pos % msg.len();
        msg[p] = val;
        if let Ok(r) = parse_response(&msg) {
            for a in r.answers {
                prop_assert!(a.name.len() <= 4 * MAX_NAME_LEN);
            }
        }
    }
}

#[test]
fn check_name_and_encode_name_agree() {
    // The resolver checks a single name only by encoding it, and a
    // search-list name by `check_name`: both must accept the same names.
    let long_label = "a".repeat(64);
    let max_label = "a".repeat(63);
    let long_name = [max_label.as_str(); 5].join(".");
    let just_fits = ["a".repeat(62).as_str(); 4].join(".");
    let names = [
        "",
        ".",
        "a",
        "a.",
        "a..",
        "..",
        ".a",
        "a..b",
        "a.b.c",
        "name12.bench.test",
        &long_label,
        &max_label,
        &long_name,
        &just_fits,
        "a\\.b",
        "a\\",
        "a\\256",
        "a\\065b",
        "a.\\.",
        "\\..a",
        "a b.c",
    ];
    for n in names {
        let mut v = Vec::new();
        let enc = encode_name(n, &mut v);
        assert_eq!(check_name(n).is_ok(), enc.is_ok(), "{n:?}");
        assert_eq!(check_name(n).err(), enc.err(), "{n:?}");
        if enc.is_err() {
            assert!(v.is_empty(), "{n:?}: nothing is left behind");
        }
    }
}

#[test]
fn label_lengths_in_place_agree_with_a_plain_encoder() {
    // Every length, a dot or an escape at every place (and a second one
    // just after it), among bytes close to them (0x2D, 0x2F, 0xAE...) that
    // must not be taken for them; labels up to 64 bytes.
    for len in 1..80usize {
        for at in 0..len {
            for (c, other) in [
                (b'.', b'\\'),
                (b'\\', b'.'),
                (b'.', 0x80 | b'.'),
                (b'.', b'.'),
            ] {
                let mut body: Vec<u8> = (0..len).map(|i| [b'-', b'/', 0xAE, b'a'][i % 4]).collect();
                body[at] = c;
                if at + 1 < len {
                    body[at + 1] = other;
                }
                let mut wire = vec![0u8];
                wire.extend_from_slice(&body);
                let got = label_lengths_in_place(&mut wire);
                let labels: Vec<&[u8]> = body.split(|&b| b == b'.').collect();
                let bad = labels
                    .iter()
                    .any(|l| l.is_empty() || l.len() > MAX_LABEL_LEN);
                if body.contains(&b'\\') {
                    // Left to the general path (or refused for a bad label
                    // before the escape).
                    assert_ne!(got, Ok(true), "{body:?}");
                    continue;
                }
                if bad {
                    assert_eq!(got, Err(WireError::BadLabel), "{body:?}");
                    continue;
                }
                assert_eq!(got, Ok(true), "{body:?}");
                let mut want = Vec::new();
                for l in labels {
                    want.push(l.len() as u8);
                    want.extend_from_slice(l);
                }
                assert_eq!(wire, want, "{body:?}");
            }
        }
    }
}

/// `encode_name` appends after what `out` holds already (a query header).
#[test]
fn encode_name_appends() {
    let mut out = vec![0xAA; 12];
    encode_name("name12.bench.test.", &mut out).unwrap();
    assert_eq!(&out[..12], &[0xAA; 12]);
    assert_eq!(&out[12..], b"\x06name12\x05bench\x04test\x00");
    let before = out.clone();
    assert_eq!(encode_name("a..b", &mut out), Err(WireError::BadLabel));
    assert_eq!(out, before, "nothing is left behind");
}

/// Parsing into a response that holds records already (the resolver's
/// reused list, longer or shorter than the new answer) gives exactly what a
/// fresh parse gives.
#[test]
fn parse_into_a_reused_response_equals_a_fresh_parse() {
    let big = hickory_response();
    let fresh = parse_response(&big).unwrap();
    // One record: fewer than the list holds.
    let mut m = Message::new();
    m.set_id(7)
        .set_message_type(MessageType::Response)
        .set_response_code(ResponseCode::NoError);
    m.add_query(Query::query(hname("a.test."), HType::A));
    m.add_answer(HRecord::from_rdata(
        hname("a.test."),
        5,
        HRData::A(A(Ipv4Addr::new(10, 0, 0, 1))),
    ));
    let small = m.to_vec().unwrap();
    let mut reused = parse_response(&big).unwrap();
    parse_response_into(&small, None, &mut reused).unwrap();
    assert_eq!(reused, parse_response(&small).unwrap());
    // Then more records than it holds.
    parse_response_into(&big, None, &mut reused).unwrap();
    assert_eq!(reused, fresh);
    // A malformed message is an error, as for a fresh parse.
    let cut = &big[..big.len() - 3];
    assert_eq!(
        parse_response_into(cut, None, &mut reused),
        parse_response(cut).map(|_| ())
    );
}

#[test]
fn tcp_frames_are_split_whole_and_partial_ones_wait() {
    let mut inbuf = vec![0, 3, b'a', b'b', b'c', 0, 0, 0, 2, b'x'];
    assert_eq!(
        split_tcp_frames(&mut inbuf),
        vec![b"abc".to_vec(), Vec::new()]
    );
    // The third frame is cut after one of its two bytes.
    assert_eq!(inbuf, vec![0, 2, b'x']);
    inbuf.push(b'y');
    inbuf.push(0);
    assert_eq!(split_tcp_frames(&mut inbuf), vec![b"xy".to_vec()]);
    assert_eq!(inbuf, vec![0]);
}
