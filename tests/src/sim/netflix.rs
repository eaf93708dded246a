//! A Netflix MVPD partner API fake: Token, Status, ReadCharge and SendCharge.
//!
//! It checks every request the way Netflix would, with its own code: the
//! `X-Netflix-AuthorizationTime` stamp (format, configured offset, close to the host
//! clock the test tells it), the header signature over the lowercase signed headers that
//! were sent, and the payload signature over the exact body bytes. A request that fails
//! a check is answered 401 and recorded as a violation for the test to assert on.
//!
//! Charge events sit in an at-least-once queue: ReadCharge serves every event that has
//! no accepted result yet. SendCharge accepts one result per event; the same result
//! again (same PartnerReferenceID) is the idempotent path, while a reference already
//! used by another transaction, a second different result, or an event the test marked
//! for rejection comes back in `RejectedEvents` and the event can never be charged again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::{SimRequest, SimResponse, SimServer};

const TOKEN_PATH: &str = "/mvpdapi/v4/subscription/token";
const STATUS_PATH: &str = "/mvpdapi/v5/subscription";
const CHARGE_PATH: &str = "/mvpdapi/v5/event/charge";

/// How far the request's time stamp may be from the host clock the test reported.
const TIME_TOLERANCE_SECONDS: i64 = 300;

/// base64(HMAC-SHA256(key, message)): Netflix's signature.
pub fn nflx_signature(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The header string Netflix signs: lowercase names, in this order, each only when sent.
pub fn header_string(time: Option<&str>, customer: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(time) = time {
        parts.push(format!("x-netflix-authorizationtime={time}"));
    }
    if let Some(customer) = customer {
        parts.push(format!("x-netflix-partnercustomeridentifier={customer}"));
    }
    parts.join(",")
}

/// Unix time and offset (minutes) of a `YYYYMMDDTHHMMSS+HHMM` stamp, or why it is not one.
pub fn parse_authorization_time(text: &str) -> Result<(i64, i32), String> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let s = text.get(r).ok_or_else(|| format!("`{text}` is too short"))?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("`{text}` is not YYYYMMDDTHHMMSS+HHMM"));
        }
        s.parse().map_err(|_| format!("`{text}` has a bad number"))
    };
    if b.len() != 20 || b[8] != b'T' || !(b[15] == b'+' || b[15] == b'-') {
        return Err(format!("`{text}` is not YYYYMMDDTHHMMSS+HHMM"));
    }
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    let (off_h, off_m) = (digits(16..18)?, digits(18..20)?);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = |y: i64, m: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month) || day < 1 || day > month_days(year, month) || hour > 23 || minute > 59 || second > 59 {
        return Err(format!("`{text}` is not a real date and time"));
    }
    if off_m > 59 || off_h > 14 {
        return Err(format!("`{text}` has an impossible offset"));
    }
    // Day count by walking the calendar: slow, obviously right, and not the plugin's method.
    let mut days = 0i64;
    for y in 1970..year {
        days += if leap(y) { 366 } else { 365 };
    }
    for m in 1..month {
        days += month_days(year, m);
    }
    days += day - 1;
    let sign = if b[15] == b'-' { -1 } else { 1 };
    let offset_minutes = sign * (off_h * 60 + off_m);
    let local = days * 86_400 + hour * 3600 + minute * 60 + second;
    Ok((local - offset_minutes * 60, offset_minutes as i32))
}

/// What Netflix has decided about one queued event.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    Accepted(Value),
    Rejected(Value),
}

#[derive(Debug, Clone)]
struct Queued {
    ntid: String,
    event: Value,
    resolution: Option<Resolution>,
}

/// One Token API call Netflix answered.
#[derive(Debug, Clone)]
pub struct TokenIssued {
    pub customer: String,
    pub body: Value,
    pub token: String,
}

struct State {
    key: Vec<u8>,
    credential: String,
    offset_minutes: i32,
    host_now: i64,
    promotions: HashSet<String>,
    subscriptions: HashMap<String, Value>,
    tokens: Vec<TokenIssued>,
    queue: Vec<Queued>,
    reject: HashSet<String>,
    references: HashMap<String, String>,
    redeliver_resolved: bool,
    send_charge_failing: bool,
    next_call_seconds: Option<String>,
    received: Vec<Value>,
    failed_sends: Vec<Value>,
    reads: u32,
    violations: Vec<String>,
}

pub struct NetflixSim {
    server: SimServer,
    state: Arc<Mutex<State>>,
}

