//! `http_chunked_decoder`: arbitrary bytes into `ChunkedDecoder`. Nothing may panic; the
//! result must not depend on how the input is split (whole, at two points the first bytes
//! pick, one byte at a time); and a decoded body, re-encoded, decodes to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxevent_http::proto::{ChunkedDecoder, LAST_CHUNK, Limits, ParseError, encode_chunk};

/// The body, how many bytes were consumed and whether the body ended, feeding `pieces` in
/// turn until the body ends.
fn decode(pieces: &[&[u8]], limits: &Limits) -> Result<(Vec<u8>, usize, bool), ParseError> {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut body = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let d = decoder.decode(piece, &mut |data| body.extend_from_slice(data))?;
        consumed += d.consumed;
        if d.done {
            assert!(decoder.is_done());
            assert_eq!(decoder.body_len(), body.len() as u64);
            return Ok((body, consumed, true));
        }
        assert_eq!(d.consumed, piece.len());
    }
    Ok((body, consumed, false))
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, wire @ ..] = data else {
        return;
    };
    let limits = if a & 1 == 0 {
        Limits::default()
    } else {
        Limits::default()
            .with_max_body(256)
            .with_max_header_bytes(64)
            .with_max_headers(2)
            .with_max_chunk_size_digits(4)
            .with_max_chunk_extension(8)
    };
    let whole = decode(&[wire], &limits);

    let mut cuts = [
        usize::from(*b) * wire.len() / 255,
        usize::from(*c) * wire.len() / 255,
    ];
    cuts.sort_unstable();
    let split = [&wire[..cuts[0]], &wire[cuts[0]..cuts[1]], &wire[cuts[1]..]];
    assert_eq!(decode(&split, &limits), whole);

    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(decode(&bytes, &limits), whole);

    if let Ok((body, consumed, true)) = whole {
        assert!(consumed <= wire.len());
        assert!(body.len() as u64 <= limits.max_body);
        let mut encoded = Vec::new();
        for piece in body.chunks(usize::from(*b).max(1)) {
            encode_chunk(piece, &mut encoded);
        }
        encoded.extend_from_slice(LAST_CHUNK);
        assert_eq!(
            decode(&[&encoded], &limits),
            Ok((body, encoded.len(), true))
        );
    }
});
