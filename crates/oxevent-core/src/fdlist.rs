//! The list of an fd's pending events: inline for the common few, so that
//! a socket watched by a read and a write event costs no heap allocation
//! (a `Vec` of two indices took a 32-byte malloc chunk per connection).

/// Indices kept inline before the list moves to the heap.
const INLINE: usize = 3;

/// The slot indices of the events pending on one fd.
#[derive(Debug, Clone)]
pub(crate) enum FdList {
    /// Up to [`INLINE`] indices; the first `len` are live.
    Inline { len: u8, items: [u32; INLINE] },
    /// More than [`INLINE`] at some point; back to inline once empty.
    Heap(Vec<u32>),
}

impl Default for FdList {
    fn default() -> Self {
        Self::Inline {
            len: 0,
            items: [0; INLINE],
        }
    }
}

impl FdList {
    /// The live indices.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            Self::Inline { len, items } => &items[..usize::from(*len)],
            Self::Heap(v) => v,
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&u32> {
        self.as_slice().get(i)
    }

    pub(crate) fn push(&mut self, idx: u32) {
        match self {
            Self::Inline { len, items } if usize::from(*len) < INLINE => {
                items[usize::from(*len)] = idx;
                *len += 1;
            }
            Self::Inline { items, .. } => {
                let mut v = Vec::with_capacity(INLINE * 2);
                v.extend_from_slice(items);
                v.push(idx);
                *self = Self::Heap(v);
            }
            Self::Heap(v) => v.push(idx),
        }
    }

    /// Removes the last index.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        let r = match self {
            Self::Inline { len, items } => {
                let l = usize::from(len.checked_sub(1)?);
                *len -= 1;
                Some(items[l])
            }
            Self::Heap(v) => v.pop(),
        };
        self.shrink();
        r
    }

    /// Removes the index at `pos`, moving the last one into its place.
    ///
    /// # Panics
    ///
    /// If `pos` is out of bounds (as `Vec::swap_remove`).
    pub(crate) fn swap_remove(&mut self, pos: usize) -> u32 {
        let r = match self {
            Self::Inline { len, items } => {
                let last = usize::from(*len) - 1;
                assert!(pos <= last, "swap_remove index {pos} out of bounds");
                items.swap(pos, last);
                *len -= 1;
                items[last]
            }
            Self::Heap(v) => v.swap_remove(pos),
        };
        self.shrink();
        r
    }

    /// An emptied heap list gives its memory back.
    fn shrink(&mut self) {
        if matches!(self, Self::Heap(v) if v.is_empty()) {
            *self = Self::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stays_as_small_as_a_vec() {
        assert!(size_of::<FdList>() <= size_of::<Vec<u32>>());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Pop,
        SwapRemove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u32>().prop_map(Op::Push),
            Just(Op::Pop),
            (0usize..12).prop_map(Op::SwapRemove),
        ]
    }

    proptest! {
        /// The list behaves as a `Vec<u32>` under any sequence of operations.
        #[test]
        fn matches_a_vec(ops in proptest::collection::vec(op(), 0..64)) {
            let mut l = FdList::default();
            let mut v: Vec<u32> = Vec::new();
            for o in ops {
                match o {
                    Op::Push(x) => {
                        l.push(x);
                        v.push(x);
                    }
                    Op::Pop => prop_assert_eq!(l.pop(), v.pop()),
                    Op::SwapRemove(i) if i < v.len() => {
                        prop_assert_eq!(l.swap_remove(i), v.swap_remove(i));
                    }
                    Op::SwapRemove(_) => {}
                }
                prop_assert_eq!(l.as_slice(), v.as_slice());
                prop_assert_eq!(l.len(), v.len());
                prop_assert_eq!(l.is_empty(), v.is_empty());
                prop_assert_eq!(l.get(0), v.first());
                if v.is_empty() {
                    let inline = matches!(l, FdList::Inline { .. });
                    prop_assert!(inline, "an empty list is inline");
                }
            }
        }
    }
}
