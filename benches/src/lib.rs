//! Shared helpers of the oxevent benchmark binaries: a tiny argument
//! parser, a seeded random generator, medians and the `RESULT` line format
//! that `cargo xtask bench compare` reads.
//!
//! Every figure is printed as one line:
//! `RESULT name=<metric> impl=<impl> cfg=<params> value=<number> unit=<unit> [key=value ...]`.

#![forbid(unsafe_code)]

pub mod echo;

use std::collections::HashMap;

/// Parsed `-x VALUE` and `-f` style arguments.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<char, String>,
    flags: Vec<char>,
}

impl Args {
    /// Parses the process arguments; `with_value` lists the options that
    /// take a value. Exits with a usage message on anything else.
    #[must_use]
    pub fn parse(with_value: &str, usage: &str) -> Self {
        let mut a = Self::default();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut chars = arg.chars();
            let (Some('-'), Some(c), None) = (chars.next(), chars.next(), chars.next()) else {
                die(usage);
            };
            if with_value.contains(c) {
                let Some(v) = it.next() else { die(usage) };
                a.values.insert(c, v);
            } else {
                a.flags.push(c);
            }
        }
        a
    }

    /// The numeric value of `-c`, or `default`.
    #[must_use]
    pub fn num(&self, c: char, default: u64) -> u64 {
        self.values.get(&c).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| die(&format!("-{c}: not a number")))
        })
    }

    /// The string value of `-c`.
    #[must_use]
    pub fn str(&self, c: char) -> Option<&str> {
        self.values.get(&c).map(String::as_str)
    }

    /// Whether the flag `-c` was given.
    #[must_use]
    pub fn flag(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
}

/// Prints `msg` and exits with status 2.
pub fn die(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}

/// A xorshift64* generator: fast, seeded, and the same on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed constant).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The median of `v` (sorted in place); 0 for an empty slice.
#[must_use]
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints one `RESULT` line.
pub fn result(name: &str, imp: &str, cfg: &str, value: f64, unit: &str, extra: &str) {
    let sep = if extra.is_empty() { "" } else { " " };
    println!("RESULT name={name} impl={imp} cfg={cfg} value={value:.3} unit={unit}{sep}{extra}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_rng() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let mut r = Rng::new(1);
        let v: Vec<u64> = (0..1000).map(|_| r.range(5, 9)).collect();
        assert!(v.iter().all(|x| (5..=9).contains(x)));
        assert!((5..=9).all(|x| v.contains(&x)));
    }
}
