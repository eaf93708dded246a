//! PostgreSQL: plugin key-value stores.

use async_trait::async_trait;

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::Transaction;

use super::{PostgresStorage, Res};
use crate::storage::{KeyValueStore, KvWrite, StorageResult};

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
        let run = async {
            let stmt = client
                .prepare_cached("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value")
                .await?;
            client.execute(&stmt, &[&ns, &key, &value]).await?;
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached("DELETE FROM kv WHERE ns = $1 AND key = $2").await?;
            Res::Ok(client.execute(&stmt, &[&ns, &key]).await? > 0)
        };
        Ok(run.await?)
    }

    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool> {
        let client = self.client().await?;
        let run = async {
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
        };
        Ok(run.await?)
    }

    async fn kv_set_many(&self, ns: &str, writes: &[(String, Option<Vec<u8>>)]) -> StorageResult<()> {
        let mut client = self.client().await?;
        let run = async {
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
            Res::Ok(())
        };
        Ok(run.await?)
    }

    async fn kv_write_groups(&self, ns: &str, groups: &[Vec<KvWrite>]) -> StorageResult<Vec<bool>> {
        // A fixed number of round trips however many groups: every expected key read
        // (and locked) at once, the groups decided in memory in order, then the final
        // value of each written key sent as one upsert and one delete.
        let expected: Vec<&str> = groups.iter().flatten().filter_map(expected_key).collect();
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            let mut stored: HashMap<String, Option<Vec<u8>>> = expected.iter().map(|k| (k.to_string(), None)).collect();
            if !expected.is_empty() {
                let stmt = tx.prepare_cached("SELECT key, value FROM kv WHERE ns = $1 AND key = ANY($2) FOR UPDATE").await?;
                for row in tx.query(&stmt, &[&ns, &expected]).await? {
                    stored.insert(row.try_get(0)?, Some(row.try_get(1)?));
                }
            }
            let (written, changes) = decide(groups, stored);
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
            Res::Ok(written)
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

/// Inside the caller's transaction: checks every `Expect` of `writes` (locking the rows
/// that exist, so they cannot change before commit), then applies its puts and deletes
/// in order when all hold. False (nothing written) when one does not.
pub(super) async fn write_group(tx: &Transaction<'_>, ns: &str, writes: &[KvWrite]) -> Res<bool> {
    for write in writes {
        if let KvWrite::Expect { key, value } = write {
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
    Ok(true)
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
