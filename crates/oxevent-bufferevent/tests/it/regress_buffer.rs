//! The intent of libevent's `test/regress_buffer.c`, in our own words:
//! line reading at segment boundaries, searching across segments,
//! reserve/commit, references, file segments over a real file and a real
//! socketpair, reading from a socketpair, callbacks, freezing, and every
//! error case.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, ErrorKind, IoSlice, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, BufMut, Bytes};
use oxevent_bufferevent::{Buffer, BufferError, BufferSide, CbInfo, EolStyle, FileSegment, PtrHow};

/// A buffer holding `text` with every byte in a segment of its own, so that
/// every boundary case is a segment boundary.
fn one_byte_segments(text: &[u8]) -> Buffer {
    let mut b = Buffer::new();
    for &c in text {
        b.add_bytes(Bytes::copy_from_slice(&[c])).unwrap();
    }
    assert_eq!(b.segment_count(), text.len());
    b
}

fn contents(b: &Buffer) -> Vec<u8> {
    let mut v = vec![0; b.len()];
    b.copyout(&mut v).unwrap();
    v
}

fn all_lines(b: &mut Buffer, style: EolStyle) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(l) = b.readln(style, 1024).unwrap() {
        out.push(l.to_vec());
    }
    out
}

/// A temporary file with the given contents, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, data: &[u8]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "oxevent-buffer-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, data).unwrap();
        Self(path)
    }

    fn open(&self) -> File {
        File::open(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn readln_every_style_at_segment_boundaries() {
    let text = b"one\r\ntwo\nthree\r\r\nfour\n\rfive\0six\r\n";
    // (style, the lines read, what is left)
    type Case = (EolStyle, &'static [&'static [u8]], &'static [u8]);
    let cases: [Case; 5] = [
        (
            EolStyle::Any,
            &[b"one", b"two", b"three", b"four", b"five\0six"],
            b"",
        ),
        (
            EolStyle::Crlf,
            &[b"one", b"two", b"three\r", b"four", b"\rfive\0six"],
            b"",
        ),
        (
            EolStyle::CrlfStrict,
            &[b"one", b"two\nthree\r", b"four\n\rfive\0six"],
            b"",
        ),
        (
            EolStyle::Lf,
            &[b"one\r", b"two", b"three\r\r", b"four", b"\rfive\0six\r"],
            b"",
        ),
        (
            EolStyle::Nul,
            &[b"one\r\ntwo\nthree\r\r\nfour\n\rfive"],
            b"six\r\n",
        ),
    ];
    for (style, want, rest) in cases {
        // The same text as one segment and as one segment per byte.
        for mut b in [one_byte_segments(text), {
            let mut b = Buffer::new();
            b.add(text).unwrap();
            b
        }] {
            let got = all_lines(&mut b, style);
            let want: Vec<Vec<u8>> = want.iter().map(|l| l.to_vec()).collect();
            assert_eq!(got, want, "{style:?}");
            // What is left has no complete line.
            assert_eq!(contents(&b), rest, "{style:?}");
        }
    }
}

#[test]
fn readln_waits_for_the_rest_of_a_split_crlf() {
    let mut b = Buffer::new();
    b.add(b"hello\r").unwrap();
    assert_eq!(b.readln(EolStyle::CrlfStrict, 100).unwrap(), None);
    // Under CRLF a lone CR is data, and the line is not complete yet.
    assert_eq!(b.readln(EolStyle::Crlf, 100).unwrap(), None);
    b.add_bytes(Bytes::from_static(b"\nworld")).unwrap();
    assert_eq!(
        &b.readln(EolStyle::CrlfStrict, 100).unwrap().unwrap()[..],
        b"hello"
    );
    assert_eq!(contents(&b), b"world");
}

#[test]
fn readln_limits_line_length() {
    let mut b = Buffer::new();
    b.add(&[b'x'; 100]).unwrap();
    // No end of line yet, fewer than max + 2 bytes: wait.
    assert_eq!(b.readln(EolStyle::Lf, 100).unwrap(), None);
    b.add(b"y").unwrap();
    assert_eq!(b.readln(EolStyle::Lf, 100).unwrap(), None);
    b.add(b"z").unwrap();
    assert!(matches!(
        b.readln(EolStyle::Lf, 100),
        Err(BufferError::LineTooLong { max: 100 })
    ));
    // Nothing was removed.
    assert_eq!(b.len(), 102);

    let mut b = Buffer::new();
    b.add(b"0123456789\r\n").unwrap();
    assert!(matches!(
        b.readln(EolStyle::Crlf, 9),
        Err(BufferError::LineTooLong { max: 9 })
    ));
    assert_eq!(
        &b.readln(EolStyle::Crlf, 10).unwrap().unwrap()[..],
        b"0123456789"
    );
    assert!(b.is_empty());
}

#[test]
fn readln_line_in_one_segment_is_not_copied() {
    let data = Bytes::from_static(b"abc\ndef\n");
    let mut b = Buffer::new();
    b.add_bytes(data.clone()).unwrap();
    let line = b.readln(EolStyle::Lf, 10).unwrap().unwrap();
    assert_eq!(line.as_ptr(), data.as_ptr());
}

#[test]
fn search_across_segments() {
    let mut b = one_byte_segments(b"xxabcabxabcdxx");
    let p = b.search(b"abcd", None).unwrap().unwrap();
    assert_eq!(p.position(), 8);
    let p = b.search(b"abc", None).unwrap().unwrap();
    assert_eq!(p.position(), 2);
    let mut start = b.pos_at(0).unwrap();
    b.ptr_set(&mut start, PtrHow::Add(3)).unwrap();
    assert_eq!(
        b.search(b"abc", Some(&start)).unwrap().unwrap().position(),
        8
    );
    // The match must end by `end`.
    let end = b.pos_at(11).unwrap();
    assert_eq!(b.search_range(b"abcd", None, Some(&end)).unwrap(), None);
    let end = b.pos_at(12).unwrap();
    assert_eq!(
        b.search_range(b"abcd", None, Some(&end))
            .unwrap()
            .unwrap()
            .position(),
        8
    );
    assert_eq!(b.search(b"zz", None).unwrap(), None);
    assert_eq!(b.search(b"", None).unwrap().unwrap().position(), 0);
    // Mixed segment kinds.
    b.drain(2).unwrap();
    b.add(b"needle").unwrap();
    b.prepend(b"ne").unwrap();
    assert_eq!(b.search(b"needle", None).unwrap().unwrap().position(), 14);
    assert_eq!(b.search(b"neab", None).unwrap().unwrap().position(), 0);
}

#[test]
fn search_eol_reports_position_and_length() {
    let b = one_byte_segments(b"ab\r\r\n\ncd\r\n");
    let (p, n) = b.search_eol(None, EolStyle::Any).unwrap().unwrap();
    assert_eq!((p.position(), n), (2, 4));
    let (p, n) = b.search_eol(None, EolStyle::Crlf).unwrap().unwrap();
    assert_eq!((p.position(), n), (3, 2));
    let (p, n) = b.search_eol(None, EolStyle::CrlfStrict).unwrap().unwrap();
    assert_eq!((p.position(), n), (3, 2));
    let (p, n) = b.search_eol(None, EolStyle::Lf).unwrap().unwrap();
    assert_eq!((p.position(), n), (4, 1));
    assert_eq!(b.search_eol(None, EolStyle::Nul).unwrap(), None);
    let from = b.pos_at(6).unwrap();
    let (p, n) = b
        .search_eol(Some(&from), EolStyle::CrlfStrict)
        .unwrap()
        .unwrap();
    assert_eq!((p.position(), n), (8, 2));
}

#[test]
fn reserve_and_partial_commits() {
    let mut b = Buffer::new();
    b.add(&[1u8; 4000]).unwrap();
    // The tail has 96 spare bytes: the reservation comes in two slices.
    let mut r = b.reserve(1000).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].len(), 96);
    assert!(r.total_len() >= 1000);
    r[0].fill(2);
    r[1][..10].fill(3);
    assert!(matches!(
        b.commit(usize::MAX),
        Err(BufferError::CommitTooLarge { .. })
    ));
    b.commit(106).unwrap();
    assert_eq!(b.len(), 4106);
    let c = contents(&b);
    assert!(c[..4000].iter().all(|&x| x == 1));
    assert!(c[4000..4096].iter().all(|&x| x == 2));
    assert!(c[4096..].iter().all(|&x| x == 3));

    // A partial commit inside the first slice drops the unused second one.
    let mut b = Buffer::new();
    b.add(&[0u8; 4090]).unwrap();
    let mut r = b.reserve(100).unwrap();
    assert_eq!(r.len(), 2);
    r[0][..3].copy_from_slice(b"abc");
    b.commit(3).unwrap();
    assert_eq!(b.len(), 4093);
    assert_eq!(b.segment_count(), 1);

    // Any other change cancels a reservation.
    assert!(b.reserve(10).unwrap().total_len() >= 10);
    b.add(b"x").unwrap();
    assert!(matches!(
        b.commit(1),
        Err(BufferError::CommitTooLarge {
            requested: 1,
            reserved: 0
        })
    ));

    // expand makes one contiguous slice.
    b.expand(10_000).unwrap();
    let r = b.reserve(10_000).unwrap();
    assert_eq!(r.len(), 1);
}

