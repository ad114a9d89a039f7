//! A slab with generational keys, the storage of bufferevents and listeners
//! inside the base (through `EventBase::extension`), as the core stores its
//! events: a handle is an index plus a generation, so a stale handle is a
//! `NotFound` error, never a use of someone else's object.
//!
//! It is public so that the layers above (HTTP connections, DNS requests)
//! keep their objects the same way instead of each writing its own.

use std::io;

/// A generational key into a [`Slab`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

impl std::fmt::Display for Key {
    /// `INDEXvGENERATION`, for handles' `Debug` output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}v{}", self.idx, self.generation)
    }
}

/// The slab.
#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

/// The error for a handle whose object was freed.
pub fn stale(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("stale {what} handle: it was freed"),
    )
}

impl<T> Slab<T> {
    /// Stores `value` and returns its key.
    pub fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if let Some(idx) = self.free.pop() {
            let e = &mut self.entries[idx as usize];
            e.value = Some(value);
            Key {
                idx,
                generation: e.generation,
            }
        } else {
            let idx = u32::try_from(self.entries.len()).expect("fewer than 2^32 objects");
            self.entries.push(Entry {
                generation: 0,
                value: Some(value),
            });
            Key { idx, generation: 0 }
        }
    }

    /// The value behind `key`, if it is still there.
    pub fn get(&self, key: Key) -> Option<&T> {
        self.entries
            .get(key.idx as usize)
            .filter(|e| e.generation == key.generation)?
            .value
            .as_ref()
    }

    /// The value behind `key`, mutably.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.entries
            .get_mut(key.idx as usize)
            .filter(|e| e.generation == key.generation)?
            .value
            .as_mut()
    }

    /// Two distinct values at once (`None` if either is gone or they are the same).
    pub fn get2_mut(&mut self, a: Key, b: Key) -> Option<(&mut T, &mut T)> {
        if a.idx == b.idx || self.get(a).is_none() || self.get(b).is_none() {
            return None;
        }
        let (lo, hi, swapped) = if a.idx < b.idx {
            (a, b, false)
        } else {
            (b, a, true)
        };
        let (left, right) = self.entries.split_at_mut(hi.idx as usize);
        let x = left[lo.idx as usize].value.as_mut()?;
        let y = right[0].value.as_mut()?;
        Some(if swapped { (y, x) } else { (x, y) })
    }

    /// Removes and returns the value; the key (and its copies) goes stale.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        let e = self
            .entries
            .get_mut(key.idx as usize)
            .filter(|e| e.generation == key.generation)?;
        let v = e.value.take()?;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(key.idx);
        self.len -= 1;
        Some(v)
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slab is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key and value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &T)> + '_ {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            let idx = u32::try_from(i).ok()?;
            e.value.as_ref().map(|v| {
                (
                    Key {
                        idx,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }

    /// Every key, in index order (collected, so the slab may be changed while
    /// walking them).
    pub fn keys(&self) -> Vec<Key> {
        self.iter().map(|(k, _)| k).collect()
    }

    /// Removes and returns every value; every key goes stale.
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let Some(v) = e.value.take() {
                e.generation = e.generation.wrapping_add(1);
                if let Ok(idx) = u32::try_from(i) {
                    self.free.push(idx);
                }
                out.push(v);
            }
        }
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_stale_and_slots_are_reused() {
        let mut s = Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert!(s.get(a).is_none());
        let c = s.insert("c");
        assert_eq!(c.idx, a.idx);
        assert_ne!(c, a);
        assert!(s.get_mut(a).is_none());
        let (x, y) = s.get2_mut(b, c).unwrap();
        assert_eq!((*x, *y), ("b", "c"));
        let (y, x) = s.get2_mut(c, b).unwrap();
        assert_eq!((*x, *y), ("b", "c"));
        assert!(s.get2_mut(b, b).is_none());
        assert_eq!(s.len, 2);
    }
}
