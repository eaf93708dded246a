//! `GET {mount}?id_gateway=..&id_order=..&amount=..&currency_code=..&order_number=..
//! &signature=..&id_user=..[&action=pay&rp_num=..&rp_n_..]`: the buyer arrives to pay.
//!
//! Until the signature is checked the buyer only ever gets an error page (never a
//! redirect WebTV could take for an answer). After it, every outcome is a signed
//! redirect to WebTV, except while a payment is still open.
//!
//! Claiming an attempt goes through compare-and-swap on the order record: of two
//! identical requests one starts attempt n, the other re-drives the same attempt with
//! the same payment reference (the payment system charges a reference once); a paid
//! order answers its stored SUCCESS redirect and moves no money.

use crate::amount;
use crate::checkout_return;
use crate::config::Config;
use crate::host::Host;
use crate::ids;
use crate::items;
use crate::order::{Item, Order, OrderState};
use crate::outcome;
use crate::pages;
use crate::payment::{self, Answer, Payment, NO_TRANSACTION};
use payhost_sdk::records::{self, Change};
use crate::request::{self, PayRequest};
use crate::settle;
use crate::signature;
use payhost_sdk::log::Level;
use payhost_sdk::payments::{ChargeRequest, CheckoutRequest};
use payhost_sdk::query::Params;
use payhost_sdk::Response;
use rust_decimal::Decimal;

/// A checkout still being created after this long is taken as lost (the process died
/// before the buyer got its URL, so it cannot have been paid).
pub const START_TIMEOUT_SECONDS: i64 = 120;

pub fn handle(host: &dyn Host, cfg: &Config, params: &Params, request_id: &str) -> Result<Response, String> {
    let req = match PayRequest::parse(params) {
        Ok(req) => req,
        Err(missing) => {
            return Ok(pages::error(
                400,
                "Incomplete payment request",
                &format!("The store did not send: {}.", missing.join(", ")),
                request_id,
            ))
        }
    };
    if !signature::verify(host, &signature::pay_message(&req.fields()), &req.signature)? {
        host.log(
            Level::Warn,
            "webtv pay request signature mismatch",
            &[("id_gateway", &req.id_gateway), ("id_order", &req.id_order), ("request", request_id)],
        );
        return Ok(pages::error(
            403,
            "Payment request refused",
            "The payment request's signature does not match: it was altered, or signed with another key.",
            request_id,
        ));
    }
    let raw_items = match request::parse_items(params) {
        Ok(items) => items,
        Err(e) => return Ok(pages::error(400, "Invalid recurring payment data", &e, request_id)),
    };
    let now = crate::host::now(host);
    let items = items::verify(host, &raw_items, now)?;
    let indexes = || items.iter().map(Item::index).collect::<Vec<_>>().into_iter();
    let amount = match amount::parse(&req.amount) {
        Ok(amount) => amount,
        Err(e) => return outcome::refused(host, cfg, &req.id_gateway, &req.id_order, &format!("Invalid amount: {e}"), indexes()),
    };
    let currency = req.currency_code.trim().to_ascii_uppercase();
    if !cfg.accepts_currency(&currency) {
        let message = format!("Currency {currency} is not accepted");
        return outcome::refused(host, cfg, &req.id_gateway, &req.id_order, &message, indexes());
    }
    if amount.is_zero() && !items.iter().any(|i| matches!(i, Item::Valid(_))) {
        let message = "Nothing to pay: the amount is 0 and there is no valid recurring payment";
        return outcome::refused(host, cfg, &req.id_gateway, &req.id_order, message, indexes());
    }
    let draft = Draft { req: &req, items: &items, amount, currency, now };
    claim_and_drive(host, cfg, &draft, request_id)
}

/// A verified request, ready to become an order attempt.
struct Draft<'a> {
    req: &'a PayRequest,
    items: &'a [Item],
    amount: Decimal,
    currency: String,
    now: i64,
}

