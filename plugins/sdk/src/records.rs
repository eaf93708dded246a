//! Typed JSON records in the instance store, changed only by compare-and-swap, so that
//! two calls racing on one record (a replayed redirect, a payment event racing the
//! buyer's return, two polls) never overwrite each other's work.
//!
//! The helpers work on any [`RecordStore`]: every [`crate::Host`] is one (plugin unit
//! tests pass `crate::testing::FakeHost`), and [`HostStore`] is the instance's own store
//! for code that does not take a host.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store;

/// Tries before giving up on a key that keeps changing under us.
const MAX_TRIES: usize = 16;

/// The two store operations the record helpers need.
pub trait RecordStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Writes `new` only when the key holds `expected` (`None`: is absent); true when it wrote.
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String>;
}

/// The instance's store, through the `store` import.
pub struct HostStore;

impl RecordStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        store::get(key).map_err(|e| store_error(key, e))
    }

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String> {
        store::compare_and_swap(key, expected, new).map_err(|e| store_error(key, e))
    }
}

/// Any host: flows written against `crate::Host` keep records through it, so they run
/// against `crate::testing::FakeHost` too.
impl<H: crate::Host + ?Sized> RecordStore for H {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store_get(key).map_err(|e| store_error(key, e))
    }

    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String> {
        self.store_compare_and_swap(key, expected, new).map_err(|e| store_error(key, e))
    }
}

/// A store error as text that names the key and what the store said.
pub fn store_error(key: &str, e: store::Error) -> String {
    match e {
        store::Error::TooLarge(m) => format!("store refused `{key}`: {m}"),
        store::Error::Backend(m) => format!("store unavailable for `{key}`: {m}"),
    }
}

/// What an [`update`] step decided.
pub enum Change<T> {
    Keep,
    Write(T),
}

/// The record and the exact bytes it was read from (the CAS expectation).
pub fn load<T: DeserializeOwned>(store: &(impl RecordStore + ?Sized), key: &str) -> Result<Option<(T, Vec<u8>)>, String> {
    match store.get(key)? {
        None => Ok(None),
        Some(bytes) => {
            let value = serde_json::from_slice(&bytes).map_err(|e| format!("stored record `{key}` is unreadable: {e}"))?;
            Ok(Some((value, bytes)))
        }
    }
}

/// Writes `value` only if `key` does not exist yet; true when it wrote.
pub fn create<T: Serialize>(store: &(impl RecordStore + ?Sized), key: &str, value: &T) -> Result<bool, String> {
    store.compare_and_swap(key, None, &encode(key, value)?)
}

/// Writes `value` unless `key` exists; returns the record stored afterwards (`value`, or
/// the one another writer stored first).
pub fn create_or_load<T>(store: &(impl RecordStore + ?Sized), key: &str, value: &T) -> Result<T, String>
where
    T: Serialize + DeserializeOwned + Clone,
{
    if create(store, key, value)? {
        return Ok(value.clone());
    }
    load(store, key)?.map(|(stored, _)| stored).ok_or_else(|| format!("record `{key}` vanished while being written"))
}

/// Reads the record, lets `step` decide, and writes with CAS; when another writer got
/// there first, `step` runs again on the fresh record. Returns the result of the step
/// whose decision stuck.
pub fn update<T, R>(
    store: &(impl RecordStore + ?Sized),
    key: &str,
    mut step: impl FnMut(Option<T>) -> Result<(Change<T>, R), String>,
) -> Result<R, String>
where
    T: Serialize + DeserializeOwned,
{
    for _ in 0..MAX_TRIES {
        let (value, expected) = match load::<T>(store, key)? {
            Some((value, bytes)) => (Some(value), Some(bytes)),
            None => (None, None),
        };
        let (change, result) = step(value)?;
        match change {
            Change::Keep => return Ok(result),
            Change::Write(new) => {
                if store.compare_and_swap(key, expected.as_deref(), &encode(key, &new)?)? {
                    return Ok(result);
                }
            }
        }
    }
    Err(format!("record `{key}` kept changing; gave up after {MAX_TRIES} tries"))
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("record `{key}` cannot be encoded: {e}"))
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    use super::*;

    /// An in-memory store whose first `interfere` CAS calls see another writer first.
    #[derive(Default)]
    struct Memory {
        values: RefCell<HashMap<String, Vec<u8>>>,
        interfere: Cell<usize>,
    }

    impl RecordStore for Memory {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.values.borrow().get(key).cloned())
        }

        fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool, String> {
            if self.interfere.get() > 0 {
                self.interfere.set(self.interfere.get() - 1);
                self.values.borrow_mut().insert(key.into(), b"7".to_vec());
                return Ok(false);
            }
            let mut values = self.values.borrow_mut();
            if values.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            values.insert(key.into(), new.to_vec());
            Ok(true)
        }
    }

    #[test]
    fn create_writes_once_and_create_or_load_returns_the_first() {
        let store = Memory::default();
        assert!(create(&store, "k", &1u32).unwrap());
        assert!(!create(&store, "k", &2u32).unwrap());
        assert_eq!(create_or_load(&store, "k", &3u32).unwrap(), 1);
        assert_eq!(load::<u32>(&store, "k").unwrap().map(|(v, _)| v), Some(1));
    }

    #[test]
    fn update_runs_the_step_again_on_the_value_another_writer_stored() {
        let store = Memory::default();
        create(&store, "n", &1u32).unwrap();
        store.interfere.set(1);
        let mut seen = Vec::new();
        let result = update(&store, "n", |current: Option<u32>| {
            seen.push(current);
            Ok((Change::Write(current.unwrap_or(0) + 1), "done"))
        });
        assert_eq!(result.unwrap(), "done");
        assert_eq!(seen, vec![Some(1), Some(7)]);
        assert_eq!(load::<u32>(&store, "n").unwrap().map(|(v, _)| v), Some(8));
    }

    #[test]
    fn update_gives_up_on_a_key_that_keeps_changing() {
        let store = Memory { interfere: Cell::new(usize::MAX), ..Memory::default() };
        let err = update(&store, "busy", |_: Option<u32>| Ok((Change::Write(1), ()))).unwrap_err();
        assert!(err.contains("kept changing"), "{err}");
    }
}
