//! Platform24's provider API as the billing sees it (`platform24-provider-api.md`):
//! users, the packet catalog and subscriptions, under `/api/v2`.
//!
//! Every call must carry the operator's token as the `token` query parameter (401
//! otherwise, and the call is counted as unauthorised). The platform renews a
//! subscription with `renew=true` by itself when its `end_at` passes, and drops one
//! that does not renew; time is the simulator's clock, which tests move together with
//! the host's. Faults can be set per kind of call: a 500, a 400 with the platform's
//! error body, or a hang (the call waits until released, and is applied or not).
//! A user id the platform has not seen in `POST /users` is taken as an existing user
//! (Platform24 only names users it has), so billing requests need no set-up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::{SimRequest, SimResponse};

/// The prefix of the API's paths on the simulator.
pub const API_PATH: &str = "/api/v2";
pub const PERIOD_SECONDS: i64 = 30 * 86_400;

/// Kinds of call a fault can be set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Packets,
    ListSubscriptions,
    Connect,
    PatchSubscription,
    EndSubscription,
    CreateUser,
    FindUser,
    PatchUser,
    PushBalance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Status500,
    /// 400 with `{"error":{"message":..},"status_code":400,"detail":{..}}`.
    Status400,
    /// The call waits until `release_hangs` (at most a minute), then is applied (and
    /// answered) when `apply`, or answered 504 without being applied.
    Hang { apply: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub user: u64,
    pub packet_id: u64,
    pub start_at: i64,
    pub end_at: i64,
    pub renew: bool,
    /// Ended by `DELETE` (or not renewed): no longer listed.
    pub ended: bool,
    /// How many times the platform renewed it.
    pub renewals: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub body: Value,
    pub is_active: bool,
}

#[derive(Default)]
struct State {
    offset: i64,
    catalog: Vec<Value>,
    users: Vec<User>,
    subs: Vec<Subscription>,
    faults: Vec<(Call, Fault)>,
    pushes: Vec<(u64, Value)>,
    calls: Vec<(Call, String)>,
    unauthorised: u32,
    next_id: u64,
}

pub struct ProviderApi {
    token: String,
    state: Mutex<State>,
    released: AtomicBool,
    hanging: AtomicUsize,
}

fn wall() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// `YYYY-MM-DDTHH:MM:SSZ`, written independently of the plugin's code.
pub fn iso(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_iso(text: &str) -> Option<i64> {
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let h: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (y, m, day) = (d[0], d[1], d[2]);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + h[0] * 3600 + h[1] * 60 + h.get(2).copied().unwrap_or(0))
}

fn error_400(message: &str, field: &str) -> SimResponse {
    SimResponse::json(400, &json!({ "error": { "message": message }, "status_code": 400, "detail": { field: [message] } }))
}