impl NetflixSim {
    /// A fake keyed with the decoded partner key, expecting `credential` and time stamps
    /// in `offset` (like `+0530`).
    pub async fn start(key: &[u8], credential: &str, offset: &str) -> Self {
        let (_, offset_minutes) = parse_authorization_time(&format!("19700101T000000{offset}")).expect("offset like +0530");
        let state = Arc::new(Mutex::new(State {
            key: key.to_vec(),
            credential: credential.to_string(),
            offset_minutes,
            // The host starts on the system clock; tests move both forward together.
            host_now: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
            promotions: HashSet::new(),
            subscriptions: HashMap::new(),
            tokens: Vec::new(),
            queue: Vec::new(),
            reject: HashSet::new(),
            references: HashMap::new(),
            redeliver_resolved: false,
            send_charge_failing: false,
            next_call_seconds: Some("60".into()),
            received: Vec::new(),
            failed_sends: Vec::new(),
            reads: 0,
            violations: Vec::new(),
        }));
        let shared = state.clone();
        let server = SimServer::start(move |req| handle(&mut shared.lock().expect("netflix sim state"), &req)).await;
        Self { server, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("netflix sim state"))
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn host_port(&self) -> String {
        self.server.host_port()
    }

    /// While down, every request gets a 503 (and is not checked or logged).
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }

    /// The host clock now (Unix seconds): time stamps are checked against it.
    pub fn set_now(&self, unix: i64) {
        self.with(|s| s.host_now = unix);
    }

    pub fn add_promotion(&self, id: &str) {
        self.with(|s| s.promotions.insert(id.to_string()));
    }

    /// The Status API body served for a customer (default: no service, no promotions).
    pub fn set_subscription(&self, customer: &str, body: Value) {
        self.with(|s| s.subscriptions.insert(customer.to_string(), body));
    }

    /// Queues a charge event (its `NetflixTransactionID` names it).
    pub fn push_event(&self, event: Value) {
        let ntid = event["NetflixTransactionID"].as_str().expect("event with NetflixTransactionID").to_string();
        self.with(|s| s.queue.push(Queued { ntid, event, resolution: None }));
    }

    /// A monthly charge event in Netflix's shape.
    pub fn charge_event(ntid: &str, customer: &str, amount: &str, currency: &str) -> Value {
        json!({
            "Amount": amount,
            "Currency": currency,
            "PlanType": "Standard",
            "PaidThroughDate": "2026-12-22",
            "PeriodStartDate": "2026-11-22",
            "DisplayInvoiceID": format!("INV-{ntid}"),
            "ServiceActivated": "Y",
            "PartnerCustomerID": customer,
            "NetflixTransactionID": ntid,
        })
    }

    /// Results for this transaction will be rejected.
    pub fn reject_transaction(&self, ntid: &str) {
        self.with(|s| s.reject.insert(ntid.to_string()));
    }

    /// Serve events again even after they were resolved (a lagging queue).
    pub fn set_redeliver_resolved(&self, on: bool) {
        self.with(|s| s.redeliver_resolved = on);
    }

    /// SendCharge answers 500 without taking the results.
    pub fn set_send_charge_failing(&self, failing: bool) {
        self.with(|s| s.send_charge_failing = failing);
    }

    /// `Netflix-NextCallInSeconds` of ReadCharge answers (`None`: header left out).
    pub fn set_next_call_seconds(&self, value: Option<&str>) {
        self.with(|s| s.next_call_seconds = value.map(str::to_string));
    }

    pub fn resolution(&self, ntid: &str) -> Option<Resolution> {
        self.with(|s| s.queue.iter().find(|q| q.ntid == ntid).and_then(|q| q.resolution.clone()))
    }

    /// Every result received for a transaction in answered SendCharge calls, in order.
    pub fn results_for(&self, ntid: &str) -> Vec<Value> {
        self.with(|s| s.received.iter().filter(|r| r["NetflixTransactionID"] == ntid).cloned().collect())
    }

    /// Results carried by SendCharge calls that were answered 500.
    pub fn failed_results(&self) -> Vec<Value> {
        self.with(|s| s.failed_sends.clone())
    }

    /// Events still waiting for a result.
    pub fn unresolved(&self) -> Vec<String> {
        self.with(|s| s.queue.iter().filter(|q| q.resolution.is_none()).map(|q| q.ntid.clone()).collect())
    }

    pub fn tokens(&self) -> Vec<TokenIssued> {
        self.with(|s| s.tokens.clone())
    }

    /// ReadCharge calls answered.
    pub fn reads(&self) -> u32 {
        self.with(|s| s.reads)
    }

    /// Every check a request failed.
    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    /// Requests the fake saw.
    pub fn requests(&self) -> Vec<SimRequest> {
        self.server.requests()
    }
}

