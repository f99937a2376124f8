//! [`Tail`]: a bounded ring with the deck's own sequence numbers.
//!
//! The deck merges streams from many nodes (each with its own sequence numbers,
//! which restart when a node does) into one ring per stream. Every item gets a
//! deck sequence number on arrival, so a reader can page the merged stream with
//! `since(seq)` and rows have ids that never repeat. When full, the oldest item is
//! dropped: a tail never holds more than its capacity.

use std::collections::VecDeque;

use serde::Serialize;

/// A bounded ring of items with increasing deck sequence numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Tail<T> {
    items: VecDeque<T>,
    capacity: usize,
    next_seq: u64,
    /// Items this predicate holds for are counted as they come and go, so the
    /// count costs nothing to read (the status bar's ERROR lines).
    #[serde(skip)]
    marker: Option<fn(&T) -> bool>,
    #[serde(skip)]
    marked: usize,
}

impl<T> Tail<T> {
    /// An empty tail holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Tail<T> {
        Tail {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 0,
            marker: None,
            marked: 0,
        }
    }

    /// Like [`Tail::new`], also counting the items `marker` holds for (read the
    /// count with [`Tail::marked`]).
    pub fn with_marker(capacity: usize, marker: fn(&T) -> bool) -> Tail<T> {
        Tail { marker: Some(marker), ..Tail::new(capacity) }
    }

    /// How many items held the marker holds for (0 without a marker).
    pub fn marked(&self) -> usize {
        self.marked
    }

    /// Appends an item, dropping the oldest when full; returns its sequence number.
    pub fn push(&mut self, item: T) -> u64 {
        if self.items.len() == self.capacity
            && let Some(old) = self.items.pop_front()
            && self.marker.is_some_and(|m| m(&old))
        {
            self.marked -= 1;
        }
        if self.marker.is_some_and(|m| m(&item)) {
            self.marked += 1;
        }
        self.items.push_back(item);
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Sequence number of the oldest item held (`next_seq` when empty).
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

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The item with sequence number `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<&T> {
        let index = usize::try_from(seq.checked_sub(self.first_seq())?).ok()?;
        self.items.get(index)
    }

    /// The item at position `index` (0 = oldest held).
    pub fn at(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    /// Items with sequence number `>= from_seq`, oldest first, with their numbers.
    pub fn since(&self, from_seq: u64) -> impl DoubleEndedIterator<Item = (u64, &T)> + '_ {
        let first = self.first_seq();
        let skip = usize::try_from(from_seq.saturating_sub(first)).unwrap_or(usize::MAX);
        self.items.iter().enumerate().skip(skip).map(move |(i, t)| (first + i as u64, t))
    }

    /// Every item held with its sequence number, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &T)> + '_ {
        self.since(0)
    }

    /// Drops every item (sequence numbers continue).
    pub fn clear(&mut self) {
        self.items.clear();
        self.marked = 0;
    }
}

impl<T> Default for Tail<T> {
    fn default() -> Self {
        Tail::new(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_paged() {
        let mut t = Tail::new(3);
        for i in 0..5 {
            assert_eq!(t.push(i * 10), i);
        }
        assert_eq!((t.len(), t.first_seq(), t.next_seq()), (3, 2, 5));
        assert_eq!(
            t.since(0).map(|(s, v)| (s, *v)).collect::<Vec<_>>(),
            [(2, 20), (3, 30), (4, 40)]
        );
        assert_eq!(t.since(4).count(), 1);
        assert_eq!(t.since(9).count(), 0);
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(3), Some(&30));
        assert_eq!(t.get(5), None);
        assert_eq!(Tail::<u8>::new(0).capacity(), 1);
    }
}
