//! Model check of `Buffer`: random operation sequences applied to two
//! buffers and to a `VecDeque<u8>` model of each. Contents, lengths, search
//! results, line reads and errors must agree after every operation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{IoSlice, Read as _};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes};
use oxevent_bufferevent::{Buffer, BufferError, EolStyle, FileSegment};
use proptest::prelude::*;

const FILE_LEN: usize = 20_000;

/// The bytes of the shared test file: text with all the EOL characters.
fn file_bytes() -> Vec<u8> {
    let pattern = b"ab\r\ncd\nef\0gh\r\r\nij";
    (0..FILE_LEN)
        .map(|i| pattern[(i * 7 + i / 13) % pattern.len()])
        .collect()
}

/// One unlinked temporary file with `file_bytes()`, shared by all cases.
fn shared_file() -> &'static Arc<File> {
    static FILE: OnceLock<Arc<File>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("oxevent-model-{}", std::process::id()));
        std::fs::write(&path, file_bytes()).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Arc::new(f)
    })
}

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<u8>),
    AddBytes(Vec<u8>),
    AddFmt(u32),
    Prepend(Vec<u8>),
    Drain(usize),
    Remove(usize),
    RemoveBuffer(usize),
    Copyout(usize),
    CopyoutFrom(usize, usize),
    Pullup(usize),
    Peek(usize),
    Search(Vec<u8>, usize),
    SearchRange(Vec<u8>, usize, usize),
    SearchEol(EolStyle, usize),
    Readln(EolStyle, usize),
    Reserve(usize, usize, u8),
    Expand(usize),
    AddBuffer,
    AddBufferReference,
    PrependBuffer,
    AddFile(usize, usize),
    AddIovec(Vec<Vec<u8>>),
    TailWrite(Vec<u8>, usize),
    ReadStd(usize),
    WriteAtmost(usize),
    Swap,
}

/// Bytes biased towards the EOL characters, so that lines and matches are
/// common.
fn bytes_strategy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => b'a'..=b'c',
            1 => Just(b'\r'),
            1 => Just(b'\n'),
            1 => Just(0u8),
        ],
        0..max,
    )
}

fn style_strategy() -> impl Strategy<Value = EolStyle> {
    prop_oneof![
        Just(EolStyle::Any),
        Just(EolStyle::Crlf),
        Just(EolStyle::CrlfStrict),
        Just(EolStyle::Lf),
        Just(EolStyle::Nul),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => bytes_strategy(40).prop_map(Op::Add),
        1 => prop::collection::vec(any::<u8>(), 0..6000).prop_map(Op::Add),
        2 => bytes_strategy(40).prop_map(Op::AddBytes),
        1 => any::<u32>().prop_map(Op::AddFmt),
        1 => bytes_strategy(20).prop_map(Op::Prepend),
        2 => (0usize..80).prop_map(Op::Drain),
        2 => (0usize..80).prop_map(Op::Remove),
        2 => (0usize..80).prop_map(Op::RemoveBuffer),
        1 => (0usize..80).prop_map(Op::Copyout),
        1 => (0usize..100, 0usize..40).prop_map(|(p, n)| Op::CopyoutFrom(p, n)),
        2 => (0usize..100).prop_map(Op::Pullup),
        1 => (0usize..100).prop_map(Op::Peek),
        2 => (bytes_strategy(4), 0usize..100).prop_map(|(n, s)| Op::Search(n, s)),
        1 => (bytes_strategy(4), 0usize..100, 0usize..100)
            .prop_map(|(n, s, e)| Op::SearchRange(n, s, e)),
        2 => (style_strategy(), 0usize..100).prop_map(|(s, p)| Op::SearchEol(s, p)),
        3 => (style_strategy(), 0usize..40).prop_map(|(s, m)| Op::Readln(s, m)),
        2 => (0usize..5000, 0usize..5000, any::<u8>()).prop_map(|(n, f, s)| Op::Reserve(n, f, s)),
        1 => (0usize..5000).prop_map(Op::Expand),
        1 => Just(Op::AddBuffer),
        1 => Just(Op::AddBufferReference),
        1 => Just(Op::PrependBuffer),
        2 => (0..FILE_LEN, 0usize..3000).prop_map(|(o, l)| Op::AddFile(o, l)),
        1 => prop::collection::vec(bytes_strategy(10), 0..4).prop_map(Op::AddIovec),
        1 => (bytes_strategy(40), 0usize..5000).prop_map(|(d, m)| Op::TailWrite(d, m)),
        1 => (0usize..100).prop_map(Op::ReadStd),
        1 => (0usize..6000).prop_map(Op::WriteAtmost),
        1 => Just(Op::Swap),
    ]
}