#[test]
fn references_are_released_exactly_once() {
    struct Owner(Arc<AtomicUsize>, Vec<u8>);
    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            &self.1
        }
    }
    impl Drop for Owner {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let data = Bytes::from_owner(Owner(Arc::clone(&drops), b"0123456789".to_vec()));
    let mut a = Buffer::new();
    a.add(b"head").unwrap();
    a.add_bytes(data).unwrap();
    a.add(b"tail").unwrap();
    let mut b = Buffer::new();
    b.add_buffer_reference(&mut a).unwrap();
    assert_eq!(contents(&b), b"head0123456789tail");
    assert_eq!(contents(&a), b"head0123456789tail");
    let mut c = Buffer::new();
    a.remove_buffer(&mut c, 9).unwrap();
    assert_eq!(contents(&c), b"head01234");
    a.drain(a.len()).unwrap();
    c.drain(c.len()).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0, "b still holds it");
    b.drain(5).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    b.drain(b.len()).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop((a, b, c));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn add_buffer_moves_without_copying() {
    let mut src = Buffer::new();
    src.add(&[7u8; 10_000]).unwrap();
    src.add_bytes(Bytes::from_static(b"static")).unwrap();
    let ptrs: Vec<*const u8> = src.peek(usize::MAX).map(<[u8]>::as_ptr).collect();
    let mut dst = Buffer::new();
    dst.add(b"x").unwrap();
    dst.add_buffer(&mut src).unwrap();
    assert!(src.is_empty());
    assert_eq!(src.segment_count(), 0);
    assert_eq!(dst.len(), 10_007);
    let moved: Vec<*const u8> = dst.peek(usize::MAX).skip(1).map(<[u8]>::as_ptr).collect();
    assert_eq!(moved, ptrs);
    // Into an empty buffer.
    let mut e = Buffer::new();
    e.add_buffer(&mut dst).unwrap();
    assert_eq!(e.len(), 10_007);
    // prepend_buffer puts it in front.
    let mut p = Buffer::new();
    p.add(b"-end").unwrap();
    let mut front = Buffer::new();
    front.add(b"start").unwrap();
    p.prepend_buffer(&mut front).unwrap();
    assert_eq!(contents(&p), b"start-end");
    assert!(front.is_empty());
}

