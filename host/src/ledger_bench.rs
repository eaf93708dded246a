//! `payhost bench ledger`: how many idempotent debits per second one host gets from a
//! storage backend, with several concurrent clients on one account (the contended case:
//! every debit locks the same row). On SQLite it writes to the file it is given, under a
//! fresh `bench-…` account, so point it at a scratch file. On PostgreSQL it makes its own
//! scratch schema in the database it is given and drops it afterwards, so the bench
//! leaves no tables or rows behind.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::HostClock;
use crate::ledger::{Ledger, LedgerError};
use crate::money;

const CURRENCY: &str = "RUB";
const DEBIT: &str = "0.01";

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub backend: &'static str,
    pub clients: usize,
    pub elapsed: Duration,
    pub debits: u64,
    /// Debits refused (none expected: the account is funded for far more).
    pub refused: u64,
    /// The account's final balance matched the funding minus the debits.
    pub balance_consistent: bool,
}

impl BenchReport {
    pub fn per_second(&self) -> f64 {
        self.debits as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ledger bench ({}): {} clients, {} debits in {:.2}s = {:.0} debits/s, {} refused, balance {}",
            self.backend,
            self.clients,
            self.debits,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.refused,
            if self.balance_consistent { "consistent" } else { "INCONSISTENT" }
        )
    }
}

/// Runs `clients` tasks that debit one account until `duration` has passed.
pub async fn bench_ledger(storage_url: &str, clients: usize, duration: Duration) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(clients > 0, "the bench needs at least one client");
    if !(storage_url.starts_with("postgres://") || storage_url.starts_with("postgresql://")) {
        // The default `sqlite://data/…` must work from a fresh checkout.
        let path = storage_url.strip_prefix("sqlite://").or_else(|| storage_url.strip_prefix("sqlite:")).unwrap_or(storage_url);
        if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
        }
        return run(storage_url, clients, duration).await;
    }
    let schema = format!("payhost_bench_{:016x}", rand::random::<u64>());
    let admin = connect(storage_url).await?;
    admin.batch_execute(&format!("CREATE SCHEMA {schema}")).await.map_err(|e| anyhow::anyhow!("creating the bench schema: {e}"))?;
    let report = match with_search_path(storage_url, &schema) {
        Ok(url) => run(&url, clients, duration).await,
        Err(e) => Err(e),
    };
    // The bench's storage (and its pool) is gone by now, so nothing holds the schema.
    let dropped = admin.batch_execute(&format!("SET client_min_messages = warning; DROP SCHEMA {schema} CASCADE")).await;
    let report = report?;
    dropped.map_err(|e| anyhow::anyhow!("dropping the bench schema {schema}: {e}"))?;
    Ok(report)
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| anyhow::anyhow!("PostgreSQL URL is not valid: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (client, connection) =
        config.connect(tokio_postgres::NoTls).await.map_err(|e| anyhow::anyhow!("connecting to PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with `schema` first on the search path. Server options the URL already sets
/// are kept: the appended `options` parameter repeats them, and the last one wins.
fn with_search_path(url: &str, schema: &str) -> anyhow::Result<String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| anyhow::anyhow!("PostgreSQL URL is not valid: {e}"))?;
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{} -c search_path={schema}", existing.trim()),
        _ => format!("-c search_path={schema}"),
    };
    let encoded = percent_encoding::utf8_percent_encode(&options, percent_encoding::NON_ALPHANUMERIC);
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}options={encoded}"))
}

async fn run(storage_url: &str, clients: usize, duration: Duration) -> anyhow::Result<BenchReport> {
    let storage = crate::storage::open(storage_url).await?;
    let backend = storage.backend_name();
    let ledger = Arc::new(Ledger::new(storage, HostClock::system()));
    let run = format!("bench-{:016x}", rand::random::<u64>());
    let funding = "1000000000.00";
    ledger
        .credit_opening("bench", &format!("{run}-fund"), &run, funding, CURRENCY, "bench funding")
        .await
        .map_err(|e| anyhow::anyhow!("funding the bench account: {e}"))?;

    let debits = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let (ledger, run, debits, refused) = (ledger.clone(), run.clone(), debits.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let key = format!("{run}-{client}-{n}");
                match ledger.debit("bench", &key, &run, DEBIT, CURRENCY, "bench debit").await {
                    Ok(_) => debits.fetch_add(1, Ordering::Relaxed),
                    Err(LedgerError::Backend(e)) => return Err(anyhow::anyhow!("storage failed during the bench: {e}")),
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();

    let debits = debits.load(Ordering::Relaxed);
    let account = ledger.get_account(&run).await?.ok_or_else(|| anyhow::anyhow!("the bench account vanished"))?;
    let expected = money::parse_amount(funding, CURRENCY)? - i64::try_from(debits)? * money::parse_amount(DEBIT, CURRENCY)?;
    Ok(BenchReport {
        backend,
        clients,
        elapsed,
        debits,
        refused: refused.load(Ordering::Relaxed),
        balance_consistent: money::parse_amount(&account.balance, CURRENCY)? == expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options_of(url: &str) -> Option<String> {
        url.parse::<tokio_postgres::Config>().unwrap().get_options().map(str::to_owned)
    }

    #[test]
    fn search_path_is_added_and_existing_options_are_kept() {
        let url = with_search_path("postgres://postgres@127.0.0.1:5432/test", "payhost_bench_1").unwrap();
        assert_eq!(options_of(&url).as_deref(), Some("-c search_path=payhost_bench_1"));

        let url = with_search_path("postgres://u@h/db?connect_timeout=3&options=-c%20statement_timeout%3D5000", "s1").unwrap();
        assert_eq!(options_of(&url).as_deref(), Some("-c statement_timeout=5000 -c search_path=s1"));
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_dbname(), Some("db"));
    }
}