impl ProviderApi {
    pub fn new(token: &str) -> Arc<Self> {
        Arc::new(Self { token: token.into(), state: Mutex::new(State { next_id: 1, ..State::default() }), released: AtomicBool::new(false), hanging: AtomicUsize::new(0) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("api state"))
    }

    /// The simulator's clock (Unix seconds).
    pub fn now(&self) -> i64 {
        wall() + self.with(|s| s.offset)
    }

    /// Moves the clock forward (with the host's, see the tests' `advance`).
    pub fn advance(&self, seconds: i64) {
        self.with(|s| s.offset += seconds);
    }

    /// Sets the clock to the host's time.
    pub fn set_now(&self, unix: i64) {
        let w = wall();
        self.with(|s| s.offset = unix - w);
    }

    /// Packets on offer: `(id, name, price, base, available add-on ids)`.
    pub fn set_catalog(&self, packets: &[(u64, &str, &str, bool, &[u64])]) {
        let list = packets
            .iter()
            .map(|(id, name, price, base, available)| {
                json!({ "id": id, "name": name, "price": price, "base": base, "available": available, "period": 30 })
            })
            .collect();
        self.with(|s| s.catalog = list);
    }

    pub fn set_fault(&self, call: Call, fault: Option<Fault>) {
        self.with(|s| {
            s.faults.retain(|(c, _)| *c != call);
            if let Some(f) = fault {
                s.faults.push((call, f));
            }
        });
        if matches!(fault_kind(&self.with(|s| s.faults.clone()), call), Some(Fault::Hang { .. })) {
            self.released.store(false, Ordering::SeqCst);
        }
    }

    /// Calls hanging right now.
    pub fn hanging(&self) -> usize {
        self.hanging.load(Ordering::SeqCst)
    }

    /// Lets every hanging call finish.
    pub fn release_hangs(&self) {
        self.released.store(true, Ordering::SeqCst);
    }

    /// A user the platform already has (as if registered earlier).
    pub fn add_user(&self, provider_uid: &str) -> u64 {
        self.with(|s| {
            let id = 2_000_000 + s.next_id;
            s.next_id += 1;
            s.users.push(User { id, body: json!({ "id": id, "provider_uid": provider_uid, "username": provider_uid, "phone": "+70000000000", "is_active": true }), is_active: true });
            id
        })
    }

    pub fn users(&self) -> Vec<User> {
        self.with(|s| s.users.clone())
    }

    /// A subscription the user has already (e.g. bought before the billing ran).
    pub fn add_subscription(&self, user: u64, packet_id: u64, start_at: i64, end_at: i64) -> String {
        self.with(|s| new_sub(s, user, packet_id, start_at, end_at, true))
    }

    /// Ends every subscription of `user` (as if they ran out).
    pub fn end_all(&self, user: u64) {
        self.with(|s| s.subs.iter_mut().filter(|x| x.user == user).for_each(|x| x.ended = true));
    }

    /// Every subscription, ended ones too.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let now = self.now();
        self.with(|s| {
            roll(s, now);
            s.subs.clone()
        })
    }

    /// The live (listed) subscriptions of one user.
    pub fn live(&self, user: u64) -> Vec<Subscription> {
        self.subscriptions().into_iter().filter(|s| s.user == user && !s.ended).collect()
    }

    pub fn pushes(&self) -> Vec<(u64, Value)> {
        self.with(|s| s.pushes.clone())
    }

    /// Calls received with a good token, in order.
    pub fn calls(&self) -> Vec<(Call, String)> {
        self.with(|s| s.calls.clone())
    }

    pub fn count(&self, call: Call) -> usize {
        self.calls().iter().filter(|(c, _)| *c == call).count()
    }

    pub fn unauthorised(&self) -> u32 {
        self.with(|s| s.unauthorised)
    }

