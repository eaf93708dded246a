//! The accept loop of one listener and the life of each connection on it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::activity::{Activity, InFlight};
use super::watched::Watched;
use super::ConnectionSettings;
use crate::http_util::Body;

/// What a full listener sends before closing a connection it will not serve.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: 59\r\n\r\n{\"error\":\"the server has too many open connections; retry\"}";

/// Serves `listener` until `shutdown` turns true, then lets in-flight requests finish
/// for at most `shutdown_grace` and closes what is left. `handle` answers one request,
/// given the client's address.
pub async fn serve<H, F>(listener: TcpListener, settings: ConnectionSettings, mut shutdown: watch::Receiver<bool>, handle: H)
where
    H: Fn(Request<Incoming>, Arc<str>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut accept_errors = Burst::default();
    let mut refusals = Burst::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    accept_errors.end("accepting connections again");
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        if refusals.failed() {
                            tracing::warn!(limit = settings.max_connections, "refusing new connections: runtime.max_connections are open");
                        }
                        refuse(stream);
                        continue;
                    };
                    refusals.end("taking new connections again");
                    let remote: Arc<str> = remote.to_string().into();
                    connections.spawn(connection(stream, remote, slot, settings.clone(), shutdown.clone(), handle.clone()));
                }
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) or memory: the pending connection
                    // stays queued, so retrying at once would spin. Wait, and say so once.
                    if accept_errors.failed() {
                        tracing::error!(error = %e, "cannot accept connections (out of file descriptors?); backing off until it recovers");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(accept_errors.backoff()) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(settings.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), grace_ms = settings.shutdown_grace.as_millis() as u64, "closing connections still busy after the shutdown grace");
        connections.shutdown().await;
    }
}

async fn connection<H, F>(
    stream: TcpStream,
    remote: Arc<str>,
    _slot: OwnedSemaphorePermit,
    settings: ConnectionSettings,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Request<Incoming>, Arc<str>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new(settings.header_read_timeout, settings.idle_timeout, Instant::now()));
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let service = service_fn(move |req| {
        let (handle, remote, activity) = (handle.clone(), remote.clone(), activity.clone());
        async move {
            let _in_flight = InFlight::new(&activity);
            Ok::<_, Infallible>(handle(req, remote).await)
        }
    });
    // hyper answers 431 and closes once the head read so far passes the limit, so a
    // client cannot make it buffer more than about twice the limit per connection.
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .max_header_size(settings.max_header_bytes)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Best effort: a client over the limit learns why instead of waiting in a queue.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL);
}

/// A run of failures: logged at its first, quiet after, its end logged once.
#[derive(Default)]
struct Burst {
    failures: u32,
}

impl Burst {
    /// Counts a failure; true when it starts a burst (the one to log).
    fn failed(&mut self) -> bool {
        self.failures += 1;
        self.failures == 1
    }

    fn end(&mut self, message: &'static str) {
        if self.failures > 0 {
            tracing::warn!(failures = self.failures, "{message}");
            self.failures = 0;
        }
    }

    /// 10 ms after the first failure, doubling to one second.
    fn backoff(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(7);
        Duration::from_millis(10 << exponent).min(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_reported_once_and_backs_off_to_a_second() {
        let mut burst = Burst::default();
        assert!(burst.failed());
        assert_eq!(burst.backoff(), Duration::from_millis(10));
        assert!(!burst.failed());
        assert_eq!(burst.backoff(), Duration::from_millis(20));
        for _ in 0..20 {
            assert!(!burst.failed());
        }
        assert_eq!(burst.backoff(), Duration::from_secs(1));
        burst.end("recovered");
        assert!(burst.failed(), "a new burst after recovery is reported again");
    }

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(length, body.len());
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
