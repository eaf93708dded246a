//! A Stripe fake: the slice of Stripe's REST API the stripe plugin uses (Checkout
//! Sessions, off-session PaymentIntents, Refunds), and the webhooks Stripe would send,
//! signed with its own HMAC-SHA256 of `{t}.{payload}` (never the plugin's code).
//!
//! Like Stripe it checks the `Bearer` secret key, takes form-encoded bodies and refuses
//! parameters it does not know, and honours `Idempotency-Key` (same key and body: the
//! first answer again; same key, other body: `idempotency_error`). Sessions get a `url`
//! on this server; a test plays the buyer with [`StripeSim::complete_session`], which
//! also sends the signed webhook. A card saved through [`Outcome::PaidWithDecliningCard`]
//! declines later off-session charges (like Stripe's test card 4000 0000 0000 0341).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::http::{SimRequest, SimResponse, SimServer};

/// How the buyer's visit to the hosted page ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Paid; a card saved for off-session use will be charged fine later.
    Paid,
    /// Paid; a card saved for off-session use declines later (insufficient funds).
    PaidWithDecliningCard,
    /// The session expired unpaid (`checkout.session.expired`).
    Expired,
}

/// A webhook as sent, so a test can send the same bytes again.
#[derive(Debug, Clone)]
pub struct SentWebhook {
    /// The host's answer.
    pub status: u16,
    pub payload: Vec<u8>,
    pub signature: String,
}

struct SessionRecord {
    object: Value,
    customer_creation: bool,
    setup_future_usage: Option<String>,
    intent_metadata: Map<String, Value>,
}

#[derive(Default)]
struct State {
    seq: u64,
    sessions: BTreeMap<String, SessionRecord>,
    intents: BTreeMap<String, Value>,
    refunds: Vec<Value>,
    /// Saved payment method -> (customer, declines off-session).
    methods: HashMap<String, (String, bool)>,
    /// Idempotency key -> (method, path and body of the first request, its answer).
    idempotent: HashMap<String, (String, SimResponse)>,
    unauthorized: u32,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_test_{:016}", self.seq)
    }
}

pub struct StripeSim {
    server: SimServer,
    state: Arc<Mutex<State>>,
    secret_key: String,
    webhook_secret: String,
    client: reqwest::Client,
}

