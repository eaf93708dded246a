//! A Platform24 (24часаТВ) fake: it receives the billing's confirm/fail callbacks at
//! `/billing/paysystem/{name}/{confirm|fail}` and checks their `SecurityKey` with its
//! own SHA1 of the documented formula, and serves the provider API under `/api/v2`
//! (`platform24_api`). It also builds the requests Platform24 sends to the billing
//! (bodies, and the signed payment-form request).
//!
//! As the real platform does, it answers a good callback with an empty 200. A callback
//! with a bad key gets a 403, and it is kept (marked bad) so a test can see it.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::http::{SimRequest, SimResponse, SimServer};
use super::platform24_api::{ProviderApi, API_PATH};

/// One confirm or fail callback as Platform24 received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// `confirm` or `fail`.
    pub outcome: String,
    pub method: String,
    pub transaction_id: String,
    pub amount: String,
    pub currency: String,
    pub external_transaction_id: String,
    pub security_key: String,
    /// Whether `security_key` matched the simulator's own computation.
    pub signature_ok: bool,
}

pub struct Platform24Sim {
    server: SimServer,
    callbacks: Arc<Mutex<Vec<Callback>>>,
    api: Arc<ProviderApi>,
    private_key: String,
    paysystem: String,
    api_token: String,
}

/// The bearer token of the plugin's operator routes in `billing_config`.
pub const OPERATOR_TOKEN: &str = "p24-operator-token-5d1e";

fn sha1_hex(text: &str) -> String {
    hex::encode(Sha1::digest(text.as_bytes()))
}

/// The payment-form request's key, as Platform24 computes it.
pub fn form_security_key(private_key: &str, user_id: &str, amount: &str, currency: &str, description: &str, transaction_id: &str) -> String {
    sha1_hex(&format!(
        "UserID={user_id}&Amount={amount}&Currency={currency}&OrderDescription={description}&TransactionID={transaction_id}&PrivateSecurityKey={private_key}"
    ))
}

/// The confirm/fail callback's key, as Platform24 checks it.
pub fn callback_security_key(private_key: &str, transaction_id: &str, amount: &str, external_id: &str, currency: &str) -> String {
    sha1_hex(&format!(
        "TransactionID={transaction_id}&Amount={amount}&ExternalTransactionID={external_id}&Currency={currency}&PrivateSecurityKey={private_key}"
    ))
}

fn handle(req: &SimRequest, private_key: &str, paysystem: &str, callbacks: &Mutex<Vec<Callback>>) -> SimResponse {
    let prefix = format!("/billing/paysystem/{paysystem}/");
    let Some(outcome) = req.path.strip_prefix(&prefix).filter(|o| *o == "confirm" || *o == "fail") else {
        return SimResponse::json(404, &json!({ "error": "unknown path" }));
    };
    if req.method != "GET" && req.method != "POST" {
        return SimResponse::json(405, &json!({ "error": "GET or POST" }));
    }
    let param = |name: &str| req.param(name).unwrap_or_default();
    let mut cb = Callback {
        outcome: outcome.to_string(),
        method: req.method.clone(),
        transaction_id: param("TransactionID"),
        amount: param("Amount"),
        currency: param("Currency"),
        external_transaction_id: param("ExternalTransactionID"),
        security_key: param("SecurityKey"),
        signature_ok: false,
    };
    let expected = callback_security_key(private_key, &cb.transaction_id, &cb.amount, &cb.external_transaction_id, &cb.currency);
    cb.signature_ok = expected.eq_ignore_ascii_case(&cb.security_key);
    let ok = cb.signature_ok;
    callbacks.lock().expect("callbacks").push(cb);
    if ok {
        SimResponse::empty(200)
    } else {
        SimResponse::json(403, &json!({ "error": "bad SecurityKey" }))
    }
}

impl Platform24Sim {
    /// Serves the callbacks of payment system `paysystem`, signed with `private_key`,
    /// and the provider API for the operator's `api_token`.
    pub async fn start(private_key: &str, paysystem: &str, api_token: &str) -> Self {
        let callbacks = Arc::new(Mutex::new(Vec::new()));
        let api = ProviderApi::new(api_token);
        let (key, name, log, provider) = (private_key.to_string(), paysystem.to_string(), callbacks.clone(), api.clone());
        let server = SimServer::start(move |req| {
            if req.path.starts_with(API_PATH) {
                provider.handle(&req)
            } else {
                handle(&req, &key, &name, &log)
            }
        })
        .await;
        Self {
            server,
            callbacks,
            api,
            private_key: private_key.into(),
            paysystem: paysystem.into(),
            api_token: api_token.into(),
        }
    }

    /// The environment `billing_config`'s secrets are read from.
    pub fn grant(&self, builder: crate::HostBuilder) -> crate::HostBuilder {
        builder
            .env("P24_PRIVATE_KEY", &self.private_key)
            .env("P24_API_TOKEN", &self.api_token)
            .env("P24_OPERATOR_TOKEN", OPERATOR_TOKEN)
    }

