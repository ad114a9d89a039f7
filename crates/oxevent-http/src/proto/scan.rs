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
            let b = buf[i];
            // Visible bytes and obs-text need no look: skip them fast.
            if b > b' ' && b != 0x7f {
                i += 1;
                continue;
            }
            self.check_target(i, kind, limits)?;
            match b {
                0 => return Err(ParseError::NulInHeader),
                b'\r' => match buf.get(i + 1) {
                    Some(b'\n') => {}
                    Some(_) => return Err(ParseError::BareCr),
                    None => break,
                },
                b'\n' => {
                    if i == 0 || buf[i - 1] != b'\r' {
                        return Err(ParseError::BareLf);
                    }
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
                }
                b' ' | b'\t' if self.start_line.is_some() && i == self.line_start => {
                    return Err(ParseError::ObsoleteLineFolding);
                }
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