#[test]
fn pullup_copies_only_when_needed() {
    let mut b = Buffer::new();
    b.add(b"hello ").unwrap();
    let first = b.peek(1).next().unwrap().as_ptr();
    assert_eq!(b.pullup(3).unwrap().as_ptr(), first);
    b.add_bytes(Bytes::from_static(b"world")).unwrap();
    assert_eq!(b.segment_count(), 2);
    assert_eq!(b.pullup(8).unwrap(), b"hello wo");
    assert_eq!(b.contiguous_space(), 8);
    assert_eq!(contents(&b), b"hello world");
    assert_eq!(b.pullup(b.len()).unwrap(), b"hello world");
    assert_eq!(b.segment_count(), 1);
    assert!(matches!(
        b.pullup(12),
        Err(BufferError::OutOfRange {
            requested: 12,
            available: 11
        })
    ));
}

#[test]
fn file_segments_go_to_a_socketpair() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let tmp = TempFile::new("sendfile", &body);
    let seg = FileSegment::new(tmp.open(), 10, 50_000).unwrap();
    // The same segment shared by two buffers.
    let mut a = Buffer::new();
    a.add(b"HEAD").unwrap();
    a.add_file_segment(&seg).unwrap();
    a.add(b"TAIL").unwrap();
    let mut b = Buffer::new();
    b.add_file_segment(&seg.slice(100, 20).unwrap()).unwrap();
    assert_eq!(contents(&b), &body[110..130]);

    // Bytes are read with pread where needed.
    let mut want = b"HEAD".to_vec();
    want.extend_from_slice(&body[10..50_010]);
    want.extend_from_slice(b"TAIL");
    assert_eq!(contents(&a), want);
    let needle = &body[30_000..30_010];
    assert_eq!(
        a.search(needle, None).unwrap().unwrap().position(),
        want.windows(10).position(|w| w == needle).unwrap()
    );

    let (tx, mut rx) = UnixStream::pair().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        rx.read_to_end(&mut got).unwrap();
        got
    });
    while !a.is_empty() {
        let n = a.write_to(tx.as_fd()).unwrap();
        assert!(n > 0);
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), want);
    // The segment in `b` is untouched by `a` having been sent.
    assert_eq!(contents(&b), &body[110..130]);
}

