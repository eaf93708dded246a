//! Operator routes, behind `Authorization: Bearer <admin_token>`.

use crate::activation::check_customer_id;
use crate::auth::is_admin;
use crate::poller;
use crate::repo::{self, Cancellation};
use payhost_sdk::{clock, Request, Response};
use serde::Deserialize;
use serde_json::json;

pub fn dispatch(req: &Request, rest: &[&str]) -> Response {
    match is_admin(req.header("authorization")) {
        Ok(true) => {}
        Ok(false) => {
            let mut refused = Response::error(401, "admin routes need Authorization: Bearer <admin_token>");
            refused.headers.push(("www-authenticate".into(), "Bearer".into()));
            return refused;
        }
        Err(e) => {
            payhost_sdk::error("netflix admin check failed", &[("problem", &e)]);
            return Response::error(500, "admin token is not configured");
        }
    }
    let answer = match (req.method.as_str(), rest) {
        ("GET", ["customers", id, "charges"]) => charges(id),
        ("GET", ["customers", id, "cancelled"]) => cancelled(id),
        ("PUT", ["customers", id, "cancelled"]) => mark_cancelled(id, req),
        ("DELETE", ["customers", id, "cancelled"]) => unmark_cancelled(id),
        ("GET", ["charge-loop"]) => loop_view(),
        ("POST", ["charge-loop", "start"]) => {
            poller::poll_now().map(|state| Response::json(202, &json!({ "scheduled_at": state.next_at })))
        }
        _ => Ok(Response::not_found()),
    };
    answer.unwrap_or_else(|e| {
        payhost_sdk::error("netflix admin request failed", &[("problem", &e)]);
        Response::error(503, &e)
    })
}

fn customer(id: &str) -> Result<String, Response> {
    check_customer_id(id).map_err(|e| Response::error(400, &e))
}

fn charges(id: &str) -> Result<Response, String> {
    let id = match customer(id) {
        Ok(id) => id,
        Err(refused) => return Ok(refused),
    };
    let records = repo::customer_records(&id)?;
    let cancelled = repo::cancellation(&id)?;
    Ok(Response::json(200, &json!({ "customer_id": id, "cancelled": cancelled, "charges": records })))
}

fn cancelled(id: &str) -> Result<Response, String> {
    let id = match customer(id) {
        Ok(id) => id,
        Err(refused) => return Ok(refused),
    };
    let mark = repo::cancellation(&id)?;
    Ok(Response::json(200, &json!({ "customer_id": id, "cancelled": mark.is_some(), "mark": mark })))
}

#[derive(Deserialize, Default)]
struct MarkInput {
    note: Option<String>,
}

fn mark_cancelled(id: &str, req: &Request) -> Result<Response, String> {
    let id = match customer(id) {
        Ok(id) => id,
        Err(refused) => return Ok(refused),
    };
    let input = if req.body.iter().all(u8::is_ascii_whitespace) {
        MarkInput::default()
    } else {
        match req.json::<MarkInput>() {
            Ok(input) => input,
            Err(e) => return Ok(Response::error(400, &e)),
        }
    };
    // Keep the first date when the mark is set again.
    let since = repo::cancellation(&id)?.map(|m| m.since).unwrap_or_else(|| clock::now().seconds);
    let mark = Cancellation { since, note: input.note };
    repo::set_cancellation(&id, &mark)?;
    payhost_sdk::info("netflix customer marked cancelled", &[("customer_id", &id)]);
    Ok(Response::json(200, &json!({ "customer_id": id, "cancelled": true, "mark": mark })))
}

fn unmark_cancelled(id: &str) -> Result<Response, String> {
    let id = match customer(id) {
        Ok(id) => id,
        Err(refused) => return Ok(refused),
    };
    let existed = repo::clear_cancellation(&id)?;
    payhost_sdk::info("netflix customer cancellation cleared", &[("customer_id", &id)]);
    Ok(Response::json(200, &json!({ "customer_id": id, "cancelled": false, "was_cancelled": existed })))
}

fn loop_view() -> Result<Response, String> {
    let state = repo::loop_state()?;
    let pending = repo::pending()?.len();
    Ok(Response::json(200, &json!({ "state": state, "pending_results": pending })))
}
