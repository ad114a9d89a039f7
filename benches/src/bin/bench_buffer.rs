//! `bench_buffer`: micro-benchmarks of `Buffer` (libevent's evbuffer).
//!
//! The same workloads as `benches/c/bench_buffer.c` against libevent:
//!
//! - `buffer.add_drain`: add 64 chunks of 16 B (`cfg=chunk16`) or 16 KiB
//!   (`cfg=chunk16384`), then drain them one chunk at a time; the figure is
//!   the time of one add plus one drain.
//! - `buffer.readln`: read every line, with `EolStyle::Crlf`, from a 1 MiB
//!   buffer of 80-byte lines (78 bytes and CR LF), built by adding the lines
//!   one by one (building is not timed).
//! - `buffer.move`: move a 64 MiB buffer (4096 segments of 16 KiB) into an
//!   empty buffer with `add_buffer`, back and forth.
//!
//! Each figure is the median of 7 runs. Usage: `bench_buffer` (no
//! arguments). Output: one `RESULT` line per figure.

use std::hint::black_box;
use std::time::Instant;

use oxevent_bufferevent::{Buffer, EolStyle};

const RUNS: usize = 7;
const BATCH: usize = 64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn result(name: &str, cfg: &str, value: f64, unit: &str) {
    println!("RESULT name={name} impl=oxevent cfg={cfg} value={value:.3} unit={unit}");
}

/// Nanoseconds per add+drain of `chunk`-byte chunks.
fn add_drain(chunk: usize, total_ops: usize) -> f64 {
    let data = vec![b'x'; chunk];
    let mut buf = Buffer::new();
    let rounds = total_ops / BATCH;
    let t = Instant::now();
    for _ in 0..rounds {
        for _ in 0..BATCH {
            buf.add(black_box(&data)).expect("add");
        }
        for _ in 0..BATCH {
            buf.drain(chunk).expect("drain");
        }
    }
    let ns = t.elapsed().as_nanos() as f64;
    assert!(buf.is_empty());
    ns / (rounds * BATCH) as f64
}

/// Milliseconds to read every line of a 1 MiB buffer of 80-byte lines.
fn readln() -> f64 {
    let mut line = vec![b'a'; 78];
    line.extend_from_slice(b"\r\n");
    let mut buf = Buffer::new();
    while buf.len() + line.len() <= 1 << 20 {
        buf.add(&line).expect("add");
    }
    let expect = buf.len() / line.len();
    let t = Instant::now();
    let mut n = 0;
    while let Some(l) = buf.readln(EolStyle::Crlf, 1024).expect("readln") {
        black_box(&l);
        n += 1;
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(n, expect);
    ms
}

/// Microseconds per move of a 64 MiB buffer into an empty one.
fn move_64mib() -> f64 {
    let chunk = vec![b'm'; 16 * 1024];
    let mut a = Buffer::new();
    for _ in 0..4096 {
        a.add(&chunk).expect("add");
    }
    let mut b = Buffer::new();
    let moves = 10_000;
    let t = Instant::now();
    for _ in 0..moves / 2 {
        b.add_buffer(black_box(&mut a)).expect("move");
        a.add_buffer(black_box(&mut b)).expect("move");
    }
    let us = t.elapsed().as_secs_f64() * 1e6;
    assert_eq!(a.len(), 64 << 20);
    us / moves as f64
}

fn main() {
    let v = (0..RUNS).map(|_| add_drain(16, 1 << 22)).collect();
    result("buffer.add_drain", "chunk16", median(v), "ns_per_op");
    let v = (0..RUNS).map(|_| add_drain(16 * 1024, 1 << 15)).collect();
    result("buffer.add_drain", "chunk16384", median(v), "ns_per_op");
    let v = (0..RUNS).map(|_| readln()).collect();
    result("buffer.readln", "lines80_1MiB", median(v), "ms");
    let v = (0..RUNS).map(|_| move_64mib()).collect();
    result("buffer.move", "64MiB", median(v), "us");
}