fn handle(state: &mut State, req: &SimRequest) -> SimResponse {
    let path = req.path.trim_end_matches('/');
    let customer_call = path == TOKEN_PATH || path == STATUS_PATH;
    if let Err(problem) = check_request(state, req, customer_call) {
        state.violations.push(format!("{} {}: {problem}", req.method, req.path));
        return SimResponse::json(401, &json!({ "message": problem }));
    }
    match (req.method.as_str(), path) {
        ("POST", TOKEN_PATH) => token(state, req),
        ("GET", STATUS_PATH) => {
            let customer = req.header("X-Netflix-PartnerCustomerIdentifier").unwrap_or_default();
            let body = state.subscriptions.get(customer).cloned().unwrap_or_else(|| json!({ "Promotions": [] }));
            SimResponse::json(200, &body)
        }
        ("GET", CHARGE_PATH) => read_charge(state),
        ("POST", CHARGE_PATH) => send_charge(state, req),
        _ => SimResponse::json(404, &json!({ "message": "no such endpoint" })),
    }
}

/// Time stamp and signatures, as Netflix checks them.
fn check_request(state: &State, req: &SimRequest, customer_call: bool) -> Result<(), String> {
    let time = req.header("X-Netflix-AuthorizationTime").ok_or("X-Netflix-AuthorizationTime is missing")?;
    let (unix, offset) = parse_authorization_time(time)?;
    if offset != state.offset_minutes {
        return Err(format!("time stamp `{time}` is not in the partner's offset"));
    }
    if (unix - state.host_now).abs() > TIME_TOLERANCE_SECONDS {
        return Err(format!("time stamp `{time}` is {}s away from now", unix - state.host_now));
    }
    let customer = req.header("X-Netflix-PartnerCustomerIdentifier");
    if customer_call && customer.is_none_or(str::is_empty) {
        return Err("X-Netflix-PartnerCustomerIdentifier is missing".into());
    }
    let expected_header = nflx_signature(&state.key, header_string(Some(time), customer).as_bytes());
    check_authorization(state, req.header("X-Netflix-Header-Authorization"), &expected_header, "header")?;
    let payload = req.header("X-Netflix-Payload-Authorization");
    if req.body.is_empty() {
        if payload.is_some() {
            return Err("a request without a body carries a payload signature".into());
        }
    } else {
        let expected_payload = nflx_signature(&state.key, &req.body);
        check_authorization(state, payload, &expected_payload, "payload")?;
    }
    Ok(())
}

fn check_authorization(state: &State, value: Option<&str>, expected: &str, which: &str) -> Result<(), String> {
    let value = value.ok_or_else(|| format!("{which} authorization is missing"))?;
    let wanted = format!("nflxv1 Credential={},Signature={expected}", state.credential);
    if value == wanted {
        Ok(())
    } else {
        Err(format!("{which} authorization `{value}` does not verify"))
    }
}

fn token(state: &mut State, req: &SimRequest) -> SimResponse {
    let customer = req.header("X-Netflix-PartnerCustomerIdentifier").unwrap_or_default().to_string();
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return SimResponse::json(400, &json!({ "message": "body is not JSON" }));
    };
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_string();
    let kind = text("Type");
    let problem = if kind != "IntPay" && kind != "Promo" {
        Some(format!("Type `{kind}` is not IntPay or Promo"))
    } else if text("Channel").is_empty() {
        Some("Channel is required".into())
    } else if text("PartnerChargeCountry").len() != 2 {
        Some("PartnerChargeCountry must be a country code".into())
    } else if text("TokenErrorURL").is_empty() {
        Some("TokenErrorURL is required".into())
    } else if body["ValidityDurationInSeconds"].as_u64().unwrap_or(0) == 0 {
        Some("ValidityDurationInSeconds must be a positive integer".into())
    } else if kind == "Promo" && !state.promotions.contains(&text("PromotionID")) {
        Some(format!("Unknown PromotionID `{}`", text("PromotionID")))
    } else {
        None
    };
    if let Some(message) = problem {
        return SimResponse::json(400, &json!({ "message": message }));
    }
    // Characters that must be URL-encoded in the activation link.
    let token = format!("tok{}+/=", state.tokens.len() + 1);
    state.tokens.push(TokenIssued { customer, body, token: token.clone() });
    SimResponse::json(200, &json!({ "Token": token }))
}

fn read_charge(state: &mut State) -> SimResponse {
    state.reads += 1;
    let redeliver = state.redeliver_resolved;
    let events: Vec<Value> = state
        .queue
        .iter()
        .filter(|q| q.resolution.is_none() || redeliver)
        .map(|q| q.event.clone())
        .collect();
    let response = SimResponse::json(200, &json!({ "Events": events }));
    match &state.next_call_seconds {
        Some(seconds) => response.with_header("Netflix-NextCallInSeconds", seconds),
        None => response,
    }
}

