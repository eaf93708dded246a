//! Operator routes under `/admin/`, behind `Authorization: Bearer <admin_token>` (the
//! `admin_token` secret, compared in the host):
//!
//! | route | what |
//! |---|---|
//! | `POST /admin/subscribers` `{provider_uid, username, phone, first_name?, last_name?, email?, timezone?}` | register the subscriber on the platform (`POST /users`) and remember its platform id; an existing platform user with that provider uid is linked instead |
//! | `GET /admin/subscribers/{uid}` | the link, balance, platform user and subscriptions, the billing's subscriptions and history |
//! | `POST /admin/subscribers/{uid}/block` | end every subscription, then `is_active=false` |

use crate::api::{Api, ApiError};
use crate::billing::subscriber;
use crate::config::Config;
use crate::followups::{self, Chore};
use crate::subscriptions::{self, SubState};
use crate::users::{self, PlatformLink};
use payhost_sdk::{clock, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};

pub const ADMIN_TOKEN_SECRET: &str = "admin_token";

pub fn dispatch(config: &Config, req: &Request, rest: &[&str]) -> Response {
    match payhost_sdk::auth::is_bearer(ADMIN_TOKEN_SECRET, req.header("authorization")) {
        Ok(true) => {}
        Ok(false) => {
            let mut refused = Response::error(401, "operator routes need Authorization: Bearer <admin_token>");
            refused.headers.push(("www-authenticate".into(), "Bearer".into()));
            return refused;
        }
        Err(e) => {
            payhost_sdk::error("platform24 admin check failed", &[("problem", &e)]);
            return Response::error(500, "the admin_token secret is not configured");
        }
    }
    match (req.method.as_str(), rest) {
        ("POST", ["subscribers"]) => register(config, req),
        ("GET", ["subscribers", uid]) => look_up(config, uid),
        ("POST", ["subscribers", uid, "block"]) => block(config, uid),
        _ => Response::not_found(),
    }
}

fn platform_error(e: &ApiError) -> Response {
    let status = match e {
        ApiError::Timeout | ApiError::NoTime => 504,
        _ => 502,
    };
    Response::json(status, &json!({ "error": "the Platform24 provider API call failed", "detail": e.to_string() }))
}

fn store_error(e: &str) -> Response {
    payhost_sdk::error("platform24 admin storage failed", &[("error", e)]);
    Response::error(503, "the billing's storage is unavailable")
}

#[derive(Deserialize)]
struct Registration {
    provider_uid: String,
    username: String,
    phone: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    timezone: Option<String>,
}

fn register(config: &Config, req: &Request) -> Response {
    let r: Registration = match req.json() {
        Ok(r) => r,
        Err(e) => return Response::error(400, &e),
    };
    let (uid, username, phone) = (r.provider_uid.trim(), r.username.trim(), r.phone.trim());
    if uid.is_empty() || username.is_empty() || phone.is_empty() || uid.contains('/') {
        return Response::error(400, "provider_uid, username and phone are required (provider_uid without `/`)");
    }
    if subscriber(config, uid).is_err() {
        return Response::error(404, "no billing account for this provider_uid: open and fund it first");
    }
    match users::link(uid) {
        Ok(Some(link)) => return Response::json(200, &json!({ "provider_uid": uid, "platform_user": link.platform_user, "created": false })),
        Ok(None) => {}
        Err(e) => return store_error(&e),
    }
    let api = Api::background(config);
    let (user, created) = match api.find_user(uid) {
        Ok(Some(existing)) => (existing, false),
        Ok(None) => {
            let mut body = json!({ "provider_uid": uid, "username": username, "phone": phone });
            // The platform refuses an empty email: optional fields go only when given.
            for (name, value) in [("first_name", &r.first_name), ("last_name", &r.last_name), ("email", &r.email), ("timezone", &r.timezone)] {
                if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                    body[name] = Value::from(v);
                }
            }
            match api.create_user(&body) {
                Ok(user) => (user, true),
                Err(e) => return platform_error(&e),
            }
        }
        Err(e) => return platform_error(&e),
    };
    let link = PlatformLink { platform_user: user.id.clone(), since: clock::now().seconds, blocked_at: None };
    if let Err(e) = users::save(uid, &link) {
        return store_error(&e);
    }
    payhost_sdk::info("platform24 subscriber registered", &[("user", uid), ("platform_user", &user.id), ("created", &created.to_string())]);
    Response::json(if created { 201 } else { 200 }, &json!({ "provider_uid": uid, "platform_user": user.id, "created": created }))
}

