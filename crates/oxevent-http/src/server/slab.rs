//! A small generational slab: the server's objects live in the base behind `Key`s, so a stale
//! handle is a `NotFound` error and never reaches a reused slot.

/// An index and the generation of the slot when the key was made.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Values behind generational keys, with freed slots reused.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, value: T) -> Key {
        if let Some(idx) = self.free.pop() {
            let slot = &mut self.slots[idx as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.value = Some(value);
            return Key {
                idx,
                generation: slot.generation,
            };
        }
        let idx = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        Key { idx, generation: 0 }
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        self.slots
            .get(key.idx as usize)
            .filter(|s| s.generation == key.generation)
            .and_then(|s| s.value.as_ref())
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.slots
            .get_mut(key.idx as usize)
            .filter(|s| s.generation == key.generation)
            .and_then(|s| s.value.as_mut())
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self
            .slots
            .get_mut(key.idx as usize)
            .filter(|s| s.generation == key.generation)?;
        let v = slot.value.take()?;
        self.free.push(key.idx);
        Some(v)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = (Key, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| {
                (
                    Key {
                        idx: i as u32,
                        generation: s.generation,
                    },
                    v,
                )
            })
        })
    }
}
