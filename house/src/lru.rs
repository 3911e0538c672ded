//! A map bounded in count that knows which entry was used least recently: the store behind
//! sessions and per-address rate limits.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// A `HashMap` with an order of use beside it. Use ticks only go up, so the first key of
/// `order` is always the least recently used entry: eviction and oldest-first expiry cost
/// `O(log n)` each, never a scan.
#[derive(Debug)]
pub(crate) struct Lru<K, V> {
    entries: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
    next_tick: u64,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map that holds at most `cap` entries (at least one).
    pub(crate) fn new(cap: usize) -> Lru<K, V> {
        Lru {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
            cap: cap.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(value, _)| value)
    }

    /// The entry, marked as the most recently used.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let (value, tick) = self.entries.get_mut(key)?;
        self.order.remove(tick);
        *tick = self.next_tick;
        self.order.insert(self.next_tick, key.clone());
        self.next_tick += 1;
        Some(value)
    }

    /// Inserts (or replaces) `key` as the most recently used entry; when that makes one too
    /// many, the least recently used entry is evicted.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.remove(&key);
        while self.entries.len() >= self.cap {
            if self.pop_oldest_if(|_| true).is_none() {
                break;
            }
        }
        self.order.insert(self.next_tick, key.clone());
        self.entries.insert(key, (value, self.next_tick));
        self.next_tick += 1;
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let (value, tick) = self.entries.remove(key)?;
        self.order.remove(&tick);
        Some(value)
    }

    /// Removes the least recently used entry if `stale` says so.
    pub(crate) fn pop_oldest_if(&mut self, stale: impl FnOnce(&V) -> bool) -> Option<V> {
        let (_, key) = self.order.first_key_value()?;
        let (value, _) = self.entries.get(key)?;
        if !stale(value) {
            return None;
        }
        let (_, key) = self.order.pop_first()?;
        self.entries.remove(&key).map(|(value, _)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get_mut(&"a"), Some(&mut 1));
        lru.insert("c", 3);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get(&"b"), None);
        assert_eq!(lru.get(&"a"), Some(&1));
        assert_eq!(lru.get(&"c"), Some(&3));
    }

    #[test]
    fn pops_oldest_only_while_stale() {
        let mut lru = Lru::new(10);
        for (key, value) in [("a", 1), ("b", 5), ("c", 2)] {
            lru.insert(key, value);
        }
        assert_eq!(lru.pop_oldest_if(|v| *v < 3), Some(1));
        // "c" is stale too, but "b" is older and fresh: expiry stops at the first fresh entry.
        assert_eq!(lru.pop_oldest_if(|v| *v < 3), None);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.remove(&"b"), Some(5));
        assert_eq!(lru.pop_oldest_if(|v| *v < 3), Some(2));
        assert_eq!(lru.len(), 0);
        assert!(lru.order.is_empty());
    }

    #[test]
    fn replacing_keeps_one_entry() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("a", 2);
        lru.insert("b", 3);
        assert_eq!(lru.get(&"a"), Some(&2));
        assert_eq!((lru.len(), lru.order.len()), (2, 2));
    }
}
