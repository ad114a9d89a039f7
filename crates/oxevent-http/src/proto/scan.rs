//! The line scanner that runs before `httparse`: it finds where a head ends, resumes where it
//! stopped when more bytes arrive, and enforces the rules `httparse` is lenient about or
//! checks too late (bare CR and LF, NUL, folding, the size limits).

use std::ops::Range;

use super::error::ParseError;
use super::limits::Limits;

/// Which start line the head has; only requests have a target to bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Response,
}

/// A complete head, as the scanner found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// One past the LF of the empty line that ends the head.
    pub(crate) end: usize,
    /// The start line, without its CRLF.
    pub(crate) start_line: Range<usize>,
    /// The number of header lines.
    pub(crate) header_lines: usize,
}

/// Where scanning stopped. Every byte before `pos` has been checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scanner {
    /// INVARIANT: `line_start <= pos`, and `pos` never passes a CR whose next byte is unseen.
    pos: usize,
    line_start: usize,
    start_line: Option<Range<usize>>,
    header_lines: usize,
    /// The spaces of the request line seen so far, to bound the target before it ends.
    first_sp: Option<usize>,
    second_sp: Option<usize>,
}

/// `0x01` in every byte of a word.
const LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte of a word.
const HI: u64 = 0x8080_8080_8080_8080;

/// The index of the first byte in `buf[i..end]` below `below` (at most `0x80`), or `end`.
///
/// Eight bytes at a time: `(w - below * LO) & !w & HI` flags the bytes below `below`. A
/// borrow can only flag bytes above a truly flagged one, so the lowest flag (the first byte,
/// reading the word little-endian) is exact.
fn skip_plain(buf: &[u8], mut i: usize, end: usize, below: u8) -> usize {
    let k = LO * u64::from(below);
    while let Some(w) = buf[i..end].first_chunk::<8>() {
        let w = u64::from_le_bytes(*w);
        let m = w.wrapping_sub(k) & !w & HI;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < end && buf[i] >= below {
        i += 1;
    }
    i
}

impl Scanner {
    /// Scans `buf` from where the last call stopped. `buf` must start with the bytes of the
    /// previous call (a shorter one restarts the scan). Returns the head once its empty line
    /// is seen and resets for the next one.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        kind: Kind,
        limits: &Limits,
    ) -> Result<Option<Scanned>, ParseError> {
        if buf.len() < self.pos {
            *self = Self::default();
        }
        let end = buf.len().min(limits.max_header_bytes);
        let mut i = self.pos;
        while i < end {
            let in_headers = self.start_line.is_some();
            if in_headers && i == self.line_start && matches!(buf[i], b' ' | b'\t') {
                return Err(ParseError::ObsoleteLineFolding);
            }
            // Visible bytes, obs-text and DEL need no look, and neither do spaces except in a
            // request line (where they delimit the target) and at a line start (checked
            // above): skip them a word at a time.
            let below = if kind == Kind::Request && !in_headers {
                b'!'
            } else {
                b' '
            };
            i = skip_plain(buf, i, end, below);
            if i == end {
                break;
            }
            let b = buf[i];
            if !in_headers {
                self.check_target(i, kind, limits)?;
            }
            match b {
                0 => return Err(ParseError::NulInHeader),
                b'\r' => match buf.get(i + 1) {
                    // An LF past the size limit is left for the loop, which stops there.
                    Some(b'\n') if i + 1 == end => {}
                    Some(b'\n') => {
                        // Take the LF now: one step for the CRLF.
                        i += 1;
                        if !in_headers {
                            self.check_target(i, kind, limits)?;
                        }
                        if let Some(head) = self.line_end(i, limits)? {
                            return Ok(Some(head));
                        }
                    }
                    Some(_) => return Err(ParseError::BareCr),
                    None => break,
                },
                b'\n' => return Err(ParseError::BareLf),
                b' ' if kind == Kind::Request && self.start_line.is_none() => {
                    if self.first_sp.is_none() {
                        self.first_sp = Some(i);
                    } else if self.second_sp.is_none() {
                        self.second_sp = Some(i);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.check_target(i, kind, limits)?;
        self.pos = i;
        if buf.len() > limits.max_header_bytes {
            return Err(ParseError::HeaderTooLarge);
        }
        Ok(None)
    }

    /// The LF at `i` (after a CR) ends a line: the head, if it was the empty line after the
    /// start line.
    fn line_end(&mut self, i: usize, limits: &Limits) -> Result<Option<Scanned>, ParseError> {
        let line = self.line_start..i - 1;
        self.line_start = i + 1;
        if line.is_empty() {
            if let Some(start_line) = self.start_line.take() {
                let head = Scanned {
                    end: i + 1,
                    start_line,
                    header_lines: self.header_lines,
                };
                *self = Self::default();
                return Ok(Some(head));
            }
            // An empty line before the start line: RFC 9112 §2.2 says to ignore it.
        } else if self.start_line.is_none() {
            self.start_line = Some(line);
        } else {
            self.header_lines += 1;
            if self.header_lines > limits.max_headers {
                return Err(ParseError::TooManyHeaders);
            }
        }
        Ok(None)
    }

    /// Refuses a request target that is already longer than the limit, given that every
    /// byte before `i` has been scanned. It runs before each byte the scanner looks at and
    /// at the end of each call, so the verdict does not depend on how the input is split.
    fn check_target(&self, i: usize, kind: Kind, limits: &Limits) -> Result<(), ParseError> {
        if let (Kind::Request, None, Some(sp), None) =
            (kind, &self.start_line, self.first_sp, self.second_sp)
        {
            // The target so far: `sp + 1 .. i`.
            if i - sp - 1 > limits.max_request_target {
                return Err(ParseError::UriTooLong);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::skip_plain;

    /// The word-at-a-time skip agrees with a byte loop for every start, end and threshold,
    /// including bytes with the high bit set (which must not borrow into a false match).
    #[test]
    fn skip_plain_matches_a_byte_loop() {
        let mut x = 0x9e37_79b9_u32;
        let mut buf = Vec::new();
        for n in 0..300u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Mostly plain bytes, some specials, some obs-text.
            let b = match x % 10 {
                0 => (x >> 8) as u8 % 0x22,
                1 => 0x80 | (x >> 8) as u8,
                _ => b'!' + ((x >> 8) % 94) as u8,
            };
            buf.push(if n % 37 == 0 { b'\n' } else { b });
        }
        for below in [b' ', b'!'] {
            for start in 0..buf.len() {
                for end in [start, (start + 9).min(buf.len()), buf.len()] {
                    let naive = (start..end).find(|&j| buf[j] < below).unwrap_or(end);
                    assert_eq!(skip_plain(&buf, start, end, below), naive, "{start}..{end}");
                }
            }
        }
    }
}