#[test]
fn file_segments_through_readln_pullup_and_read() {
    let tmp = TempFile::new("lines", b"alpha\nbeta\r\ngamma");
    let mut b = Buffer::new();
    b.add_file(tmp.open(), 0, 17).unwrap();
    assert_eq!(b.peek(100).count(), 0, "file bytes are not in memory");
    assert_eq!(b.remaining(), 0);
    assert_eq!(
        &b.readln(EolStyle::Crlf, 64).unwrap().unwrap()[..],
        b"alpha"
    );
    assert_eq!(b.pullup(4).unwrap(), b"beta");
    assert_eq!(&b.readln(EolStyle::Crlf, 64).unwrap().unwrap()[..], b"beta");
    let mut s = String::new();
    b.read_to_string(&mut s).unwrap();
    assert_eq!(s, "gamma");

    let mut b = Buffer::new();
    b.add_file(tmp.open(), 6, 4).unwrap();
    assert_eq!(b.fill_buf().unwrap(), b"beta");
    b.consume(4);
    assert!(b.is_empty());

    assert!(matches!(
        FileSegment::new(tmp.open(), 10, 10),
        Err(BufferError::InvalidFileRange { file_len: 17, .. })
    ));
    assert!(matches!(
        FileSegment::new(tmp.open(), u64::MAX, 2),
        Err(BufferError::InvalidFileRange { .. })
    ));
}

