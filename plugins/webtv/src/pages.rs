//! The few HTML pages a buyer may see here instead of a redirect: a refused request
//! (never a redirect WebTV could take for an answer) and "payment pending", which
//! reloads itself until the outcome is known.

use payhost_sdk::http::html_escape;
use payhost_sdk::Response;

/// A request we will not act on, with the reason and the request id for support.
pub fn error(status: u16, title: &str, detail: &str, request_id: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{detail}</p><p>Return to the store and try again. \
         If this keeps happening, contact support and quote request {id}.</p></body></html>",
        title = html_escape(title),
        detail = html_escape(detail),
        id = html_escape(request_id),
    );
    let mut response = Response::html(status, &body);
    response.headers.push(("cache-control".into(), "no-store".into()));
    response
}

/// The payment has no outcome yet; the page reloads itself every few seconds.
/// `links` are (label, URL) pairs offered to the buyer meanwhile.
pub fn pending(message: &str, links: &[(&str, &str)]) -> Response {
    let links: String = links
        .iter()
        .map(|(label, url)| format!("<p><a href=\"{}\">{}</a></p>", html_escape(url), html_escape(label)))
        .collect();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>Payment pending</title></head><body><h1>Payment pending</h1><p>{}</p>{links}</body></html>",
        html_escape(message),
    );
    let mut response = Response::html(200, &body);
    response.headers.push(("cache-control".into(), "no-store".into()));
    response.headers.push(("refresh".into(), "5".into()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_and_never_redirect() {
        let page = error(403, "Bad <signature>", "a & b", "req-1");
        assert_eq!(page.status, 403);
        let body = String::from_utf8(page.body).unwrap();
        assert!(body.contains("Bad &lt;signature&gt;") && body.contains("a &amp; b") && body.contains("req-1"));
        assert!(!page.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("location")));

        let page = pending("waiting", &[("Cancel", "/return?x=1&cancel=1")]);
        let body = String::from_utf8(page.body).unwrap();
        assert!(body.contains("http-equiv=\"refresh\"") && body.contains("/return?x=1&amp;cancel=1"));
    }
}
