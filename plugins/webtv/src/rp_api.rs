//! `action=rp_status` and `action=rp_cancel`: WebTV asks about or cancels a profile.
//!
//! Answers are the JSON the vendor's PHP prints (`json_encode`, so PHP's escaping), with
//! HTTP 200 even for `{"error": ...}`, as a PHP script answers: WebTV reads the body.

use crate::host::Host;
use crate::recurring;
use crate::signature;
use payhost_sdk::log::Level;
use payhost_sdk::php;
use payhost_sdk::query::Params;
use payhost_sdk::Response;

pub const UNKNOWN_PROFILE: &str = "Unknown recurring payment profile";
pub const BAD_SIGNATURE: &str = "Invalid signature";

/// `{"status":..,"last_payment_date":..,"next_payment_date":..}` or `{"error":..}`.
pub fn status(host: &dyn Host, params: &Params) -> Result<Response, String> {
    let profile_id = match checked_profile_id(host, params, "rp_status")? {
        Ok(id) => id,
        Err(answer) => return Ok(answer),
    };
    Ok(match recurring::find(host, &profile_id)? {
        None => error_json(UNKNOWN_PROFILE),
        Some(profile) => Response::raw_json(
            200,
            format!(
                "{{\"status\":{},\"last_payment_date\":{},\"next_payment_date\":{}}}",
                php::json_string(profile.status.as_str()),
                profile.last_payment_date,
                profile.next_payment_date(),
            ),
        ),
    })
}

/// `{"status":"Cancelled"}` or `{"error":..}`; cancelling twice answers the same.
pub fn cancel(host: &dyn Host, params: &Params) -> Result<Response, String> {
    let profile_id = match checked_profile_id(host, params, "rp_cancel")? {
        Ok(id) => id,
        Err(answer) => return Ok(answer),
    };
    Ok(match recurring::cancel(host, &profile_id)? {
        None => error_json(UNKNOWN_PROFILE),
        Some(profile) => Response::raw_json(
            200,
            format!("{{\"status\":{}}}", php::json_string(profile.status.as_str())),
        ),
    })
}

/// The profile id when the signature over `{action, profile_id}` matches, else the
/// error answer.
fn checked_profile_id(host: &dyn Host, params: &Params, action: &str) -> Result<Result<String, Response>, String> {
    let profile_id = params.get("profile_id").unwrap_or("");
    let Some(signature) = params.get("signature").filter(|s| !s.is_empty()) else {
        return Ok(Err(error_json("Missing signature")));
    };
    if !signature::verify(host, &signature::action_message(action, profile_id), signature)? {
        host.log(Level::Warn, "webtv: signature mismatch", &[("action", action), ("profile_id", profile_id)]);
        return Ok(Err(error_json(BAD_SIGNATURE)));
    }
    if profile_id.is_empty() {
        return Ok(Err(error_json("Missing profile_id")));
    }
    Ok(Ok(profile_id.to_string()))
}

fn error_json(message: &str) -> Response {
    Response::raw_json(200, php::json_object(&[("error", message)]))
}
