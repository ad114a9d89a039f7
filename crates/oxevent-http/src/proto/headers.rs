//! [`Headers`]: an ordered list of header fields with case-insensitive lookup.

use std::fmt;
use std::ops::Range;

/// An ordered list of `(name, value)` header fields, as they came off the wire or as they
/// will go onto it.
///
/// Order and repetition are kept: `Set-Cookie` twice is two entries, and
/// [`get_all`](Self::get_all) yields both. Lookups compare names ASCII-case-insensitively.
/// Values are bytes, since RFC 9110 allows obs-text (bytes 0x80 and up) in them;
/// [`get_str`](Self::get_str) gives a `&str` when the value is UTF-8.
///
/// Nothing is validated on [`append`](Self::append): the encoders check names and values when
/// they write them and refuse CR, LF and NUL ([`EncodeError`](crate::proto::EncodeError)).
/// Parsed heads only ever hold valid names and values.
///
/// All names and all values live in two buffers, so a parsed head costs three allocations
/// whatever its number of fields.
///
/// ```
/// use oxevent_http::proto::Headers;
///
/// let mut h = Headers::new();
/// h.append("Set-Cookie", "a=1");
/// h.append("set-cookie", "b=2");
/// h.append("Host", "example.com");
/// assert_eq!(h.get("HOST"), Some(&b"example.com"[..]));
/// assert_eq!(h.get_all("Set-Cookie").count(), 2);
/// assert_eq!(h.remove("set-COOKIE"), 2);
/// assert_eq!(h.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    names: String,
    values: Vec<u8>,
    /// INVARIANT: every range lies in `names` (at char boundaries) or `values` respectively.
    entries: Vec<(Range<usize>, Range<usize>)>,
}

impl Headers {
    /// An empty list.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            names: String::new(),
            values: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// An empty list with room for `fields` fields totalling `bytes` bytes of names and values.
    #[must_use]
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Self {
            names: String::with_capacity(bytes / 4),
            values: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(fields),
        }
    }

    /// The number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a field at the end, keeping any others of the same name.
    pub fn append(&mut self, name: &str, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        let n = self.names.len();
        self.names.push_str(name);
        let v = self.values.len();
        self.values.extend_from_slice(value);
        self.entries
            .push((n..self.names.len(), v..self.values.len()));
    }

    /// Replaces every field named `name` with one field at the end.
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Removes every field named `name` and returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        if !self.contains(name) {
            return 0;
        }
        let old = std::mem::take(self);
        self.names.reserve(old.names.len());
        self.values.reserve(old.values.len());
        for (n, v) in old.iter() {
            if !n.eq_ignore_ascii_case(name) {
                self.append(n, v);
            }
        }
        before - self.entries.len()
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        self.names.clear();
        self.values.clear();
        self.entries.clear();
    }

    /// The bytes of heap capacity held (for bounding what a recycled list keeps).
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.names.capacity()
            + self.values.capacity()
            + self.entries.capacity() * size_of::<(Range<usize>, Range<usize>)>()
    }

    /// Whether a field named `name` is present.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The value of the first field named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of the first field named `name`, if it is UTF-8.
    #[must_use]
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every field named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every field, in order.
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            headers: self,
            next: 0,
        }
    }
}

impl PartialEq for Headers {
    /// Two lists are equal when they hold the same fields in the same order (names compared
    /// exactly, as written).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Self::new();
        h.extend(iter);
        h
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Extend<(N, V)> for Headers {
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        for (n, v) in iter {
            self.append(n.as_ref(), v);
        }
    }
}

/// The fields of a [`Headers`], in order, as `(name, value)`.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    headers: &'a Headers,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (n, v) = self.headers.entries.get(self.next)?;
        self.next += 1;
        Some((
            &self.headers.names[n.clone()],
            &self.headers.values[v.clone()],
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.headers.entries.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_every_field_of_a_name_and_keeps_the_rest_in_order() {
        let mut h: Headers = [("A", "1"), ("b", "2"), ("a", "3"), ("C", "4")]
            .into_iter()
            .collect();
        h.set("a", "5");
        let got: Vec<(&str, &[u8])> = h.iter().collect();
        assert_eq!(got, [("b", &b"2"[..]), ("C", b"4"), ("a", b"5")]);
        assert_eq!(h.get_str("A"), Some("5"));
        assert_eq!(h.remove("missing"), 0);
        h.clear();
        assert!(h.is_empty());
        assert_eq!(h.get("a"), None);
    }

    #[test]
    fn non_utf8_values_are_kept_as_bytes() {
        let mut h = Headers::new();
        h.append("X", [0xff, b'a']);
        assert_eq!(h.get("x"), Some(&[0xff, b'a'][..]));
        assert_eq!(h.get_str("x"), None);
        assert!(format!("{h:?}").contains('X'));
    }
}
