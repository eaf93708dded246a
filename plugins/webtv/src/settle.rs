//! Recording an order attempt's outcome, from whichever path learns it first: the
//! direct charge, the buyer's return (a lookup), or the payment event.
//!
//! Every path may run more than once and concurrently, so both transitions are
//! idempotent: the profiles are created by compare-and-swap before the order is marked
//! paid (a crash in between is repaired by the next delivery), a paid order is never
//! changed again, and a failure only ends the attempt it belongs to.

use crate::host::Host;
use crate::ids;
use crate::order::{Order, OrderState};
use crate::payment::{self, Payment, NO_TRANSACTION};
use payhost_sdk::records::{self, Change};
use crate::recurring;
use payhost_sdk::log::Level;

/// Marks the order paid by `payment` (its recurring profiles set up first) and returns
/// it; `None` for an unknown order. A success of another attempt than the one that paid
/// is a double payment and is refunded.
pub fn paid(host: &dyn Host, order_slug: &str, payment: &Payment) -> Result<Option<Order>, String> {
    let key = ids::order_key(order_slug);
    let Some((order, _)) = records::load::<Order>(host, &key)? else {
        return Ok(None);
    };
    if order.is_paid() {
        refund_if_double(host, &order, payment);
        return Ok(Some(order));
    }
    let outcomes = recurring::create_profiles(host, &order, payment)?;
    let now = crate::host::now(host);
    let (order, wrote) = records::update(host, &key, |current: Option<Order>| {
        let mut order = current.ok_or_else(|| format!("order `{order_slug}` vanished while being paid"))?;
        if order.is_paid() {
            return Ok((Change::Keep, (order, false)));
        }
        order.state = OrderState::Paid {
            transaction: payment.transaction.clone(),
            attempt: payment.attempt,
            system: payment.system.clone(),
            paid_at: now,
            items: outcomes.clone(),
        };
        order.updated_at = now;
        Ok((Change::Write(order.clone()), (order, true)))
    })?;
    if wrote {
        host.log(
            Level::Info,
            "webtv order paid",
            &[
                ("id_gateway", &order.id_gateway),
                ("id_order", &order.id_order),
                ("transaction", &payment.transaction),
                ("system", &payment.system),
            ],
        );
    } else {
        refund_if_double(host, &order, payment);
    }
    Ok(Some(order))
}

/// Ends attempt `attempt` as failed, if it is still the one in progress; returns the
/// order as it now stands (`None` when unknown).
pub fn failed(host: &dyn Host, order_slug: &str, attempt: u32, message: &str) -> Result<Option<Order>, String> {
    let now = crate::host::now(host);
    let (order, wrote) = records::update(host, &ids::order_key(order_slug), |current: Option<Order>| {
        let Some(mut order) = current else {
            return Ok((Change::Keep, (None, false)));
        };
        if order.attempt != attempt || !order.in_progress() {
            return Ok((Change::Keep, (Some(order), false)));
        }
        order.state = OrderState::Failed { message: message.to_string() };
        order.updated_at = now;
        Ok((Change::Write(order.clone()), (Some(order), true)))
    })?;
    if let (Some(order), true) = (&order, wrote) {
        host.log(
            Level::Info,
            "webtv order payment failed",
            &[("id_gateway", &order.id_gateway), ("id_order", &order.id_order), ("reason", message)],
        );
    }
    Ok(order)
}

fn refund_if_double(host: &dyn Host, order: &Order, payment: &Payment) {
    let OrderState::Paid { attempt, transaction, .. } = &order.state else {
        return;
    };
    if *attempt == payment.attempt || payment.transaction == NO_TRANSACTION || payment.transaction.is_empty() {
        return;
    }
    let fields = [
        ("id_gateway", order.id_gateway.as_str()),
        ("id_order", order.id_order.as_str()),
        ("kept_transaction", transaction.as_str()),
        ("refunded_transaction", payment.transaction.as_str()),
    ];
    match host.refund(&payment.system, &payment.transaction, None) {
        Ok(_) => host.log(Level::Warn, "webtv order paid twice; refunded the second payment", &fields),
        Err(e) => {
            let reason = payment::describe(&e);
            let mut fields = fields.to_vec();
            fields.push(("reason", &reason));
            host.log(Level::Error, "webtv order paid twice and the refund failed: refund it by hand", &fields);
        }
    }
}
