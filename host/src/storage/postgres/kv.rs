//! PostgreSQL: plugin key-value stores. Guarded writes lock the rows they expect to
//! hold a value, and claim the keys they expect to be absent by inserting them
//! (`claim_absent`): a row another transaction is still creating cannot be locked, only
//! waited for on the key's unique index.
//!
//! The `kv` table's trigger adds each write to the store's usage and may refuse it over
//! the quota (see the schema); two writers can then wait on each other's rows in a way
//! they could not before, so every write runs again when PostgreSQL ends it as a
//! deadlock or a serialisation failure.

use async_trait::async_trait;

use std::collections::{BTreeMap, HashMap, HashSet};

use deadpool_postgres::{Object, Transaction};

use super::{PostgresStorage, Res, POST_ATTEMPTS};
use crate::storage::{KeyValueStore, KvWrite, StorageResult, StoreUsage};

/// Awaits `$attempt` (built anew each time) again while PostgreSQL ends it as a
/// deadlock or a serialisation failure, up to `POST_ATTEMPTS` in all.
macro_rules! again_on_lost_race {
    ($attempt:expr) => {{
        let mut attempt = 1;
        loop {
            match $attempt.await {
                Err(failure) if failure.is_lost_race() && attempt < POST_ATTEMPTS => attempt += 1,
                outcome => break outcome,
            }
        }
    }};
}

#[async_trait]
impl KeyValueStore for PostgresStorage {
    async fn kv_get(&self, ns: &str, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("SELECT value FROM kv WHERE ns = $1 AND key = $2").await?;
            let row = client.query_opt(&stmt, &[&ns, &key]).await?;
            Res::Ok(row.map(|r| r.try_get(0)).transpose()?)
        };
        Ok(run.await?)
    }

    async fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> StorageResult<()> {
        let client = self.client().await?;
        Ok(again_on_lost_race!(async {
            let stmt = client
                .prepare_cached("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value")
                .await?;
            client.execute(&stmt, &[&ns, &key, &value]).await?;
            Res::Ok(())
        })?)
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool> {
        let client = self.client().await?;
        Ok(again_on_lost_race!(async {
            let stmt = client.prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = $2").await?;
            Res::Ok(client.execute(&stmt, &[&ns, &key]).await? > 0)
        })?)
    }

    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool> {
        let client = self.client().await?;
        Ok(again_on_lost_race!(async {
            let written = match expected {
                None => {
                    let stmt = client
                        .prepare_cached("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO NOTHING")
                        .await?;
                    client.execute(&stmt, &[&ns, &key, &new]).await?
                }
                Some(old) => {
                    let stmt = client.prepare_cached("UPDATE kv SET value = $3 WHERE ns = $1 AND key = $2 AND value = $4").await?;
                    client.execute(&stmt, &[&ns, &key, &new, &old]).await?
                }
            };
            Res::Ok(written > 0)
        })?)
    }

    async fn kv_set_many(&self, ns: &str, writes: &[(String, Option<Vec<u8>>)]) -> StorageResult<()> {
        let mut client = self.client().await?;
        Ok(again_on_lost_race!(set_many_once(&mut client, ns, writes))?)
    }

    async fn kv_write_groups(&self, ns: &str, groups: &[Vec<KvWrite>]) -> StorageResult<Vec<bool>> {
        let mut client = self.client().await?;
        Ok(again_on_lost_race!(write_groups_once(&mut client, ns, groups))?)
    }

    async fn kv_set_quotas(&self, quotas: &[(String, Option<u64>)]) -> StorageResult<()> {
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            for (ns, quota) in quotas {
                match quota {
                    Some(bytes) => {
                        let bytes = i64::try_from(*bytes).unwrap_or(i64::MAX);
                        tx.execute(
                            "INSERT INTO kv_quota (ns, bytes) VALUES ($1, $2) ON CONFLICT (ns) DO UPDATE SET bytes = EXCLUDED.bytes",
                            &[ns, &bytes],
                        )
                        .await?
                    }
                    None => tx.execute("DELETE FROM kv_quota WHERE ns = $1", &[ns]).await?,
                };
            }
            tx.commit().await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn kv_usages(&self) -> StorageResult<BTreeMap<String, StoreUsage>> {
        let client = self.client().await?;
        let run = async {
            // A store's usage is the sum of its rows, one per connection that wrote it.
            let stmt = client
                .prepare_cached(
                    "SELECT ns, SUM(bytes)::BIGINT, MAX(quota)::BIGINT FROM (
                         SELECT ns, bytes, NULL::BIGINT AS quota FROM kv_usage UNION ALL SELECT ns, 0, bytes FROM kv_quota
                     ) AS t GROUP BY ns",
                )
                .await?;
            let mut usages = BTreeMap::new();
            for row in client.query(&stmt, &[]).await? {
                usages.insert(row.try_get(0)?, StoreUsage::from_columns(row.try_get(1)?, row.try_get(2)?));
            }
            Res::Ok(usages)
        };
        Ok(run.await?)
    }

    async fn kv_list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: u32) -> StorageResult<Vec<String>> {
        let client = self.client().await?;
        let run = async {
            // `key` has the "C" collation: comparisons and order are by bytes, as the WIT promises.
            let stmt = client
                .prepare_cached(
                    "SELECT key FROM kv WHERE ns = $1 AND key >= $2 AND starts_with(key, $2)
                     AND ($3::text IS NULL OR key > $3) ORDER BY key LIMIT $4",
                )
                .await?;
            let found = client.query(&stmt, &[&ns, &prefix, &start_after, &i64::from(limit)]).await?;
            found.iter().map(|r| Res::Ok(r.try_get::<_, String>(0)?)).collect::<Res<Vec<String>>>()
        };
        Ok(run.await?)
    }
}

