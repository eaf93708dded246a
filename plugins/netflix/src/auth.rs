//! Bearer-token check of the admin routes, with the sdk's helper: the token is a host
//! secret, compared inside the host.

use crate::config::ADMIN_TOKEN_SECRET;

/// Whether the request carries the admin token.
pub fn is_admin(authorization: Option<&str>) -> Result<bool, String> {
    payhost_sdk::auth::is_bearer(ADMIN_TOKEN_SECRET, authorization)
}