#[test]
fn read_from_a_socketpair() {
    let (mut tx, rx) = UnixStream::pair().unwrap();
    rx.set_nonblocking(true).unwrap();
    let mut b = Buffer::new();
    assert!(b.read_from(rx.as_fd(), 4096).unwrap_err().is_would_block());
    assert!(b.is_empty());
    // An idle buffer keeps no memory after a read that got nothing.
    assert_eq!(b.segment_count(), 0);

    tx.write_all(&[5u8; 10_000]).unwrap();
    // Capped by max.
    assert_eq!(b.read_from(rx.as_fd(), 3000).unwrap(), 3000);
    // Sized by FIONREAD: everything that is waiting.
    assert_eq!(b.read_from(rx.as_fd(), 1 << 20).unwrap(), 7000);
    assert_eq!(b.len(), 10_000);
    assert!(contents(&b).iter().all(|&x| x == 5));
    drop(tx);
    assert_eq!(b.read_from(rx.as_fd(), 4096).unwrap(), 0);
    assert!(matches!(
        b.read_from(rx.as_fd(), 0),
        Err(BufferError::ZeroLimit)
    ));

    // write_atmost sends a prefix.
    let (tx, mut rx) = UnixStream::pair().unwrap();
    assert_eq!(b.write_atmost(tx.as_fd(), 1234).unwrap(), 1234);
    assert_eq!(b.len(), 10_000 - 1234);
    let mut got = vec![0; 1234];
    rx.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&x| x == 5));
}

#[test]
fn write_to_uses_many_segments() {
    let mut b = Buffer::new();
    for i in 0..200u8 {
        b.add_bytes(Bytes::from(vec![i; 10])).unwrap();
    }
    let (tx, mut rx) = UnixStream::pair().unwrap();
    let n = b.write_to(tx.as_fd()).unwrap();
    // At most MAX_IOVECS segments per call.
    assert_eq!(n, 10 * oxevent_core::fdio::MAX_IOVECS);
    let mut got = vec![0; n];
    rx.read_exact(&mut got).unwrap();
    assert_eq!(got[0], 0);
    assert_eq!(got[n - 1], (oxevent_core::fdio::MAX_IOVECS - 1) as u8);
}

#[test]
fn callbacks_count_changes() {
    let log: Rc<RefCell<Vec<CbInfo>>> = Rc::default();
    let mut b = Buffer::new();
    let l = Rc::clone(&log);
    let id = b.add_cb(move |i| l.borrow_mut().push(*i));
    b.add(b"hello").unwrap();
    b.add_bytes(Bytes::from_static(b" world")).unwrap();
    b.drain(3).unwrap();
    let mut out = [0u8; 2];
    b.remove(&mut out).unwrap();
    b.drain(0).unwrap(); // no change, no callback
    assert_eq!(
        *log.borrow(),
        vec![
            CbInfo {
                orig_size: 0,
                n_added: 5,
                n_deleted: 0
            },
            CbInfo {
                orig_size: 5,
                n_added: 6,
                n_deleted: 0
            },
            CbInfo {
                orig_size: 11,
                n_added: 0,
                n_deleted: 3
            },
            CbInfo {
                orig_size: 8,
                n_added: 0,
                n_deleted: 2
            },
        ]
    );
    log.borrow_mut().clear();

    // Suspended: coalesced into one call on unsuspend.
    b.suspend_cb(id).unwrap();
    b.add(b"abc").unwrap();
    b.drain(1).unwrap();
    assert!(log.borrow().is_empty());
    b.unsuspend_cb(id).unwrap();
    assert_eq!(
        *log.borrow(),
        vec![CbInfo {
            orig_size: 6,
            n_added: 3,
            n_deleted: 1
        }]
    );
    log.borrow_mut().clear();

    // Disabled: changes are missed.
    b.set_cb_enabled(id, false).unwrap();
    b.add(b"zz").unwrap();
    b.set_cb_enabled(id, true).unwrap();
    assert!(log.borrow().is_empty());

    // Deferred: delivered by run_deferred_callbacks.
    b.defer_callbacks();
    let before = b.len();
    b.add(b"1").unwrap();
    b.add(b"2").unwrap();
    let mut other = Buffer::new();
    b.remove_buffer(&mut other, 4).unwrap();
    assert!(log.borrow().is_empty());
    assert_eq!(b.run_deferred_callbacks(), 1);
    assert_eq!(
        *log.borrow(),
        vec![CbInfo {
            orig_size: before,
            n_added: 2,
            n_deleted: 4
        }]
    );
    assert_eq!(b.run_deferred_callbacks(), 0);

    // A second callback, then removal.
    let count = Rc::new(RefCell::new(0));
    let c = Rc::clone(&count);
    let id2 = b.add_cb(move |_| *c.borrow_mut() += 1);
    b.add(b"x").unwrap();
    b.run_deferred_callbacks();
    assert_eq!(*count.borrow(), 1);
    b.remove_cb(id2).unwrap();
    assert!(matches!(
        b.remove_cb(id2),
        Err(BufferError::UnknownCallback)
    ));
    assert!(matches!(
        b.suspend_cb(id2),
        Err(BufferError::UnknownCallback)
    ));
    b.add(b"y").unwrap();
    b.run_deferred_callbacks();
    assert_eq!(*count.borrow(), 1);
}

