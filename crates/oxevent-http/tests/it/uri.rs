//! URI parsing, joining and the encoding helpers.

use oxevent_http::uri::{
    self, MAX_LEN, QueryFlags, Uri, UriError, UriFlags, decode, encode, html_escape, parse_query,
    parse_query_with,
};
use proptest::prelude::*;

const BASE: &str = "http://a/b/c/d;p?q";

fn join(reference: &str) -> String {
    Uri::parse(BASE)
        .unwrap()
        .join(reference)
        .unwrap()
        .to_string()
}

#[test]
fn rfc3986_5_4_1_normal_examples() {
    let cases = [
        ("g:h", "g:h"),
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g"),
        ("?y", "http://a/b/c/d;p?y"),
        ("g?y", "http://a/b/c/g?y"),
        ("#s", "http://a/b/c/d;p?q#s"),
        ("g#s", "http://a/b/c/g#s"),
        ("g?y#s", "http://a/b/c/g?y#s"),
        (";x", "http://a/b/c/;x"),
        ("g;x", "http://a/b/c/g;x"),
        ("g;x?y#s", "http://a/b/c/g;x?y#s"),
        ("", "http://a/b/c/d;p?q"),
        (".", "http://a/b/c/"),
        ("./", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../", "http://a/"),
        ("../../g", "http://a/g"),
    ];
    for (r, want) in cases {
        assert_eq!(join(r), want, "reference {r:?}");
    }
}

#[test]
fn rfc3986_5_4_2_abnormal_examples() {
    let cases = [
        ("../../../g", "http://a/g"),
        ("../../../../g", "http://a/g"),
        ("/./g", "http://a/g"),
        ("/../g", "http://a/g"),
        ("g.", "http://a/b/c/g."),
        (".g", "http://a/b/c/.g"),
        ("g..", "http://a/b/c/g.."),
        ("..g", "http://a/b/c/..g"),
        ("./../g", "http://a/b/g"),
        ("./g/.", "http://a/b/c/g/"),
        ("g/./h", "http://a/b/c/g/h"),
        ("g/../h", "http://a/b/c/h"),
        ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
        ("g;x=1/../y", "http://a/b/c/y"),
        ("g?y/./x", "http://a/b/c/g?y/./x"),
        ("g?y/../x", "http://a/b/c/g?y/../x"),
        ("g#s/./x", "http://a/b/c/g#s/./x"),
        ("g#s/../x", "http://a/b/c/g#s/../x"),
        // Strict parsers take a reference with a scheme whole (§5.4.2, last example).
        ("http:g", "http:g"),
    ];
    for (r, want) in cases {
        assert_eq!(join(r), want, "reference {r:?}");
    }
}

#[test]
fn components_of_a_full_uri() {
    let u = Uri::parse("https://user:pw@www.example.com:8443/a/b%20c?x=1&y=2#frag").unwrap();
    assert_eq!(u.scheme(), Some("https"));
    assert_eq!(u.userinfo(), Some("user:pw"));
    assert_eq!(u.host(), Some("www.example.com"));
    assert_eq!(u.port(), Some(8443));
    assert_eq!(u.path(), "/a/b%20c");
    assert_eq!(u.query(), Some("x=1&y=2"));
    assert_eq!(u.fragment(), Some("frag"));
    assert_eq!(u.request_target(), "/a/b%20c?x=1&y=2");
    assert_eq!(
        u.to_string(),
        "https://user:pw@www.example.com:8443/a/b%20c?x=1&y=2#frag"
    );
    assert_eq!(u.to_uri_string(), u.to_string());
}

/// The URI cases of libevent's `regress_http.c` (`http_parse_uri_test`), strict mode.
#[test]
fn libevent_regress_conformant_cases() {
    // Rejected.
    for bad in [
        "http://www.test.com/ \"",
        "http://[::1234:5678:90ab:cdef:1234:5678:90ab:cdef:9999]/",
        "http://www.test.com:99999/",
        "http://www.test.com:-1/",
        "http://[www.test.com]/",
        "http://www.test.com/<>",
        "http://www.test.com/q?a=%zz",
        "1ab:foo",
        "http://www.test.com/#a#b",
        "mailto:<foo@example.com>",
    ] {
        assert!(Uri::parse(bad).is_err(), "accepted {bad:?}");
    }

    let u = Uri::parse("http://www.test.com/?q=t%33est").unwrap();
    assert_eq!(u.host(), Some("www.test.com"));
    assert_eq!(u.path(), "/");
    assert_eq!(u.query(), Some("q=t%33est"));
    assert_eq!(u.port(), None);

    let u = Uri::parse("http://%77ww.test.com").unwrap();
    assert_eq!(u.host(), Some("%77ww.test.com"));
    assert_eq!(u.path(), "");

    let u = Uri::parse("http://www.test.com:80").unwrap();
    assert_eq!(u.port(), Some(80));
    assert_eq!(u.to_string(), "http://www.test.com:80");

    let u = Uri::parse("").unwrap();
    assert_eq!(u, Uri::default());
    assert_eq!(u.to_string(), "");

    let u = Uri::parse("file:///usr/local/libevent").unwrap();
    assert_eq!(u.scheme(), Some("file"));
    assert_eq!(u.host(), Some(""));
    assert_eq!(u.path(), "/usr/local/libevent");
    assert_eq!(u.to_string(), "file:///usr/local/libevent");

    let u = Uri::parse("mailto:foo@example.com").unwrap();
    assert_eq!(u.scheme(), Some("mailto"));
    assert_eq!(u.host(), None);
    assert_eq!(u.path(), "foo@example.com");

    let u = Uri::parse("scheme://user:pass@foo.com:42/?q=test&s=some+thing#fragment").unwrap();
    assert_eq!(u.userinfo(), Some("user:pass"));
    assert_eq!(u.port(), Some(42));
    assert_eq!(u.query(), Some("q=test&s=some+thing"));
    assert_eq!(u.fragment(), Some("fragment"));

    let u = Uri::parse("http://[::1]:8080/").unwrap();
    assert_eq!(u.host(), Some("[::1]"));
    assert_eq!(u.host_unbracketed(), Some("::1"));
    assert_eq!(u.port(), Some(8080));

    let u = Uri::parse("http://[v7.abc:xyz]/").unwrap();
    assert_eq!(u.host(), Some("[v7.abc:xyz]"));

    // Relative references.
    let u = Uri::parse("/some/path/here.html?arg=1#f").unwrap();
    assert_eq!(u.scheme(), None);
    assert_eq!(u.host(), None);
    assert_eq!(u.path(), "/some/path/here.html");
    let u = Uri::parse("?q=1").unwrap();
    assert_eq!(u.path(), "");
    assert_eq!(u.query(), Some("q=1"));
    let u = Uri::parse("#f").unwrap();
    assert_eq!(u.fragment(), Some("f"));
    let u = Uri::parse("//host.example/").unwrap();
    assert_eq!(u.host(), Some("host.example"));
    assert_eq!(u.scheme(), None);
    // An empty port is allowed (RFC 3986 §3.2.3) and means "none".
    let u = Uri::parse("http://h:/x").unwrap();
    assert_eq!(u.port(), None);
}

#[test]
fn nonconformant_tolerates_odd_characters() {
    let odd = "http://www.example.com/some path/?q=a b&c=<d>#frag ment";
    assert_eq!(Uri::parse(odd), Err(UriError::InvalidPath));
    let u = Uri::parse_with(odd, UriFlags::NONCONFORMANT).unwrap();
    assert_eq!(u.path(), "/some path/");
    assert_eq!(u.query(), Some("q=a b&c=<d>"));
    assert_eq!(u.fragment(), Some("frag ment"));
    assert_eq!(u.to_string(), odd);
    // Control characters stay out even then.
    assert!(Uri::parse_with("http://h/a\0b", UriFlags::NONCONFORMANT).is_err());
    assert!(Uri::parse_with("http://h/a\r\nb", UriFlags::NONCONFORMANT).is_err());
    // The authority is checked as strictly as ever.
    assert!(Uri::parse_with("http://ho st/", UriFlags::NONCONFORMANT).is_err());
}

#[test]
fn unix_socket_authority() {
    let s = "http://unix:/tmp/app.sock:/index.html?x=1";
    // Without the flag, "unix" is a host with an empty port and the rest is the path.
    let plain = Uri::parse(s).unwrap();
    assert_eq!(plain.host(), Some("unix"));
    assert_eq!(plain.path(), "/tmp/app.sock:/index.html");
    let u = Uri::parse_with(s, UriFlags::UNIX_SOCKET).unwrap();
    assert_eq!(u.unix_socket(), Some("/tmp/app.sock"));
    assert_eq!(u.host(), None);
    assert_eq!(u.path(), "/index.html");
    assert_eq!(u.query(), Some("x=1"));
    assert_eq!(u.to_string(), s);
    // The flag does not change ordinary URIs.
    let u = Uri::parse_with("http://unixhost:80/", UriFlags::UNIX_SOCKET).unwrap();
    assert_eq!(u.host(), Some("unixhost"));
    // No closing colon, or an empty path.
    assert!(Uri::parse_with("http://unix:/tmp/sock", UriFlags::UNIX_SOCKET).is_err());
    assert!(Uri::parse_with("http://unix::/x", UriFlags::UNIX_SOCKET).is_err());
}

#[test]
fn strip_brackets() {
    let u = Uri::parse_with("http://[::1]:80/", UriFlags::HOST_STRIP_BRACKETS).unwrap();
    assert_eq!(u.host(), Some("::1"));
    assert_eq!(u.to_string(), "http://[::1]:80/");
}

#[test]
fn setters_validate_and_print() {
    let mut u = Uri::default();
    u.set_scheme(Some("http")).unwrap();
    u.set_host(Some("example.com")).unwrap();
    u.set_port(Some(8080)).unwrap();
    u.set_userinfo(Some("me")).unwrap();
    u.set_path("/p").unwrap();
    u.set_query(Some("a=b")).unwrap();
    u.set_fragment(Some("f")).unwrap();
    assert_eq!(u.to_string(), "http://me@example.com:8080/p?a=b#f");

    assert_eq!(u.set_scheme(Some("1x")), Err(UriError::InvalidScheme));
    assert_eq!(u.set_host(Some("a b")), Err(UriError::InvalidHost));
    assert_eq!(u.set_path("no-slash"), Err(UriError::InvalidPath));
    assert_eq!(u.set_query(Some("a b")), Err(UriError::InvalidQuery));
    assert_eq!(u.set_fragment(Some("<")), Err(UriError::InvalidFragment));
    assert_eq!(u.set_userinfo(Some("a@b")), Err(UriError::InvalidUserinfo));
    // Failed setters leave the URI as it was.
    assert_eq!(u.to_string(), "http://me@example.com:8080/p?a=b#f");

    u.set_host(None).unwrap();
    assert_eq!(u.to_string(), "http:/p?a=b#f");
    assert_eq!(u.set_port(Some(1)), Err(UriError::NoHost));
    // A path starting with "//" needs an authority.
    assert_eq!(u.set_path("//x"), Err(UriError::InvalidPath));

    u.set_unix_socket(Some("/run/s")).unwrap();
    assert_eq!(u.to_string(), "http://unix:/run/s:/p?a=b#f");
}

#[test]
fn length_limits() {
    let long = format!("http://h/{}", "a".repeat(MAX_LEN));
    assert_eq!(Uri::parse(&long), Err(UriError::TooLong));
    assert_eq!(
        decode(&"a".repeat(MAX_LEN + 1), false),
        Err(UriError::TooLong)
    );
    assert_eq!(
        parse_query(&"a=1&".repeat(MAX_LEN / 4 + 1)),
        Err(UriError::TooLong)
    );
}

/// libevent's `http_uriencode_test`.
#[test]
fn encode_decode_like_libevent() {
    assert_eq!(encode(b"Hello World!", false), "Hello%20World%21");
    assert_eq!(encode(b"Hello World!", true), "Hello+World%21");
    assert_eq!(encode(b"\x01\xff-._~", false), "%01%FF-._~");
    assert_eq!(encode(b"", false), "");
    assert_eq!(decode("Hello%20World%21", false).unwrap(), b"Hello World!");
    assert_eq!(decode("a+b", false).unwrap(), b"a+b");
    assert_eq!(decode("a+b", true).unwrap(), b"a b");
    assert_eq!(decode("%7e%7E", false).unwrap(), b"~~");
    assert_eq!(decode("%00", false).unwrap(), b"\0");
    for bad in ["%", "%2", "%zz", "a%2g"] {
        assert_eq!(
            decode(bad, false),
            Err(UriError::InvalidPercentEncoding),
            "{bad:?}"
        );
    }
}

#[test]
fn query_strings() {
    let pairs = parse_query("q=test&s=some+thing&a%26b=c%3Dd&q=again").unwrap();
    assert_eq!(
        pairs,
        vec![
            ("q".to_owned(), "test".to_owned()),
            ("s".to_owned(), "some thing".to_owned()),
            ("a&b".to_owned(), "c=d".to_owned()),
            ("q".to_owned(), "again".to_owned()),
        ]
    );
    assert_eq!(parse_query("").unwrap(), vec![]);
    assert_eq!(parse_query("a=1&").unwrap().len(), 1);
    assert_eq!(
        parse_query("a=").unwrap(),
        vec![("a".into(), String::new())]
    );
    assert_eq!(parse_query("a"), Err(UriError::MissingEquals));
    assert_eq!(parse_query("=1"), Err(UriError::EmptyKey));
    assert_eq!(parse_query("a=1&&b=2"), Err(UriError::MissingEquals));
    assert_eq!(parse_query("a=%ff"), Err(UriError::InvalidUtf8));

    let lenient = parse_query_with("a&=1&b=2", QueryFlags::NONCONFORMANT).unwrap();
    assert_eq!(
        lenient,
        vec![("a".into(), String::new()), ("b".into(), "2".into())]
    );
    let last = parse_query_with("a=1&b=2&a=3", QueryFlags::LAST_VAL).unwrap();
    assert_eq!(
        last,
        vec![("b".into(), "2".into()), ("a".into(), "3".into())]
    );

    assert_eq!(
        uri::parse_query_of_uri("/search?q=x+y&n=2").unwrap(),
        vec![("q".into(), "x y".into()), ("n".into(), "2".into())]
    );
    assert_eq!(uri::parse_query_of_uri("/plain").unwrap(), vec![]);
}

#[test]
fn html_escaping() {
    assert_eq!(
        html_escape("<script>alert('x' & \"y\")</script>"),
        "&lt;script&gt;alert(&#039;x&#039; &amp; &quot;y&quot;)&lt;/script&gt;"
    );
    assert_eq!(html_escape("plain é"), "plain é");
}

// ---- properties ----

fn unreserved() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{0,8}"
}

