//! A scratch schema of the test PostgreSQL database (`PAYHOST_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`) for tests that run the host on PostgreSQL:
//! each test gets its own, dropped with everything in it afterwards. Without a reachable
//! PostgreSQL, `Schema::create` prints `SKIPPED postgres: <reason>` and gives `None`, and
//! the test passes without running.

use std::time::Duration;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema in the test database, dropped (with everything in it) on drop.
pub struct Schema {
    base: String,
    pub name: String,
}

impl Schema {
    /// `None` (after printing why) when PostgreSQL is not reachable.
    pub async fn create() -> Option<Schema> {
        let base = std::env::var("PAYHOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string());
        let name = format!("mh_{:016x}", rand::random::<u64>());
        let created = async {
            let client = connect(&base).await?;
            client.batch_execute(&format!("CREATE SCHEMA {name}")).await
        };
        if let Err(e) = created.await {
            println!("SKIPPED postgres: {base} is not usable: {}", with_causes(&e));
            return None;
        }
        Some(Schema { base, name })
    }

    /// The storage URL both hosts get: the test database with this schema first on the
    /// search path, so every table the host creates and uses lives in it.
    pub fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.base, self.name)
    }

    /// Which of `tables` exist in this schema.
    pub async fn tables(&self, tables: &[&str]) -> Vec<String> {
        let client = connect(&self.base).await.expect("connect to PostgreSQL");
        let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
        let rows = client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2) ORDER BY 1",
                &[&self.name, &names],
            )
            .await
            .expect("list tables");
        rows.iter().map(|r| r.get(0)).collect()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with
        // its own small runtime does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                match connect(&base).await {
                    Ok(client) => {
                        if let Err(e) = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await {
                            eprintln!("could not drop test schema {name}: {e}");
                        }
                    }
                    Err(e) => eprintln!("could not drop test schema {name}: {e}"),
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