    /// A `platform24` instance `p24` on `/p24` against this simulator, card payments
    /// through `system`, with extra `[plugins.settings]` lines.
    pub fn billing_config(&self, system: &str, settings: &str) -> String {
        format!(
            r#"
[[plugins]]
name = "p24"
component = {component:?}
mount = "/p24"
allowed_hosts = ["{host}"]
payment_systems = ["{system}"]
[plugins.secrets]
platform24_private_key = {{ env = "P24_PRIVATE_KEY" }}
platform24_api_token = {{ env = "P24_API_TOKEN" }}
admin_token = {{ env = "P24_OPERATOR_TOKEN" }}
[plugins.settings]
platform_url = "{url}"
api_base_url = "{api}"
paysystem_name = "{paysystem}"
payment_system = "{system}"
{settings}
"#,
            component = crate::plugin_wasm("platform24").display().to_string(),
            host = self.host_port(),
            url = self.base_url(),
            api = self.api_base_url(),
            paysystem = self.paysystem,
        )
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The provider API's base URL (`api_base_url`).
    pub fn api_base_url(&self) -> String {
        format!("{}{API_PATH}", self.server.base_url())
    }

    pub fn api(&self) -> &ProviderApi {
        &self.api
    }

    /// `127.0.0.1:PORT`, for `allowed_hosts`.
    pub fn host_port(&self) -> String {
        self.server.host_port()
    }

    /// While down, callbacks are refused (503) and not recorded.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }

    /// Every callback received while up, in order.
    pub fn callbacks(&self) -> Vec<Callback> {
        self.callbacks.lock().expect("callbacks").clone()
    }
}

/// The platform id the request builders put in `user.id` for a subscriber: a fixed
/// function of the provider uid, so each test subscriber is its own platform user.
pub fn platform_id(provider_uid: &str) -> u64 {
    let hash = provider_uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    900_000 + hash % 99_999
}

/// The `user` object Platform24 puts in every billing request.
pub fn user(provider_uid: &str) -> Value {
    user_with_id(provider_uid, platform_id(provider_uid))
}

/// The `user` object with a given platform id.
pub fn user_with_id(provider_uid: &str, id: u64) -> Value {
    json!({
        "id": id,
        "phone": "+79990001122",
        "email": "abonent@example.com",
        "provider_uid": provider_uid,
        "last_name": "Иванов",
        "username": "ivanov",
        "timezone": "Europe/Moscow",
        "first_name": "Иван",
    })
}

/// A packet as Platform24 describes it: `(id, price, name)`.
pub fn packet(id: u64, price: &str, name: &str) -> Value {
    json!({ "id": id, "price": price, "is_base": false, "name": name })
}

/// `POST /packets?user_id=..&trf_ids=..`: the path-and-query and the body.
pub fn packets_request(provider_uid: &str, packets: &[(u64, &str, &str)]) -> (String, Value) {
    let ids: Vec<String> = packets.iter().map(|(id, _, _)| id.to_string()).collect();
    let list: Vec<Value> = packets.iter().map(|(id, price, name)| packet(*id, price, name)).collect();
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_id", provider_uid)
        .append_pair("trf_ids", &ids.join(","))
        .finish();
    (format!("packets?{query}"), json!({ "user": user(provider_uid), "type": "packets", "packets": list }))
}

/// `POST /packet?user_id=..&trf_id=..`
pub fn packet_request(provider_uid: &str, id: u64, price: &str, name: &str) -> (String, Value) {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_id", provider_uid)
        .append_pair("trf_id", &id.to_string())
        .finish();
    (format!("packet?{query}"), json!({ "type": "packet", "user": user(provider_uid), "packet": packet(id, price, name) }))
}

/// `POST /delete_subscription?user_id=..&sub_id=..`
pub fn delete_subscription_request(provider_uid: &str, sub_id: u64, packet_id: u64) -> (String, Value) {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("user_id", provider_uid)
        .append_pair("sub_id", &sub_id.to_string())
        .finish();
    let body = json!({
        "type": "delete_sub",
        "user": user(provider_uid),
        "subscription": {
            "packet": { "id": packet_id, "name": "Кино", "is_base": false },
            "start_at": "2025-01-01T00:00:00Z",
            "end_at": "2025-02-01T00:00:00Z",
            "renew": true,
            "is_paused": false,
        },
    });
    (format!("delete_subscription?{query}"), body)
}

/// `POST /balance?user_id=..`
pub fn balance_request(provider_uid: &str) -> (String, Value) {
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("user_id", provider_uid).finish();
    (format!("balance?{query}"), json!({ "type": "balance", "user": user(provider_uid) }))
}

/// The payment-form request's parameters with a correct `SecurityKey`.
pub fn payment_form_params(private_key: &str, user_id: &str, transaction_id: &str, description: &str, amount: &str) -> Vec<(String, String)> {
    let key = form_security_key(private_key, user_id, amount, "RUB", description, transaction_id);
    [
        ("UserID", user_id),
        ("TransactionID", transaction_id),
        ("OrderDescription", description),
        ("Amount", amount),
        ("Currency", "RUB"),
        ("SecurityKey", key.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Form-encodes parameters (for a form body or a query string).
pub fn form_encode(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from Python's hashlib (see the plugin's unit tests for the same ones).
    #[test]
    fn formulas_match_python() {
        assert_eq!(
            form_security_key("s3cr3t-ключ", "abonent-1001", "150.50", "RUB", "Пакет «Кино» на 30 дней", "tx-777"),
            "c39d3c41b959ec8c97d39e161c200537b8b9f5d4"
        );
        assert_eq!(
            callback_security_key("s3cr3t-ключ", "tx-777", "150.50", "ext-42", "RUB"),
            "f3e853d38102bd45ff63dabe0339e807c7498829"
        );
    }
}
