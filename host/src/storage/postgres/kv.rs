//! PostgreSQL: plugin key-value stores.

use async_trait::async_trait;

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
        let mut client = self.client().await?;
        let run = async {
            let tx = client.transaction().await?;
            let mut written = Vec::with_capacity(groups.len());
            for group in groups {
                written.push(write_group(&tx, ns, group).await?);
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
