//! A 4-ary min-heap of timer deadlines whose positions are stored back in
//! their owners, so removal and re-arming are O(log n) with no search.
//!
//! Each entry is a deadline and a `u32` key. Every time an entry moves, the
//! heap calls `set_pos(key, pos)`; the owner stores `pos` and hands it back
//! to [`TimerHeap::remove`]. A 4-ary heap is shallower than a binary one and
//! its four children share a cache line, which is what libuv and libev use.

/// One heap entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Absolute deadline, in the clock's nanoseconds.
    pub(crate) deadline: u64,
    /// The owner's key.
    pub(crate) key: u32,
}

/// Position value meaning "not in the heap".
pub(crate) const NOT_IN_HEAP: u32 = u32::MAX;

const ARITY: usize = 4;

/// One heap slot: 16 bytes, so a node's four children share one cache
/// line. `seq` breaks ties in insertion order so that timers with equal
/// deadlines fire in the order they were added (it wraps after 2^32
/// insertions, which can only misorder equal deadlines across the wrap).
#[derive(Clone, Copy, Debug)]
struct Item {
    deadline: u64,
    key: u32,
    seq: u32,
}

/// The heap.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    items: Vec<Item>,
    seq: u32,
}

impl TimerHeap {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn peek(&self) -> Option<Entry> {
        self.items.first().map(|e| Entry {
            deadline: e.deadline,
            key: e.key,
        })
    }

    #[inline]
    fn less(a: &Item, b: &Item) -> bool {
        a.deadline < b.deadline
            || (a.deadline == b.deadline && (a.seq.wrapping_sub(b.seq) as i32) < 0)
    }

    /// The keys of the root's children: one of them is the next minimum.
    pub(crate) fn root_children(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.iter().skip(1).take(ARITY).map(|i| i.key)
    }

    /// Inserts an entry and reports its position through `set_pos`.
    pub(crate) fn push(&mut self, e: Entry, set_pos: &mut impl FnMut(u32, u32)) {
        self.seq = self.seq.wrapping_add(1);
        self.items.push(Item {
            deadline: e.deadline,
            key: e.key,
            seq: self.seq,
        });
        let i = self.items.len() - 1;
        self.sift_up(i, set_pos);
    }

    /// Removes and returns the minimum.
    #[cfg(test)]
    pub(crate) fn pop(&mut self, set_pos: &mut impl FnMut(u32, u32)) -> Option<Entry> {
        if self.items.is_empty() {
            return None;
        }
        Some(self.remove(0, set_pos))
    }

    /// Removes the entry at `pos` (as last reported by `set_pos`).
    pub(crate) fn remove(&mut self, pos: u32, set_pos: &mut impl FnMut(u32, u32)) -> Entry {
        let pos = pos as usize;
        let removed = self.items.swap_remove(pos);
        set_pos(removed.key, NOT_IN_HEAP);
        if pos < self.items.len() {
            // The old last leaf now sits at `pos`: it may belong above or below.
            self.sift_down(pos, set_pos);
        }
        Entry {
            deadline: removed.deadline,
            key: removed.key,
        }
    }

    /// Changes the deadline of the entry at `pos` in place.
    pub(crate) fn update(&mut self, pos: u32, deadline: u64, set_pos: &mut impl FnMut(u32, u32)) {
        let pos = pos as usize;
        self.seq = self.seq.wrapping_add(1);
        let old = self.items[pos];
        self.items[pos] = Item {
            deadline,
            key: old.key,
            seq: self.seq,
        };
        if Self::less(&self.items[pos], &old) {
            self.sift_up(pos, set_pos);
        } else {
            self.sift_down_from(pos, set_pos);
        }
    }

    /// Plain sift-down: move the item at `i` down while a child is smaller.
    /// For [`update`](Self::update) to a later deadline, where the item
    /// often stays put or moves a level or two (Floyd's variant would walk
    /// to a leaf and back).
    fn sift_down_from(&mut self, mut i: usize, set_pos: &mut impl FnMut(u32, u32)) {
        let n = self.items.len();
        let item = self.items[i];
        loop {
            let first = i * ARITY + 1;
            if first >= n {
                break;
            }
            let end = (first + ARITY).min(n);
            let mut best = first;
            for c in first + 1..end {
                if Self::less(&self.items[c], &self.items[best]) {
                    best = c;
                }
            }
            if !Self::less(&self.items[best], &item) {
                break;
            }
            self.items[i] = self.items[best];
            set_pos(self.items[i].key, i as u32);
            i = best;
        }
        self.items[i] = item;
        set_pos(item.key, i as u32);
    }

