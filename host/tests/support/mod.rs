//! Backends for the storage suite: a SQLite file in a temp dir, or a fresh schema in the
//! PostgreSQL test database (`PAYHOST_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`) that is dropped afterwards, so parallel
//! tests never see each other's rows. When PostgreSQL cannot be reached the test says
//! `SKIPPED postgres: <reason>` and passes.

#![allow(dead_code)]

pub mod http_sink;

use std::sync::Arc;
use std::time::Duration;

use payhost::storage::{self, Storage};

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct TestDb {
    /// Storage URL; every `open` makes a new handle on the same database, like another host.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("payhost.db").display());
        TestDb { url, _dir: Some(dir), postgres: None }
    }

    /// A fresh schema, or `None` (after printing why) when PostgreSQL is not reachable.
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("PAYHOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string());
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let created = async {
            let mut config: tokio_postgres::Config = base.parse()?;
            config.connect_timeout(Duration::from_secs(5));
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
            Ok::<_, tokio_postgres::Error>(())
        };
        if let Err(e) = created.await {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            println!("SKIPPED postgres: {base} is not usable: {reason}");
            return None;
        }
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(TestDb { url, _dir: None, postgres: Some((base, schema)) })
    }

    pub async fn open(&self) -> Arc<dyn Storage> {
        storage::open(&self.url).await.expect("storage opens and migrates")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with
        // its own small runtime does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
                    tokio::spawn(connection);
                    if let Err(e) = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await {
                        eprintln!("could not drop test schema {schema}: {e}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Waits (polling) until `check` holds; panics with `what` if it never does. A liveness
/// bound for background work, not a timing assertion.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

/// Runs each test function once per backend: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::support::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
}