impl Draft<'_> {
    fn attempt(&self, cfg: &Config, attempt: u32) -> Order {
        let direct = !cfg.hosted;
        Order {
            id_gateway: self.req.id_gateway.clone(),
            id_order: self.req.id_order.clone(),
            amount: amount::format(&self.amount),
            currency: self.currency.clone(),
            order_number: self.req.order_number.clone(),
            id_user: self.req.id_user.clone(),
            customer: cfg.customer(&self.req.id_user),
            system: cfg.system.clone(),
            items: self.items.to_vec(),
            attempt,
            state: if direct { OrderState::Charging } else { OrderState::Starting { since: self.now } },
            updated_at: self.now,
        }
    }

    /// Whether a paid order is this same order (WebTV does not change an order's sum).
    fn matches(&self, order: &Order) -> bool {
        amount::parse(&order.amount).is_ok_and(|a| a == self.amount) && order.currency == self.currency
    }
}

enum Next {
    Show(Order),
    Conflict,
    Wait,
    Drive(Order),
    Resume(Order),
}

fn claim_and_drive(host: &dyn Host, cfg: &Config, draft: &Draft<'_>, request_id: &str) -> Result<Response, String> {
    let key = ids::order_key(&ids::order_slug(&draft.req.id_gateway, &draft.req.id_order));
    // A resumed checkout that turns out failed starts a new attempt: at most a few rounds.
    for _ in 0..3 {
        let next = records::update(host, &key, |current: Option<Order>| {
            let Some(order) = current else {
                let fresh = draft.attempt(cfg, 1);
                return Ok((Change::Write(fresh.clone()), Next::Drive(fresh)));
            };
            let next = match &order.state {
                OrderState::Paid { .. } if draft.matches(&order) => Next::Show(order),
                OrderState::Paid { .. } => Next::Conflict,
                OrderState::Charging => Next::Drive(order),
                OrderState::Checkout { .. } => Next::Resume(order),
                OrderState::Starting { since } if draft.now - since < START_TIMEOUT_SECONDS => Next::Wait,
                OrderState::Starting { .. } | OrderState::Failed { .. } => {
                    let fresh = draft.attempt(cfg, order.attempt + 1);
                    return Ok((Change::Write(fresh.clone()), Next::Drive(fresh)));
                }
            };
            Ok((Change::Keep, next))
        })?;
        match next {
            Next::Show(order) => return redirect_or_pending(host, cfg, &order),
            Next::Conflict => {
                return Ok(pages::error(
                    409,
                    "Order already paid",
                    "This order was already paid with a different amount or currency.",
                    request_id,
                ))
            }
            Next::Wait => return Ok(pages::pending("Your payment is being prepared. This page reloads by itself.", &[])),
            Next::Drive(order) if matches!(order.state, OrderState::Charging) => return charge(host, cfg, order),
            Next::Drive(order) => return start_checkout(host, cfg, order),
            Next::Resume(order) => {
                if let Some(response) = resume(host, cfg, order)? {
                    return Ok(response);
                }
            }
        }
    }
    Err("the order kept changing while starting a new payment attempt".into())
}

fn redirect_or_pending(host: &dyn Host, cfg: &Config, order: &Order) -> Result<Response, String> {
    Ok(match outcome::for_order(host, cfg, order)? {
        Some(redirect) => redirect,
        None => pages::pending("Your payment is being processed. This page reloads by itself.", &[]),
    })
}

fn description(order: &Order) -> String {
    format!("WebTV order {}", order.order_number)
}

