//! Bounded counters for the window: the top keys of a stream ([`TopK`]) and how many distinct
//! keys it held ([`Distinct`]).
//!
//! A window may see millions of hits over an unknown number of distinct line shapes or group
//! values, yet must stay within a fixed memory budget while keeping every *total* exact. Both
//! structures here take precomputed 64-bit hashes (xxh3) as keys.
//!
//! [`TopK`] is the "space-saving" algorithm (Metwally, Agrawal, El Abbadi, 2005): it tracks at
//! most `capacity` keys; a new key arriving when it is full replaces the key with the smallest
//! count and inherits that count (remembered as the slot's `error`). Guarantees:
//! - the counts of all slots always add up to the number of additions (nothing is lost);
//! - a key that occurs more than `total / capacity` times is always tracked;
//! - `count - error` is a lower bound of a key's true count, exact while nothing was evicted.
//!
//! [`Distinct`] counts distinct hashes exactly up to [`DISTINCT_EXACT`], then estimates them
//! with a 256-register HyperLogLog (about 6.5% standard error).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Distinct keys counted exactly before switching to the estimate.
pub(crate) const DISTINCT_EXACT: usize = 256;
const REGISTERS: usize = 256;

/// A pass-through hasher: the keys are already xxh3 hashes.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type IdBuild = BuildHasherDefault<IdHasher>;

/// One tracked key.
#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    /// The key's hash.
    pub(crate) hash: u64,
    /// Additions counted for this slot (an upper bound of the key's true count).
    pub(crate) count: u64,
    /// Part of `count` inherited from an evicted key.
    pub(crate) error: u64,
    /// What the caller keeps for the key (its first sample, say).
    pub(crate) value: V,
}

impl<V> Slot<V> {
    /// A lower bound of the key's true count (exact when `error` is 0).
    pub(crate) fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

/// The most frequent keys of a stream, in bounded memory ("space-saving").
#[derive(Clone, Debug)]
pub(crate) struct TopK<V> {
    capacity: usize,
    index: HashMap<u64, usize, IdBuild>,
    slots: Vec<Slot<V>>,
    evictions: u64,
    distinct: Distinct,
}

impl<V> TopK<V> {
    /// Tracks at most `capacity` keys (at least one).
    pub(crate) fn new(capacity: usize) -> TopK<V> {
        TopK {
            capacity: capacity.max(1),
            index: HashMap::default(),
            slots: Vec::new(),
            evictions: 0,
            distinct: Distinct::default(),
        }
    }

    /// Counts `n` occurrences of the key `hash`; `make` builds its value when the key is not
    /// tracked (it then takes the slot of the smallest count if the structure is full).
    /// Returns the key's value, for the caller to update.
    pub(crate) fn add(&mut self, hash: u64, n: u64, make: impl FnOnce() -> V) -> &mut V {
        if let Some(&i) = self.index.get(&hash) {
            // Tracked: `distinct` recorded the hash when it came.
            self.slots[i].count += n;
            return &mut self.slots[i].value;
        }
        self.distinct.insert(hash);
        if self.slots.len() < self.capacity {
            self.index.insert(hash, self.slots.len());
            self.slots.push(Slot {
                hash,
                count: n,
                error: 0,
                value: make(),
            });
            return &mut self.slots.last_mut().expect("just pushed").value;
        }
        let (i, min) = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| (i, slot.count))
            .min_by_key(|&(_, count)| count)
            .expect("capacity is at least one, and the structure is full");
        self.index.remove(&self.slots[i].hash);
        self.index.insert(hash, i);
        self.slots[i] = Slot {
            hash,
            count: min + n,
            error: min,
            value: make(),
        };
        self.evictions += 1;
        &mut self.slots[i].value
    }

    /// Returns true if and only if no key was ever evicted (all counts are exact).
    #[cfg(test)]
    pub(crate) fn is_exact(&self) -> bool {
        self.evictions == 0
    }

    /// Distinct keys added (exact while small, then estimated), never below the tracked count.
    pub(crate) fn distinct(&self) -> u64 {
        self.distinct.count().max(self.slots.len() as u64)
    }

    /// Total of all counts: exactly the sum of every `n` added.
    pub(crate) fn total(&self) -> u64 {
        self.slots.iter().map(|slot| slot.count).sum()
    }

    /// The tracked slots, by guaranteed count (largest first), ties in first-tracked order.
    pub(crate) fn into_ranked(self) -> Vec<Slot<V>> {
        let mut slots = self.slots;
        slots.sort_by_key(|slot| std::cmp::Reverse(slot.guaranteed()));
        slots
    }
}

