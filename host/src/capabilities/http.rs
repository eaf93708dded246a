//! `http`: outbound requests from plugins, to the instance's allow-listed hosts only.
//!
//! Redirects are not followed (a redirect could leave the allow-list), answers are
//! size-capped, and an answer that echoes a secret back is withheld from the plugin.

use std::time::Duration;

use crate::wit::http::{Error, Host, Request, Response};
use super::state::PluginState;
use crate::secrets::Secrets;

impl Host for PluginState {
    async fn send(&mut self, req: Request) -> Result<Response, Error> {
        let ctx = self.ctx.clone();
        let limits = &ctx.config.limits;
        let mut url = url::Url::parse(&req.url).map_err(|e| Error::InvalidRequest(format!("url: {e}")))?;
        check_allowed(&url, &ctx.config.allowed_hosts)?;
        append_secret_query(&mut url, &ctx.secrets, &req.secret_query)?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("method `{}`", req.method)))?;
        let timeout = req
            .timeout_ms
            .map(|ms| ms as u64)
            .unwrap_or(limits.http_timeout_ms)
            .min(limits.http_timeout_ms);
        let mut builder = self
            .services()
            .http
            .request(method, url.clone())
            .timeout(Duration::from_millis(timeout))
            .body(req.body);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(header) = self.services().request_id_header.get() {
            builder = builder.header(header.clone(), self.request_id.as_str());
        }
        for (name, template) in &req.secret_headers {
            let mut value = reqwest::header::HeaderValue::from_bytes(&render_secret_template(&ctx.secrets, template)?)
                .map_err(|_| Error::InvalidRequest("secret header value is not a valid header".into()))?;
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let started = std::time::Instant::now();
        let result = fetch(builder, limits.http_max_response_bytes).await;
        self.services().metrics.outbound(&ctx.name, &host, outbound_status(&result), started.elapsed());
        tracing::debug!(
            instance = %ctx.name,
            request = %self.request_id,
            %host,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "outbound http"
        );
        let resp = result?;
        let echoed = ctx.secrets.any_in(&resp.body)
            || resp.headers.iter().any(|(_, v)| ctx.secrets.any_in(v.as_bytes()));
        if echoed {
            tracing::warn!(instance = %ctx.name, %host, "outbound answer contained a secret; withheld from the plugin");
            return Err(Error::InvalidRequest("the answer contained a secret and was withheld".into()));
        }
        Ok(resp)
    }
}

/// The metrics label of an outbound request's end.
fn outbound_status(result: &Result<Response, Error>) -> &'static str {
    match result {
        Ok(resp) => crate::metrics::labels::status_class(resp.status),
        Err(Error::Timeout) => "timeout",
        Err(Error::TooLarge(_)) => "too-large",
        Err(Error::Connect(_)) => "connect",
        Err(_) => "refused",
    }
}

async fn fetch(builder: reqwest::RequestBuilder, max_bytes: u64) -> Result<Response, Error> {
    let mut resp = builder.send().await.map_err(classify)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    if resp.content_length().is_some_and(|len| len > max_bytes) {
        return Err(Error::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(Error::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, headers, body })
}

/// Never says which URL failed: the URL may carry secret query parameters, and the
/// plugin knows what it asked for.
fn classify(e: reqwest::Error) -> Error {
    let e = e.without_url();
    if e.is_timeout() {
        Error::Timeout
    } else if e.is_builder() {
        Error::InvalidRequest(e.to_string())
    } else {
        // Connect, TLS and protocol failures: the detail helps the operator.
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        Error::Connect(detail)
    }
}

/// A host is allowed when an entry names it (any port) or names it with this port.
pub fn check_allowed(url: &url::Url, allowed: &[String]) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidRequest(format!("scheme `{}` (only http and https)", url.scheme())));
    }
    let host = url.host_str().ok_or_else(|| Error::InvalidRequest("url has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(0);
    let host_port = format!("{host}:{port}");
    let ok = allowed.iter().any(|entry| entry.eq_ignore_ascii_case(host) || entry.eq_ignore_ascii_case(&host_port));
    if ok {
        Ok(())
    } else {
        Err(Error::Denied(host_port))
    }
}

/// Appends `name=value` pairs whose values are secret templates, percent-encoded, after
/// the query the URL already has.
fn append_secret_query(url: &mut url::Url, secrets: &Secrets, pairs: &[(String, String)]) -> Result<(), Error> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut query = url.query_pairs_mut();
    for (name, template) in pairs {
        let value = String::from_utf8(render_secret_template(secrets, template)?)
            .map_err(|_| Error::InvalidRequest(format!("secret query parameter `{name}` is not UTF-8 text")))?;
        query.append_pair(name, &value);
    }
    Ok(())
}

/// Replaces `{name}` with the named secret's bytes.
fn render_secret_template(secrets: &Secrets, template: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(rest[..open].as_bytes());
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| Error::InvalidRequest("secret template has an unclosed `{`".into()))?;
        let name = &rest[open + 1..open + close];
        let secret = secrets
            .get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("secret `{name}` is not granted to this instance")))?;
        out.extend_from_slice(secret.bytes());
        rest = &rest[open + close + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_host_or_host_port() {
        let allowed = vec!["api.example.com".to_string(), "127.0.0.1:9000".to_string()];
        let ok = |u: &str| check_allowed(&url::Url::parse(u).unwrap(), &allowed);
        assert!(ok("https://api.example.com/v1").is_ok());
        assert!(ok("http://127.0.0.1:9000/x").is_ok());
        assert!(matches!(ok("http://127.0.0.1:9001/x"), Err(Error::Denied(h)) if h == "127.0.0.1:9001"));
        assert!(matches!(ok("https://evil.example.com/"), Err(Error::Denied(_))));
        assert!(matches!(ok("file:///etc/passwd"), Err(Error::InvalidRequest(_))));
    }
}
