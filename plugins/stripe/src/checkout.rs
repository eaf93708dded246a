//! Hosted checkout: one Checkout Session per reference, the buyer is sent to its `url`.

use payhost_sdk::payments::{Checkout, CheckoutRequest, Error};

use crate::api::{self, Form};
use crate::config::Config;
use crate::events::{FLOW_CHECKOUT, META_CUSTOMER, META_FLOW, META_REFERENCE, META_SAVE_CARD};
use crate::objects::Session;
use crate::amount;

/// The `POST /v1/checkout/sessions` body for a request; errors are bad input.
///
/// The buyer returns to `return_url` whether they paid or cancelled: the outcome reaches
/// the provider as a payment event, not through the return, and the URL is passed on
/// untouched because some providers sign it.
pub fn session_form(req: &CheckoutRequest) -> Result<Form, String> {
    let currency = amount::stripe_currency(&req.currency)?;
    let minor = amount::to_minor(&req.amount, &req.currency)?;
    if req.reference.is_empty() {
        return Err("a checkout needs a reference".into());
    }
    if req.return_url.is_empty() {
        return Err("Stripe Checkout needs a return_url".into());
    }
    let name = if req.description.trim().is_empty() {
        format!("Payment {}", req.reference)
    } else {
        req.description.clone()
    };
    let mut form = Form::new();
    form.add("mode", "payment")
        .add("line_items[0][quantity]", "1")
        .add("line_items[0][price_data][currency]", currency)
        .add("line_items[0][price_data][unit_amount]", minor.to_string())
        .add("line_items[0][price_data][product_data][name]", name)
        .add("client_reference_id", req.reference.clone())
        .add("success_url", req.return_url.clone())
        .add("cancel_url", req.return_url.clone())
        .add(format!("metadata[{META_REFERENCE}]"), req.reference.clone())
        .add(format!("metadata[{META_FLOW}]"), FLOW_CHECKOUT)
        .add(format!("payment_intent_data[metadata][{META_REFERENCE}]"), req.reference.clone())
        .add(format!("payment_intent_data[metadata][{META_FLOW}]"), FLOW_CHECKOUT);
    if !req.customer.is_empty() {
        form.add(format!("metadata[{META_CUSTOMER}]"), req.customer.clone());
    }
    if req.save_card {
        form.add("payment_intent_data[setup_future_usage]", "off_session")
            .add("customer_creation", "always")
            .add(format!("metadata[{META_SAVE_CARD}]"), "true");
    }
    Ok(form)
}

pub fn start(req: CheckoutRequest) -> Result<Checkout, Error> {
    let config = Config::load()?;
    let form = session_form(&req).map_err(Error::Rejected)?;
    let key = api::idempotency_key("checkout", &req.reference)?;
    let body = api::post(&config, "/v1/checkout/sessions", &form, &key)?.map_err(|f| f.into_error())?;
    let session: Session = api::parse(&body, "checkout session")?;
    let redirect_url = session
        .url
        .ok_or_else(|| Error::Other(format!("checkout session {} came back without a url", session.id)))?;
    payhost_sdk::info("stripe checkout started", &[("reference", &req.reference), ("session", &session.id)]);
    Ok(Checkout { id: session.id, redirect_url })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount: &str, currency: &str, save_card: bool) -> CheckoutRequest {
        CheckoutRequest {
            amount: amount.into(),
            currency: currency.into(),
            description: "WebTV subscription".into(),
            reference: "order-42".into(),
            return_url: "https://shop.example/return?o=42&sig=ab".into(),
            customer: "sub-7".into(),
            save_card,
        }
    }

    #[test]
    fn session_form_follows_stripe_checkout() {
        let form = session_form(&request("300.00", "USD", false)).unwrap();
        assert_eq!(form.get("mode"), Some("payment"));
        assert_eq!(form.get("line_items[0][price_data][currency]"), Some("usd"));
        assert_eq!(form.get("line_items[0][price_data][unit_amount]"), Some("30000"));
        assert_eq!(form.get("line_items[0][price_data][product_data][name]"), Some("WebTV subscription"));
        assert_eq!(form.get("line_items[0][quantity]"), Some("1"));
        assert_eq!(form.get("client_reference_id"), Some("order-42"));
        assert_eq!(form.get("metadata[reference]"), Some("order-42"));
        assert_eq!(form.get("metadata[customer]"), Some("sub-7"));
        assert_eq!(form.get("payment_intent_data[metadata][payhost_flow]"), Some("checkout"));
        assert_eq!(form.get("success_url"), Some("https://shop.example/return?o=42&sig=ab"));
        assert_eq!(form.get("cancel_url"), Some("https://shop.example/return?o=42&sig=ab"));
        assert_eq!(form.get("customer_creation"), None);
        assert_eq!(form.get("payment_intent_data[setup_future_usage]"), None);
    }

    #[test]
    fn saving_the_card_asks_for_a_customer_and_off_session_use() {
        let form = session_form(&request("1500", "JPY", true)).unwrap();
        assert_eq!(form.get("line_items[0][price_data][currency]"), Some("jpy"));
        assert_eq!(form.get("line_items[0][price_data][unit_amount]"), Some("1500"));
        assert_eq!(form.get("payment_intent_data[setup_future_usage]"), Some("off_session"));
        assert_eq!(form.get("customer_creation"), Some("always"));
        assert_eq!(form.get("metadata[save_card]"), Some("true"));
    }

    #[test]
    fn bad_input_is_refused_before_calling_stripe() {
        assert!(session_form(&request("300.001", "USD", false)).is_err());
        assert!(session_form(&request("300", "dollars", false)).is_err());
        let mut no_return = request("1.00", "USD", false);
        no_return.return_url.clear();
        assert!(session_form(&no_return).unwrap_err().contains("return_url"));
        let mut no_ref = request("1.00", "USD", false);
        no_ref.reference.clear();
        assert!(session_form(&no_ref).is_err());
    }

    #[test]
    fn an_empty_description_still_names_the_product() {
        let mut req = request("1.00", "USD", false);
        req.description = " ".into();
        let form = session_form(&req).unwrap();
        assert_eq!(form.get("line_items[0][price_data][product_data][name]"), Some("Payment order-42"));
    }
}
