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
