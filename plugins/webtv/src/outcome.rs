//! Turns an order's outcome into the signed redirect back to WebTV.

use crate::config::Config;
use crate::host::Host;
use crate::items;
use crate::order::{ItemOutcome, Order, OrderState};
use crate::redirect::{self, ItemReturn, ReturnUrl, Status};
use crate::signature;
use payhost_sdk::Response;

/// `rp_n_error` of items that were fine but not set up because the payment failed.
pub const NOT_SET_UP: &str = "Recurring payment not set up: the order payment failed";

/// The redirect for a paid or failed order; `None` while it is in progress.
pub fn for_order(host: &dyn Host, cfg: &Config, order: &Order) -> Result<Option<Response>, String> {
    let response = match &order.state {
        OrderState::Paid { transaction, items, .. } => respond(
            host,
            cfg,
            order,
            Status::Success,
            "",
            transaction,
            items,
        )?,
        OrderState::Failed { message } => {
            let outcomes: Vec<ItemOutcome> =
                order.items.iter().map(|i| items::failed_outcome(i.index(), NOT_SET_UP)).collect();
            respond(host, cfg, order, Status::Error, message, "", &outcomes)?
        }
        _ => return Ok(None),
    };
    Ok(Some(response))
}

/// An ERROR redirect for a signed request we turn down before any payment (an amount we
/// cannot take, a currency we do not accept); every item is returned failed.
pub fn refused(
    host: &dyn Host,
    cfg: &Config,
    id_gateway: &str,
    id_order: &str,
    message: &str,
    item_indexes: impl Iterator<Item = usize>,
) -> Result<Response, String> {
    let outcomes: Vec<ItemOutcome> = item_indexes.map(|i| items::failed_outcome(i, NOT_SET_UP)).collect();
    build(host, cfg, id_gateway, id_order, Status::Error, message, "", &outcomes)
}

fn respond(
    host: &dyn Host,
    cfg: &Config,
    order: &Order,
    status: Status,
    message: &str,
    transaction: &str,
    outcomes: &[ItemOutcome],
) -> Result<Response, String> {
    build(host, cfg, &order.id_gateway, &order.id_order, status, message, transaction, outcomes)
}

#[allow(clippy::too_many_arguments)]
fn build(
    host: &dyn Host,
    cfg: &Config,
    id_gateway: &str,
    id_order: &str,
    status: Status,
    message: &str,
    transaction: &str,
    outcomes: &[ItemOutcome],
) -> Result<Response, String> {
    let signature = signature::sign(
        host,
        &signature::return_message(id_gateway, id_order, status.as_str(), transaction),
    )?;
    let items = outcomes
        .iter()
        .map(|o| {
            Ok(ItemReturn {
                index: o.index,
                error: o.error.clone(),
                profile_id: o.profile_id.clone(),
                status: o.status.clone(),
                first_payment_date: o.first_payment_date,
                signature: signature::sign_digest(
                    host,
                    &signature::profile_digest_input(&o.profile_id, &o.status),
                )?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let url = redirect::build(&ReturnUrl {
        base_url: cfg.base_url.clone(),
        id_gateway: id_gateway.to_string(),
        id_order: id_order.to_string(),
        status,
        status_msg: message.to_string(),
        transaction: transaction.to_string(),
        signature,
        items,
    });
    let mut response = Response::redirect(&url);
    response.headers.push(("cache-control".into(), "no-store".into()));
    Ok(response)
}
