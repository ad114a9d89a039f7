//! A small slab with generational keys, holding the client's connections inside the base.

/// A slot index plus the generation it was filled in; a stale key finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

enum Slot<T> {
    Full(u32, T),
    Empty(u32),
}

/// Slots reused through a free list; each reuse bumps the slot's generation.
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
            let generation = match slot {
                Slot::Empty(g) => g.wrapping_add(1),
                Slot::Full(..) => unreachable!("free list holds empty slots only"),
            };
            *slot = Slot::Full(generation, value);
            Key { idx, generation }
        } else {
            let idx = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections");
            self.slots.push(Slot::Full(0, value));
            Key { idx, generation: 0 }
        }
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.idx as usize) {
            Some(Slot::Full(g, v)) if *g == key.generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.idx as usize)?;
        match slot {
            Slot::Full(g, _) if *g == key.generation => {
                let g = *g;
                let Slot::Full(_, v) = std::mem::replace(slot, Slot::Empty(g)) else {
                    unreachable!("matched as full just above")
                };
                self.free.push(key.idx);
                Some(v)
            }
            _ => None,
        }
    }
}
