//! `application/x-www-form-urlencoded` parsing for query strings and form bodies.
//!
//! Values are decoded once (`+` is a space, `%XX` a byte, invalid UTF-8 replaced), in the
//! order received; a repeated name keeps every value, `get` returns the first.

/// Decoded name/value pairs of a query string or form body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw (still encoded) query string, with or without a leading `?`.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.strip_prefix('?').unwrap_or(raw);
        Self(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Parses a form body.
    pub fn parse_bytes(raw: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// First value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of `name`, or an error naming the missing parameter.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("missing parameter `{name}`"))
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Adds the pairs of `other` that this one lacks (query wins over body).
    pub fn merge(&mut self, other: Params) {
        for (k, v) in other.0 {
            if self.get(&k).is_none() {
                self.0.push((k, v));
            }
        }
    }
}

/// Encodes pairs as `a=1&b=x%2Fy` (spaces as `+`, like PHP's `http_build_query`).
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_percent_and_utf8() {
        let p = Params::parse("?a=1+2&b=%2Fx%D1%8F&c=&a=3");
        assert_eq!(p.get("a"), Some("1 2"));
        assert_eq!(p.get("b"), Some("/xя"));
        assert_eq!(p.get("c"), Some(""));
        assert_eq!(p.get("d"), None);
        assert_eq!(p.pairs().len(), 4);
    }

    #[test]
    fn require_names_the_parameter() {
        let p = Params::parse("a=1");
        assert_eq!(p.require("b").unwrap_err(), "missing parameter `b`");
    }

    #[test]
    fn encode_round_trips() {
        let s = encode(&[("x", "a b/c"), ("y", "я")]);
        assert_eq!(s, "x=a+b%2Fc&y=%D1%8F");
        let p = Params::parse(&s);
        assert_eq!(p.get("x"), Some("a b/c"));
        assert_eq!(p.get("y"), Some("я"));
    }
}