/// `t=...,v1=...` for `payload`, as Stripe signs it.
pub fn signature_header(webhook_secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(webhook_secret.as_bytes()).expect("hmac key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl StripeSim {
    /// A fake Stripe account with this API secret key and webhook signing secret.
    pub async fn start(secret_key: &str, webhook_secret: &str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let base = Arc::new(OnceLock::<String>::new());
        let (s, b, key) = (state.clone(), base.clone(), secret_key.to_string());
        let server = SimServer::start(move |req| {
            let base = b.get().cloned().unwrap_or_default();
            handle(&req, &key, &base, &mut s.lock().expect("stripe state"))
        })
        .await;
        base.set(server.base_url()).expect("base url set once");
        Self {
            server,
            state,
            secret_key: secret_key.to_string(),
            webhook_secret: webhook_secret.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// Config of a `stripe` payment-system instance talking to this simulator (mount
    /// `/stripe`). Secrets come from the env vars `STRIPE_SECRET_KEY` and
    /// `STRIPE_WEBHOOK_SECRET`.
    pub fn instance_config(&self) -> String {
        format!(
            r#"
[[plugins]]
name = "stripe"
component = {stripe:?}
mount = "/stripe"
allowed_hosts = [{host:?}]
[plugins.secrets]
stripe_secret_key = {{ env = "STRIPE_SECRET_KEY" }}
stripe_webhook_secret = {{ env = "STRIPE_WEBHOOK_SECRET" }}
[plugins.settings]
api_base_url = {base:?}
"#,
            stripe = crate::plugin_wasm("stripe").display().to_string(),
            host = self.host_port(),
            base = self.base_url(),
        )
    }

    /// Gives the host the env vars `instance_config` names, holding this account's keys.
    pub fn grant(&self, builder: crate::HostBuilder) -> crate::HostBuilder {
        builder.env("STRIPE_SECRET_KEY", &self.secret_key).env("STRIPE_WEBHOOK_SECRET", &self.webhook_secret)
    }

    /// `instance_config` plus a template-plugin provider `shop` allowed to use it.
    pub fn shop_config(&self) -> String {
        format!(
            "{}\n[[plugins]]\nname = \"shop\"\ncomponent = {:?}\nmount = \"/shop\"\npayment_systems = [\"stripe\"]\n",
            self.instance_config(),
            crate::plugin_wasm("template").display().to_string()
        )
    }

    pub fn server(&self) -> &SimServer {
        &self.server
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn host_port(&self) -> String {
        self.server.host_port()
    }

    pub fn requests(&self) -> Vec<SimRequest> {
        self.server.requests()
    }

    /// API calls refused for a missing or wrong secret key.
    pub fn unauthorized(&self) -> u32 {
        self.state.lock().expect("state").unauthorized
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.state.lock().expect("state").sessions.get(id).map(|r| r.object.clone())
    }

    pub fn sessions(&self) -> Vec<Value> {
        self.state.lock().expect("state").sessions.values().map(|r| r.object.clone()).collect()
    }

    pub fn intents(&self) -> Vec<Value> {
        self.state.lock().expect("state").intents.values().cloned().collect()
    }

    pub fn refunds(&self) -> Vec<Value> {
        self.state.lock().expect("state").refunds.clone()
    }

    /// The buyer finishes (or abandons) the hosted page; Stripe then POSTs the signed
    /// `checkout.session.completed` (or `.expired`) event to `webhook_url`, stamped
    /// `timestamp` (the host's clock, which tests control).
    pub async fn complete_session(&self, id: &str, outcome: Outcome, webhook_url: &str, timestamp: i64) -> SentWebhook {
        let event = self.finish_session(id, outcome, timestamp);
        let payload = serde_json::to_vec(&event).expect("event json");
        self.send_webhook(webhook_url, &payload, timestamp).await
    }

    /// Changes the session as the hosted page would and returns the event Stripe sends.
    pub fn finish_session(&self, id: &str, outcome: Outcome, timestamp: i64) -> Value {
        let mut state = self.state.lock().expect("state");
        let state = &mut *state;
        let record = state.sessions.get(id).unwrap_or_else(|| panic!("no session {id}"));
        assert_eq!(record.object["status"], "open", "session {id} is not open");
        let kind = if outcome == Outcome::Expired {
            let record = state.sessions.get_mut(id).expect("session");
            record.object["status"] = json!("expired");
            "checkout.session.expired"
        } else {
            let (intent_id, method_id) = (state.id("pi"), state.id("pm"));
            let record = state.sessions.get(id).expect("session");
            let customer = record.customer_creation.then(|| format!("cus_{}", &method_id[3..]));
            let setup_future_usage = record.setup_future_usage.clone();
            let intent = json!({
                "id": intent_id,
                "object": "payment_intent",
                "amount": record.object["amount_total"],
                "amount_received": record.object["amount_total"],
                "currency": record.object["currency"],
                "customer": customer,
                "payment_method": method_id,
                "setup_future_usage": setup_future_usage,
                "metadata": record.intent_metadata,
                "status": "succeeded",
                "last_payment_error": null,
                "livemode": false,
            });
            if let (Some(customer), Some("off_session")) = (&customer, setup_future_usage.as_deref()) {
                state.methods.insert(method_id.clone(), (customer.clone(), outcome == Outcome::PaidWithDecliningCard));
            }
            state.intents.insert(intent_id.clone(), intent);
            let record = state.sessions.get_mut(id).expect("session");
            record.object["status"] = json!("complete");
            record.object["payment_status"] = json!("paid");
            record.object["payment_intent"] = json!(intent_id);
            record.object["customer"] = json!(customer);
            "checkout.session.completed"
        };
        let object = state.sessions[id].object.clone();
        let event_id = state.id("evt");
        event(&event_id, kind, timestamp, object)
    }

    /// Signs `payload` at `timestamp` and POSTs it to `webhook_url` as Stripe does.
    pub async fn send_webhook(&self, webhook_url: &str, payload: &[u8], timestamp: i64) -> SentWebhook {
        let signature = signature_header(&self.webhook_secret, timestamp, payload);
        let status = self.post_webhook(webhook_url, payload, &signature).await;
        SentWebhook { status, payload: payload.to_vec(), signature }
    }

    /// POSTs `payload` with exactly this `Stripe-Signature` header; returns the status.
    pub async fn post_webhook(&self, webhook_url: &str, payload: &[u8], signature: &str) -> u16 {
        self.client
            .post(webhook_url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .body(payload.to_vec())
            .send()
            .await
            .expect("send webhook")
            .status()
            .as_u16()
    }
}

/// An event envelope as Stripe POSTs it.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind,
    })
}

fn handle(req: &SimRequest, secret_key: &str, base: &str, state: &mut State) -> SimResponse {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    if let ("GET", ["c", "pay", id]) = (req.method.as_str(), segments.as_slice()) {
        return hosted_page(state, id);
    }
    if req.header("authorization") != Some(&format!("Bearer {secret_key}")) {
        state.unauthorized += 1;
        return error(401, "invalid_request_error", None, "Invalid API Key provided");
    }
    if req.method == "POST" {
        let is_form = req.header("content-type").is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return error(400, "invalid_request_error", None, "Stripe takes form-encoded bodies");
        }
        let Some(key) = req.header("idempotency-key").map(str::to_owned) else {
            return route(req, &segments, base, state);
        };
        let fingerprint = format!("{} {} {}", req.method, req.path, String::from_utf8_lossy(&req.body));
        if let Some((first, answer)) = state.idempotent.get(&key) {
            if *first != fingerprint {
                return error(
                    400,
                    "idempotency_error",
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                );
            }
            return answer.clone().with_header("idempotent-replayed", "true");
        }
        let answer = route(req, &segments, base, state);
        // Stripe keeps the outcome of a request that ran (success or card error), not of
        // one refused before running.
        if matches!(answer.status, 200 | 402) {
            state.idempotent.insert(key, (fingerprint, answer.clone()));
        }
        return answer;
    }
    route(req, &segments, base, state)
}

fn route(req: &SimRequest, segments: &[&str], base: &str, state: &mut State) -> SimResponse {
    let form = Form::parse(req);
    match (req.method.as_str(), segments) {
        ("POST", ["v1", "checkout", "sessions"]) => create_session(&form, base, state),
        ("GET", ["v1", "checkout", "sessions", id]) => match state.sessions.get(*id) {
            Some(r) => SimResponse::json(200, &r.object),
            None => missing("checkout.session", id),
        },
        ("POST", ["v1", "payment_intents"]) => create_intent(&form, state),
        ("GET", ["v1", "payment_intents", id]) => match state.intents.get(*id) {
            Some(pi) => SimResponse::json(200, pi),
            None => missing("payment_intent", id),
        },
        ("POST", ["v1", "refunds"]) => create_refund(&form, state),
        _ => error(404, "invalid_request_error", None, &format!("Unrecognized request URL ({} {})", req.method, req.path)),
    }
}

fn hosted_page(state: &State, id: &str) -> SimResponse {
    match state.sessions.get(id) {
        Some(r) => SimResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: format!("<html><body>Pay {} {} (session {id})</body></html>", r.object["amount_total"], r.object["currency"])
                .into_bytes(),
        },
        None => SimResponse::empty(404),
    }
}

