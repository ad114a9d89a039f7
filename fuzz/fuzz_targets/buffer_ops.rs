//! `buffer_ops`: random operation lists applied to two `Buffer`s and to a
//! `VecDeque<u8>` model of each; contents, lengths and search results must
//! agree after every operation, and nothing may panic.

#![no_main]

use std::collections::VecDeque;
use std::io::IoSlice;

use arbitrary::Arbitrary;
use bytes::{BufMut, Bytes};
use libfuzzer_sys::fuzz_target;
use oxevent_bufferevent::{Buffer, EolStyle};

#[derive(Debug, Arbitrary)]
enum Style {
    Any,
    Crlf,
    CrlfStrict,
    Lf,
    Nul,
}

impl Style {
    fn get(&self) -> EolStyle {
        match self {
            Self::Any => EolStyle::Any,
            Self::Crlf => EolStyle::Crlf,
            Self::CrlfStrict => EolStyle::CrlfStrict,
            Self::Lf => EolStyle::Lf,
            Self::Nul => EolStyle::Nul,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Add(Vec<u8>),
    AddBytes(Vec<u8>),
    Prepend(Vec<u8>),
    Drain(u16),
    Remove(u16),
    RemoveBuffer(u16),
    Copyout(u16),
    Pullup(u16),
    Peek(u16),
    Search(Vec<u8>, u16),
    SearchRange(Vec<u8>, u16, u16),
    SearchEol(Style, u16),
    Readln(Style, u16),
    ReserveCommit(u16, u16, u8),
    AddBuffer,
    AddBufferReference,
    PrependBuffer,
    AddIovec(Vec<Vec<u8>>),
    TailWrite(Vec<u8>, u16),
    Expand(u16),
    Swap,
}

fn model_find(m: &[u8], needle: &[u8], start: usize, end: usize) -> Option<usize> {
    let end = end.min(m.len());
    if start > end || end - start < needle.len() {
        return None;
    }
    (start..=end - needle.len()).find(|&p| &m[p..p + needle.len()] == needle)
}

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

fuzz_target!(|ops: Vec<Op>| {
    let mut bufs = [Buffer::new(), Buffer::new()];
    let mut models = [VecDeque::<u8>::new(), VecDeque::<u8>::new()];
    for op in ops.iter().take(256) {
        // `add_buffer_reference` then `Swap`, repeated, doubles the data
        // each time (cheaply for the buffers, which share segments, but not
        // for the model): stop before the harness runs out of memory.
        if bufs.iter().map(Buffer::len).sum::<usize>() > 1 << 20 {
            break;
        }
        let [a, b] = &mut bufs;
        let [ma, mb] = &mut models;
        match op {
            Op::Add(d) => {
                a.add(d).unwrap();
                ma.extend(d);
            }
            Op::AddBytes(d) => {
                a.add_bytes(Bytes::copy_from_slice(d)).unwrap();
                ma.extend(d);
            }
            Op::Prepend(d) => {
                a.prepend(d).unwrap();
                for &x in d.iter().rev() {
                    ma.push_front(x);
                }
            }
            Op::Drain(n) => {
                let n = usize::from(*n);
                let r = a.drain(n);
                assert_eq!(r.is_ok(), n <= ma.len());
                if r.is_ok() {
                    ma.drain(..n);
                }
            }
            Op::Remove(n) => {
                let mut out = vec![0; usize::from(*n)];
                let got = a.remove(&mut out).unwrap();
                let want: Vec<u8> = ma.drain(..got.min(ma.len())).collect();
                assert_eq!(got, want.len());
                assert_eq!(&out[..got], &want[..]);
            }
            Op::RemoveBuffer(n) => {
                let got = a.remove_buffer(b, usize::from(*n)).unwrap();
                mb.extend(ma.drain(..got));
            }
            Op::Copyout(n) => {
                let mut out = vec![0; usize::from(*n)];
                let got = a.copyout(&mut out).unwrap();
                let want: Vec<u8> = ma.iter().take(got).copied().collect();
                assert_eq!(&out[..got], &want[..]);
            }
            Op::Pullup(n) => {
                let n = usize::from(*n);
                match a.pullup(n) {
                    Ok(s) => assert!(s.iter().eq(ma.iter().take(n))),
                    Err(_) => assert!(n > ma.len()),
                }
            }
            Op::Peek(n) => {
                let n = usize::from(*n);
                let peeked: Vec<u8> = a.peek(n).flatten().copied().collect();
                assert!(peeked.iter().eq(ma.iter().take(n)));
            }
            Op::Search(needle, start) => {
                let m: Vec<u8> = ma.iter().copied().collect();
                let start = usize::from(*start) % (m.len() + 1);
                let pos = a.pos_at(start).unwrap();
                let got = a.search(needle, Some(&pos)).unwrap().map(|p| p.position());
                assert_eq!(got, model_find(&m, needle, start, m.len()));
            }
            Op::SearchRange(needle, start, end) => {
                let m: Vec<u8> = ma.iter().copied().collect();
                let start = usize::from(*start) % (m.len() + 1);
                let end = usize::from(*end) % (m.len() + 1);
                let (ps, pe) = (a.pos_at(start).unwrap(), a.pos_at(end).unwrap());
                let got = a.search_range(needle, Some(&ps), Some(&pe)).unwrap();
                assert_eq!(
                    got.map(|p| p.position()),
                    model_find(&m, needle, start, end)
                );
            }
            Op::SearchEol(style, start) => {
                let m: Vec<u8> = ma.iter().copied().collect();
                let start = usize::from(*start) % (m.len() + 1);
                let pos = a.pos_at(start).unwrap();
                let got = a.search_eol(Some(&pos), style.get()).unwrap();
                assert_eq!(
                    got.map(|(p, l)| (p.position(), l)),
                    model_eol(&m, start, style.get())
                );
            }
            Op::Readln(style, max) => {
                let max = usize::from(*max % 512);
                let m: Vec<u8> = ma.iter().copied().collect();
                let got = a.readln(style.get(), max);
                match model_eol(&m, 0, style.get()) {
                    Some((q, l)) if q <= max => {
                        assert_eq!(&got.unwrap().unwrap()[..], &m[..q]);
                        ma.drain(..q + l);
                    }
                    Some(_) => assert!(got.is_err()),
                    None if m.len() > max + 1 => assert!(got.is_err()),
                    None => assert!(got.unwrap().is_none()),
                }
            }
            Op::ReserveCommit(n, fill, seed) => {
                let n = usize::from(*n % 8192);
                let mut r = a.reserve(n).unwrap();
                let total = r.total_len();
                assert!(total >= n);
                let fill = usize::from(*fill) % (total + 1);
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
                a.commit(fill).unwrap();
                ma.extend(written);
                assert!(a.commit(1).is_err());
            }
            Op::AddBuffer => {
                a.add_buffer(b).unwrap();
                ma.extend(mb.drain(..));
            }
            Op::AddBufferReference => {
                a.add_buffer_reference(b).unwrap();
                ma.extend(mb.iter().copied());
            }
            Op::PrependBuffer => {
                a.prepend_buffer(b).unwrap();
                for x in mb.drain(..).rev() {
                    ma.push_front(x);
                }
            }
            Op::AddIovec(parts) => {
                let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                a.add_iovec(&iov).unwrap();
                for p in parts {
                    ma.extend(p);
                }
            }
            Op::TailWrite(d, min) => {
                let mut w = a.tail_writer(usize::from(*min)).unwrap();
                w.put_slice(d);
                drop(w);
                ma.extend(d);
            }
            Op::Expand(n) => {
                let n = usize::from(*n);
                a.expand(n).unwrap();
                let r = a.reserve(n).unwrap();
                assert_eq!(r.len(), 1);
                assert!(r.total_len() >= n);
            }
            Op::Swap => {
                bufs.swap(0, 1);
                models.swap(0, 1);
            }
        }
        for (buf, m) in bufs.iter().zip(models.iter()) {
            // The structural checks exist only in `--cfg fuzzing` builds.
            #[cfg(fuzzing)]
            buf.fuzz_check_invariants().unwrap();
            assert_eq!(buf.len(), m.len());
            assert!(contents(buf).iter().eq(m.iter()));
        }
    }
});