    fn sift_up(&mut self, mut i: usize, set_pos: &mut impl FnMut(u32, u32)) {
        let item = self.items[i];
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if !Self::less(&item, &self.items[parent]) {
                break;
            }
            self.items[i] = self.items[parent];
            set_pos(self.items[i].key, i as u32);
            i = parent;
        }
        self.items[i] = item;
        set_pos(item.key, i as u32);
    }

    /// Floyd's variant: walk the hole down to a leaf along the smaller
    /// children without comparing against the moved item, then sift the
    /// item up from there. The item (usually an old leaf) belongs near the
    /// bottom, so this saves about half the comparisons of a plain
    /// sift-down, which matters when a million timers expire in a row. It
    /// also handles an item that belongs above `i`.
    fn sift_down(&mut self, mut i: usize, set_pos: &mut impl FnMut(u32, u32)) {
        let n = self.items.len();
        let item = self.items[i];
        loop {
            let first = i * ARITY + 1;
            if first >= n {
                break;
            }
            let end = (first + ARITY).min(n);
            let mut best = first;
            for c in first + 1..end {
                if Self::less(&self.items[c], &self.items[best]) {
                    best = c;
                }
            }
            self.items[i] = self.items[best];
            set_pos(self.items[i].key, i as u32);
            i = best;
        }
        self.items[i] = item;
        self.sift_up(i, set_pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Heap plus a position table, checked against a sorted model
    /// (the intent of libevent's regress_minheap.c).
    struct Checked {
        heap: TimerHeap,
        pos: Vec<u32>,
    }

    impl Checked {
        fn new(n: usize) -> Self {
            Self {
                heap: TimerHeap::default(),
                pos: vec![NOT_IN_HEAP; n],
            }
        }
        fn push(&mut self, key: u32, deadline: u64) {
            let pos = &mut self.pos;
            self.heap
                .push(Entry { deadline, key }, &mut |k, p| pos[k as usize] = p);
        }
        fn remove(&mut self, key: u32) {
            let p = self.pos[key as usize];
            let pos = &mut self.pos;
            let e = self.heap.remove(p, &mut |k, p| pos[k as usize] = p);
            assert_eq!(e.key, key);
        }
        fn update(&mut self, key: u32, deadline: u64) {
            let p = self.pos[key as usize];
            let pos = &mut self.pos;
            self.heap
                .update(p, deadline, &mut |k, p| pos[k as usize] = p);
        }
        fn pop(&mut self) -> Option<Entry> {
            let pos = &mut self.pos;
            self.heap.pop(&mut |k, p| pos[k as usize] = p)
        }
        fn check_positions(&self) {
            for (i, e) in self.heap.items.iter().enumerate() {
                assert_eq!(self.pos[e.key as usize], i as u32);
                if i > 0 {
                    let parent = &self.heap.items[(i - 1) / ARITY];
                    assert!(parent.deadline <= e.deadline);
                }
            }
        }
    }

    #[test]
    fn pops_in_order_with_ties_in_insertion_order() {
        let mut h = Checked::new(1000);
        let mut x: u64 = 12345;
        for k in 0..1000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.push(k, (x >> 40) % 50);
        }
        h.check_positions();
        for k in (0..1000).step_by(3) {
            h.remove(k);
            h.check_positions();
        }
        let mut last = (0u64, 0u32);
        while let Some(e) = h.pop() {
            assert!(e.deadline >= last.0);
            if e.deadline == last.0 {
                assert!(e.key > last.1, "ties keep insertion order");
            }
            last = (e.deadline, e.key);
            h.check_positions();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn heap_matches_a_sorted_model(ops in proptest::collection::vec((0u8..5, 0u32..64, 0u64..100), 1..300)) {
            let mut h = Checked::new(64);
            let mut model: std::collections::BTreeMap<u32, (u64, u64)> = Default::default();
            let mut seq = 0u64;
            for (op, key, deadline) in ops {
                match op {
                    0 | 1 => {
                        if model.contains_key(&key) { h.remove(key); }
                        seq += 1;
                        h.push(key, deadline);
                        model.insert(key, (deadline, seq));
                    }
                    2 => {
                        if model.remove(&key).is_some() { h.remove(key); }
                    }
                    3 => {
                        // Re-arm in place (a later or an earlier deadline).
                        if let Some(v) = model.get_mut(&key) {
                            seq += 1;
                            h.update(key, deadline);
                            *v = (deadline, seq);
                        }
                    }
                    _ => {
                        let want = model.iter().min_by_key(|(_, v)| **v).map(|(k, v)| (*k, v.0));
                        let got = h.pop().map(|e| (e.key, e.deadline));
                        prop_assert_eq!(got, want);
                        if let Some((k, _)) = want { model.remove(&k); }
                    }
                }
                h.check_positions();
                prop_assert_eq!(h.heap.len(), model.len());
            }
        }
    }
}
