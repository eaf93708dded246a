//! `payhost bench ledger`: how many idempotent debits per second one host gets from a
//! storage backend, with several concurrent clients on one account (the contended case:
//! every debit locks the same row). It writes to the storage it is given, under a fresh
//! `bench-…` account, so point it at a scratch database.

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
