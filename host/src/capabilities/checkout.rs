//! `checkout`: provider plugins take payments through the payment-system instances they
//! are granted (`payment_systems` in config), or through the built-in `balance` method.
//! The rules (reference ownership, the balance method) live in `crate::payments`; this
//! file checks the grant and delegates.

use std::sync::Arc;

use super::state::{InstanceContext, PluginState};
use crate::call_failure::CallFailure;
use crate::payments::balance::{self, BALANCE};
use crate::payments::{ownership, PaymentSystems};
use crate::wit::checkout::Host;
use crate::wit::payments::{ChargeRequest, Checkout, CheckoutRequest, Error, PaymentEvent, RefundResult};
use crate::storage::PaymentKind;
use crate::wit::payments::PaymentStatus;

/// Most requests one `charge-many` takes (one ledger batch on `balance`).
const MAX_BATCH_CHARGES: usize = 512;

impl Host for PluginState {
    async fn start_checkout(&mut self, system: String, req: CheckoutRequest) -> Result<Checkout, Error> {
        let (ctx, request_id, systems) = call_parts(self);
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return Err(Error::Rejected("the balance method has no hosted page; use charge".into()));
        }
        claim_reference(&ctx, &system, &req.reference).await?;
        let reference = req.reference.clone();
        let checkout = systems.start_checkout(&system, &request_id, req).await.map_err(|f| unavailable(&system, f))??;
        track(&ctx, &system, &reference, PaymentKind::Checkout, &checkout.id).await;
        Ok(checkout)
    }

    async fn charge(&mut self, system: String, req: ChargeRequest) -> Result<PaymentEvent, Error> {
        let (ctx, request_id, systems) = call_parts(self);
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return balance::charge(&ctx.services.ledger, &ctx.name, req).await;
        }
        claim_reference(&ctx, &system, &req.reference).await?;
        let reference = req.reference.clone();
        let event = systems.charge(&system, &request_id, req).await.map_err(|f| unavailable(&system, f))?;
        // The plugin cannot know the instance name it runs under; the host does.
        let event = event.map(|e| PaymentEvent { system: system.clone(), ..e })?;
        if event.status == PaymentStatus::Pending {
            track(&ctx, &system, &reference, PaymentKind::Charge, &event.external_id).await;
        } else {
            let storage = &ctx.services.storage;
            if let Err(e) = storage.payment_settled(&system, &reference, "charge", ctx.services.clock.now_millis()).await {
                tracing::warn!(system = %system, error = %e, "could not mark a charge settled; the janitor may look it up");
            }
        }
        Ok(event)
    }

    async fn charge_many(&mut self, system: String, requests: Vec<ChargeRequest>) -> Vec<Result<PaymentEvent, Error>> {
        if requests.len() > MAX_BATCH_CHARGES {
            let refusal = format!("charge-many takes at most {MAX_BATCH_CHARGES} requests, not {}", requests.len());
            return requests.iter().map(|_| Err(Error::Rejected(refusal.clone()))).collect();
        }
        if let Err(e) = check_granted(&self.ctx, &system) {
            return requests.iter().map(|_| Err(e.clone())).collect();
        }
        if system == BALANCE {
            let ctx = self.ctx.clone();
            return balance::charge_many(&ctx.services.ledger, &ctx.name, requests).await;
        }
        // A payment-system plugin takes one charge per call: the same path as `charge`.
        let mut events = Vec::with_capacity(requests.len());
        for req in requests {
            events.push(self.charge(system.clone(), req).await);
        }
        events
    }

    async fn lookup(&mut self, system: String, external_id: String) -> Result<PaymentEvent, Error> {
        let (ctx, request_id, systems) = call_parts(self);
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return Err(Error::NotFound("balance payments are final at charge time; nothing to look up".into()));
        }
        let event = systems.lookup(&system, &request_id, external_id).await.map_err(|f| unavailable(&system, f))?;
        event.map(|e| PaymentEvent { system: system.clone(), ..e })
    }

    async fn refund(&mut self, system: String, external_id: String, amount: Option<String>) -> Result<RefundResult, Error> {
        let (ctx, request_id, systems) = call_parts(self);
        check_granted(&ctx, &system)?;
        if system == BALANCE {
            return balance::refund(&ctx.services.ledger, &ctx.name, external_id, amount).await;
        }
        systems.refund(&system, &request_id, external_id, amount).await.map_err(|f| unavailable(&system, f))?
    }
}

/// What a checkout call needs, taken before it awaits (the store's data is not `Sync`).
fn call_parts(state: &PluginState) -> (Arc<InstanceContext>, String, Arc<dyn PaymentSystems>) {
    (state.ctx.clone(), state.request_id.clone(), state.payment_systems.clone())
}

fn check_granted(ctx: &InstanceContext, system: &str) -> Result<(), Error> {
    if ctx.config.payment_systems.iter().any(|s| s == system) {
        Ok(())
    } else {
        Err(Error::UnknownSystem(format!("`{system}` is not in payment_systems of instance `{}`", ctx.name)))
    }
}

async fn claim_reference(ctx: &InstanceContext, system: &str, reference: &str) -> Result<(), Error> {
    ownership::claim(ctx.services.storage.as_ref(), &ctx.services.clock, &ctx.name, system, reference).await
}

/// Remembers the payment system's id of a payment that has no final outcome yet, so the
/// janitor can look it up if its event never comes. Failing to remember is logged, not
/// fatal: the payment itself went through.
async fn track(ctx: &InstanceContext, system: &str, reference: &str, kind: PaymentKind, external_id: &str) {
    if external_id.is_empty() {
        return;
    }
    if let Err(e) = ctx.services.storage.payment_started(system, reference, kind, external_id).await {
        tracing::warn!(system, error = %e, "could not record the payment id for the janitor");
    }
}

fn unavailable(system: &str, failure: CallFailure) -> Error {
    tracing::warn!(system, %failure, "payment system call failed");
    Error::Unavailable(format!("payment system `{system}`: {}", failure.public_message()))
}