fn look_up(config: &Config, uid: &str) -> Response {
    let account = config.account(uid);
    let (link, subs, history) = match (users::link(uid), subscriptions::of_account(&account), subscriptions::history(&account)) {
        (Ok(l), Ok(s), Ok(h)) => (l, s, h),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return store_error(&e),
    };
    let balance = subscriber(config, uid).ok().map(|a| json!({ "balance": a.balance, "currency": a.currency }));
    let api = Api::background(config);
    let platform_user = link.as_ref().map(|l| l.platform_user.clone());
    let platform = match &platform_user {
        Some(id) => match api.subscriptions(id) {
            Ok(list) => json!({ "subscriptions": list }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        None => match api.find_user(uid) {
            Ok(user) => json!({ "user": user }),
            Err(e) => json!({ "error": e.to_string() }),
        },
    };
    Response::json(
        200,
        &json!({
            "provider_uid": uid,
            "account": balance,
            "platform_user": platform_user,
            "blocked_at": link.and_then(|l| l.blocked_at),
            "platform": platform,
            "subscriptions": subs,
            "history": history,
        }),
    )
}

fn block(config: &Config, uid: &str) -> Response {
    let account = config.account(uid);
    let api = Api::background(config);
    let link = match users::link(uid) {
        Ok(Some(l)) => l,
        Ok(None) => match api.find_user(uid) {
            Ok(Some(u)) => PlatformLink { platform_user: u.id, since: clock::now().seconds, blocked_at: None },
            Ok(None) => return Response::error(404, "the subscriber has no user on the platform"),
            Err(e) => return platform_error(&e),
        },
        Err(e) => return store_error(&e),
    };
    // `is_active=false` blocks the login but not the subscriptions: end them first.
    let on_platform = match api.subscriptions(&link.platform_user) {
        Ok(list) => list,
        Err(e) => return platform_error(&e),
    };
    let mut ended = Vec::new();
    for s in &on_platform {
        if let Err(e) = api.end_subscription(&link.platform_user, &s.id) {
            return Response::json(502, &json!({ "error": "ending a subscription failed; call block again", "detail": e.to_string(), "ended": ended }));
        }
        followups::mark_local(&account, Chore::End, &s.id, "Абонент заблокирован оператором");
        ended.push(s.id.clone());
    }
    // The billing's own records of subscriptions the platform no longer lists stop too.
    match subscriptions::of_account(&account) {
        Ok(subs) => {
            for s in subs.iter().filter(|s| s.state != SubState::Ended && !ended.contains(&s.id)) {
                followups::mark_local(&account, Chore::End, &s.id, "Абонент заблокирован оператором");
            }
        }
        Err(e) => return store_error(&e),
    }
    if let Err(e) = api.deactivate_user(&link.platform_user) {
        return Response::json(502, &json!({ "error": "the subscriptions ended but blocking the user failed; call block again", "detail": e.to_string(), "ended": ended }));
    }
    let blocked = PlatformLink { blocked_at: Some(clock::now().seconds), ..link };
    if let Err(e) = users::save(uid, &blocked) {
        return store_error(&e);
    }
    payhost_sdk::info("platform24 subscriber blocked", &[("user", uid), ("ended", &ended.len().to_string())]);
    Response::json(200, &json!({ "provider_uid": uid, "platform_user": blocked.platform_user, "blocked": true, "ended": ended }))
}
