//! Inbound request and response helpers so plugin handlers stay short.

use crate::query::Params;
use crate::types;

/// The inbound request, as the host handed it over.
pub type Request = types::Request;
/// The answer a handler returns.
pub type Response = types::Response;

impl Request {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query string.
    pub fn query_params(&self) -> Params {
        Params::parse(&self.query)
    }

    /// Query parameters, then form-body parameters the query lacks.
    pub fn params(&self) -> Params {
        let mut params = self.query_params();
        let is_form = self
            .header("content-type")
            .map(|ct| ct.starts_with("application/x-www-form-urlencoded"))
            .unwrap_or(false);
        if is_form {
            params.merge(Params::parse_bytes(&self.body));
        }
        params
    }

    /// The body parsed as JSON (an empty body is an error).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("invalid JSON body: {e}"))
    }
}

impl Response {
    /// An answer with a body and a content type.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// JSON answer of any serialisable value.
    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self::with_body(status, "application/json; charset=utf-8", body)
    }

    /// JSON answer from bytes already encoded (e.g. PHP-compatible JSON).
    pub fn raw_json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::with_body(status, "application/json; charset=utf-8", body)
    }

    /// `{"error": message}` with the given status.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::with_body(status, "text/plain; charset=utf-8", body)
    }

    pub fn html(status: u16, body: &str) -> Self {
        Self::with_body(status, "text/html; charset=utf-8", body)
    }

    /// 302 to `location`.
    pub fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::error(404, "no such route")
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
