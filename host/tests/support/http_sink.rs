//! A loopback HTTP receiver for delivery tests. It records every request by path and
//! answers by path: `/fail-N/...` answers 500 to the first N requests on that path and
//! 200 after; `/always-500/...` always answers 500; anything else 200.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, Vec<Hit>>>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let hits: Arc<Mutex<HashMap<String, Vec<Hit>>>> = Arc::default();
        let recorded = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let hits = recorded.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let hits = hits.clone();
                        async move { Ok::<_, Infallible>(answer(&hits, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Sink { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits.lock().unwrap().get(path).cloned().unwrap_or_default()
    }

    pub fn count(&self, path: &str) -> usize {
        self.hits(path).len()
    }

    /// Every path with how often it was requested.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.hits.lock().unwrap().iter().map(|(p, h)| (p.clone(), h.len())).collect()
    }
}

async fn answer(hits: &Mutex<HashMap<String, Vec<Hit>>>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let seen = {
        let mut hits = hits.lock().unwrap();
        let list = hits.entry(path.clone()).or_default();
        list.push(Hit { method, headers, body });
        list.len()
    };
    let failures: usize = path
        .strip_prefix("/fail-")
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let status = if path.starts_with("/always-500/") || seen <= failures {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    Response::builder().status(status).body(Full::new(Bytes::from_static(b"sink says hi"))).unwrap()
}
