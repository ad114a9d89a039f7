//! A small slab with generational keys, so a stale handle finds nothing.

/// A key into a [`Slab`]: an index and the generation it was issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

struct Entry<T> {
    generation: u32,
    val: Option<T>,
}

/// Values addressed by generational [`Key`]s.
pub(crate) struct Slab<T> {
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

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, val: T) -> Key {
        self.len += 1;
        if let Some(idx) = self.free.pop() {
            let e = &mut self.entries[idx as usize];
            e.val = Some(val);
            return Key {
                idx,
                generation: e.generation,
            };
        }
        let idx = u32::try_from(self.entries.len()).expect("fewer than 2^32 entries");
        self.entries.push(Entry {
            generation: 0,
            val: Some(val),
        });
        Key { idx, generation: 0 }
    }

    pub(crate) fn get(&self, k: Key) -> Option<&T> {
        self.entries
            .get(k.idx as usize)
            .filter(|e| e.generation == k.generation)
            .and_then(|e| e.val.as_ref())
    }

    pub(crate) fn get_mut(&mut self, k: Key) -> Option<&mut T> {
        self.entries
            .get_mut(k.idx as usize)
            .filter(|e| e.generation == k.generation)
            .and_then(|e| e.val.as_mut())
    }

    pub(crate) fn remove(&mut self, k: Key) -> Option<T> {
        let e = self.entries.get_mut(k.idx as usize)?;
        if e.generation != k.generation {
            return None;
        }
        let v = e.val.take()?;
        e.generation = e.generation.wrapping_add(1);
        self.free.push(k.idx);
        self.len -= 1;
        Some(v)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every key and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            e.val.as_ref().map(|v| {
                (
                    Key {
                        idx: i as u32,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }

    /// Removes and returns every value.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let Some(v) = e.val.take() {
                e.generation = e.generation.wrapping_add(1);
                self.free.push(i as u32);
                out.push(v);
            }
        }
        self.len = 0;
        out
    }
}
