//! Readiness (`/readyz`): ready while storage answers, not ready (503, naming the
//! storage failure) while it does not, ready again once it is back; `/healthz` stays
//! liveness all along. PostgreSQL is reached through a TCP relay the test cuts, so the
//! database itself is never touched. Without a reachable PostgreSQL the test prints
//! `SKIPPED postgres: <reason>` and passes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payhost_tests::postgres::Schema;
use payhost_tests::{HostBuilder, TestHost};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const POSTGRES: &str = "127.0.0.1:5432";
/// A liveness bound for waits, not a timing assertion.
const WAIT: Duration = Duration::from_secs(60);

/// Relays connections from its own port to PostgreSQL until cut.
struct Relay {
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    async fn start(addr: SocketAddr) -> Relay {
        let listener = TcpListener::bind(addr).await.expect("bind relay");
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accepted = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(POSTGRES).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                accepted.lock().unwrap().push(relay);
            }
        });
        Relay { addr, tasks, acceptor: Some(acceptor) }
    }

    /// Closes every relayed connection and stops listening: storage is unreachable.
    fn cut(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn readyz(host: &TestHost) -> (u16, Value) {
    let resp = host.get("/readyz").await;
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_storage_while_liveness_stays() {
    let Some(schema) = Schema::create().await else { return };
    let mut relay = Relay::start("127.0.0.1:0".parse().unwrap()).await;
    let url = schema.url().replace(POSTGRES, &relay.addr.to_string());
    assert_ne!(url, schema.url(), "the test database is not at {POSTGRES}; the relay cannot stand in front of it");
    let host = HostBuilder::new().postgres(&url).start().await;
    let (status, body) = readyz(&host).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "{body}");

    relay.cut();
    let not_ready = host.wait_until(WAIT, || async { readyz(&host).await.0 == 503 }).await;
    let (_, last) = readyz(&host).await;
    assert!(not_ready, "/readyz stayed ready with storage gone: {last}");
    assert_eq!(last["status"], "not-ready", "{last}");
    assert_ne!(last["storage"], "ok", "{last}");
    let (status, admin_view) = host.admin("GET", "/readyz", None).await;
    assert_eq!(status, 503, "the admin listener agrees: {admin_view}");
    assert_eq!(host.get("/healthz").await.status().as_u16(), 200, "liveness does not depend on storage");

    let relay = Relay::start(relay.addr).await;
    let ready_again = host.wait_until(WAIT, || async { readyz(&host).await.0 == 200 }).await;
    assert!(ready_again, "/readyz did not recover with storage back:\n{}", host.logs());
    drop(relay);
}
