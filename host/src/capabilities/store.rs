//! `store`: the instance's durable key-value namespace (its instance name).
//!
//! While a plugin handles a payment event its writes are buffered (`KvBuffer`) instead
//! of written at once: the job worker commits them in the same transaction that marks
//! the event done, so after a crash an event is either handled with its effects or not
//! handled at all. Reads see the buffered writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::wit::store::{Error, Expectation, GuardedWrite, Host};
use super::state::PluginState;
use crate::storage::{KvWrite, Storage, StorageError};

/// Keys and values stay small enough for one row in either backend.
const MAX_VALUE_BYTES: usize = 1 << 20;

/// Most writes one `set-many` takes.
const MAX_BATCH_WRITES: usize = 512;

/// Store writes held back until the current job commits.
#[derive(Debug, Default)]
pub struct KvBuffer {
    writes: Vec<KvWrite>,
    /// The buffered value of each written key (`None`: deleted).
    view: BTreeMap<String, Option<Vec<u8>>>,
}

impl KvBuffer {
    pub fn into_writes(self) -> Vec<KvWrite> {
        self.writes
    }
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        check_key(&key)?;
        if let Some(value) = self.kv_buffer.as_ref().and_then(|b| b.view.get(&key)) {
            return Ok(value.clone());
        }
        self.services().storage.kv_get(self.instance(), &key).await.map_err(backend)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        check_key(&key)?;
        check_value(&value)?;
        if let Some(buffer) = self.kv_buffer.as_mut() {
            buffer.view.insert(key.clone(), Some(value.clone()));
            buffer.writes.push(KvWrite::Put { key, value });
            return Ok(());
        }
        self.services().storage.kv_set(self.instance(), &key, &value).await.map_err(backend)
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        check_key(&key)?;
        if self.kv_buffer.is_some() {
            let existed = current(self, &key).await?.is_some();
            let buffer = self.kv_buffer.as_mut().expect("checked above");
            buffer.view.insert(key.clone(), None);
            buffer.writes.push(KvWrite::Delete { key });
            return Ok(existed);
        }
        self.services().storage.kv_delete(self.instance(), &key).await.map_err(backend)
    }

    async fn compare_and_swap(&mut self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>) -> Result<bool, Error> {
        check_key(&key)?;
        check_value(&new)?;
        if self.kv_buffer.is_some() {
            let buffered = self.kv_buffer.as_ref().is_some_and(|b| b.view.contains_key(&key));
            let current = current(self, &key).await?;
            if current != expected {
                return Ok(false);
            }
            let buffer = self.kv_buffer.as_mut().expect("checked above");
            if !buffered {
                // The value came from storage: the commit checks it is still the same.
                buffer.writes.push(KvWrite::Expect { key: key.clone(), value: current });
            }
            buffer.view.insert(key.clone(), Some(new.clone()));
            buffer.writes.push(KvWrite::Put { key, value: new });
            return Ok(true);
        }
        self.services()
            .storage
            .kv_cas(self.instance(), &key, expected.as_deref(), &new)
            .await
            .map_err(backend)
    }

    async fn set_many(&mut self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<(), Error> {
        if writes.len() > MAX_BATCH_WRITES {
            return Err(Error::TooLarge(format!("set-many takes at most {MAX_BATCH_WRITES} writes, not {}", writes.len())));
        }
        // Every pair is checked before anything is written, so a refusal writes nothing.
        for (key, value) in &writes {
            check_key(key)?;
            if let Some(value) = value {
                check_value(value)?;
            }
        }
        if let Some(buffer) = self.kv_buffer.as_mut() {
            for (key, value) in writes {
                buffer.view.insert(key.clone(), value.clone());
                buffer.writes.push(put_or_delete(key, value));
            }
            return Ok(());
        }
        self.services().storage.kv_set_many(self.instance(), &writes).await.map_err(backend)
    }

    async fn compare_and_swap_many(&mut self, groups: Vec<Vec<GuardedWrite>>) -> Result<Vec<bool>, Error> {
        let total: usize = groups.iter().map(Vec::len).sum();
        if total > MAX_BATCH_WRITES {
            return Err(Error::TooLarge(format!("compare-and-swap-many takes at most {MAX_BATCH_WRITES} writes, not {total}")));
        }
        // Every write is checked before anything is written, so a refusal writes nothing.
        for write in groups.iter().flatten() {
            check_key(&write.key)?;
            if let Some(value) = &write.value {
                check_value(value)?;
            }
        }
        if self.kv_buffer.is_some() {
            let mut written = Vec::with_capacity(groups.len());
            for group in groups {
                written.push(buffer_group(self, group).await?);
            }
            return Ok(written);
        }
        let groups: Vec<Vec<KvWrite>> = groups.into_iter().map(kv_group).collect();
        self.services().storage.kv_write_groups(self.instance(), &groups).await.map_err(backend)
    }

    async fn list_keys(&mut self, prefix: String, start_after: Option<String>, limit: u32) -> Result<Vec<String>, Error> {
        let limit = limit.min(10_000);
        let storage: Arc<dyn Storage> = self.services().storage.clone();
        let ns = self.ctx.name.clone();
        let Some(extra) = self.kv_buffer.as_ref().map(|b| b.view.len() as u32) else {
            return storage.kv_list(&ns, &prefix, start_after.as_deref(), limit).await.map_err(backend);
        };
        // Ask for enough stored keys that buffered deletes cannot starve the page.
        let stored = storage.kv_list(&ns, &prefix, start_after.as_deref(), limit.saturating_add(extra)).await.map_err(backend)?;
        let buffer = self.kv_buffer.as_ref().expect("checked above");
        let after = |k: &str| start_after.as_deref().is_none_or(|s| k > s);
        let mut keys: std::collections::BTreeSet<String> = stored.into_iter().collect();
        for (key, value) in &buffer.view {
            if !key.starts_with(&prefix) || !after(key) {
                continue;
            }
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
        Ok(keys.into_iter().take(limit as usize).collect())
    }
}

fn put_or_delete(key: String, value: Option<Vec<u8>>) -> KvWrite {
    match value {
        Some(value) => KvWrite::Put { key, value },
        None => KvWrite::Delete { key },
    }
}

/// A WIT group as storage writes: its expectations first, then its writes in order.
fn kv_group(group: Vec<GuardedWrite>) -> Vec<KvWrite> {
    let mut writes = Vec::with_capacity(group.len() * 2);
    for write in &group {
        match &write.expect {
            Expectation::Any => {}
            Expectation::Absent => writes.push(KvWrite::Expect { key: write.key.clone(), value: None }),
            Expectation::Equals(value) => writes.push(KvWrite::Expect { key: write.key.clone(), value: Some(value.clone()) }),
        }
    }
    for write in group {
        writes.push(put_or_delete(write.key, write.value));
    }
    writes
}

/// One group while a payment event is handled: checked against what this call sees, and
/// when it holds, buffered like `compare-and-swap` (the commit re-checks every value that
/// came from storage).
async fn buffer_group(state: &mut PluginState, group: Vec<GuardedWrite>) -> Result<bool, Error> {
    let mut from_storage = Vec::new();
    for write in &group {
        let expected = match &write.expect {
            Expectation::Any => continue,
            Expectation::Absent => None,
            Expectation::Equals(value) => Some(value.clone()),
        };
        let buffered = state.kv_buffer.as_ref().is_some_and(|b| b.view.contains_key(&write.key));
        let current = current(state, &write.key).await?;
        if current != expected {
            return Ok(false);
        }
        if !buffered {
            from_storage.push(KvWrite::Expect { key: write.key.clone(), value: current });
        }
    }
    let buffer = state.kv_buffer.as_mut().expect("only called while buffering");
    buffer.writes.extend(from_storage);
    for write in group {
        buffer.view.insert(write.key.clone(), write.value.clone());
        buffer.writes.push(put_or_delete(write.key, write.value));
    }
    Ok(true)
}

/// The key's value as this call sees it: buffered, else stored. (Takes what it needs
/// before awaiting: the store's data is not `Sync`.)
async fn current(state: &mut PluginState, key: &str) -> Result<Option<Vec<u8>>, Error> {
    if let Some(value) = state.kv_buffer.as_ref().and_then(|b| b.view.get(key)) {
        return Ok(value.clone());
    }
    let (storage, ns) = (state.ctx.services.storage.clone(), state.ctx.name.clone());
    storage.kv_get(&ns, key).await.map_err(backend)
}

/// The WIT's only refusal case is `too-large`; a key with control characters is refused
/// through it too, with the message saying which.
fn check_key(key: &str) -> Result<(), Error> {
    crate::identifiers::check(crate::identifiers::STORE_KEY, key).map_err(|e| Error::TooLarge(e.to_string()))
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge(format!("value must be at most {MAX_VALUE_BYTES} bytes")));
    }
    Ok(())
}

fn backend(e: StorageError) -> Error {
    if let StorageError::QuotaExceeded { .. } = e {
        return Error::TooLarge(quota_refusal("store write"));
    }
    tracing::error!(error = %e, "store backend failed");
    Error::Backend(e.to_string())
}

/// What a plugin reads when a store write or a timer (`what`) would take its store over
/// the quota; logged for support staff. Nothing was written, and deleting keys or
/// cancelling timers makes room.
pub(super) fn quota_refusal(what: &str) -> String {
    tracing::warn!("{what} refused: the instance's store quota (limits.store_mb) is used up");
    "the store is full: this would take it over the instance's quota (limits.store_mb, which counts its keys and timers); nothing was written".into()
}