fn pchars() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[A-Za-z0-9._~!$&'()*+,;=:@-]",
            "%[0-9A-F]{2}".prop_map(|s| s.to_string()),
        ],
        0..6,
    )
    .prop_map(|v| v.concat())
}

prop_compose! {
    fn uri_string()(
        scheme in prop::option::of("[a-z][a-z0-9+.-]{0,5}"),
        authority in prop::option::of((
            prop::option::of(unreserved()),
            prop_oneof![
                unreserved(),
                Just("[::1]".to_string()),
                Just("[2001:db8::7]".to_string()),
                Just("127.0.0.1".to_string()),
            ],
            prop::option::of(0u16..),
        )),
        segments in prop::collection::vec(pchars(), 0..4),
        query in prop::option::of(pchars()),
        fragment in prop::option::of(pchars()),
    ) -> String {
        let mut s = String::new();
        if let Some(sc) = &scheme {
            s.push_str(sc);
            s.push(':');
        }
        let has_auth = authority.is_some();
        if let Some((ui, host, port)) = authority {
            s.push_str("//");
            if let Some(ui) = ui {
                s.push_str(&ui);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
        }
        for (i, seg) in segments.iter().enumerate() {
            // Keep the path parseable: absolute after an authority, no empty first segment
            // (which would read as an authority), no ':' in a scheme-less first segment.
            if i > 0 || has_auth || seg.is_empty() {
                s.push('/');
            }
            if i == 0 && !has_auth && seg.is_empty() {
                // "/" then "/x" would read as an authority.
                s.push('a');
            } else if i == 0 && !has_auth && scheme.is_none() {
                s.push_str(&seg.replace(':', "_"));
            } else {
                s.push_str(seg);
            }
        }
        if let Some(q) = query {
            s.push('?');
            s.push_str(&q);
        }
        if let Some(f) = fragment {
            s.push('#');
            s.push_str(&f);
        }
        s
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(data in prop::collection::vec(any::<u8>(), 0..64),
                                      plus in any::<bool>()) {
        let e = encode(&data, plus);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%+".contains(&b)));
        prop_assert_eq!(decode(&e, plus).unwrap(), data);
    }

    #[test]
    fn parse_display_round_trip(s in uri_string()) {
        let u = Uri::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
        prop_assert_eq!(u.to_string(), s.clone());
        prop_assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn join_gives_parseable_uris(r in uri_string()) {
        let base = Uri::parse("http://a/b/c/d;p?q").unwrap();
        if let Ok(joined) = base.join(&r) {
            let again = Uri::parse(&joined.to_string()).unwrap();
            prop_assert_eq!(again, joined);
        }
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let flags = [UriFlags::NONE, UriFlags::NONCONFORMANT, UriFlags::UNIX_SOCKET];
        for f in flags {
            if let Ok(u) = Uri::parse_with(&s, f) {
                prop_assert_eq!(Uri::parse_with(&u.to_string(), f).unwrap(), u);
            }
        }
    }
}
