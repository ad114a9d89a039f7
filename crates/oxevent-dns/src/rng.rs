//! Transaction ids, source ports and 0x20 bits from the OS CSPRNG
//! (`getrandom`), drawn in blocks so a query costs no syscall.

/// Random bytes from `getrandom`, refilled 4 KiB at a time.
pub(crate) struct Rng {
    buf: Box<[u8; 4096]>,
    pos: usize,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng")
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self {
            buf: Box::new([0; 4096]),
            pos: 4096,
        }
    }
}

impl Rng {
    fn refill(&mut self) {
        // getrandom fails only without any entropy source; a panic is the
        // right answer then (ids must never be predictable).
        getrandom::fill(&mut self.buf[..]).expect("the OS random number generator failed");
        self.pos = 0;
    }

    /// A random `u16`.
    pub(crate) fn u16(&mut self) -> u16 {
        if self.pos + 2 > self.buf.len() {
            self.refill();
        }
        let v = u16::from_be_bytes([self.buf[self.pos], self.buf[self.pos + 1]]);
        self.pos += 2;
        v
    }

    /// A random `u32`.
    pub(crate) fn u32(&mut self) -> u32 {
        if self.pos + 4 > self.buf.len() {
            self.refill();
        }
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 4]);
        self.pos += 4;
        u32::from_ne_bytes(b)
    }

    /// A random `u64`.
    pub(crate) fn u64(&mut self) -> u64 {
        if self.pos + 8 > self.buf.len() {
            self.refill();
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        u64::from_ne_bytes(b)
    }

    /// A random number below `n` (`n > 0`), without modulo bias.
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        let zone = u32::MAX - (u32::MAX % n);
        loop {
            let v = self.u32();
            if v < zone {
                return v % n;
            }
        }
    }
}
