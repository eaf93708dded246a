//! SQLite: plugin key-value stores.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{immediate, SqliteStorage};
use crate::storage::{KeyValueStore, KvWrite, StorageResult, StoreUsage};

/// Each namespace's usage beside its quota, whichever of the two it has.
const USAGES: &str = "SELECT ns, SUM(bytes), MAX(quota) FROM (
    SELECT ns, bytes, NULL AS quota FROM kv_usage UNION ALL SELECT ns, 0, bytes FROM kv_quota
) GROUP BY ns";

#[async_trait]
impl KeyValueStore for SqliteStorage {
    async fn kv_get(&self, ns: &str, key: &str) -> StorageResult<Option<Vec<u8>>> {
        let (ns, key) = (ns.to_string(), key.to_string());
        self.run(move |c| {
            c.prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?
                .query_row([&ns, &key], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn kv_set(&self, ns: &str, key: &str, value: &[u8]) -> StorageResult<()> {
        let (ns, key, value) = (ns.to_string(), key.to_string(), value.to_vec());
        self.run(move |c| {
            c.prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")?
                .execute(params![ns, key, value])
                .map(|_| ())
        })
        .await
    }

    async fn kv_delete(&self, ns: &str, key: &str) -> StorageResult<bool> {
        let (ns, key) = (ns.to_string(), key.to_string());
        self.run(move |c| Ok(c.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?.execute([&ns, &key])? > 0))
            .await
    }

    async fn kv_cas(&self, ns: &str, key: &str, expected: Option<&[u8]>, new: &[u8]) -> StorageResult<bool> {
        let (ns, key, expected, new) = (ns.to_string(), key.to_string(), expected.map(<[u8]>::to_vec), new.to_vec());
        self.run(move |c| {
            let written = match expected {
                None => c
                    .prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO NOTHING")?
                    .execute(params![ns, key, new])?,
                Some(old) => c
                    .prepare_cached("UPDATE kv SET value = ?3 WHERE ns = ?1 AND key = ?2 AND value = ?4")?
                    .execute(params![ns, key, new, old])?,
            };
            Ok(written > 0)
        })
        .await
    }

    async fn kv_set_many(&self, ns: &str, writes: &[(String, Option<Vec<u8>>)]) -> StorageResult<()> {
        let (ns, writes) = (ns.to_string(), writes.to_vec());
        self.run(move |c| {
            let tx = immediate(c)?;
            for (key, value) in &writes {
                match value {
                    Some(value) => tx
                        .prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")?
                        .execute(params![ns, key, value])?,
                    None => tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?.execute(params![ns, key])?,
                };
            }
            tx.commit()
        })
        .await
    }

    async fn kv_write_groups(&self, ns: &str, groups: &[Vec<KvWrite>]) -> StorageResult<Vec<bool>> {
        let (ns, groups) = (ns.to_string(), groups.to_vec());
        self.run(move |c| {
            let tx = immediate(c)?;
            let written = groups.iter().map(|group| write_group(&tx, &ns, group)).collect::<rusqlite::Result<Vec<bool>>>()?;
            tx.commit()?;
            Ok(written)
        })
        .await
    }

    async fn kv_set_quotas(&self, quotas: &[(String, Option<u64>)]) -> StorageResult<()> {
        let quotas = quotas.to_vec();
        self.run(move |c| {
            let tx = immediate(c)?;
            for (ns, quota) in &quotas {
                match quota {
                    Some(bytes) => tx
                        .prepare_cached("INSERT INTO kv_quota (ns, bytes) VALUES (?1, ?2) ON CONFLICT (ns) DO UPDATE SET bytes = excluded.bytes")?
                        .execute(params![ns, i64::try_from(*bytes).unwrap_or(i64::MAX)])?,
                    None => tx.prepare_cached("DELETE FROM kv_quota WHERE ns = ?1")?.execute(params![ns])?,
                };
            }
            tx.commit()
        })
        .await
    }

    async fn kv_usages(&self) -> StorageResult<BTreeMap<String, StoreUsage>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(USAGES)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))?;
            rows.map(|row| row.map(|(ns, bytes, quota)| (ns, StoreUsage::from_columns(bytes, quota)))).collect()
        })
        .await
    }

    async fn kv_list(&self, ns: &str, prefix: &str, start_after: Option<&str>, limit: u32) -> StorageResult<Vec<String>> {
        let (ns, prefix, start_after) = (ns.to_string(), prefix.to_string(), start_after.map(str::to_string));
        self.run(move |c| {
            // BINARY collation compares UTF-8 bytes, which is the byte order the WIT promises.
            let mut stmt = c.prepare_cached(
                "SELECT key FROM kv WHERE ns = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2
                 AND (?3 IS NULL OR key > ?3) ORDER BY key LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![ns, prefix, start_after, limit], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }
}

/// Inside the caller's transaction: checks every `Expect` of `writes`, then applies its
/// puts and deletes in order when all hold. False (nothing written) when one does not.
pub(super) fn write_group(c: &Connection, ns: &str, writes: &[KvWrite]) -> rusqlite::Result<bool> {
    for write in writes {
        if let KvWrite::Expect { key, value } = write {
            let current: Option<Vec<u8>> =
                c.prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?.query_row(params![ns, key], |r| r.get(0)).optional()?;
            if current != *value {
                return Ok(false);
            }
        }
    }
    for write in writes {
        match write {
            KvWrite::Expect { .. } => {}
            KvWrite::Put { key, value } => {
                c.prepare_cached("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")?
                    .execute(params![ns, key, value])?;
            }
            KvWrite::Delete { key } => {
                c.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?.execute(params![ns, key])?;
            }
        }
    }
    Ok(true)
}
