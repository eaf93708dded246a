//! HTTP routes under the instance's mount.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /` | anyone | plugin name and version |
//! | `POST /activations` | operator portal | Token API, answers the activation link |
//! | `GET /customers/{id}/subscription` | operator portal | Status API, normalised |
//! | `GET /admin/customers/{id}/charges` | admin | the customer's charge results |
//! | `GET/PUT/DELETE /admin/customers/{id}/cancelled` | admin | the cancellation mark |
//! | `GET /admin/charge-loop` | admin | loop state |
//! | `POST /admin/charge-loop/start` | admin | poll Netflix now |

mod admin;
mod customer;

use crate::client::NetflixError;
use payhost_sdk::pct;
use payhost_sdk::{Request, Response};
use serde_json::json;

pub fn dispatch(req: &Request) -> Response {
    let segments: Vec<String> = req.path.trim_matches('/').split('/').map(pct::decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", [""]) => Response::json(
            200,
            &json!({ "plugin": "netflix", "version": env!("CARGO_PKG_VERSION") }),
        ),
        ("POST", ["activations"]) => customer::activate(req),
        ("GET", ["customers", id, "subscription"]) => customer::status(id),
        (_, ["admin", rest @ ..]) => admin::dispatch(req, rest),
        _ => Response::not_found(),
    }
}

/// A Netflix failure for our caller: never a 200, always with Netflix's own words.
fn netflix_failure(error: &NetflixError) -> Response {
    match error {
        NetflixError::Status { status, message } => Response::json(
            502,
            &json!({ "error": "Netflix refused the request", "netflix_status": status, "netflix_message": message }),
        ),
        NetflixError::Unreachable(m) => Response::json(
            504,
            &json!({ "error": "Netflix could not be reached", "detail": m }),
        ),
        NetflixError::Signing(m) => {
            payhost_sdk::error("netflix request could not be signed", &[("problem", m)]);
            Response::error(500, "the Netflix partner key is not configured correctly")
        }
    }
}
