//! Unit tests of the buffer's internal invariants: a long deterministic
//! pseudo-random run of operations, checking the segment structure after
//! each one (the integration tests check the contents against a model).

use bytes::Bytes;

use super::{Buffer, EolStyle};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn invariants_hold_under_random_operations() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut a = Buffer::new();
    let mut b = Buffer::new();
    let data: Vec<u8> = (0..10_000u32)
        .map(|i| b"ab\r\n\0"[(i % 5) as usize])
        .collect();
    for step in 0..20_000 {
        let n = rng.below(9000);
        match rng.below(16) {
            0 | 1 => a.add(&data[..n % 100]).unwrap(),
            2 => a.add(&data[..n]).unwrap(),
            3 => a
                .add_bytes(Bytes::copy_from_slice(&data[..n % 50]))
                .unwrap(),
            4 => a.prepend(&data[..n % 20]).unwrap(),
            5 => a.drain(n.min(a.len())).unwrap(),
            6 => {
                let _ = a.remove_buffer(&mut b, n % 300).unwrap();
            }
            7 => {
                let _ = a.pullup(n.min(a.len())).unwrap();
            }
            8 => {
                let _ = a.readln(EolStyle::Any, 64);
            }
            9 => {
                let mut r = a.reserve(n).unwrap();
                let total = r.total_len();
                if let Some(s) = r.first_mut() {
                    s.fill(b'r');
                }
                let fill = rng.below(total + 1);
                a.commit(fill).unwrap();
            }
            10 => a.expand(n).unwrap(),
            11 => a.add_buffer(&mut b).unwrap(),
            12 => a.add_buffer_reference(&mut b).unwrap(),
            13 => b.prepend_buffer(&mut a).unwrap(),
            14 => {
                let mut w = a.tail_writer(n % 64).unwrap();
                w.extend_from_slice(&data[..n % 200]);
            }
            _ => std::mem::swap(&mut a, &mut b),
        }
        for (name, buf) in [("a", &a), ("b", &b)] {
            if let Err(e) = buf.check_invariants() {
                panic!("step {step}: buffer {name}: {e}");
            }
        }
        if a.len() > 200_000 {
            a.clear().unwrap();
        }
        if b.len() > 200_000 {
            b.clear().unwrap();
        }
    }
}

/// A drained segment's memory is handed out again, initialized, to the next
/// segment of its size on the thread (no allocation, no zeroing), and the
/// data that comes through it is intact.
#[test]
fn drained_segments_are_reused_from_the_thread_cache() {
    // Each test runs on a thread of its own: the cache starts empty here.
    let mut a = Buffer::new();
    {
        let mut r = a.reserve(16 * 1024).unwrap();
        r[0][..5].copy_from_slice(b"hello");
    }
    a.commit(5).unwrap();
    let first = a.peek(5).next().unwrap().as_ptr();
    let mut out = [0u8; 5];
    a.remove(&mut out).unwrap();
    assert_eq!(&out, b"hello");
    assert_eq!(a.segment_count(), 0, "an empty buffer holds no segment");
    assert_eq!(super::segment::cached_bytes(), 16 * 1024);
    // The next 16 KiB segment is the same memory.
    let mut b = Buffer::new();
    b.add(&[7u8; 16 * 1024]).unwrap();
    assert_eq!(b.peek(1).next().unwrap().as_ptr(), first);
    assert_eq!(super::segment::cached_bytes(), 0);
    let mut back = vec![0u8; 16 * 1024];
    b.remove(&mut back).unwrap();
    assert!(back.iter().all(|&x| x == 7));
    b.check_invariants().unwrap();
}

/// The cache keeps at most its bound, whatever is drained; segments split
/// into shared `Bytes` and odd sizes are not kept.
#[test]
fn the_segment_cache_is_bounded() {
    let mut bufs: Vec<Buffer> = (0..64)
        .map(|_| {
            let mut b = Buffer::new();
            b.add(&[1u8; 64 * 1024]).unwrap();
            b
        })
        .collect();
    bufs.clear();
    assert!(super::segment::cached_bytes() <= super::segment::CACHE_MAX_BYTES);
    assert!(super::segment::cached_bytes() > 0);
    // Empty the cache, then check that a split segment does not come back.
    let held: Vec<Buffer> = (0..64)
        .map(|_| {
            let mut b = Buffer::new();
            b.add(&[1u8; 64 * 1024]).unwrap();
            b
        })
        .collect();
    assert_eq!(super::segment::cached_bytes(), 0);
    let mut a = Buffer::new();
    a.add(&[2u8; 4096]).unwrap();
    let mut b = Buffer::new();
    a.remove_buffer(&mut b, 100).unwrap();
    drop(a);
    drop(b);
    assert_eq!(super::segment::cached_bytes(), 0);
    let mut odd = Buffer::new();
    odd.add(&[3u8; 100_000]).unwrap();
    drop(odd);
    assert_eq!(super::segment::cached_bytes(), 0);
    drop(held);
}

/// `release_spare` gives back an empty tail; `can_reserve_cheaply` is true
/// only when a reservation would need no allocation and no zeroing.
#[test]
fn spare_space_is_released_and_cheap_reservations_are_known() {
    let mut a = Buffer::new();
    assert!(!a.can_reserve_cheaply(16 * 1024), "the cache starts empty");
    a.expand(16 * 1024).unwrap();
    assert_eq!(a.segment_count(), 1);
    // The tail's spare space is not initialized yet.
    assert!(!a.can_reserve_cheaply(100));
    a.release_spare();
    assert_eq!(a.segment_count(), 0);
    // The released segment (zeroed on its way to the cache) comes back.
    assert!(a.can_reserve_cheaply(16 * 1024));
    {
        let mut r = a.reserve(16 * 1024).unwrap();
        r[0][..3].copy_from_slice(b"abc");
    }
    a.commit(3).unwrap();
    assert!(a.can_reserve_cheaply(100), "initialized spare in the tail");
    let mut out = [0u8; 3];
    a.remove(&mut out).unwrap();
    assert_eq!(&out, b"abc");
    a.check_invariants().unwrap();
}