fn create_session(form: &Form, base: &str, state: &mut State) -> SimResponse {
    let allowed = [
        "mode",
        "line_items[0][quantity]",
        "line_items[0][price_data][currency]",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][price_data][product_data][name]",
        "client_reference_id",
        "success_url",
        "cancel_url",
        "customer_creation",
        "payment_intent_data[setup_future_usage]",
    ];
    if let Some(bad) = form.unknown(&allowed, &["metadata[", "payment_intent_data[metadata]["]) {
        return bad;
    }
    if form.get("mode") != Some("payment") {
        return invalid("mode", "Only mode=payment is simulated");
    }
    let Some(currency) = form.get("line_items[0][price_data][currency]").filter(|c| is_currency(c)) else {
        return invalid("line_items[0][price_data][currency]", "Invalid currency: must be a lowercase ISO code");
    };
    let Some(unit_amount) = form.get("line_items[0][price_data][unit_amount]").and_then(positive) else {
        return invalid("line_items[0][price_data][unit_amount]", "Invalid integer");
    };
    let Some(quantity) = form.get("line_items[0][quantity]").and_then(positive) else {
        return invalid("line_items[0][quantity]", "Invalid integer");
    };
    if form.get("line_items[0][price_data][product_data][name]").is_none_or(str::is_empty) {
        return invalid("line_items[0][price_data][product_data][name]", "Missing required param");
    }
    for url in ["success_url", "cancel_url"] {
        if !form.get(url).is_some_and(|u| u.starts_with("http://") || u.starts_with("https://")) {
            return invalid(url, "Not a valid URL");
        }
    }
    let customer_creation = match form.get("customer_creation") {
        None | Some("if_required") => false,
        Some("always") => true,
        Some(_) => return invalid("customer_creation", "Invalid value"),
    };
    let setup_future_usage = form.get("payment_intent_data[setup_future_usage]").map(str::to_owned);
    if setup_future_usage.as_deref().is_some_and(|u| u != "off_session" && u != "on_session") {
        return invalid("payment_intent_data[setup_future_usage]", "Invalid value");
    }
    let id = state.id("cs");
    let object = json!({
        "id": id,
        "object": "checkout.session",
        "amount_subtotal": unit_amount * quantity,
        "amount_total": unit_amount * quantity,
        "cancel_url": form.get("cancel_url"),
        "client_reference_id": form.get("client_reference_id"),
        "currency": currency,
        "customer": null,
        "customer_creation": form.get("customer_creation"),
        "livemode": false,
        "metadata": form.bracketed("metadata["),
        "mode": "payment",
        "payment_intent": null,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": form.get("success_url"),
        "url": format!("{base}/c/pay/{id}"),
    });
    state.sessions.insert(
        id,
        SessionRecord {
            object: object.clone(),
            customer_creation,
            setup_future_usage,
            intent_metadata: form.bracketed("payment_intent_data[metadata]["),
        },
    );
    SimResponse::json(200, &object)
}