#[test]
fn callbacks_on_moves_see_both_sides() {
    let log: Rc<RefCell<Vec<(char, CbInfo)>>> = Rc::default();
    let (mut a, mut b) = (Buffer::new(), Buffer::new());
    let l = Rc::clone(&log);
    a.add_cb(move |i| l.borrow_mut().push(('a', *i)));
    let l = Rc::clone(&log);
    b.add_cb(move |i| l.borrow_mut().push(('b', *i)));
    a.add(b"12345").unwrap();
    b.add_buffer(&mut a).unwrap();
    assert_eq!(
        *log.borrow(),
        vec![
            (
                'a',
                CbInfo {
                    orig_size: 0,
                    n_added: 5,
                    n_deleted: 0
                }
            ),
            (
                'b',
                CbInfo {
                    orig_size: 0,
                    n_added: 5,
                    n_deleted: 0
                }
            ),
            (
                'a',
                CbInfo {
                    orig_size: 5,
                    n_added: 0,
                    n_deleted: 5
                }
            ),
        ]
    );
}

#[test]
fn frozen_ends_refuse_changes() {
    let mut b = Buffer::new();
    b.add(b"data\n").unwrap();
    b.freeze(BufferSide::End);
    assert!(b.is_frozen(BufferSide::End));
    let is_end =
        |r: Result<(), BufferError>| matches!(r, Err(BufferError::Frozen(BufferSide::End)));
    assert!(is_end(b.add(b"x")));
    assert!(is_end(b.add_bytes(Bytes::from_static(b"x"))));
    assert!(is_end(b.add_iovec(&[IoSlice::new(b"x")]).map(|_| ())));
    assert!(is_end(b.add_fmt(format_args!("{}", 1)).map(|_| ())));
    assert!(is_end(b.expand(10)));
    assert!(is_end(b.reserve(10).map(|_| ())));
    assert!(is_end(b.commit(0)));
    assert!(is_end(b.tail_writer(1).map(|_| ())));
    let mut other = Buffer::new();
    other.add(b"o").unwrap();
    assert!(is_end(b.add_buffer(&mut other)));
    assert!(is_end(b.add_buffer_reference(&mut other)));
    assert!(is_end(other.remove_buffer(&mut b, 1).map(|_| ())));
    let (tx, rx) = UnixStream::pair().unwrap();
    assert!(is_end(b.read_from(rx.as_fd(), 10).map(|_| ())));
    assert!(std::fmt::Write::write_fmt(&mut b, format_args!("x")).is_err());
    assert!(write!(b, "x").is_err());
    assert!(b.write(b"x").is_err());
    // The start still works.
    b.prepend(b">").unwrap();
    assert_eq!(&b.readln(EolStyle::Lf, 10).unwrap().unwrap()[..], b">data");
    b.unfreeze(BufferSide::End);
    b.add(b"ok").unwrap();

    b.freeze(BufferSide::Start);
    let is_start =
        |r: Result<(), BufferError>| matches!(r, Err(BufferError::Frozen(BufferSide::Start)));
    assert!(is_start(b.drain(1)));
    assert!(is_start(b.prepend(b"x")));
    assert!(is_start(b.remove(&mut [0; 1]).map(|_| ())));
    assert!(is_start(b.remove_buffer(&mut other, 1).map(|_| ())));
    assert!(is_start(b.readln(EolStyle::Lf, 10).map(|_| ())));
    assert!(is_start(b.write_to(tx.as_fd()).map(|_| ())));
    assert!(is_start(other.add_buffer(&mut b)));
    assert!(b.read(&mut [0; 1]).is_err());
    assert_eq!(b.remaining(), 0);
    // Reading without removing still works, and so does the end.
    assert_eq!(contents(&b), b"ok");
    b.add(b"!").unwrap();
    b.unfreeze(BufferSide::Start);
    b.drain(3).unwrap();
}

