//! The everyday paths, against real clients: curl, Python's `http.client`, `ab -k`, and
//! pipelined requests over a raw socket.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxevent_http::proto::Method;
use oxevent_http::server::Server;
use oxevent_test_support::Watchdog;

use super::harness::{TestServer, exchange_to_close, header, read_response, run, status};

const LIMIT: Duration = Duration::from_secs(30);

/// A server with `/hello`, `/echo` (replies with the body it got) and `/peer` (replies with
/// the client's port).
fn echo_server() -> TestServer {
    TestServer::start(|base, server| {
        server
            .set_cb(base, "/hello", |base, req| {
                req.send_reply(base, 200, "Hello, World!").unwrap();
            })
            .unwrap();
        server
            .set_cb(base, "/echo", |base, mut req| {
                let body = req.take_body();
                req.output_headers_mut()
                    .append("Content-Type", "application/octet-stream");
                req.send_reply(base, 200, body).unwrap();
            })
            .unwrap();
        server
            .set_cb(base, "/peer", |base, req| {
                let port = req.peer().map_or(0, |p| p.port());
                req.send_reply(base, 200, port.to_string()).unwrap();
            })
            .unwrap();
    })
}

#[test]
fn curl_keeps_the_connection_alive_across_two_urls() {
    let _w = Watchdog::new("curl keep-alive", LIMIT);
    let server = echo_server();
    let out = run(
        Command::new("curl")
            .args(["-s", "-w", " %{num_connects}\n"])
            .arg(server.url("/peer"))
            .arg(server.url("/peer")),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let (port1, connects1) = lines[0].split_once(' ').unwrap();
    let (port2, connects2) = lines[1].split_once(' ').unwrap();
    assert_eq!(port1, port2, "both requests came over one connection");
    assert_eq!((connects1, connects2), ("1", "0"));
}

#[test]
fn curl_gets_date_length_and_default_content_type() {
    let _w = Watchdog::new("curl headers", LIMIT);
    let server = echo_server();
    let out = run(
        Command::new("curl")
            .args(["-s", "-i"])
            .arg(server.url("/hello")),
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status(&text), 200, "{text}");
    assert_eq!(header(&text, "content-length"), Some("13"));
    assert_eq!(
        header(&text, "content-type"),
        Some("text/html; charset=ISO-8859-1")
    );
    let date = header(&text, "date").expect("a Date header");
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    assert!(text.ends_with("\r\n\r\nHello, World!"), "{text}");
}

#[test]
fn curl_chunked_upload_is_decoded() {
    let _w = Watchdog::new("curl chunked upload", LIMIT);
    let server = echo_server();
    let dir = std::env::temp_dir().join(format!("oxevent-http-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chunked.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let out = run(
        Command::new("curl")
            .args(["-s", "-H", "Transfer-Encoding: chunked", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(server.url("/echo")),
        LIMIT,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "the echoed body differs");
}

#[test]
fn curl_head_gets_headers_without_body() {
    let _w = Watchdog::new("curl HEAD", LIMIT);
    let server = echo_server();
    let out = run(
        Command::new("curl")
            .args(["-s", "-I"])
            .arg(server.url("/hello")),
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status(&text), 200, "{text}");
    assert_eq!(header(&text, "content-length"), Some("13"));
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body after the head: {text:?}"
    );
    // And over a raw socket: the next response starts right after the head.
    let mut s = server.connect();
    s.write_all(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut byte = [0u8; 1];
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut s, &mut byte).unwrap();
        head.push(byte[0]);
    }
    let (second, body) = read_response(&mut s);
    assert_eq!(status(&second), 200);
    assert_eq!(body, b"Hello, World!");
}

#[test]
fn curl_expect_100_continue_gets_continue_then_the_reply() {
    let _w = Watchdog::new("curl expect", LIMIT);
    let server = echo_server();
    let body = "x".repeat(5000);
    let out = run(
        Command::new("curl")
            .args([
                "-s",
                "-v",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                &body,
            ])
            .arg(server.url("/echo")),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP/1.1 100 Continue"), "{err}");
    assert_eq!(out.stdout.len(), 5000);
}

#[test]
fn python_http_client_gets_and_posts_on_one_connection() {
    let _w = Watchdog::new("python", LIMIT);
    let server = echo_server();
    let script = format!(
        r#"
import http.client
c = http.client.HTTPConnection("127.0.0.1", {port}, timeout=10)
c.request("GET", "/hello")
r = c.getresponse(); b = r.read()
assert r.status == 200 and b == b"Hello, World!", (r.status, b)
c.request("POST", "/echo", body=b"abc" * 1000)
r = c.getresponse(); b = r.read()
assert r.status == 200 and b == b"abc" * 1000, r.status
c.request("GET", "/peer")
p1 = c.getresponse().read()
c.request("GET", "/peer")
p2 = c.getresponse().read()
assert p1 == p2, (p1, p2)
c.request("GET", "/missing")
r = c.getresponse(); r.read()
assert r.status == 404, r.status
print("ok")
"#,
        port = server.addr.port()
    );
    let out = run(Command::new("python3").args(["-c", &script]), LIMIT);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn ab_keep_alive_200_requests() {
    let _w = Watchdog::new("ab", LIMIT);
    let server = echo_server();
    let out = run(
        Command::new("ab")
            .args(["-q", "-k", "-n", "200", "-c", "4"])
            .arg(server.url("/hello")),
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned)
    };
    assert_eq!(
        field("Complete requests:").as_deref(),
        Some("200"),
        "{text}"
    );
    assert_eq!(field("Failed requests:").as_deref(), Some("0"), "{text}");
    assert_eq!(
        field("Keep-Alive requests:").as_deref(),
        Some("200"),
        "{text}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let _w = Watchdog::new("pipelining", LIMIT);
    // A handler that answers the first request late, from a timer: the second must wait.
    let server = TestServer::start(|base, server| {
        server
            .set_gencb(base, |base, req| {
                let path = req.path().into_owned();
                if path == "/slow" {
                    let mut req = Some(req);
                    base.once(
                        -1,
                        oxevent_core::What::empty(),
                        Some(Duration::from_millis(50)),
                        move |base, _| {
                            if let Some(r) = req.take() {
                                r.send_reply(base, 200, "slow").unwrap();
                            }
                        },
                    )
                    .unwrap();
                } else {
                    req.send_reply(base, 200, path).unwrap();
                }
            })
            .unwrap();
    });
    let mut s = server.connect();
    let mut wire = Vec::new();
    for p in ["/slow", "/a", "/b", "/c"] {
        wire.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    s.write_all(&wire).unwrap();
    for want in ["slow", "/a", "/b", "/c"] {
        let (head, body) = read_response(&mut s);
        assert_eq!(status(&head), 200);
        assert_eq!(String::from_utf8_lossy(&body), want);
    }
}

#[test]
fn many_pipelined_requests_in_one_write() {
    let _w = Watchdog::new("deep pipelining", LIMIT);
    let server = echo_server();
    let mut s = server.connect();
    let wire = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    s.write_all(&wire).unwrap();
    for _ in 0..100 {
        let (head, body) = read_response(&mut s);
        assert_eq!(status(&head), 200);
        assert_eq!(body, b"Hello, World!");
    }
}

#[test]
fn unknown_paths_get_404_and_disallowed_methods_405() {
    let _w = Watchdog::new("404 405", LIMIT);
    let server = echo_server();
    let mut s = server.connect();
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut s);
    assert_eq!(status(&head), 404);
    assert!(String::from_utf8_lossy(&body).contains("404 Not Found"));
    // The connection stays usable.
    s.write_all(b"PATCH /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut s);
    assert_eq!(status(&head), 405);
    let allow = header(&head, "allow").expect("Allow");
    assert!(allow.contains("GET") && !allow.contains("PATCH"), "{allow}");
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).1, b"Hello, World!");
}

#[test]
fn custom_methods_through_the_allowed_list_and_the_callback() {
    let _w = Watchdog::new("custom methods", LIMIT);
    let server = TestServer::start(|base, server| {
        let propfind: Method = "PROPFIND".parse().unwrap();
        server
            .set_allowed_methods(base, &[Method::Get, propfind])
            .unwrap();
        server
            .set_ext_method_cmp(base, |name| name == "PURGE")
            .unwrap();
        server
            .set_gencb(base, |base, req| {
                let m = req.method().as_str().to_owned();
                req.send_reply(base, 200, m).unwrap();
            })
            .unwrap();
    });
    let mut s = server.connect();
    for (m, code) in [
        ("PROPFIND", 200),
        ("PURGE", 200),
        ("GET", 200),
        ("POST", 405),
    ] {
        s.write_all(format!("{m} / HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let (head, body) = read_response(&mut s);
        assert_eq!(status(&head), code, "{m}");
        if code == 200 {
            assert_eq!(String::from_utf8_lossy(&body), m);
        }
    }
}

#[test]
fn virtual_hosts_with_globs_and_aliases() {
    let _w = Watchdog::new("vhosts", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_cb(base, "/", |base, req| {
                req.send_reply(base, 200, "main").unwrap()
            })
            .unwrap();
        let v = Server::new(base);
        v.set_cb(base, "/", |base, req| {
            req.send_reply(base, 200, "vhost").unwrap()
        })
        .unwrap();
        v.add_server_alias(base, "alias.test").unwrap();
        server.add_virtual_host(base, "*.example.com", v).unwrap();
    });
    for (host, want) in [
        ("www.example.com", "vhost"),
        ("WWW.Example.COM:8080", "vhost"),
        ("alias.test", "vhost"),
        ("example.com", "main"),
        ("other.org", "main"),
    ] {
        let out = run(
            Command::new("curl")
                .args(["-s", "-H", &format!("Host: {host}")])
                .arg(server.url("/")),
            LIMIT,
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{host}");
    }
}

#[test]
fn error_callback_builds_the_page() {
    let _w = Watchdog::new("errorcb", LIMIT);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let server = TestServer::start(move |base, server| {
        server
            .set_errorcb(base, move |_, err, page| {
                seen2.lock().unwrap().push(err.status_code());
                page.add(format!("custom {}", err.status_code()).as_bytes())
                    .unwrap();
            })
            .unwrap();
    });
    let text = exchange_to_close(
        &server,
        b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&text), 404);
    assert!(text.ends_with("custom 404"), "{text}");
    assert_eq!(*seen.lock().unwrap(), [404]);
}

#[test]
fn http10_keep_alive_and_close() {
    let _w = Watchdog::new("http/1.0", LIMIT);
    let server = echo_server();
    let mut s = server.connect();
    s.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(header(&head, "connection"), Some("keep-alive"));
    assert_eq!(body, b"Hello, World!");
    let text = exchange_to_close(&server, b"GET /hello HTTP/1.0\r\n\r\n");
    assert_eq!(header(&text, "connection"), Some("close"));
}

#[test]
fn unix_socket_with_curl() {
    let _w = Watchdog::new("unix socket", LIMIT);
    let dir = std::env::temp_dir().join(format!("oxevent-http-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("http.sock");
    let p2 = path.clone();
    let server = TestServer::start(move |base, server| {
        server
            .set_cb(base, "/", |base, req| {
                assert!(req.peer().is_none());
                req.send_reply(base, 200, "over unix").unwrap();
            })
            .unwrap();
        server.bind_unix(base, &p2).unwrap();
    });
    let out = run(
        Command::new("curl")
            .args(["-s", "--unix-socket"])
            .arg(&path)
            .arg("http://localhost/"),
        LIMIT,
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over unix");
}

#[test]
fn bufferevent_factory_and_bound_sockets() {
    let _w = Watchdog::new("bevcb", LIMIT);
    let made = Arc::new(Mutex::new(0u32));
    let made2 = made.clone();
    let server = TestServer::start(move |base, server| {
        server
            .set_cb(base, "/", |base, req| {
                req.send_reply(base, 200, "ok").unwrap()
            })
            .unwrap();
        server
            .set_bevcb(base, move |base, fd| {
                *made2.lock().unwrap() += 1;
                oxevent_bufferevent::BufferEvent::socket(
                    base,
                    Some(fd),
                    oxevent_bufferevent::BevOptions::CLOSE_ON_FREE,
                )
            })
            .unwrap();
    });
    for _ in 0..3 {
        let text = exchange_to_close(
            &server,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(text.ends_with("ok"), "{text}");
    }
    assert_eq!(*made.lock().unwrap(), 3);
    // A second socket, then removed again.
    let (n, second) = server.on_loop(|base, s| {
        let b = s
            .bind(base, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap();
        let addr = b.local_addr(base).unwrap().unwrap();
        (s.bound_sockets(base).unwrap().len(), addr)
    });
    assert_eq!(n, 2);
    let mut s = std::net::TcpStream::connect(second).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).1, b"ok");
    let left = server.on_loop(move |base, srv| {
        let b = srv
            .bound_sockets(base)
            .unwrap()
            .into_iter()
            .find(|b| b.local_addr(base).unwrap() == Some(second))
            .unwrap();
        srv.del_accept_socket(base, b).unwrap();
        srv.bound_sockets(base).unwrap().len()
    });
    assert_eq!(left, 1);
    assert!(std::net::TcpStream::connect(second).is_err());
}

#[test]
fn an_acceptor_thread_hands_sockets_to_a_worker_base() {
    let _w = Watchdog::new("acceptor handoff", LIMIT);
    // The worker: a base with a server that has no socket of its own.
    let worker = TestServer::start(|base, server| {
        server
            .set_cb(base, "/", |base, req| {
                req.send_reply(base, 200, "from the worker").unwrap()
            })
            .unwrap();
    });
    // The acceptor: a plain blocking accept here, handing each socket over through Remote.
    let lis = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = lis.local_addr().unwrap();
    let remote = worker.remote.clone();
    let server = worker.server;
    let acceptor = std::thread::spawn(move || {
        for _ in 0..2 {
            let (stream, peer) = lis.accept().unwrap();
            let fd: std::os::fd::OwnedFd = stream.into();
            remote
                .run_in_loop(move |base| {
                    server.accept_connection(base, fd, Some(peer)).unwrap();
                })
                .unwrap();
        }
    });
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s).1, b"from the worker");
    }
    acceptor.join().unwrap();
}

#[test]
fn routes_and_virtual_hosts_can_be_removed_and_the_server_freed() {
    let _w = Watchdog::new("removal", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_cb(base, "/a", |base, req| {
                req.send_reply(base, 200, "a").unwrap()
            })
            .unwrap();
        assert_eq!(
            server
                .set_cb(base, "/a", |base, req| req
                    .send_reply(base, 200, "again")
                    .unwrap())
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::AlreadyExists
        );
        server.set_default_content_type(base, None).unwrap();
        let v = Server::new(base);
        v.set_cb(base, "/a", |base, req| {
            req.send_reply(base, 200, "v").unwrap()
        })
        .unwrap();
        server.add_virtual_host(base, "v.test", v).unwrap();
        server.remove_virtual_host(base, v).unwrap();
        assert!(server.remove_virtual_host(base, v).is_err());
    });
    let get = |host: &str| {
        exchange_to_close(
            &server,
            format!("GET /a HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    let text = get("v.test");
    assert!(text.ends_with("\r\n\r\na"), "{text}");
    assert_eq!(header(&text, "content-type"), None);
    server.on_loop(|base, s| s.del_cb(base, "/a").unwrap());
    assert_eq!(status(&get("x")), 404);
    let addr = server.addr;
    server.on_loop(|base, s| {
        s.free(base).unwrap();
        assert!(!s.is_valid(base));
        assert!(s.free(base).is_err());
    });
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// `evhttp_set_newreqcb`: the callback sees each request's head and the client's address
/// before the handler; refusing closes the connection without a reply (curl: empty reply).
#[test]
fn new_request_callback_sees_heads_and_can_refuse() {
    let _w = Watchdog::new("newreqcb", LIMIT);
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = log.clone();
    let server = TestServer::start(move |base, server| {
        server
            .set_cb(base, "/hello", |base, req| {
                req.send_reply(base, 200, "Hello, World!").unwrap();
            })
            .unwrap();
        server
            .set_cb(base, "/forbidden", |base, req| {
                req.send_reply(base, 200, "should not run").unwrap();
            })
            .unwrap();
        server
            .set_newreqcb(base, move |_, peer, head| {
                let ok = head.target != "/forbidden";
                seen.lock().unwrap().push(format!(
                    "{} {} {} {ok}",
                    head.method,
                    head.target,
                    peer.is_some_and(|p| p.ip().is_loopback())
                ));
                ok
            })
            .unwrap();
    });
    let out = run(
        Command::new("curl").args(["-s"]).arg(server.url("/hello")),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"Hello, World!");
    let out = run(
        Command::new("curl")
            .args(["-s"])
            .arg(server.url("/forbidden")),
        LIMIT,
    );
    // 52: "the server did not reply anything".
    assert_eq!(out.status.code(), Some(52), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        *log.lock().unwrap(),
        ["GET /hello true true", "GET /forbidden true false"]
    );
}

/// `evhttp_request_set_on_complete_cb`: runs once the reply has been written, for full
/// and streamed replies, after the handler.
#[test]
fn on_complete_runs_after_the_reply_is_written() {
    let _w = Watchdog::new("on_complete", LIMIT);
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = log.clone();
    let server = TestServer::start(move |base, server| {
        let l = seen.clone();
        server
            .set_cb(base, "/full", move |base, req| {
                let l2 = l.clone();
                req.responder()
                    .set_on_complete(base, move |_| l2.lock().unwrap().push("full done".into()))
                    .unwrap();
                l.lock().unwrap().push("full handled".into());
                req.send_reply(base, 200, vec![b'f'; 200_000]).unwrap();
            })
            .unwrap();
        let l = seen.clone();
        server
            .set_cb(base, "/stream", move |base, req| {
                let l2 = l.clone();
                req.responder()
                    .set_on_complete(base, move |_| {
                        l2.lock().unwrap().push("stream done".into());
                    })
                    .unwrap();
                let r = req.send_reply_start(base, 200).unwrap();
                r.send_chunk(base, "one ").unwrap();
                r.send_chunk(base, "two").unwrap();
                r.send_end(base).unwrap();
                // Replied: the request's handle is stale now.
                assert!(r.set_on_complete(base, |_| {}).is_err());
                l.lock().unwrap().push("stream handled".into());
            })
            .unwrap();
    });
    let out = run(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{size_download} "])
            .arg(server.url("/full"))
            .args(["-o", "-"])
            .arg(server.url("/stream")),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200000 one two7 ");
    assert!(
        oxevent_test_support::wait_until(LIMIT, || log.lock().unwrap().len() == 4),
        "{:?}",
        log.lock().unwrap()
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["full handled", "full done", "stream handled", "stream done"]
    );
}

/// A request with `Content-Length: 0` has a complete (empty) body at once: buffered and
/// streamed routes both answer without waiting for input that will not come.
#[test]
fn content_length_zero_bodies_are_complete_at_once() {
    let _w = Watchdog::new("content-length 0", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_cb(base, "/buffered", |base, mut req| {
                let n = req.take_body().len();
                req.send_reply(base, 200, format!("buffered {n}")).unwrap();
            })
            .unwrap();
        server
            .set_streaming_cb(base, "/streamed", |base, req| {
                let r = req.send_reply_start(base, 200).unwrap();
                r.set_body_cb(base, move |base, r, ev| {
                    if matches!(ev, oxevent_http::server::BodyEvent::End) {
                        r.send_chunk(base, "streamed end").unwrap();
                        r.send_end(base).unwrap();
                    }
                })
                .unwrap();
            })
            .unwrap();
    });
    for (path, want) in [("/buffered", "buffered 0"), ("/streamed", "streamed end")] {
        let out = run(
            Command::new("curl")
                .args([
                    "-s",
                    "--max-time",
                    "20",
                    "-X",
                    "POST",
                    "-H",
                    "Content-Length: 0",
                ])
                .arg(server.url(path)),
            LIMIT,
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }
}

/// Reply heads are reused between identical replies; anything that changes the head (the
/// default content type, the length, the status, the version, the handler's headers) is
/// seen in the next reply.
#[test]
fn reply_heads_follow_every_change() {
    let _w = Watchdog::new("head cache", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_gencb(base, |base, mut req| {
                let path = req.path().into_owned();
                match path.as_str() {
                    "/teapot" => req.send_reply(base, 418, "tea").unwrap(),
                    "/header" => {
                        req.output_headers_mut().append("X-Extra", "1");
                        req.send_reply(base, 200, "hey").unwrap();
                    }
                    _ => req.send_reply(base, 200, path).unwrap(),
                }
            })
            .unwrap();
    });
    let mut s = server.connect();
    let mut get = |path: &str, version: &str| {
        s.write_all(
            format!("GET {path} {version}\r\nHost: x\r\nConnection: keep-alive\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let (head, body) = read_response(&mut s);
        (head, String::from_utf8(body).unwrap())
    };
    let (h1, b1) = get("/a", "HTTP/1.1");
    let (h2, b2) = get("/b", "HTTP/1.1");
    assert_eq!((b1.as_str(), b2.as_str()), ("/a", "/b"));
    assert_eq!(header(&h1, "content-type"), header(&h2, "content-type"));
    let (h3, b3) = get("/longer-path", "HTTP/1.1");
    assert_eq!(
        (header(&h3, "content-length"), b3.as_str()),
        (Some("12"), "/longer-path")
    );
    let (h4, _) = get("/teapot", "HTTP/1.1");
    assert_eq!(status(&h4), 418);
    let (h5, _) = get("/header", "HTTP/1.1");
    assert_eq!(header(&h5, "x-extra"), Some("1"));
    let (h6, _) = get("/a", "HTTP/1.1");
    assert_eq!(header(&h6, "x-extra"), None);
    let (h7, _) = get("/a", "HTTP/1.0");
    assert!(h7.starts_with("HTTP/1.0 200"), "{h7}");
    assert_eq!(header(&h7, "connection"), Some("keep-alive"));
    server.on_loop(|base, server| {
        server
            .set_default_content_type(base, Some("text/x-changed"))
            .unwrap();
    });
    let (h8, _) = get("/a", "HTTP/1.1");
    assert_eq!(header(&h8, "content-type"), Some("text/x-changed"));
    assert_eq!(status(&h8), 200);
}

/// The accessors libevent users reach for: the parsed target, the server a request came
/// to, the fd of a bound socket.
#[test]
fn request_uri_server_and_bound_fd() {
    let _w = Watchdog::new("accessors", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_gencb(base, move |base, req| {
                let uri = req.parsed_uri().unwrap();
                let r = req.responder();
                let same = r.server(base).unwrap() == server;
                let bound = server.bound_sockets(base).unwrap();
                let fd_ok = bound.iter().all(|b| b.fd(base).is_ok_and(|fd| fd >= 0));
                let text = format!(
                    "{} {} {same} {fd_ok}",
                    uri.path(),
                    uri.query().unwrap_or("-")
                );
                req.send_reply(base, 200, text).unwrap();
            })
            .unwrap();
    });
    let out = run(
        Command::new("curl")
            .args(["-s"])
            .arg(server.url("/a%20b/c?x=1&y=2")),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/a%20b/c x=1&y=2 true true"
    );
}