fn model_find(m: &[u8], needle: &[u8], start: usize, end: usize) -> Option<usize> {
    let end = end.min(m.len());
    if start > end || end - start < needle.len() {
        return None;
    }
    (start..=end - needle.len()).find(|&p| &m[p..p + needle.len()] == needle)
}

/// The end of line under `style` at or after `start`: offset and length.
fn model_eol(m: &[u8], start: usize, style: EolStyle) -> Option<(usize, usize)> {
    let s = start.min(m.len());
    match style {
        EolStyle::Lf => m[s..].iter().position(|&b| b == b'\n').map(|p| (s + p, 1)),
        EolStyle::Nul => m[s..].iter().position(|&b| b == 0).map(|p| (s + p, 1)),
        EolStyle::CrlfStrict => model_find(m, b"\r\n", s, m.len()).map(|p| (p, 2)),
        EolStyle::Crlf => m[s..].iter().position(|&b| b == b'\n').map(|p| {
            let p = s + p;
            if p > s && m[p - 1] == b'\r' {
                (p - 1, 2)
            } else {
                (p, 1)
            }
        }),
        EolStyle::Any => m[s..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map(|p| {
                let q = s + p;
                let run = m[q..]
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                (q, run)
            }),
    }
}

fn contents(b: &Buffer) -> Vec<u8> {
    let mut v = vec![0; b.len()];
    assert_eq!(b.copyout(&mut v).unwrap(), b.len());
    v
}

fn apply(
    op: &Op,
    bufs: &mut [Buffer; 2],
    models: &mut [VecDeque<u8>; 2],
    pipe: &mut (UnixStream, UnixStream),
) {
    let [a, b] = bufs;
    let [ma, mb] = models;
    match op {
        Op::Add(d) => {
            a.add(d).unwrap();
            ma.extend(d);
        }
        Op::AddBytes(d) => {
            a.add_bytes(Bytes::copy_from_slice(d)).unwrap();
            ma.extend(d);
        }
        Op::AddFmt(x) => {
            let n = a.add_fmt(format_args!("<{x}>")).unwrap();
            let s = format!("<{x}>");
            assert_eq!(n, s.len());
            ma.extend(s.as_bytes());
        }
        Op::Prepend(d) => {
            a.prepend(d).unwrap();
            for &x in d.iter().rev() {
                ma.push_front(x);
            }
        }
        Op::Drain(n) => match a.drain(*n) {
            Ok(()) => {
                assert!(*n <= ma.len());
                ma.drain(..*n);
            }
            Err(BufferError::OutOfRange {
                requested,
                available,
            }) => {
                assert_eq!((requested, available), (*n, ma.len()));
            }
            Err(e) => panic!("unexpected {e}"),
        },
        Op::Remove(n) => {
            let mut out = vec![0; *n];
            let got = a.remove(&mut out).unwrap();
            assert_eq!(got, (*n).min(ma.len()));
            let want: Vec<u8> = ma.drain(..got).collect();
            assert_eq!(&out[..got], &want[..]);
        }
        Op::RemoveBuffer(n) => {
            let got = a.remove_buffer(b, *n).unwrap();
            assert_eq!(got, (*n).min(ma.len()));
            mb.extend(ma.drain(..got));
        }
        Op::Copyout(n) => {
            let mut out = vec![0; *n];
            let got = a.copyout(&mut out).unwrap();
            assert_eq!(got, (*n).min(ma.len()));
            assert!(out[..got].iter().eq(ma.iter().take(got)));
        }
        Op::CopyoutFrom(p, n) => match a.pos_at(*p) {
            Ok(pos) => {
                let mut out = vec![0; *n];
                let got = a.copyout_from(&pos, &mut out).unwrap();
                assert_eq!(got, (*n).min(ma.len() - p));
                assert!(out[..got].iter().eq(ma.iter().skip(*p).take(got)));
            }
            Err(_) => assert!(*p > ma.len()),
        },
        Op::Pullup(n) => match a.pullup(*n) {
            Ok(s) => {
                assert_eq!(s.len(), *n);
                assert!(s.iter().eq(ma.iter().take(*n)));
                assert!(a.contiguous_space() >= *n);
            }
            Err(_) => assert!(*n > ma.len()),
        },
        Op::Peek(n) => {
            // All of the first n bytes, or the in-memory ones before a file
            // segment.
            let peeked: Vec<u8> = a.peek(*n).flatten().copied().collect();
            assert!(peeked.len() <= (*n).min(ma.len()));
            assert!(peeked.iter().eq(ma.iter().take(peeked.len())));
        }
        Op::Search(needle, start) => {
            let m: Vec<u8> = ma.iter().copied().collect();
            let start = start % (m.len() + 1);
            let pos = a.pos_at(start).unwrap();
            let got = a.search(needle, Some(&pos)).unwrap().map(|p| p.position());
            assert_eq!(got, model_find(&m, needle, start, m.len()));
            let from0 = a.search(needle, None).unwrap().map(|p| p.position());
            assert_eq!(from0, model_find(&m, needle, 0, m.len()));
        }
        Op::SearchRange(needle, start, end) => {
            let m: Vec<u8> = ma.iter().copied().collect();
            let start = start % (m.len() + 1);
            let end = end % (m.len() + 1);
            let (ps, pe) = (a.pos_at(start).unwrap(), a.pos_at(end).unwrap());
            let got = a.search_range(needle, Some(&ps), Some(&pe)).unwrap();
            assert_eq!(
                got.map(|p| p.position()),
                model_find(&m, needle, start, end)
            );
        }
        Op::SearchEol(style, start) => {
            let m: Vec<u8> = ma.iter().copied().collect();
            let start = start % (m.len() + 1);
            let pos = a.pos_at(start).unwrap();
            let got = a.search_eol(Some(&pos), *style).unwrap();
            assert_eq!(
                got.map(|(p, l)| (p.position(), l)),
                model_eol(&m, start, *style)
            );
        }
        Op::Readln(style, max) => {
            let m: Vec<u8> = ma.iter().copied().collect();
            let got = a.readln(*style, *max);
            match model_eol(&m, 0, *style) {
                Some((q, l)) if q <= *max => {
                    assert_eq!(&got.unwrap().unwrap()[..], &m[..q]);
                    ma.drain(..q + l);
                }
                Some(_) => assert!(matches!(got, Err(BufferError::LineTooLong { .. }))),
                None if m.len() > max + 1 => {
                    assert!(matches!(got, Err(BufferError::LineTooLong { .. })));
                }
                None => assert!(got.unwrap().is_none()),
            }
        }
        Op::Reserve(n, fill, seed) => {
            let mut r = a.reserve(*n).unwrap();
            let total = r.total_len();
            assert!(total >= *n);
            assert!(r.len() <= 2);
            let fill = fill % (total + 1);
            let mut left = fill;
            let mut written = Vec::new();
            for s in r.iter_mut() {
                let k = s.len().min(left);
                for (i, x) in s[..k].iter_mut().enumerate() {
                    *x = seed.wrapping_add(i as u8);
                    written.push(*x);
                }
                left -= k;
            }
            assert!(matches!(
                a.commit(total + 1),
                Err(BufferError::CommitTooLarge { .. })
            ));
            a.commit(fill).unwrap();
            ma.extend(written);
            // The reservation is used up.
            assert!(matches!(
                a.commit(1),
                Err(BufferError::CommitTooLarge { reserved: 0, .. })
            ));
        }
        Op::Expand(n) => {
            a.expand(*n).unwrap();
            let r = a.reserve(*n).unwrap();
            assert_eq!(r.len(), 1);
            assert!(r.total_len() >= *n);
        }
        Op::AddBuffer => {
            a.add_buffer(b).unwrap();
            assert!(b.is_empty());
            ma.extend(mb.drain(..));
        }
        Op::AddBufferReference => {
            a.add_buffer_reference(b).unwrap();
            ma.extend(mb.iter().copied());
        }
        Op::PrependBuffer => {
            a.prepend_buffer(b).unwrap();
            assert!(b.is_empty());
            for x in mb.drain(..).rev() {
                ma.push_front(x);
            }
        }
        Op::AddFile(off, len) => {
            let len = (*len).min(FILE_LEN - off);
            let seg =
                FileSegment::from_arc(Arc::clone(shared_file()), *off as u64, len as u64).unwrap();
            a.add_file_segment(&seg).unwrap();
            ma.extend(&file_bytes()[*off..off + len]);
        }
        Op::AddIovec(parts) => {
            let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let n = a.add_iovec(&iov).unwrap();
            assert_eq!(n, parts.iter().map(Vec::len).sum::<usize>());
            for p in parts {
                ma.extend(p);
            }
        }
        Op::TailWrite(d, min) => {
            let mut w = a.tail_writer(*min).unwrap();
            assert!(w.capacity() >= *min);
            w.put_slice(d);
            drop(w);
            ma.extend(d);
        }
        Op::ReadStd(n) => {
            let mut out = vec![0; *n];
            let got = a.read(&mut out).unwrap();
            assert_eq!(got, (*n).min(ma.len()));
            let want: Vec<u8> = ma.drain(..got).collect();
            assert_eq!(&out[..got], &want[..]);
        }
        Op::WriteAtmost(n) => {
            let sent = a.write_atmost(pipe.0.as_fd(), *n).unwrap();
            assert!(sent <= (*n).min(ma.len()));
            assert!(sent > 0 || *n == 0 || ma.is_empty());
            let mut got = vec![0; sent];
            pipe.1.read_exact(&mut got).unwrap();
            let want: Vec<u8> = ma.drain(..sent).collect();
            assert_eq!(got, want);
        }
        Op::Swap => {
            bufs.swap(0, 1);
            models.swap(0, 1);
        }
    }
}

proptest! {
    // 256 cases by default; `PROPTEST_CASES=N` runs more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/it/buffer_model.proptest-regressions",
            ),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn buffer_agrees_with_vecdeque_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mut bufs = [Buffer::new(), Buffer::new()];
        let mut models = [VecDeque::new(), VecDeque::new()];
        let mut pipe = UnixStream::pair().unwrap();
        for op in &ops {
            // Sharing then swapping, repeated, doubles the data each time:
            // keep the model small.
            if models.iter().map(VecDeque::len).sum::<usize>() > 1 << 20 {
                break;
            }
            apply(op, &mut bufs, &mut models, &mut pipe);
            for (buf, m) in bufs.iter().zip(models.iter()) {
                prop_assert_eq!(buf.len(), m.len());
                prop_assert!(contents(buf).iter().eq(m.iter()));
                let peeked: usize = buf.peek(usize::MAX).map(<[u8]>::len).sum();
                prop_assert!(peeked <= m.len());
                if m.is_empty() {
                    prop_assert!(buf.segment_count() <= 1);
                }
            }
        }
    }
}
