//! The template plugin: one route per host capability (`payhost plugin new` starts a new gateway).
//!
//! Each route shows one host capability, so the host's end-to-end tests can drive every
//! import through a real component, and a plugin author sees the whole API in one page:
//!
//! | route | capability |
//! |---|---|
//! | `GET /` | describes the plugin (name, version) |
//! | `POST /hmac/{sha256,sha1}?key=NAME` | `signing.hmac` over the body with a named secret |
//! | `POST /digest/{sha1,sha256,md5}` | `signing.digest` over the body, hex |
//! | `POST /digest-with-secret/sha1?key=NAME` | a digest whose last part is a secret |
//! | `POST /verify/sha256?key=NAME&sig=HEX` | constant-time verify |
//! | `POST /base64` | base64 of the body |
//! | `GET/PUT/DELETE /store/KEY`, `GET /store?prefix=` | the instance's durable store |
//! | `POST /cas/KEY?expect=OLD` | compare-and-swap |
//! | `GET /fetch?url=URL[&token_secret=NAME]` | outbound HTTP (allow-listed hosts only); with `token_secret`, `token={NAME}` is a secret query parameter |
//! | `GET /now` | the host clock |
//! | `GET /settings` | the instance's settings |
//! | `POST /credit`, `/debit` (JSON) and `GET /balance?account=` | the ledger |
//! | `POST /timer?name=&in=SECONDS` | a durable timer; `GET /timer-fired` shows its firings |
//! | `POST /deliver?url=` | a durable outbound delivery |
//! | `POST /checkout`, `/charge`, `/refund`, `GET /lookup`, `GET /payment` | payments (see `payments`) |
//!
//! A client's mistake (a missing parameter, a body that is not JSON, a malformed amount)
//! is answered 400 saying what is wrong; a host capability that fails is the plugin's
//! failure, which the host answers 500 and logs (see `Refusal`).
// Native builds (unit tests) do not export the component, so its entry points look unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]

mod payments;

use payhost_sdk::signing::{self, DigestAlgorithm, HmacAlgorithm, Part};
use payhost_sdk::types::{PluginInfo, SettingSpec};
use payhost_sdk::{clock, deliveries, ledger, outbound, settings, store, timers};
use payhost_sdk::{Request, Response};
use serde_json::json;

struct Template;

impl payhost_sdk::Plugin for Template {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "template".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Shows every host capability; copy it to start a gateway".into(),
            secrets: vec![],
            hosts: vec![],
            host_settings: vec![],
            settings: vec![SettingSpec {
                name: "greeting".into(),
                required: false,
                description: "Text answered at GET /".into(),
            }],
        }
    }

    fn handle(req: Request) -> Result<Response, String> {
        match route(&req) {
            Ok(response) => Ok(response),
            Err(Refusal::BadRequest(message)) => Ok(Response::error(400, &message)),
            Err(Refusal::Failed(message)) => Err(message),
        }
    }
}

/// Why a route gave no answer of its own. `?` on a client's mistake (a missing
/// parameter, a body that is not JSON, a malformed amount) makes it `BadRequest`,
/// answered 400 with its message so the caller can fix the request. `Failed` is the
/// plugin's own failure (storage down, say): `handle` returns it to the host, which
/// answers 500 without the text, so nothing internal reaches the client, and logs it
/// under the request's id for support staff.
enum Refusal {
    BadRequest(String),
    Failed(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Refusal::BadRequest(message)
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        Refusal::BadRequest(message.to_owned())
    }
}

/// Something the plugin relies on failed: the plugin's failure, not the client's.
fn failed(what: &str, error: impl std::fmt::Debug) -> Refusal {
    Refusal::Failed(format!("{what}: {error:?}"))
}

/// A key or value over the host's limits came from the request; a backend failure is
/// the plugin's.
impl From<store::Error> for Refusal {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::TooLarge(what) => Refusal::BadRequest(format!("too large for the store: {what}")),
            backend => failed("store", backend),
        }
    }
}

impl From<timers::Error> for Refusal {
    fn from(error: timers::Error) -> Self {
        match error {
            timers::Error::Invalid(what) => Refusal::BadRequest(format!("invalid timer: {what}")),
            backend => failed("timers", backend),
        }
    }
}

