//! Customer-facing operations: start an activation, read the subscription status.

use super::netflix_failure;
use crate::activation::{activation_url, check_customer_id, ActivationInput};
use crate::authtime::rfc3339_utc;
use crate::client::Netflix;
use crate::config::Config;
use crate::wire::{normalize_status, parse_token, TokenRequest, STATUS_PATH, TOKEN_PATH};
use payhost_sdk::{clock, Request, Response};
use serde_json::json;

pub fn activate(req: &Request) -> Response {
    let input: ActivationInput = match req.json() {
        Ok(input) => input,
        Err(e) => return Response::error(400, &e),
    };
    let activation = match input.check() {
        Ok(a) => a,
        Err(e) => return Response::error(400, &e),
    };
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => return misconfigured(&e),
    };
    let body = TokenRequest {
        kind: activation.kind,
        channel: &activation.channel,
        promotion_id: activation.promotion_id.as_deref(),
        country: &activation.country,
        token_error_url: &config.token_error_url,
        validity_seconds: config.token_validity_seconds,
    }
    .to_bytes();
    let requested_at = clock::now().seconds;
    let answer = match Netflix::new(&config).post(TOKEN_PATH, Some(&activation.customer_id), body) {
        Ok(answer) => answer,
        Err(e) => return netflix_failure(&e),
    };
    let token = match parse_token(&answer.body) {
        Ok(token) => token,
        Err(e) => return Response::json(502, &json!({ "error": "unexpected Netflix answer", "detail": e })),
    };
    let expires_at = requested_at + i64::from(config.token_validity_seconds);
    payhost_sdk::info("netflix activation started", &[("customer_id", &activation.customer_id), ("type", activation.kind)]);
    Response::json(
        201,
        &json!({
            "customer_id": activation.customer_id,
            "type": activation.kind,
            "activation_url": activation_url(&config.activation_url_template, &token),
            "expires_at": rfc3339_utc(expires_at),
            "expires_at_unix": expires_at,
            "valid_for_seconds": config.token_validity_seconds,
        }),
    )
}

pub fn status(customer_id: &str) -> Response {
    let customer_id = match check_customer_id(customer_id) {
        Ok(id) => id,
        Err(e) => return Response::error(400, &e),
    };
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => return misconfigured(&e),
    };
    let answer = match Netflix::new(&config).get(STATUS_PATH, Some(&customer_id)) {
        Ok(answer) => answer,
        Err(e) => return netflix_failure(&e),
    };
    match normalize_status(&customer_id, &answer.body) {
        Ok(status) => Response::json(200, &status),
        Err(e) => Response::json(502, &json!({ "error": "unexpected Netflix answer", "detail": e })),
    }
}

fn misconfigured(problem: &str) -> Response {
    payhost_sdk::error("netflix plugin is misconfigured", &[("problem", problem)]);
    Response::error(500, problem)
}