/// Takes the payment right away (the ledger balance, or a trial with nothing to pay).
fn charge(host: &dyn Host, cfg: &Config, order: Order) -> Result<Response, String> {
    let slug = order.slug();
    let answer = if amount::parse(&order.amount).is_ok_and(|a| a.is_zero()) {
        None
    } else {
        let request = ChargeRequest {
            amount: order.amount.clone(),
            currency: order.currency.clone(),
            description: description(&order),
            reference: order.reference(),
            customer: order.customer.clone(),
            saved_method: None,
        };
        Some(payment::answer(host.charge(&order.system, &request)))
    };
    let settled = match answer {
        None => {
            let trial = Payment {
                attempt: order.attempt,
                system: order.system.clone(),
                transaction: NO_TRANSACTION.into(),
                saved_method: None,
            };
            settle::paid(host, &slug, &trial)?
        }
        Some(Answer::Succeeded(event)) => {
            settle::paid(host, &slug, &Payment::from_event(order.attempt, &order.system, &event))?
        }
        Some(Answer::Failed(message)) => settle::failed(host, &slug, order.attempt, &message)?,
        // Unknown: the attempt stays open; the page reloads and re-drives the same
        // reference, which the payment system charges at most once.
        Some(Answer::Unknown(_)) => None,
    };
    redirect_or_pending(host, cfg, &settled.unwrap_or(order))
}

/// Opens the payment system's hosted page and sends the buyer there.
fn start_checkout(host: &dyn Host, cfg: &Config, order: Order) -> Result<Response, String> {
    let public_url = cfg
        .public_url
        .as_deref()
        .ok_or("hosted checkout needs setting `public_url`")?;
    let reference = order.reference();
    let request = CheckoutRequest {
        amount: order.amount.clone(),
        currency: order.currency.clone(),
        description: description(&order),
        reference: reference.clone(),
        return_url: checkout_return::return_url(host, public_url, &reference)?,
        customer: order.customer.clone(),
        save_card: order.has_valid_items(),
    };
    let checkout = match host.start_checkout(&order.system, &request) {
        Ok(checkout) => checkout,
        Err(e) => {
            let settled = settle::failed(host, &order.slug(), order.attempt, &payment::describe(&e))?;
            return redirect_or_pending(host, cfg, &settled.unwrap_or(order));
        }
    };
    let now = crate::host::now(host);
    let order = records::update(host, &order.key(), |current: Option<Order>| {
        let mut current = current.ok_or("the order vanished while its checkout started")?;
        if current.attempt != order.attempt || !matches!(current.state, OrderState::Starting { .. }) {
            return Ok((Change::Keep, current));
        }
        current.state = OrderState::Checkout {
            checkout_id: checkout.id.clone(),
            redirect_url: checkout.redirect_url.clone(),
        };
        current.updated_at = now;
        Ok((Change::Write(current.clone()), current))
    })?;
    match &order.state {
        OrderState::Checkout { redirect_url, .. } => Ok(no_store(Response::redirect(redirect_url))),
        _ => redirect_or_pending(host, cfg, &order),
    }
}

/// The buyer came back to pay an order whose checkout is open: the outcome if the
/// payment system knows it, else back to the same page. `None` when that checkout
/// failed, so a new attempt may start.
fn resume(host: &dyn Host, cfg: &Config, order: Order) -> Result<Option<Response>, String> {
    let OrderState::Checkout { checkout_id, redirect_url } = &order.state else {
        return redirect_or_pending(host, cfg, &order).map(Some);
    };
    let slug = order.slug();
    match payment::answer(host.lookup(&order.system, checkout_id)) {
        Answer::Succeeded(event) => {
            let settled = settle::paid(host, &slug, &Payment::from_event(order.attempt, &order.system, &event))?;
            redirect_or_pending(host, cfg, &settled.unwrap_or(order)).map(Some)
        }
        Answer::Failed(message) => match settle::failed(host, &slug, order.attempt, &message)? {
            Some(settled) if settled.is_paid() => redirect_or_pending(host, cfg, &settled).map(Some),
            _ => Ok(None),
        },
        Answer::Unknown(_) => Ok(Some(no_store(Response::redirect(redirect_url)))),
    }
}

fn no_store(mut response: Response) -> Response {
    response.headers.push(("cache-control".into(), "no-store".into()));
    response
}
