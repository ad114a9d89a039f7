//! `dns_request_parse`: arbitrary bytes through the server's request
//! parser (`oxevent_dns::wire::parse_request`, hickory-proto inside). A
//! request that parses is answered with its questions echoed, and that
//! response must parse back with our own parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxevent_dns::wire;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = wire::parse_request(data) else {
        return;
    };
    assert!(req.questions.len() <= 16);
    let parts = wire::ResponseParts {
        id: req.id,
        opcode: req.opcode,
        flags: req.flags & wire::flags::RD,
        rcode: 3,
        questions: req.questions,
        ..Default::default()
    };
    if let Ok(bytes) = wire::encode_response(&parts, 512) {
        let back = wire::parse_response(&bytes).expect("our own response parses");
        assert_eq!(back.id, parts.id);
    }
});
