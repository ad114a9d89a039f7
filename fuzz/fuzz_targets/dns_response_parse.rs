//! `dns_response_parse`: arbitrary bytes through the resolver's response
//! parser (`oxevent_dns::wire::parse_response`), the question matcher and
//! the name decoder. Nothing may panic or loop; every name that comes out
//! re-encodes within the 255-byte limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxevent_dns::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = wire::parse_response(data) {
        for rec in &r.answers {
            let mut out = Vec::new();
            wire::encode_name(&rec.name, &mut out).expect("a decoded name re-encodes");
            assert!(out.len() <= wire::MAX_NAME_LEN);
        }
    }
    let _ = wire::question_matches(data, data, data.len().min(40), true);
    for start in [0, wire::HEADER_LEN] {
        let mut name = String::new();
        if wire::decode_name(data, start, &mut name).is_ok() {
            let mut out = Vec::new();
            wire::encode_name(&name, &mut out).expect("a decoded name re-encodes");
        }
    }
});
