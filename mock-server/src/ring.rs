//! A bounded log by count: the oldest entry goes when a new one would exceed the capacity.

use std::collections::VecDeque;

/// A bounded log.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// An empty ring.
    pub fn new(capacity: usize) -> Ring<T> {
        Ring { items: VecDeque::with_capacity(capacity.min(1024)), capacity: capacity.max(1) }
    }

    /// Adds an entry, dropping the oldest if full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev()
    }

    /// Oldest first.
    pub fn oldest_first(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// Empties it.
    pub fn clear(&mut self) {
        self.items.clear();
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
    }
}
