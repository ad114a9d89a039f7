//! [`HttpDate`]: the IMF-fixdate of RFC 9110 §5.6.7 (`Sun, 06 Nov 1994 08:49:37 GMT`), the
//! format of the `Date` header, formatted without allocating.

use std::time::{SystemTime, UNIX_EPOCH};

/// A formatted IMF-fixdate: always 29 ASCII bytes.
///
/// ```
/// use oxevent_http::proto::HttpDate;
///
/// assert_eq!(HttpDate::from_unix(784111777).as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[doc(alias = "evutil_date_rfc1123")]
pub struct HttpDate {
    buf: [u8; 29],
}

impl std::fmt::Debug for HttpDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn two(out: &mut [u8], n: u32) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

impl HttpDate {
    /// The date `secs` seconds after the Unix epoch (years past 9999 are clamped to 9999).
    #[must_use]
    pub fn from_unix(secs: u64) -> Self {
        let secs = secs.min(253_402_300_799); // 9999-12-31T23:59:59Z
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut buf = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        buf[..3].copy_from_slice(DAYS[(days % 7) as usize]);
        two(&mut buf[5..7], d);
        buf[8..11].copy_from_slice(MONTHS[(m - 1) as usize]);
        let y = y as u32;
        two(&mut buf[12..14], y / 100);
        two(&mut buf[14..16], y % 100);
        two(&mut buf[17..19], rem / 3600);
        two(&mut buf[20..22], rem / 60 % 60);
        two(&mut buf[23..25], rem % 60);
        Self { buf }
    }

    /// The date of `t` (times before the epoch are formatted as the epoch).
    #[must_use]
    pub fn from_system_time(t: SystemTime) -> Self {
        Self::from_unix(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// The formatted date.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into `buf`.
        std::str::from_utf8(&self.buf).unwrap_or("Thu, 01 Jan 1970 00:00:00 GMT")
    }

    /// The formatted date as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            HttpDate::from_unix(0).as_str(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            HttpDate::from_unix(951_782_400).as_str(),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            HttpDate::from_unix(1_700_000_000).as_str(),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(
            HttpDate::from_unix(u64::MAX).as_str(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }
}