#[test]
fn bad_input_is_a_typed_error() {
    let mut b = Buffer::new();
    b.add(b"abc").unwrap();
    assert!(matches!(
        b.drain(4),
        Err(BufferError::OutOfRange {
            requested: 4,
            available: 3
        })
    ));
    assert_eq!(b.len(), 3);
    let other = Buffer::new();
    let foreign = other.pos_at(0).unwrap();
    assert!(matches!(
        b.search(b"a", Some(&foreign)),
        Err(BufferError::ForeignPos)
    ));
    assert!(matches!(
        b.copyout_from(&foreign, &mut [0; 1]),
        Err(BufferError::ForeignPos)
    ));
    let mut f = foreign;
    assert!(matches!(
        b.ptr_set(&mut f, PtrHow::Set(0)),
        Err(BufferError::ForeignPos)
    ));
    assert!(matches!(
        b.pos_at(4),
        Err(BufferError::PosOutOfRange { pos: 4, len: 3 })
    ));
    let mut p = b.pos_at(3).unwrap();
    assert!(matches!(
        b.advance_pos(&mut p, 1),
        Err(BufferError::PosOutOfRange { .. })
    ));
    assert!(matches!(
        b.ptr_set(&mut p, PtrHow::Add(usize::MAX)),
        Err(BufferError::PosOutOfRange { .. })
    ));
    assert_eq!(p.position(), 3);
    // A position that the buffer shrank past.
    b.drain(2).unwrap();
    assert!(matches!(
        b.search(b"c", Some(&p)),
        Err(BufferError::PosOutOfRange { pos: 3, len: 1 })
    ));
    assert!(matches!(
        b.commit(1),
        Err(BufferError::CommitTooLarge {
            requested: 1,
            reserved: 0
        })
    ));
    assert!(matches!(b.pullup(2), Err(BufferError::OutOfRange { .. })));
    // Errors carry a message and convert to io::Error.
    let e = b.drain(10).unwrap_err();
    assert_eq!(e.to_string(), "asked for 10 bytes but the buffer holds 1");
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), ErrorKind::InvalidInput);
    // Impossible sizes are errors, not aborts.
    assert!(matches!(
        b.reserve(usize::MAX),
        Err(BufferError::AllocFailed { .. })
    ));
    assert!(matches!(
        b.expand(usize::MAX),
        Err(BufferError::AllocFailed { .. })
    ));
    assert!(matches!(
        b.tail_writer(usize::MAX),
        Err(BufferError::AllocFailed { .. })
    ));
    assert_eq!(contents(&b), b"c");
    let id = Buffer::new().add_cb(|_| {});
    assert!(matches!(b.remove_cb(id), Err(BufferError::UnknownCallback)));
}

