//! The operator console: a browser front end served by the admin listener under
//! `/console/`. It is a client of the admin API like any other: its page calls the
//! same routes under `/console/api/`, authorized by a sign-in session instead of the
//! bearer token, and shows their answers (and errors) as they are.
//!
//! Sign-in trades the admin token for an HttpOnly, `SameSite=Strict` cookie scoped to
//! `/console`; the token itself is never stored by the browser. State-changing calls
//! also need the session's CSRF value in a header (see `guard`).

pub mod assets;
pub mod guard;
pub mod session;

use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::capabilities::signing::constant_time_eq;
use crate::http_util::{json_response, Body};
use session::Sessions;

/// What to do with a request under `/console`.
pub enum Gate {
    /// Answer it as is (a page, an asset, a refusal, sign-out).
    Answer(Response<Body>),
    /// A sign-in attempt: read the body and call [`Console::sign_in`].
    SignIn,
    /// An admin API call from a signed-in console: route this admin path.
    Api(String),
}

#[derive(Default)]
pub struct Console {
    sessions: Sessions,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// What follows `/console` in a path that belongs to the console (`/console`,
/// `/console/...`), or `None` for any other admin path.
pub fn rest_of_path(path: &str) -> Option<&str> {
    path.strip_prefix("/console").filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Console {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides on a request whose path starts with `/console`; `rest` is what follows.
    pub fn gate(&self, method: &Method, rest: &str, headers: &HeaderMap) -> Gate {
        let now = Instant::now();
        let read = method == Method::GET || method == Method::HEAD;
        match rest {
            "" => Gate::Answer(redirect("/console/")),
            "/" if read => Gate::Answer(asset(&assets::INDEX)),
            "/sign-in" if method == Method::POST => match guard::same_origin(headers) {
                Ok(()) => Gate::SignIn,
                Err(msg) => Gate::Answer(refuse(StatusCode::FORBIDDEN, &msg)),
            },
            "/session" if read => match self.session_csrf(headers, now) {
                Some(csrf) => Gate::Answer(secure(json_response(StatusCode::OK, &json!({ "csrf": csrf })))),
                None => Gate::Answer(not_signed_in()),
            },
            "/sign-out" if method == Method::POST => match self.authorize(method, headers, now) {
                Ok(()) => {
                    if let Some(id) = guard::session_cookie(headers) {
                        self.sessions.end(id);
                    }
                    let mut resp = secure(json_response(StatusCode::OK, &json!({ "signed_out": true })));
                    resp.headers_mut().insert(SET_COOKIE, header(&guard::clear_cookie()));
                    Gate::Answer(resp)
                }
                Err(resp) => Gate::Answer(resp),
            },
            _ if rest.starts_with("/api/") => match self.authorize(method, headers, now) {
                Ok(()) => Gate::Api(rest["/api".len()..].to_string()),
                Err(resp) => Gate::Answer(resp),
            },
            _ => match rest.strip_prefix("/assets/").and_then(assets::find) {
                Some(a) if read => Gate::Answer(asset(a)),
                Some(_) => Gate::Answer(refuse(StatusCode::METHOD_NOT_ALLOWED, "console files are read with GET")),
                None => Gate::Answer(refuse(StatusCode::NOT_FOUND, &format!("no console page /console{rest}"))),
            },
        }
    }

    /// Checks the admin token from a sign-in form and, when right, starts a session.
    pub fn sign_in(&self, admin_token: &str, body: &[u8]) -> Response<Body> {
        let form: SignIn = match serde_json::from_slice(body) {
            Ok(f) => f,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("sign-in body must be JSON like {{\"token\": \"...\"}}: {e}")),
        };
        if admin_token.is_empty() || !constant_time_eq(form.token.as_bytes(), admin_token.as_bytes()) {
            return refuse(StatusCode::UNAUTHORIZED, "wrong admin token");
        }
        let issued = self.sessions.issue(Instant::now());
        let mut resp = secure(json_response(StatusCode::OK, &json!({ "csrf": issued.csrf })));
        resp.headers_mut().insert(SET_COOKIE, header(&guard::set_cookie(&issued.id, session::MAX_AGE.as_secs())));
        resp
    }

    fn session_csrf(&self, headers: &HeaderMap, now: Instant) -> Option<String> {
        guard::session_cookie(headers).and_then(|id| self.sessions.csrf(id, now))
    }

    /// A signed-in session for reads; for anything else also the CSRF header and a
    /// same-origin request.
    fn authorize(&self, method: &Method, headers: &HeaderMap, now: Instant) -> Result<(), Response<Body>> {
        let Some(csrf) = self.session_csrf(headers, now) else {
            return Err(not_signed_in());
        };
        if method == Method::GET || method == Method::HEAD {
            return Ok(());
        }
        guard::same_origin(headers).map_err(|msg| refuse(StatusCode::FORBIDDEN, &msg))?;
        match guard::csrf_header(headers) {
            Some(sent) if constant_time_eq(sent.as_bytes(), csrf.as_bytes()) => Ok(()),
            _ => Err(refuse(
                StatusCode::FORBIDDEN,
                &format!("missing or wrong {} header: state-changing console calls must come from the console page", guard::CSRF_HEADER),
            )),
        }
    }
}

/// Headers every console answer carries: no framing (clickjacking), scripts and styles
/// only from the console's own files, nothing cached that holds account data.
pub fn secure(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(
        "content-security-policy",
        header("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert("x-frame-options", header("DENY"));
    h.insert("x-content-type-options", header("nosniff"));
    h.insert("referrer-policy", header("no-referrer"));
    h.entry(CACHE_CONTROL).or_insert(header("no-store"));
    resp
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("console header values are ASCII")
}

fn asset(a: &assets::Asset) -> Response<Body> {
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, a.content_type)
        // Files change only with the binary; revalidating is cheap on loopback.
        .header(CACHE_CONTROL, "no-cache")
        .body(Full::new(Bytes::from_static(a.bytes)))
        .expect("static response parts are valid");
    secure(resp)
}

fn redirect(to: &str) -> Response<Body> {
    let resp = Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(LOCATION, to)
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid");
    secure(resp)
}

fn refuse(status: StatusCode, message: &str) -> Response<Body> {
    secure(json_response(status, &json!({ "error": message })))
}

fn not_signed_in() -> Response<Body> {
    refuse(StatusCode::UNAUTHORIZED, "not signed in to the console, or the session expired: sign in with the admin token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::Value;

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    async fn body_json(resp: Response<Body>) -> Value {
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
    }

    async fn signed_in(console: &Console) -> (String, String) {
        let resp = console.sign_in("tok", br#"{"token":"tok"}"#);
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
        let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
        let csrf = body_json(resp).await["csrf"].as_str().unwrap().to_string();
        (id, csrf)
    }

    #[tokio::test]
    async fn a_wrong_token_is_refused_and_starts_no_session() {
        let console = Console::new();
        let resp = console.sign_in("tok", br#"{"token":"nope"}"#);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().get(SET_COOKIE).is_none());
        assert_eq!(body_json(resp).await["error"], "wrong admin token");
        // An empty configured token never matches an empty guess.
        assert_eq!(console.sign_in("", br#"{"token":""}"#).status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn api_calls_need_a_session_and_writes_need_the_csrf_header() {
        let console = Console::new();
        let (id, csrf) = signed_in(&console).await;
        let cookie = format!("payhost_console={id}");
        let host = "127.0.0.1:8081".to_string();

        let Gate::Answer(resp) = console.gate(&Method::GET, "/api/plugins", &headers(&[])) else { panic!("no session passed") };
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

        let Gate::Api(path) = console.gate(&Method::GET, "/api/plugins", &headers(&[("cookie", cookie.clone())])) else {
            panic!("a signed-in read was refused")
        };
        assert_eq!(path, "/plugins");

        let no_csrf = headers(&[("cookie", cookie.clone()), ("host", host.clone())]);
        let Gate::Answer(resp) = console.gate(&Method::POST, "/api/plugins/a/rollback", &no_csrf) else { panic!("no CSRF passed") };
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);

        let cross = headers(&[("cookie", cookie.clone()), ("host", host.clone()), ("x-payhost-csrf", csrf.clone()), ("origin", "http://evil.test".into())]);
        let Gate::Answer(resp) = console.gate(&Method::POST, "/api/plugins/a/rollback", &cross) else { panic!("cross origin passed") };
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);

        let good = headers(&[("cookie", cookie.clone()), ("host", host.clone()), ("x-payhost-csrf", csrf.clone()), ("origin", format!("http://{host}"))]);
        assert!(matches!(console.gate(&Method::POST, "/api/plugins/a/rollback", &good), Gate::Api(p) if p == "/plugins/a/rollback"));

        let Gate::Answer(resp) = console.gate(&Method::POST, "/sign-out", &good) else { panic!("sign-out is answered") };
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
        let Gate::Answer(resp) = console.gate(&Method::GET, "/api/plugins", &good) else { panic!("a signed-out session passed") };
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn only_console_paths_are_the_consoles() {
        assert_eq!(rest_of_path("/console"), Some(""));
        assert_eq!(rest_of_path("/console/api/plugins"), Some("/api/plugins"));
        assert_eq!(rest_of_path("/consoleX"), None);
        assert_eq!(rest_of_path("/plugins"), None);
    }

    #[test]
    fn pages_and_files_are_served_with_security_headers() {
        let console = Console::new();
        let Gate::Answer(resp) = console.gate(&Method::GET, "/", &HeaderMap::new()) else { panic!() };
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let Gate::Answer(resp) = console.gate(&Method::GET, "/assets/js/main.js", &HeaderMap::new()) else { panic!() };
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
        let Gate::Answer(resp) = console.gate(&Method::GET, "/assets/../Cargo.toml", &HeaderMap::new()) else { panic!() };
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let Gate::Answer(resp) = console.gate(&Method::GET, "", &HeaderMap::new()) else { panic!() };
        assert_eq!(resp.headers()[LOCATION], "/console/");
    }
}
