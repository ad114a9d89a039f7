//! `uri_parse`: arbitrary strings through `Uri::parse_with` under every flag combination,
//! the encoding helpers and reference resolution. Nothing may panic; a parsed URI must print
//! back to a string that parses to the same URI; decode must undo encode; a join of a
//! parsed reference onto a parsed base must print to a URI that parses back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxevent_http::uri::{self, QueryFlags, Uri, UriFlags};

fuzz_target!(|data: &[u8]| {
    let Some((&flag_bits, rest)) = data.split_first() else {
        return;
    };
    let mut flags = UriFlags::NONE;
    if flag_bits & 1 != 0 {
        flags |= UriFlags::NONCONFORMANT;
    }
    if flag_bits & 2 != 0 {
        flags |= UriFlags::HOST_STRIP_BRACKETS;
    }
    if flag_bits & 4 != 0 {
        flags |= UriFlags::UNIX_SOCKET;
    }

    // Encode then decode is the identity, on any bytes.
    let encoded = uri::encode(rest, flag_bits & 8 != 0);
    assert_eq!(uri::decode(&encoded, flag_bits & 8 != 0).unwrap(), rest);

    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = uri::decode(s, flag_bits & 8 != 0);
    let _ = uri::parse_query(s);
    let _ = uri::parse_query_with(s, QueryFlags::NONCONFORMANT | QueryFlags::LAST_VAL);
    let _ = uri::html_escape(s);

    // The input split in two: a base and a reference.
    let (a, b) = s.split_at(
        s.char_indices()
            .nth(s.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    for text in [s, a, b] {
        if let Ok(u) = Uri::parse_with(text, flags) {
            let printed = u.to_string();
            let again = Uri::parse_with(&printed, flags)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, u, "{text:?} printed as {printed:?}");
        }
    }
    if let (Ok(base), Ok(reference)) = (Uri::parse_with(a, flags), Uri::parse_with(b, flags)) {
        let joined = base.resolve(&reference);
        let printed = joined.to_string();
        let again = Uri::parse_with(&printed, flags)
            .unwrap_or_else(|e| panic!("{a:?} + {b:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, joined, "{a:?} + {b:?} printed as {printed:?}");
    }
});