#[test]
fn memory_is_allocated_on_use_and_released_on_drain() {
    let mut b = Buffer::new();
    assert_eq!(b.segment_count(), 0);
    for _ in 0..1000 {
        b.add(b"0123456789abcdef").unwrap();
    }
    // 16-byte adds are coalesced into segments of 4, 8 and 16 KiB.
    assert_eq!(b.segment_count(), 3);
    assert_eq!(b.contiguous_space(), 4096);
    b.drain(b.len()).unwrap();
    assert_eq!(b.segment_count(), 0);
    b.add(&[0; 100]).unwrap();
    let mut out = [0; 100];
    b.remove(&mut out).unwrap();
    assert_eq!(b.segment_count(), 0);
}

#[test]
fn interop_with_bytes_and_std_io() {
    let mut b = Buffer::new();
    b.add(b"abc").unwrap();
    b.add_bytes(Bytes::from_static(b"def")).unwrap();
    std::fmt::Write::write_fmt(&mut b, format_args!("{}-{}", 1, 2)).unwrap();
    // Buf
    assert_eq!(b.remaining(), 9);
    assert_eq!(b.chunk(), b"abc");
    let mut iov = [IoSlice::new(&[]); 4];
    assert_eq!(b.chunks_vectored(&mut iov), 3);
    assert_eq!(&*iov[2], b"1-2");
    assert_eq!(b.get_u8(), b'a');
    let mut two = [0u8; 2];
    b.copy_to_slice(&mut two);
    assert_eq!(&two, b"bc");
    // BufMut through the tail writer.
    {
        let mut w = b.tail_writer(8).unwrap();
        w.put_u32(0x3031_3233);
        w.put_slice(b"!");
    }
    assert_eq!(contents(&b), b"def1-20123!");
    // Writes past the spare space become a segment of their own; the bytes
    // already in the buffer are out of the writer's reach.
    {
        let mut w = b.tail_writer(0).unwrap();
        assert!(w.is_empty());
        w.put_bytes(b'#', 10_000);
        let _ = w.split_to(2);
    }
    assert_eq!(b.len(), 11 + 9_998);
    b.drain(11 + 9_998).unwrap();
    b.add(b"def1-20123!").unwrap();
    // std::io
    b.write_all(b"\nline2\n").unwrap();
    let mut line = String::new();
    b.read_line(&mut line).unwrap();
    assert_eq!(line, "def1-20123!\n");
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"line2\n");
    let n = b
        .add_iovec(&[IoSlice::new(b"x"), IoSlice::new(b""), IoSlice::new(b"yz")])
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(contents(&b), b"xyz");
    b.advance(100);
    assert!(b.is_empty());
}

#[test]
fn socket_io_variants_read_write_and_fall_back() {
    use std::io::Write as _;
    use std::os::fd::AsFd;
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"over a socket").unwrap();
    let mut buf = Buffer::new();
    assert_eq!(
        buf.read_from_socket(b.as_fd(), 4).unwrap(),
        4,
        "capped by max"
    );
    assert_eq!(buf.read_from_socket(b.as_fd(), 1024).unwrap(), 9);
    assert_eq!(buf.pullup(13).unwrap(), b"over a socket");
    // A regular file is not a socket: the calls fall back to writev and readv.
    let path = std::env::temp_dir().join(format!("oxevent-sockio-{}", std::process::id()));
    let w = File::create(&path).unwrap();
    assert_eq!(buf.write_atmost_socket(w.as_fd(), 5).unwrap(), 5);
    let r = File::open(&path).unwrap();
    let mut got = Buffer::new();
    assert_eq!(got.read_from_socket(r.as_fd(), 64).unwrap(), 5);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(got.pullup(5).unwrap(), b"over ");
    // A closed peer is EPIPE, not SIGPIPE.
    drop(b);
    let e = buf.write_atmost_socket(a.as_fd(), 100).unwrap_err();
    assert!(
        matches!(e, BufferError::Io(ref err) if err.kind() == ErrorKind::BrokenPipe),
        "{e:?}"
    );
    assert_eq!(buf.len(), 8, "nothing drained on error");
}
