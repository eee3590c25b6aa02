//! A bounded log, by count and optionally by bytes: the oldest entries go when a new one would
//! exceed either bound, and the ring counts how many went.

use std::collections::VecDeque;

/// A bounded log.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<(T, usize)>,
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    evicted: u64,
}

impl<T> Ring<T> {
    /// An empty ring of at most `capacity` entries.
    pub fn new(capacity: usize) -> Ring<T> {
        Ring::with_bytes(capacity, usize::MAX)
    }

    /// An empty ring of at most `capacity` entries and `max_bytes` bytes (as `push_sized` counts).
    pub fn with_bytes(capacity: usize, max_bytes: usize) -> Ring<T> {
        Ring {
            items: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            evicted: 0,
        }
    }

    /// Adds an entry of no particular size, dropping the oldest if full.
    pub fn push(&mut self, item: T) {
        self.push_sized(item, 0);
    }

    /// Adds an entry of `size` bytes, dropping the oldest until both bounds hold.
    pub fn push_sized(&mut self, item: T, size: usize) {
        while !self.items.is_empty()
            && (self.items.len() >= self.capacity || self.bytes.saturating_add(size) > self.max_bytes)
        {
            if let Some((_, gone)) = self.items.pop_front() {
                self.bytes -= gone;
                self.evicted += 1;
            }
        }
        self.bytes += size;
        self.items.push_back((item, size));
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev().map(|(item, _)| item)
    }

    /// Oldest first.
    pub fn oldest_first(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(item, _)| item)
    }

    /// Entries held, bytes held, and entries dropped to make room so far.
    pub fn usage(&self) -> (usize, usize, u64) {
        (self.items.len(), self.bytes, self.evicted)
    }

    /// Empties it.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_only_the_newest_entries() {
        let mut ring = Ring::new(3);
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.newest_first().copied().collect::<Vec<_>>(), vec![4, 3, 2]);
        assert_eq!(ring.oldest_first().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(ring.usage(), (3, 0, 2));
    }

    #[test]
    fn a_ring_bounded_by_bytes_drops_the_oldest_until_the_new_entry_fits() {
        let mut ring = Ring::with_bytes(100, 10);
        ring.push_sized('a', 4);
        ring.push_sized('b', 4);
        ring.push_sized('c', 4);
        assert_eq!(ring.oldest_first().copied().collect::<String>(), "bc");
        assert_eq!(ring.usage(), (2, 8, 1));
        ring.push_sized('d', 50);
        assert_eq!(ring.oldest_first().copied().collect::<String>(), "d", "an entry over the bound is kept alone");
        assert_eq!(ring.usage(), (1, 50, 3));
    }
}
