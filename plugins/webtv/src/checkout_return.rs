//! The buyer's way back from a hosted payment page: `{mount}/return?ref=..&t=..`.
//!
//! The link carries the payment reference and a token (our HMAC of it), so nobody can
//! make up return links. The outcome comes from the order record if the payment event
//! already arrived, else from a lookup at the payment system; with neither, the buyer
//! sees a page that reloads itself until the event arrives, with links to go on paying
//! or to give up (which ends the attempt as failed).

use crate::config::Config;
use crate::host::Host;
use crate::ids;
use crate::order::{Order, OrderState};
use crate::outcome;
use crate::pages;
use crate::payment::{self, Answer, Payment};
use crate::settle;
use payhost_sdk::{hex, records};
use payhost_sdk::query::{self, Params};
use payhost_sdk::Response;

pub const CANCELLED_BY_BUYER: &str = "The payment was cancelled";

fn token_message(reference: &str) -> String {
    // Domain-separated from everything else signed with the key (JSON objects and MD5
    // hex digests): this text can be neither.
    format!("payhost-webtv-return\n{reference}")
}

/// The absolute return URL for an attempt's reference.
pub fn return_url(host: &dyn Host, public_url: &str, reference: &str) -> Result<String, String> {
    let token = hex::encode(&crate::host::sign(host, token_message(reference).as_bytes())?);
    Ok(format!("{public_url}/return?{}", query::encode(&[("ref", reference), ("t", &token)])))
}

pub fn handle(host: &dyn Host, cfg: &Config, params: &Params, request_id: &str) -> Result<Response, String> {
    let (Some(reference), Some(token)) = (params.get("ref"), params.get("t")) else {
        return Ok(pages::error(400, "Incomplete return link", "The link lacks its payment reference.", request_id));
    };
    let valid = match hex::decode(token) {
        Some(expected) => crate::host::verify(host, token_message(reference).as_bytes(), &expected)?,
        None => false,
    };
    let parsed = ids::parse_order_reference(reference);
    let (true, Some((slug, _))) = (valid, parsed) else {
        return Ok(pages::error(403, "Invalid return link", "This return link was not issued by us.", request_id));
    };
    let Some((order, _)) = records::load::<Order>(host, &ids::order_key(&slug))? else {
        return Ok(pages::error(404, "Unknown order", "No payment is known for this link.", request_id));
    };
    let cancel = params.get("cancel") == Some("1");
    let order = refresh(host, order, cancel)?;
    if let Some(redirect) = outcome::for_order(host, cfg, &order)? {
        return Ok(redirect);
    }
    let cancel_link = format!("?{}", query::encode(&[("ref", reference), ("t", token), ("cancel", "1")]));
    let mut links: Vec<(&str, &str)> = Vec::new();
    if let OrderState::Checkout { redirect_url, .. } = &order.state {
        links.push(("Continue to the payment page", redirect_url));
        links.push(("Cancel the payment and return to the store", &cancel_link));
    }
    Ok(pages::pending(
        "We are waiting for the payment system to confirm your payment. This page reloads by itself.",
        &links,
    ))
}

/// Asks the payment system about a checkout the event has not settled yet.
fn refresh(host: &dyn Host, order: Order, cancel: bool) -> Result<Order, String> {
    let OrderState::Checkout { checkout_id, .. } = &order.state else {
        return Ok(order);
    };
    let slug = order.slug();
    let settled = match payment::answer(host.lookup(&order.system, checkout_id)) {
        Answer::Succeeded(event) => {
            settle::paid(host, &slug, &Payment::from_event(order.attempt, &order.system, &event))?
        }
        Answer::Failed(message) => settle::failed(host, &slug, order.attempt, &message)?,
        Answer::Unknown(_) if cancel => settle::failed(host, &slug, order.attempt, CANCELLED_BY_BUYER)?,
        Answer::Unknown(_) => None,
    };
    Ok(settled.unwrap_or(order))
}
