//! [`Tail`]: a bounded ring with the deck's own sequence numbers.
//!
//! The deck merges streams from many nodes (each with its own sequence numbers,
//! which restart when a node does) into one ring per stream. Every item gets a
//! deck sequence number on arrival, so a reader can page the merged stream with
//! `since(seq)` and rows have ids that never repeat. When full, the oldest item is
//! dropped: a tail never holds more than its capacity. The ring itself is
//! [`stdx::Ring`], the one the nodes keep their logs in.

use serde::ser::{Serialize, SerializeStruct, Serializer};
use stdx::Ring;

/// A bounded ring of items with increasing deck sequence numbers: a
/// [`stdx::Ring`] (which it derefs to for reading) that can also count the items
/// a marker holds for.
#[derive(Clone, Debug)]
pub struct Tail<T> {
    ring: Ring<T>,
    /// Items this predicate holds for are counted as they come and go, so the
    /// count costs nothing to read (the status bar's ERROR lines).
    marker: Option<fn(&T) -> bool>,
    marked: usize,
}

impl<T> Tail<T> {
    /// An empty tail holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Tail<T> {
        Tail { ring: Ring::new(capacity), marker: None, marked: 0 }
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
        if let Some(marker) = self.marker {
            if self.ring.is_full() && self.ring.at(0).is_some_and(marker) {
                self.marked -= 1;
            }
            if marker(&item) {
                self.marked += 1;
            }
        }
        self.ring.push(item)
    }

    /// Items with sequence number `>= from_seq`, oldest first, with their numbers
    /// (the ring's [`Ring::iter_since`]).
    pub fn since(&self, from_seq: u64) -> impl DoubleEndedIterator<Item = (u64, &T)> + '_ {
        self.ring.iter_since(from_seq)
    }

    /// Drops every item (sequence numbers continue).
    pub fn clear(&mut self) {
        self.ring.clear();
        self.marked = 0;
    }
}

/// Reading a tail is reading its ring (`len`, `first_seq`, `next_seq`, `get`,
/// `at`, `iter`, ...); changing it goes through [`Tail::push`] and
/// [`Tail::clear`], which keep the marker count.
impl<T> std::ops::Deref for Tail<T> {
    type Target = Ring<T>;

    fn deref(&self) -> &Ring<T> {
        &self.ring
    }
}

impl<T> Default for Tail<T> {
    fn default() -> Self {
        Tail::new(1024)
    }
}

/// As before the ring moved to stdx: `{ items, capacity, next_seq }`.
impl<T: Serialize> Serialize for Tail<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Items<'a, T>(&'a Ring<T>);
        impl<T: Serialize> Serialize for Items<'_, T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|(_, item)| item))
            }
        }
        let mut out = serializer.serialize_struct("Tail", 3)?;
        out.serialize_field("items", &Items(&self.ring))?;
        out.serialize_field("capacity", &self.ring.capacity())?;
        out.serialize_field("next_seq", &self.ring.next_seq())?;
        out.end()
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

    #[test]
    fn marked_items_are_counted_as_they_come_and_go() {
        let mut t = Tail::with_marker(2, |v: &u32| v % 2 == 0);
        for v in [2, 3, 4] {
            t.push(v);
        }
        assert_eq!(t.marked(), 1, "the 2 was dropped, the 4 came");
        t.push(6);
        assert_eq!(t.marked(), 2);
        t.clear();
        assert_eq!((t.marked(), t.next_seq()), (0, 4));
    }

    #[test]
    fn serializes_as_items_capacity_and_next_seq() {
        let mut t = Tail::new(2);
        for v in [1, 2, 3] {
            t.push(v);
        }
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json, serde_json::json!({ "items": [2, 3], "capacity": 2, "next_seq": 3 }));
    }
}