fn create_intent(form: &Form, state: &mut State) -> SimResponse {
    let allowed = ["amount", "currency", "customer", "payment_method", "off_session", "confirm", "description"];
    if let Some(bad) = form.unknown(&allowed, &["metadata["]) {
        return bad;
    }
    let Some(amount) = form.get("amount").and_then(positive) else {
        return invalid("amount", "Invalid integer");
    };
    let Some(currency) = form.get("currency").filter(|c| is_currency(c)) else {
        return invalid("currency", "Invalid currency");
    };
    if form.get("confirm") != Some("true") || form.get("off_session") != Some("true") {
        return invalid("off_session", "Only confirmed off-session payments are simulated");
    }
    let customer = form.get("customer").unwrap_or_default();
    let method = form.get("payment_method").unwrap_or_default();
    let declines = match state.methods.get(method) {
        Some((owner, declines)) if owner == customer => *declines,
        _ => {
            return error(
                400,
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such PaymentMethod: '{method}' for customer '{customer}'"),
            )
        }
    };
    let id = state.id("pi");
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": if declines { 0 } else { amount },
        "currency": currency,
        "customer": customer,
        "description": form.get("description"),
        "payment_method": method,
        "setup_future_usage": null,
        "metadata": form.bracketed("metadata["),
        "status": "succeeded",
        "last_payment_error": null,
        "livemode": false,
    });
    if !declines {
        state.intents.insert(id, intent.clone());
        return SimResponse::json(200, &intent);
    }
    let card_error = json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    });
    intent["status"] = json!("requires_payment_method");
    intent["last_payment_error"] = card_error.clone();
    state.intents.insert(id, intent.clone());
    let mut body = card_error;
    body["payment_intent"] = intent;
    SimResponse::json(402, &json!({ "error": body }))
}

