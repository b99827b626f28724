//! Handle tables: how a C pointer is turned back into a Rust object without ever being
//! dereferenced.
//!
//! A `ws *` or `ws_options *` given to C is the address of a heap object the library owns.
//! The library keeps every live object in a table keyed by that address, and each call looks
//! the pointer up there first. So a pointer that was already freed (or that never came from
//! the library) is reported as `WS_INVALID_HANDLE` instead of being read, and a handle freed
//! by one thread while another thread is using it stays alive until that use ends (the
//! table hands out reference-counted clones).
//!
//! The one misuse this cannot catch is the allocator reusing a freed address for a new
//! object: then the stale pointer names the new object, as a reused file descriptor does.
//! Using a freed handle stays undefined behaviour by the documentation, like any C `free`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The live objects of one kind, keyed by the address given to C.
pub(crate) struct Table<T> {
    map: RwLock<BTreeMap<usize, Arc<T>>>,
}

impl<T> Table<T> {
    /// An empty table (usable in a `static`).
    pub(crate) const fn new() -> Table<T> {
        Table {
            map: RwLock::new(BTreeMap::new()),
        }
    }

    /// Registers `value` under `key`, the address given to C.
    pub(crate) fn insert(&self, key: usize, value: Arc<T>) {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value);
        // Keys are addresses of live allocations, so they cannot collide.
        debug_assert!(old.is_none());
    }

    /// The live object under `key`, if any.
    pub(crate) fn get(&self, key: usize) -> Option<Arc<T>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    /// Unregisters and returns the object under `key` (None if it is not live).
    pub(crate) fn remove(&self, key: usize) -> Option<Arc<T>> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
    }

    /// Number of live objects.
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_never_need_the_pointer_to_be_valid() {
        static TABLE: Table<String> = Table::new();
        let value = Arc::new("socket".to_string());
        let key = Arc::as_ptr(&value) as usize;
        TABLE.insert(key, value.clone());
        assert_eq!(TABLE.len(), 1);
        assert_eq!(
            TABLE.get(key).as_deref().map(String::as_str),
            Some("socket")
        );
        assert!(TABLE.get(key + 1).is_none());
        let removed = TABLE.remove(key).expect("live");
        assert!(Arc::ptr_eq(&removed, &value));
        assert!(TABLE.get(key).is_none(), "a freed handle is not found");
        assert!(TABLE.remove(key).is_none(), "a double free is detected");
        assert_eq!(TABLE.len(), 0);
    }
}
