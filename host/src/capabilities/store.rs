//! `store`: the instance's durable key-value namespace (its instance name).

use super::bindings::store::{Error, Host};
use super::state::PluginState;
use crate::storage::StorageError;

/// Keys and values stay small enough for one row in either backend.
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 1 << 20;

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        check_key(&key)?;
        self.services().storage.kv_get(self.instance(), &key).await.map_err(backend)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        check_key(&key)?;
        check_value(&value)?;
        self.services().storage.kv_set(self.instance(), &key, &value).await.map_err(backend)
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        check_key(&key)?;
        self.services().storage.kv_delete(self.instance(), &key).await.map_err(backend)
    }

    async fn compare_and_swap(&mut self, key: String, expected: Option<Vec<u8>>, new: Vec<u8>) -> Result<bool, Error> {
        check_key(&key)?;
        check_value(&new)?;
        self.services()
            .storage
            .kv_cas(self.instance(), &key, expected.as_deref(), &new)
            .await
            .map_err(backend)
    }

    async fn list_keys(&mut self, prefix: String, start_after: Option<String>, limit: u32) -> Result<Vec<String>, Error> {
        self.services()
            .storage
            .kv_list(self.instance(), &prefix, start_after.as_deref(), limit.min(10_000))
            .await
            .map_err(backend)
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::TooLarge(format!("key must be 1..={MAX_KEY_BYTES} bytes")));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge(format!("value must be at most {MAX_VALUE_BYTES} bytes")));
    }
    Ok(())
}

fn backend(e: StorageError) -> Error {
    tracing::error!(error = %e, "store backend failed");
    Error::Backend(e.to_string())
}