fn create_refund(form: &Form, state: &mut State) -> SimResponse {
    if let Some(bad) = form.unknown(&["payment_intent", "amount"], &["metadata["]) {
        return bad;
    }
    let intent_id = form.get("payment_intent").unwrap_or_default();
    let Some(intent) = state.intents.get(intent_id) else {
        return missing("payment_intent", intent_id);
    };
    if intent["status"] != "succeeded" {
        return invalid("payment_intent", "This PaymentIntent has no successful charge to refund");
    }
    let paid = intent["amount_received"].as_i64().unwrap_or(0);
    let refunded: i64 = state
        .refunds
        .iter()
        .filter(|r| r["payment_intent"] == intent_id)
        .map(|r| r["amount"].as_i64().unwrap_or(0))
        .sum();
    let left = paid - refunded;
    if left == 0 {
        return error(400, "invalid_request_error", Some("charge_already_refunded"), "Charge has already been refunded.");
    }
    let amount = match form.get("amount") {
        None => left,
        Some(text) => match positive(text) {
            Some(a) if a <= left => a,
            Some(_) => return error(400, "invalid_request_error", Some("amount_too_large"), "Refund amount is greater than unrefunded amount"),
            None => return invalid("amount", "Invalid integer"),
        },
    };
    let currency = intent["currency"].clone();
    let refund = json!({
        "id": state.id("re"),
        "object": "refund",
        "amount": amount,
        "currency": currency,
        "payment_intent": intent_id,
        "metadata": form.bracketed("metadata["),
        "status": "succeeded",
    });
    state.refunds.push(refund.clone());
    SimResponse::json(200, &refund)
}

/// Decoded form pairs.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(req: &SimRequest) -> Self {
        Self(req.form_pairs())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `prefix` = `metadata[` gives `{key: value}` of every `metadata[key]`.
    fn bracketed(&self, prefix: &str) -> Map<String, Value> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let inner = k.strip_prefix(prefix)?.strip_suffix(']')?;
                (!inner.contains('[')).then(|| (inner.to_string(), json!(v)))
            })
            .collect()
    }

    /// Stripe refuses parameters it does not know; so does this fake.
    fn unknown(&self, exact: &[&str], prefixes: &[&str]) -> Option<SimResponse> {
        let bad = self.0.iter().find(|(k, _)| {
            !exact.contains(&k.as_str())
                && !prefixes.iter().any(|p| k.strip_prefix(p).is_some_and(|r| r.ends_with(']') && !r[..r.len() - 1].contains('[')))
        })?;
        Some(error(400, "invalid_request_error", Some("parameter_unknown"), &format!("Received unknown parameter: {}", bad.0)))
    }
}

fn is_currency(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase())
}

fn positive(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|n| *n > 0)
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({ "error": { "type": kind, "code": code, "message": message } }))
}

fn invalid(param: &str, message: &str) -> SimResponse {
    SimResponse::json(
        400,
        &json!({ "error": { "type": "invalid_request_error", "code": "parameter_invalid", "param": param, "message": message } }),
    )
}

fn missing(object: &str, id: &str) -> SimResponse {
    error(404, "invalid_request_error", Some("resource_missing"), &format!("No such {object}: '{id}'"))
}