/// Every route; see the table at the top.
fn route(req: &Request) -> Result<Response, Refusal> {
    let query = req.query_params();
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let response = match (req.method.as_str(), segments.as_slice()) {
        ("GET", [""]) => Response::json(
            200,
            &json!({
                "plugin": "template",
                "version": env!("CARGO_PKG_VERSION"),
                "greeting": settings::get("greeting").unwrap_or_else(|| "hello".into()),
            }),
        ),
        ("POST", ["hmac", alg]) => {
            let alg = match *alg {
                "sha256" => HmacAlgorithm::Sha256,
                "sha1" => HmacAlgorithm::Sha1,
                _ => return Ok(Response::error(400, "unknown algorithm")),
            };
            let key = query.require("key")?;
            hex_answer(signing::hmac(alg, key, &[Part::Bytes(req.body.clone())]))
        }
        ("POST", ["digest", alg]) => {
            let Some(alg) = digest_algorithm(alg) else {
                return Ok(Response::error(400, "unknown algorithm"));
            };
            hex_answer(signing::digest(alg, &[Part::Bytes(req.body.clone())]))
        }
        ("POST", ["digest-with-secret", alg]) => {
            let Some(alg) = digest_algorithm(alg) else {
                return Ok(Response::error(400, "unknown algorithm"));
            };
            let key = query.require("key")?;
            hex_answer(signing::digest(
                alg,
                &[Part::Bytes(req.body.clone()), Part::Secret(key.into())],
            ))
        }
        ("POST", ["verify", "sha256"]) => {
            let key = query.require("key")?;
            let Ok(expected) = signing::from_hex(query.require("sig")?) else {
                return Ok(Response::error(400, "sig is not hex"));
            };
            match signing::verify_hmac(
                HmacAlgorithm::Sha256,
                key,
                &[Part::Bytes(req.body.clone())],
                &expected,
            ) {
                Ok(valid) => Response::json(200, &json!({ "valid": valid })),
                Err(e) => signing_refusal(e),
            }
        }
        ("POST", ["base64"]) => Response::text(200, &signing::base64_encode(&req.body)),
        ("GET", ["store"]) => {
            let prefix = query.get("prefix").unwrap_or("");
            let keys = store::list_keys(prefix, None, 1000)?;
            Response::json(200, &keys)
        }
        ("GET", ["store", key]) => match store::get(key)? {
            Some(v) => Response::with_body(200, "application/octet-stream", v),
            None => Response::error(404, "no such key"),
        },
        ("PUT", ["store", key]) => {
            store::set(key, &req.body)?;
            Response::json(200, &json!({ "stored": key }))
        }
        ("DELETE", ["store", key]) => {
            let existed = store::delete(key)?;
            Response::json(200, &json!({ "deleted": existed }))
        }
        ("POST", ["cas", key]) => {
            let expected = query.get("expect").map(|v| v.as_bytes().to_vec());
            let swapped = store::compare_and_swap(key, expected.as_deref(), &req.body)?;
            Response::json(200, &json!({ "swapped": swapped }))
        }
        ("GET", ["fetch"]) => fetch(query.require("url")?, query.get("token_secret")),
        ("GET", ["now"]) => {
            let now = clock::now();
            Response::json(200, &json!({ "seconds": now.seconds, "nanoseconds": now.nanoseconds }))
        }
        ("GET", ["settings"]) => {
            let all: serde_json::Map<String, serde_json::Value> = settings::all()
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            Response::json(200, &all)
        }
        ("POST", [op @ ("credit" | "debit")]) => money(op, req)?,
        ("GET", ["balance"]) => match ledger::get_account(query.require("account")?) {
            Ok(Some(a)) => Response::json(200, &json!({ "balance": a.balance, "currency": a.currency })),
            Ok(None) => Response::error(404, "no such account"),
            Err(e) => ledger_refusal(e)?,
        },
        ("POST", ["timer"]) => {
            let name = query.require("name")?;
            let delay: i64 = query.require("in")?.parse().map_err(|_| "`in` must be seconds")?;
            let at = clock::Instant { seconds: clock::now().seconds + delay, nanoseconds: 0 };
            timers::schedule(name, at, &req.body)?;
            Response::json(200, &json!({ "scheduled": name, "at": at.seconds }))
        }
        ("GET", ["timer-fired"]) => {
            let fired = store::get("timer-fired")?;
            Response::with_body(200, "text/plain", fired.unwrap_or_default())
        }
        ("POST", ["deliver"]) => {
            let url = query.require("url")?;
            let key = query.get("key").unwrap_or(url);
            let delivery = deliveries::Delivery {
                method: "POST".into(),
                url: url.into(),
                headers: vec![("content-type".into(), "text/plain".into())],
                body: req.body.clone(),
                max_attempts: 0,
            };
            match deliveries::enqueue(key, &delivery) {
                Ok(id) => Response::json(202, &json!({ "delivery": id })),
                Err(deliveries::Error::Denied(host)) => Response::json(403, &json!({ "error": "denied", "host": host })),
                Err(deliveries::Error::Invalid(detail)) => refused(400, "invalid", &detail),
                Err(deliveries::Error::Backend(message)) => return Err(failed("deliveries", message)),
            }
        }
        ("POST", ["checkout"]) => payments::start_checkout(req)?,
        ("POST", ["charge"]) => payments::charge(req)?,
        ("POST", ["refund"]) => payments::refund(req)?,
        ("GET", ["lookup"]) => payments::lookup(req)?,
        ("GET", ["payment"]) => payments::show(req)?,
        _ => Response::not_found(),
    };
    Ok(response)
}

