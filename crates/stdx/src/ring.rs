//! [`Ring`]: a bounded ring of items with sequence numbers.

use std::collections::VecDeque;

/// A bounded ring whose items are numbered in arrival order.
///
/// Every item gets the next sequence number (from 0, never reused); when the
/// ring is full the oldest item is dropped, so it never holds more than its
/// capacity. A reader pages through it by sequence number ([`Ring::since`],
/// [`Ring::iter_since`]) and notices what it missed from [`Ring::first_seq`].
#[derive(Clone, Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
    next_seq: u64,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Ring<T> {
        Ring { items: VecDeque::new(), capacity: capacity.max(1), next_seq: 0 }
    }

    /// Appends `item`, dropping the oldest when full; returns its sequence number.
    pub fn push(&mut self, item: T) -> u64 {
        self.push_with(|_| item)
    }

    /// Appends the item `make` builds from its sequence number (for items that
    /// carry it), dropping the oldest when full; returns the number.
    pub fn push_with(&mut self, make: impl FnOnce(u64) -> T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(make(seq));
        seq
    }

    /// Sequence number of the oldest item held (equals [`Ring::next_seq`] when
    /// empty).
    pub fn first_seq(&self) -> u64 {
        self.next_seq - self.items.len() as u64
    }

    /// The sequence number the next item will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when the next push drops the oldest item.
    pub fn is_full(&self) -> bool {
        self.items.len() == self.capacity
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The item with sequence number `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<&T> {
        let index = usize::try_from(seq.checked_sub(self.first_seq())?).ok()?;
        self.items.get(index)
    }

    /// The item at position `index` (0 is the oldest held).
    pub fn at(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    /// Items with sequence number `>= from_seq`, oldest first, with their numbers.
    pub fn iter_since(&self, from_seq: u64) -> impl DoubleEndedIterator<Item = (u64, &T)> + '_ {
        let first = self.first_seq();
        let skip = usize::try_from(from_seq.saturating_sub(first)).unwrap_or(usize::MAX);
        self.items.iter().enumerate().skip(skip).map(move |(i, t)| (first + i as u64, t))
    }

    /// Every item held with its sequence number, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &T)> + '_ {
        self.iter_since(0)
    }

    /// Drops every item; sequence numbers continue.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

impl<T: Clone> Ring<T> {
    /// A page: up to `limit` items with sequence number `>= from_seq`, oldest
    /// first.
    pub fn since(&self, from_seq: u64, limit: usize) -> Vec<T> {
        self.iter_since(from_seq).take(limit).map(|(_, t)| t.clone()).collect()
    }

    /// The last `n` items, oldest first.
    pub fn tail(&self, n: usize) -> Vec<T> {
        let skip = self.items.len().saturating_sub(n);
        self.items.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounded_and_paged() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            assert_eq!(r.push(i * 10), i);
        }
        assert_eq!((r.len(), r.first_seq(), r.next_seq(), r.is_full()), (3, 2, 5, true));
        assert_eq!(r.since(0, 10), [20, 30, 40]);
        assert_eq!(r.since(3, 1), [30]);
        assert_eq!(r.since(9, 10), Vec::<u64>::new());
        assert_eq!(r.tail(2), [30, 40]);
        assert_eq!(r.iter_since(4).map(|(s, v)| (s, *v)).collect::<Vec<_>>(), [(4, 40)]);
        assert_eq!((r.get(1), r.get(3), r.get(5)), (None, Some(&30), None));
        assert_eq!((r.at(0), r.at(3)), (Some(&20), None));
        r.clear();
        assert_eq!((r.len(), r.first_seq(), r.push_with(|seq| seq)), (0, 5, 5));
        assert_eq!(Ring::<u8>::new(0).capacity(), 1);
    }

    proptest! {
        /// The ring against a model: every item ever pushed, in a vector.
        #[test]
        fn a_ring_is_the_last_items_of_everything_pushed(
            cap in 1usize..40, items in proptest::collection::vec(any::<u16>(), 0..200),
            from in 0u64..250, limit in 0usize..60,
        ) {
            let mut ring = Ring::new(cap);
            for (seq, item) in items.iter().enumerate() {
                prop_assert_eq!(ring.push(*item), seq as u64);
            }
            let kept = items.len().saturating_sub(cap);
            let model: Vec<(u64, u16)> =
                items.iter().enumerate().skip(kept).map(|(s, v)| (s as u64, *v)).collect();
            prop_assert_eq!(ring.iter().map(|(s, v)| (s, *v)).collect::<Vec<_>>(), model.clone());
            prop_assert_eq!((ring.first_seq(), ring.next_seq()), (kept as u64, items.len() as u64));
            let page: Vec<u16> =
                model.iter().filter(|(s, _)| *s >= from).take(limit).map(|(_, v)| *v).collect();
            prop_assert_eq!(ring.since(from, limit), page);
            for (seq, item) in &model {
                prop_assert_eq!(ring.get(*seq), Some(item));
            }
        }
    }
}
