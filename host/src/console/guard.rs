//! Checks on a console request's headers: the session cookie, and that a
//! state-changing call comes from the console's own page. The session cookie is
//! `SameSite=Strict`; on top of it a state-changing call must carry the session's CSRF
//! value in a header (a cross-site form cannot set headers), and the browser's own
//! `Sec-Fetch-Site` and `Origin`, when sent, must say same-origin.

use hyper::header::{HeaderMap, COOKIE, HOST, ORIGIN};

pub const COOKIE_NAME: &str = "payhost_console";
pub const CSRF_HEADER: &str = "x-payhost-csrf";

/// The session id from the request's `Cookie` header(s).
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

/// Refuses a request the browser says came from another page's origin. Browsers that
/// send neither header (old ones, curl) pass here and still need the CSRF header.
pub fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" {
            return Err(format!("the browser says this request came from a {site} page; the console only accepts its own"));
        }
    }
    if let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let expected = format!("http://{host}");
        let expected_tls = format!("https://{host}");
        if origin != expected && origin != expected_tls {
            return Err(format!("request from origin {origin} refused: the console only accepts calls from its own page"));
        }
    }
    Ok(())
}

/// `Set-Cookie` for a fresh session: unreadable by scripts, never sent by another
/// site's page, sent only to the console's paths.
pub fn set_cookie(id: &str, max_age_secs: u64) -> String {
    format!("{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age_secs}")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        assert_eq!(session_cookie(&headers(&[("cookie", "a=1; payhost_console=abc; b=2")])), Some("abc"));
        assert_eq!(session_cookie(&headers(&[("cookie", "a=1"), ("cookie", "payhost_console=xyz")])), Some("xyz"));
        assert_eq!(session_cookie(&headers(&[("cookie", "payhost_console_other=abc")])), None);
        assert_eq!(session_cookie(&headers(&[("cookie", "payhost_console=")])), None);
        assert_eq!(session_cookie(&headers(&[])), None);
    }

    #[test]
    fn cross_site_requests_are_refused_and_same_origin_ones_pass() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8081"), ("origin", "http://127.0.0.1:8081"), ("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8081")])).is_ok());
        let err = same_origin(&headers(&[("host", "127.0.0.1:8081"), ("sec-fetch-site", "same-site")])).unwrap_err();
        assert!(err.contains("same-site"), "{err}");
        let err = same_origin(&headers(&[("host", "127.0.0.1:8081"), ("origin", "http://127.0.0.1:9999")])).unwrap_err();
        assert!(err.contains("127.0.0.1:9999"), "{err}");
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8081"), ("origin", "null")])).is_err());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_console() {
        let c = set_cookie("abc", 60);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/console"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