/// Distinct count of 64-bit hashes: exact up to [`DISTINCT_EXACT`], then a HyperLogLog estimate.
///
/// The registers exist only once the exact set is full (a window's rule mostly never gets
/// there): they are then filled from the set, which holds every hash seen, and the order in
/// which hashes reach the registers does not matter.
#[derive(Clone, Debug, Default)]
pub(crate) struct Distinct {
    exact: HashSet<u64, IdBuild>,
    /// `Some` once saturated (`exact` is then empty).
    registers: Option<Box<[u8; REGISTERS]>>,
}

impl Distinct {
    /// Records one hash.
    pub(crate) fn insert(&mut self, hash: u64) {
        if let Some(registers) = &mut self.registers {
            record(registers, hash);
            return;
        }
        self.exact.insert(hash);
        if self.exact.len() > DISTINCT_EXACT {
            let mut registers = Box::new([0; REGISTERS]);
            for &hash in &self.exact {
                record(&mut registers, hash);
            }
            self.registers = Some(registers);
            self.exact = HashSet::default();
        }
    }

    /// The number of distinct hashes recorded (estimated past [`DISTINCT_EXACT`]).
    pub(crate) fn count(&self) -> u64 {
        let Some(registers) = &self.registers else {
            return self.exact.len() as u64;
        };
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let zeros = registers.iter().filter(|&&r| r == 0).count();
        let mut estimate = alpha * m * m / sum;
        if estimate <= 2.5 * m && zeros > 0 {
            estimate = m * (m / zeros as f64).ln();
        }
        (estimate.round() as u64).max(DISTINCT_EXACT as u64 + 1)
    }
}

/// Puts `hash` in the HyperLogLog `registers`.
fn record(registers: &mut [u8; REGISTERS], hash: u64) {
    let register = (hash >> 56) as usize;
    let rank = ((hash << 8) | 0x80).leading_zeros() as u8 + 1;
    if registers[register] < rank {
        registers[register] = rank;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&n.to_le_bytes())
    }

    #[test]
    fn heavy_hitters_survive_a_long_tail() {
        let mut top = TopK::new(16);
        for i in 0..100_000u64 {
            // Keys 0..4 take half of the stream; the other half is spread over 5,000 keys.
            let key = if i % 2 == 0 {
                i % 8 / 2
            } else {
                100 + i % 5_000
            };
            top.add(hash(key), 1, || key);
        }
        assert_eq!(top.total(), 100_000);
        assert!(!top.is_exact());
        let ranked = top.into_ranked();
        let mut heavy: Vec<u64> = ranked[..4].iter().map(|slot| slot.value).collect();
        heavy.sort_unstable();
        assert_eq!(heavy, [0, 1, 2, 3]);
        for slot in &ranked[..4] {
            assert!(
                slot.guaranteed() <= 12_500 && slot.count >= 12_500,
                "{slot:?}"
            );
        }
    }

    #[test]
    fn exact_while_nothing_is_evicted() {
        let mut top = TopK::new(8);
        for i in 0..80u64 {
            top.add(hash(i % 8), 1, || i % 8);
        }
        assert!(top.is_exact());
        assert_eq!(top.distinct(), 8);
        assert!(top.into_ranked().iter().all(|slot| slot.count == 10));
    }

    #[test]
    fn distinct_estimate_is_close() {
        let mut distinct = Distinct::default();
        for i in 0..5_000 {
            distinct.insert(hash(i));
            distinct.insert(hash(i));
        }
        let estimate = distinct.count() as f64;
        assert!((estimate - 5_000.0).abs() < 5_000.0 * 0.2, "{estimate}");
    }

    proptest::proptest! {
        /// Registers filled from the exact set when it overflows count as registers fed
        /// every hash from the start; a key counted again while tracked changes nothing.
        #[test]
        fn counts_as_registers_fed_every_hash(
            keys in proptest::collection::vec(0u64..400, 0..1200),
            capacity in 1usize..40,
        ) {
            let mut top = TopK::new(capacity);
            let mut every = [0; REGISTERS];
            let mut seen = std::collections::HashSet::new();
            for &key in &keys {
                top.add(hash(key), 1, || key);
                record(&mut every, hash(key));
                seen.insert(key);
            }
            let expected = if seen.len() <= DISTINCT_EXACT {
                seen.len() as u64
            } else {
                let eager = Distinct {
                    exact: HashSet::default(),
                    registers: Some(Box::new(every)),
                };
                eager.count()
            };
            proptest::prop_assert_eq!(
                top.distinct(),
                expected.max(capacity.min(seen.len()) as u64)
            );
            proptest::prop_assert_eq!(top.total(), keys.len() as u64);
        }
    }
}