    /// Serves one request under `API_PATH`.
    pub fn handle(&self, req: &SimRequest) -> SimResponse {
        let path = req.path.strip_prefix(API_PATH).unwrap_or(&req.path).to_string();
        let token = req.query_pairs().into_iter().find(|(k, _)| k == "token").map(|(_, v)| v);
        if token.as_deref() != Some(self.token.as_str()) {
            self.with(|s| s.unauthorised += 1);
            return SimResponse::json(401, &json!({ "detail": "Invalid token" }));
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let call = match (req.method.as_str(), segments.as_slice()) {
            ("GET", ["packets"]) => Call::Packets,
            ("GET", ["users"]) => Call::FindUser,
            ("POST", ["users"]) => Call::CreateUser,
            ("PATCH", ["users", _]) => Call::PatchUser,
            ("GET", ["users", _, "subscriptions"]) => Call::ListSubscriptions,
            ("POST", ["users", _, "subscriptions"]) => Call::Connect,
            ("PATCH", ["users", _, "subscriptions", _]) => Call::PatchSubscription,
            ("DELETE", ["users", _, "subscriptions", _]) => Call::EndSubscription,
            ("POST", ["users", _, "provider", "account"]) => Call::PushBalance,
            _ => return SimResponse::json(404, &json!({ "detail": "Not found." })),
        };
        self.with(|s| s.calls.push((call, path.clone())));
        match fault_kind(&self.with(|s| s.faults.clone()), call) {
            Some(Fault::Status500) => return SimResponse::json(500, &json!({ "detail": "Internal server error" })),
            Some(Fault::Status400) => return error_400("Packet is not available for this user", "packet_id"),
            Some(Fault::Hang { apply }) => {
                let started = Instant::now();
                self.hanging.fetch_add(1, Ordering::SeqCst);
                tokio::task::block_in_place(|| {
                    while !self.released.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                });
                self.hanging.fetch_sub(1, Ordering::SeqCst);
                if !apply {
                    return SimResponse::json(504, &json!({ "detail": "Gateway timeout" }));
                }
            }
            None => {}
        }
        let now = self.now();
        self.with(|s| {
            roll(s, now);
            route(s, call, &segments, req, now)
        })
    }
}

fn fault_kind(faults: &[(Call, Fault)], call: Call) -> Option<Fault> {
    faults.iter().find(|(c, _)| *c == call).map(|(_, f)| f.clone())
}

fn new_sub(s: &mut State, user: u64, packet_id: u64, start_at: i64, end_at: i64, renew: bool) -> String {
    let id = format!("sub-{}", s.next_id);
    s.next_id += 1;
    s.subs.push(Subscription { id: id.clone(), user, packet_id, start_at, end_at, renew, ended: false, renewals: 0 });
    id
}

/// The platform's own renewals: a renewing subscription whose period passed starts
/// the next one; one that does not renew ends.
fn roll(s: &mut State, now: i64) {
    for sub in s.subs.iter_mut().filter(|x| !x.ended) {
        while sub.end_at <= now {
            if !sub.renew {
                sub.ended = true;
                break;
            }
            let length = sub.end_at - sub.start_at;
            sub.start_at = sub.end_at;
            sub.end_at += length.max(1);
            sub.renewals += 1;
        }
    }
}

fn packet_json(s: &State, id: u64) -> Value {
    s.catalog.iter().find(|p| p["id"] == id).map(|p| json!({ "id": id, "name": p["name"], "price": p["price"], "base": p["base"] })).unwrap_or_else(|| json!({ "id": id }))
}

fn sub_json(s: &State, sub: &Subscription) -> Value {
    json!({
        "id": sub.id,
        "packet": packet_json(s, sub.packet_id),
        "start_at": iso(sub.start_at),
        "end_at": iso(sub.end_at),
        "renew": sub.renew,
        "is_paused": false,
        "pauses": [],
    })
}

fn user_of(s: &mut State, segment: &str) -> Option<u64> {
    let id: u64 = segment.parse().ok()?;
    if !s.users.iter().any(|u| u.id == id) {
        s.users.push(User { id, body: json!({ "id": id, "is_active": true }), is_active: true });
    }
    Some(id)
}

fn route(s: &mut State, call: Call, segments: &[&str], req: &SimRequest, now: i64) -> SimResponse {
    let not_found = || SimResponse::json(404, &json!({ "detail": "Not found." }));
    match call {
        Call::Packets => SimResponse::json(200, &Value::Array(s.catalog.clone())),
        Call::FindUser => {
            let uid = req.query_pairs().into_iter().find(|(k, _)| k == "provider_uid").map(|(_, v)| v);
            let found: Vec<Value> = s.users.iter().filter(|u| uid.as_deref().is_none_or(|p| u.body["provider_uid"] == p)).map(|u| u.body.clone()).collect();
            SimResponse::json(200, &Value::Array(found))
        }
        Call::CreateUser => {
            let body = req.json();
            for field in ["username", "phone"] {
                if body[field].as_str().is_none_or(str::is_empty) {
                    return error_400("This field is required.", field);
                }
            }
            if body.get("email").is_some_and(|e| e.as_str().is_none_or(str::is_empty)) {
                return error_400("Enter a valid email address.", "email");
            }
            if s.users.iter().any(|u| u.body["provider_uid"] == body["provider_uid"]) {
                return error_400("User with this provider_uid already exists.", "provider_uid");
            }
            let id = 2_000_000 + s.next_id;
            s.next_id += 1;
            let mut user = body.clone();
            user["id"] = json!(id);
            user["is_active"] = json!(true);
            s.users.push(User { id, body: user.clone(), is_active: true });
            SimResponse::json(201, &user)
        }
        Call::PatchUser => {
            let Some(id) = user_of(s, segments[1]) else { return not_found() };
            let patch = req.json();
            let user = s.users.iter_mut().find(|u| u.id == id).expect("user");
            if let Some(active) = patch["is_active"].as_bool() {
                user.is_active = active;
                user.body["is_active"] = json!(active);
            }
            SimResponse::json(200, &user.body.clone())
        }
        Call::ListSubscriptions => {
            let Some(id) = user_of(s, segments[1]) else { return not_found() };
            let list: Vec<Value> = s.subs.iter().filter(|x| x.user == id && !x.ended).map(|x| sub_json(s, x)).collect();
            SimResponse::json(200, &Value::Array(list))
        }
        Call::Connect => {
            let Some(id) = user_of(s, segments[1]) else { return not_found() };
            let Value::Array(entries) = req.json() else { return error_400("Expected a list of items.", "non_field_errors") };
            let mut created = Vec::new();
            for e in &entries {
                let Some(packet) = e["packet_id"].as_u64() else { return error_400("A valid integer is required.", "packet_id") };
                let start = match e["start_at"].as_str() {
                    Some(t) => match parse_iso(t) {
                        Some(v) => v,
                        None => return error_400("Datetime has wrong format.", "start_at"),
                    },
                    None => now,
                };
                let end = e["end_at"].as_str().and_then(parse_iso).unwrap_or(start + PERIOD_SECONDS);
                let renew = e["renew"].as_bool().unwrap_or(true);
                created.push(new_sub(s, id, packet, start, end, renew));
            }
            let list: Vec<Value> = created.iter().map(|sid| sub_json(s, s.subs.iter().find(|x| &x.id == sid).expect("sub"))).collect();
            SimResponse::json(201, &Value::Array(list))
        }
        Call::PatchSubscription | Call::EndSubscription => {
            let Some(id) = user_of(s, segments[1]) else { return not_found() };
            let Some(i) = s.subs.iter().position(|x| x.user == id && x.id == segments[3] && !x.ended) else { return not_found() };
            if call == Call::EndSubscription {
                s.subs[i].ended = true;
                s.subs[i].end_at = s.subs[i].end_at.min(now);
                return SimResponse::empty(204);
            }
            if let Some(renew) = req.json()["renew"].as_bool() {
                s.subs[i].renew = renew;
            }
            SimResponse::json(200, &sub_json(s, &s.subs[i].clone()))
        }
        Call::PushBalance => {
            let Some(id) = user_of(s, segments[1]) else { return not_found() };
            s.pushes.push((id, req.json()));
            SimResponse::json(200, &json!({ "status": "ok" }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips() {
        assert_eq!(iso(1_735_689_600), "2025-01-01T00:00:00Z");
        for t in [0, 951_782_400, 1_735_689_601, 4_102_444_800] {
            assert_eq!(parse_iso(&iso(t)), Some(t));
        }
    }

    #[test]
    fn renewing_subscriptions_roll_and_others_end() {
        let mut s = State { next_id: 1, ..State::default() };
        new_sub(&mut s, 1, 11, 0, 100, true);
        new_sub(&mut s, 1, 12, 0, 100, false);
        roll(&mut s, 250);
        assert_eq!((s.subs[0].start_at, s.subs[0].end_at, s.subs[0].renewals, s.subs[0].ended), (200, 300, 2, false));
        assert!(s.subs[1].ended);
    }
}