fn send_charge(state: &mut State, req: &SimRequest) -> SimResponse {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return SimResponse::json(400, &json!({ "message": "body is not JSON" }));
    };
    let Some(results) = body["Results"].as_array().cloned() else {
        return SimResponse::json(400, &json!({ "message": "Results is required" }));
    };
    if state.send_charge_failing {
        state.failed_sends.extend(results);
        return SimResponse::json(500, &json!({ "message": "SendCharge is failing" }));
    }
    let mut rejected = Vec::new();
    for result in results {
        state.received.push(result.clone());
        let reference = result["PartnerReferenceID"].as_str().unwrap_or_default().to_string();
        if let Err(problem) = judge(state, &result) {
            state.violations.push(format!("SendCharge result {result}: {problem}"));
            rejected.push(json!({ "PartnerReferenceID": reference }));
        } else if !accept(state, &result) {
            rejected.push(json!({ "PartnerReferenceID": reference }));
        }
    }
    SimResponse::json(200, &json!({ "RejectedEvents": rejected }))
}

/// Fields every result must carry.
fn judge(state: &State, result: &Value) -> Result<(), String> {
    let status = result["ChargeStatus"].as_str().unwrap_or_default();
    let reason = result.get("DeclineReason").and_then(Value::as_str);
    match (status, reason) {
        ("Approved" | "BadRequest", None) => {}
        ("Declined", Some("CustomerRequestedCancel" | "PaymentInstrumentFailure" | "NoPaymentInstrument")) => {}
        _ => return Err(format!("ChargeStatus `{status}` with DeclineReason {reason:?}")),
    }
    for field in ["PartnerCustomerID", "PartnerReferenceID", "NetflixTransactionID"] {
        if result[field].as_str().is_none_or(str::is_empty) {
            return Err(format!("{field} is missing"));
        }
    }
    let ntid = result["NetflixTransactionID"].as_str().unwrap_or_default();
    let Some(queued) = state.queue.iter().find(|q| q.ntid == ntid) else {
        return Err("no such transaction was served".into());
    };
    if matches!(queued.resolution, Some(Resolution::Rejected(_))) {
        return Err("a result for a rejected event was sent again".into());
    }
    if queued.event["PartnerCustomerID"] != result["PartnerCustomerID"] {
        return Err("PartnerCustomerID differs from the event's".into());
    }
    Ok(())
}

/// Applies a well-formed result; false when Netflix rejects it.
fn accept(state: &mut State, result: &Value) -> bool {
    let ntid = result["NetflixTransactionID"].as_str().unwrap_or_default().to_string();
    let reference = result["PartnerReferenceID"].as_str().unwrap_or_default().to_string();
    let reused_elsewhere = state.references.get(&reference).is_some_and(|owner| *owner != ntid);
    let marked = state.reject.contains(&ntid);
    let Some(queued) = state.queue.iter_mut().find(|q| q.ntid == ntid) else {
        return false;
    };
    match &queued.resolution {
        // The same result again is the normal idempotent path; a different one is not.
        Some(Resolution::Accepted(previous)) => {
            let same = previous["PartnerReferenceID"] == result["PartnerReferenceID"]
                && previous["ChargeStatus"] == result["ChargeStatus"];
            if !same {
                state.violations.push(format!("second, different result for {ntid}: {result} after {previous}"));
            }
            same
        }
        Some(Resolution::Rejected(_)) => false,
        None if marked || reused_elsewhere => {
            queued.resolution = Some(Resolution::Rejected(result.clone()));
            false
        }
        None => {
            queued.resolution = Some(Resolution::Accepted(result.clone()));
            state.references.insert(reference, ntid);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stamps_with_its_own_calendar() {
        // 2026-11-22T10:00:12Z from Python's calendar.timegm.
        assert_eq!(parse_authorization_time("20261122T153012+0530").unwrap(), (1_795_341_612, 330));
        assert_eq!(parse_authorization_time("20261231T210000-0500").unwrap(), (1_798_768_800, -300));
        assert!(parse_authorization_time("2026-11-22T15:30:12+05:30").is_err());
        assert!(parse_authorization_time("20260230T000000+0000").is_err());
    }

    #[test]
    fn signature_matches_an_independent_vector() {
        // Python: base64(hmac(b"secret-partner-key-for-tests", header, sha256)).
        let header = header_string(Some("20261122T153012+0530"), Some("1234567"));
        assert_eq!(nflx_signature(b"secret-partner-key-for-tests", header.as_bytes()), "cQx95gmNsoGiddL5xgGBepk40MmfiFq6lYI+R73Yfjs=");
    }
}