/// One attempt of `kv_set_many`: every write in one transaction.
async fn set_many_once(client: &mut Object, ns: &str, writes: &[(String, Option<Vec<u8>>)]) -> Res<()> {
    let tx = client.transaction().await?;
    for (key, value) in writes {
        match value {
            Some(value) => {
                tx.execute(
                    "INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value",
                    &[&ns, key, value],
                )
                .await?
            }
            None => tx.execute("DELETE FROM kv WHERE ns = $1 AND key = $2", &[&ns, key]).await?,
        };
    }
    tx.commit().await?;
    Ok(())
}

/// One attempt of `kv_write_groups`, in a fixed number of round trips however many
/// groups: the keys expected absent claimed (`claim_absent`), every other expected key
/// read and locked at once, the groups decided in memory in order, then the final value
/// of each written key sent as one upsert and one delete.
async fn write_groups_once(client: &mut Object, ns: &str, groups: &[Vec<KvWrite>]) -> Res<Vec<bool>> {
    let expected: Vec<&str> = groups.iter().flatten().filter_map(expected_key).collect();
    let absent: Vec<&str> = groups.iter().flatten().filter_map(expected_absent).collect();
    let tx = client.transaction().await?;
    let claimed = claim_absent(&tx, ns, &absent).await?;
    // A claimed key is absent, and already this transaction's; the others are read.
    let mut stored: HashMap<String, Option<Vec<u8>>> = expected.iter().map(|k| (k.to_string(), None)).collect();
    let unclaimed: Vec<&str> = expected.iter().copied().filter(|key| !claimed.contains(*key)).collect();
    if !unclaimed.is_empty() {
        let stmt = tx.prepare_cached("SELECT key, value FROM kv WHERE ns = $1 AND key = ANY($2) FOR UPDATE").await?;
        for row in tx.query(&stmt, &[&ns, &unclaimed]).await? {
            stored.insert(row.try_get(0)?, Some(row.try_get(1)?));
        }
    }
    let (written, mut changes) = decide(groups, stored);
    // A claim no accepted group wrote a value over goes again: the key stays absent.
    for key in claimed {
        if !matches!(changes.get(&key), Some(Some(_))) {
            changes.insert(key, None);
        }
    }
    let (mut put_keys, mut put_values, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in &changes {
        match value {
            Some(value) => {
                put_keys.push(key.as_str());
                put_values.push(value.as_slice());
            }
            None => deleted.push(key.as_str()),
        }
    }
    if !put_keys.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO kv (ns, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::bytea[]) AS t(k, v)
                 ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value",
            )
            .await?;
        tx.execute(&stmt, &[&ns, &put_keys, &put_values]).await?;
    }
    if !deleted.is_empty() {
        let stmt = tx.prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = ANY($2)").await?;
        tx.execute(&stmt, &[&ns, &deleted]).await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// Inside the caller's transaction: checks every `Expect` of `writes` (claiming the keys
/// expected absent, locking the rows that exist, so neither can change before commit),
/// then applies its puts and deletes in order when all hold. False when one does not:
/// the caller then rolls the transaction back (it may hold claims).
pub(super) async fn write_group(tx: &Transaction<'_>, ns: &str, writes: &[KvWrite]) -> Res<bool> {
    let absent: Vec<&str> = writes.iter().filter_map(expected_absent).collect();
    let claimed = claim_absent(tx, ns, &absent).await?;
    if absent.iter().any(|key| !claimed.contains(*key)) {
        return Ok(false);
    }
    for write in writes {
        if let KvWrite::Expect { key, value: value @ Some(_) } = write {
            let stmt = tx.prepare_cached("SELECT value FROM kv WHERE ns = $1 AND key = $2 FOR UPDATE").await?;
            let current: Option<Vec<u8>> = tx.query_opt(&stmt, &[&ns, key]).await?.map(|r| r.try_get(0)).transpose()?;
            if current != *value {
                return Ok(false);
            }
        }
    }
    for write in writes {
        match write {
            KvWrite::Expect { .. } => {}
            KvWrite::Put { key, value } => {
                let stmt = tx
                    .prepare_cached("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value")
                    .await?;
                tx.execute(&stmt, &[&ns, key, value]).await?;
            }
            KvWrite::Delete { key } => {
                let stmt = tx.prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = $2").await?;
                tx.execute(&stmt, &[&ns, key]).await?;
            }
        }
    }
    // A claim the group wrote nothing over goes again: the key stays absent.
    let unwritten: Vec<&str> = claimed
        .iter()
        .map(String::as_str)
        .filter(|key| !writes.iter().any(|w| matches!(w, KvWrite::Put { key: k, .. } | KvWrite::Delete { key: k } if k == key)))
        .collect();
    if !unwritten.is_empty() {
        let stmt = tx.prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = ANY($2)").await?;
        tx.execute(&stmt, &[&ns, &unwritten]).await?;
    }
    Ok(true)
}

/// Claims the keys in `absent` that are absent: each is inserted (with an empty value,
/// overwritten or deleted before commit), so another transaction creating the same key
/// waits for this one, and this one waits for any creating it now. Without the claim,
/// a key created by a transaction not yet committed when this one looks is not there to
/// lock, and this one would write over it. Returns the keys claimed; the others exist.
async fn claim_absent(tx: &Transaction<'_>, ns: &str, absent: &[&str]) -> Res<HashSet<String>> {
    if absent.is_empty() {
        return Ok(HashSet::new());
    }
    // In key order, so two transactions claiming the same keys wait in one order.
    let stmt = tx
        .prepare_cached(
            r#"INSERT INTO kv (ns, key, value) SELECT $1, k, '\x'::bytea FROM unnest($2::text[]) AS t(k) ORDER BY k COLLATE "C"
               ON CONFLICT (ns, key) DO NOTHING RETURNING key"#,
        )
        .await?;
    tx.query(&stmt, &[&ns, &absent]).await?.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

fn expected_absent(write: &KvWrite) -> Option<&str> {
    match write {
        KvWrite::Expect { key, value: None } => Some(key),
        _ => None,
    }
}

fn expected_key(write: &KvWrite) -> Option<&str> {
    match write {
        KvWrite::Expect { key, .. } => Some(key),
        _ => None,
    }
}

/// The final value of each key a batch writes (`None`: deleted), in key order.
type Changes = BTreeMap<String, Option<Vec<u8>>>;

/// Decides each group in order against `view` (the stored value of every expected key),
/// which the accepted groups' writes update, as `write_group` would one after another.
fn decide(groups: &[Vec<KvWrite>], mut view: HashMap<String, Option<Vec<u8>>>) -> (Vec<bool>, Changes) {
    let mut changes = Changes::new();
    let written = groups
        .iter()
        .map(|group| {
            let holds = group.iter().all(|w| match w {
                KvWrite::Expect { key, value } => view.get(key).is_some_and(|current| current == value),
                _ => true,
            });
            if holds {
                for write in group {
                    let (key, value) = match write {
                        KvWrite::Expect { .. } => continue,
                        KvWrite::Put { key, value } => (key, Some(value.clone())),
                        KvWrite::Delete { key } => (key, None),
                    };
                    view.insert(key.clone(), value.clone());
                    changes.insert(key.clone(), value);
                }
            }
            holds
        })
        .collect();
    (written, changes)
}
