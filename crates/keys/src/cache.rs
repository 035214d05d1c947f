//! Unwrapped data keys, kept briefly so a burst of reads of one object asks the provider once.
//! Entries are zeroized when they expire, are evicted or are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Which wrapped key an entry is the plaintext of: the agency, the wrapping key version and a
/// hash of the ciphertext (never the ciphertext itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    agency_id: Uuid,
    key_id: String,
    ciphertext_hash: [u8; 32],
}

struct Entry {
    plaintext: Zeroizing<Vec<u8>>,
    expires: Instant,
}

#[derive(Clone)]
pub struct DataKeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Arc<Mutex<HashMap<Slot, Entry>>>,
}

impl DataKeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Where the plaintext of `ciphertext` (wrapped by `key_id` for `agency_id`) is kept; computed
    /// once per unwrap, for the lookup and the store.
    pub fn slot(agency_id: Uuid, key_id: &str, ciphertext: &[u8]) -> Slot {
        Slot {
            agency_id,
            key_id: key_id.to_owned(),
            ciphertext_hash: Sha256::digest(ciphertext).into(),
        }
    }

    pub fn get(&self, slot: &Slot) -> Option<Zeroizing<Vec<u8>>> {
        if self.capacity == 0 {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(slot) {
            Some(e) if e.expires > Instant::now() => Some(e.plaintext.clone()),
            Some(_) => {
                entries.remove(slot);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, slot: Slot, plaintext: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, e| e.expires > now);
        }
        if entries.len() >= self.capacity {
            // Still full of live entries: drop the one closest to expiry.
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(s, _)| s.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            slot,
            Entry {
                plaintext: Zeroizing::new(plaintext.to_vec()),
                expires: now + self.ttl,
            },
        );
    }

    /// Forgets every data key unwrapped by `key_id` (after its version is disabled).
    pub fn forget_key(&self, key_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|slot, _| slot.key_id != key_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(agency_id: Uuid, key_id: &str, ciphertext: &[u8]) -> Slot {
        DataKeyCache::slot(agency_id, key_id, ciphertext)
    }

    #[test]
    fn hits_until_expiry_and_is_bound_to_agency_and_key() {
        let cache = DataKeyCache::new(Duration::from_millis(50), 10);
        let a = Uuid::new_v4();
        cache.put(slot(a, "k1", b"ct"), b"secret");
        assert_eq!(
            cache
                .get(&slot(a, "k1", b"ct"))
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"secret"[..])
        );
        assert!(cache.get(&slot(Uuid::new_v4(), "k1", b"ct")).is_none());
        assert!(cache.get(&slot(a, "k2", b"ct")).is_none());
        assert!(cache.get(&slot(a, "k1", b"other")).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&slot(a, "k1", b"ct")).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn capacity_is_bounded_and_forget_key_clears() {
        let cache = DataKeyCache::new(Duration::from_secs(60), 3);
        let a = Uuid::new_v4();
        for i in 0..10u8 {
            cache.put(slot(a, "k1", &[i]), b"x");
        }
        assert_eq!(cache.len(), 3);
        cache.put(slot(a, "k2", b"y"), b"z");
        cache.forget_key("k1");
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&slot(a, "k2", b"y")).is_some());
    }
}
