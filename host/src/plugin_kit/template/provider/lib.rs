//! `{{name}}`: a payhost provider plugin (`payhost:gateway@{{wit}}`, world `provider`).
//!
//! The logic is written against `payhost_sdk::Host`, so `cargo test` runs it natively
//! with `payhost_sdk::testing::FakeHost`; the component passes `WasmHost`, the real
//! imports.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the `greeting` setting |
//! | `POST /sign` | hex HMAC-SHA256 of the body with the `signing_key` secret |
//! | `POST /count` | a counter in the instance's store (compare-and-swap) |
// Native builds (unit tests) do not export the component, so its entry points look unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

use payhost_sdk::host::{HmacAlgorithm, Part};
use payhost_sdk::payments::PaymentEvent;
use payhost_sdk::types::{PluginInfo, SettingSpec};
use payhost_sdk::{Host, Request, Response, WasmHost};
use serde_json::json;

/// The secret this plugin signs with; the host holds its bytes.
pub const SIGNING_KEY: &str = "signing_key";

struct Plugin;

impl payhost_sdk::Plugin for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A payhost provider plugin".into(),
            secrets: vec![SIGNING_KEY.into()],
            hosts: vec![],
            host_settings: vec![],
            settings: vec![SettingSpec { name: "greeting".into(), required: false, description: "Answered at GET /".into() }],
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        handle(&WasmHost, &req)
    }
}

impl payhost_sdk::Events for Plugin {
    fn on_timer(_name: String, _payload: Vec<u8>) -> Result<(), String> {
        Ok(())
    }

    fn on_payment_event(_event: PaymentEvent) -> Result<(), String> {
        Ok(())
    }
}

/// Every route, against any host.
pub fn handle(host: &impl Host, req: &Request) -> Result<Response, String> {
    Ok(match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => {
            let greeting = host.setting("greeting").unwrap_or_else(|| "hello".into());
            Response::json(200, &json!({ "plugin": "{{name}}", "greeting": greeting }))
        }
        ("POST", "/sign") => {
            let mac = host
                .hmac(HmacAlgorithm::Sha256, SIGNING_KEY, &[Part::Bytes(req.body.clone())])
                .map_err(|e| format!("signing: {e:?}"))?;
            Response::json(200, &json!({ "hmac": hex(&mac) }))
        }
        ("POST", "/count") => Response::json(200, &json!({ "count": increment(host, "count")? })),
        _ => Response::not_found(),
    })
}

fn increment(host: &impl Host, key: &str) -> Result<u64, String> {
    loop {
        let current = host.store_get(key).map_err(|e| format!("store: {e:?}"))?;
        let n = current.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).unwrap_or(0u64);
        let next = (n + 1).to_string();
        if host.store_compare_and_swap(key, current.as_deref(), next.as_bytes()).map_err(|e| format!("store: {e:?}"))? {
            return Ok(n + 1);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Components export on wasm only; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_provider!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use payhost_sdk::testing::FakeHost;

    fn request(method: &str, path: &str, body: &[u8]) -> Request {
        Request {
            id: "test-1".into(),
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![],
            body: body.to_vec(),
            remote_addr: "127.0.0.1".into(),
        }
    }

    fn body(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).expect("a JSON answer")
    }

    #[test]
    fn answers_the_greeting_signs_and_counts() {
        let host = FakeHost::new().with_secret(SIGNING_KEY, b"key").with_setting("greeting", "hi");
        assert_eq!(body(&handle(&host, &request("GET", "/", b"")).unwrap())["greeting"], "hi");
        let signed = body(&handle(&host, &request("POST", "/sign", b"The quick brown fox jumps over the lazy dog")).unwrap());
        assert_eq!(signed["hmac"], "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
        for n in 1..=2 {
            assert_eq!(body(&handle(&host, &request("POST", "/count", b"")).unwrap())["count"], n);
        }
        assert_eq!(host.stored("count").as_deref(), Some(&b"2"[..]));
    }
}