impl payhost_sdk::Events for Template {
    fn on_timer(name: String, payload: Vec<u8>) -> Result<(), String> {
        if name == "start" {
            // The host's load-time call; this plugin has no background loop to start.
            return Ok(());
        }
        // Appends "name:payload;" so tests can see each firing exactly once; a CAS loop,
        // because two timers may fire at the same time.
        loop {
            let old = store::get("timer-fired").map_err(|e| format!("{e:?}"))?;
            let mut log = old.clone().unwrap_or_default();
            log.extend_from_slice(name.as_bytes());
            log.push(b':');
            log.extend_from_slice(&payload);
            log.push(b';');
            if store::compare_and_swap("timer-fired", old.as_deref(), &log).map_err(|e| format!("{e:?}"))? {
                return Ok(());
            }
        }
    }

    fn on_payment_event(event: payhost_sdk::payments::PaymentEvent) -> Result<(), String> {
        payments::record(&event)
    }
}

fn digest_algorithm(name: &str) -> Option<DigestAlgorithm> {
    match name {
        "sha1" => Some(DigestAlgorithm::Sha1),
        "sha256" => Some(DigestAlgorithm::Sha256),
        "md5" => Some(DigestAlgorithm::Md5),
        _ => None,
    }
}

fn hex_answer(result: Result<Vec<u8>, signing::Error>) -> Response {
    match result {
        Ok(bytes) => Response::text(200, &signing::to_hex(&bytes)),
        Err(e) => signing_refusal(e),
    }
}

/// A secret the instance was not granted is 403; text that does not decode is the
/// client's mistake.
fn signing_refusal(error: signing::Error) -> Response {
    match error {
        signing::Error::NotGranted(name) => refused(403, "not-granted", &name),
        signing::Error::InvalidEncoding(detail) => refused(400, "invalid-encoding", &detail),
    }
}

fn fetch(url: &str, token_secret: Option<&str>) -> Response {
    let req = outbound::Request {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        secret_headers: vec![],
        secret_query: token_secret.map(|name| ("token".to_string(), format!("{{{name}}}"))).into_iter().collect(),
        body: vec![],
        timeout_ms: Some(5_000),
    };
    match outbound::send(&req) {
        Ok(resp) => Response::json(
            200,
            &json!({ "status": resp.status, "body": String::from_utf8_lossy(&resp.body) }),
        ),
        Err(outbound::Error::Denied(host)) => Response::json(403, &json!({ "error": "denied", "host": host })),
        Err(outbound::Error::InvalidRequest(detail)) => refused(400, "invalid-request", &detail),
        // The counterpart's failures are a bad gateway; their detail is for the log only.
        Err(outbound::Error::Timeout) => Response::json(502, &json!({ "error": "timeout" })),
        Err(outbound::Error::TooLarge(limit)) => Response::json(502, &json!({ "error": "too-large", "limit": limit })),
        Err(outbound::Error::Connect(detail)) => {
            payhost_sdk::warn("fetch could not connect", &[("url", url), ("detail", &detail)]);
            Response::json(502, &json!({ "error": "connect" }))
        }
    }
}

fn money(op: &str, req: &Request) -> Result<Response, Refusal> {
    let body: serde_json::Value = req.json()?;
    let field = |name: &str| payments::text(&body, name);
    let (key, account, amount, currency) = (field("key")?, field("account")?, field("amount")?, field("currency")?);
    if let Err(e) = ledger::open_account(&account, &currency) {
        return ledger_refusal(e);
    }
    let result = if op == "credit" {
        ledger::credit(&key, &account, &amount, &currency, "template")
    } else {
        ledger::debit(&key, &account, &amount, &currency, "template")
    };
    match result {
        Ok(entry) => Ok(Response::json(200, &json!({ "transaction": entry.transaction_id, "balance": entry.balance_after }))),
        Err(e) => ledger_refusal(e),
    }
}

/// A ledger refusal as the client should see it: 402 for missing funds, 409 when the
/// request clashes with what the ledger holds, 400 for what the request got wrong; a
/// storage failure is the plugin's.
fn ledger_refusal(error: ledger::Error) -> Result<Response, Refusal> {
    use ledger::Error as E;
    let (status, code, detail) = match error {
        E::InsufficientFunds(s) => return Ok(Response::json(402, &json!({ "error": "insufficient-funds", "balance": s.balance }))),
        E::Backend(message) => return Err(failed("ledger", message)),
        E::CurrencyMismatch(detail) => (409, "currency-mismatch", detail),
        E::IdempotencyConflict(detail) => (409, "idempotency-conflict", detail),
        E::NotReversible(detail) => (409, "not-reversible", detail),
        E::UnknownAccount(detail) => (400, "unknown-account", detail),
        E::InvalidAmount(detail) => (400, "invalid-amount", detail),
        E::UnknownCurrency(detail) => (400, "unknown-currency", detail),
    };
    Ok(refused(status, code, &detail))
}

/// A host capability's refusal as the client sees it: its WIT case as `error` and the
/// host's text as `detail`, so a client can branch on the one and a person read the other.
fn refused(status: u16, case: &str, detail: &str) -> Response {
    Response::json(status, &json!({ "error": case, "detail": detail }))
}

// Components export on wasm only; native builds run the unit tests.
#[cfg(target_arch = "wasm32")]
payhost_sdk::export_provider!(Template);
