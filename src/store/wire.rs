//! Small pieces the HTTP stores share: a secret string read straight out of a JSON answer
//! into zeroizing memory, and URLs with percent-encoded query parameters.

use crate::secret::Secret;

/// A string field of an answer that holds a secret value: deserialized into a [`Secret`]
/// without an intermediate copy (the `String` serde builds moves into the zeroizing box).
pub(super) struct WireSecret(pub Secret);

impl<'de> serde::Deserialize<'de> for WireSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self(Secret::new(s)))
    }
}

impl std::fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// `{base}{path}?k=v&...`, the values percent-encoded as query components. A base that is not
/// a URL still yields a readable plan (the send fails with a clear transport error).
pub(super) fn url_with_query(base: &str, path: &str, query: &[(&str, &str)]) -> String {
    let joined = format!("{}{path}", base.trim_end_matches('/'));
    match url::Url::parse(&joined) {
        Ok(mut u) => {
            if !query.is_empty() {
                u.query_pairs_mut().extend_pairs(query.iter().copied());
            }
            u.to_string()
        }
        Err(_) => {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if q.is_empty() {
                joined
            } else {
                format!("{joined}?{}", q.join("&"))
            }
        }
    }
}

/// One URL path segment, percent-encoded (a secret name inside a path).
pub(super) fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_path_segments_are_encoded() {
        assert_eq!(
            url_with_query(
                "https://api.example/",
                "/v3/x",
                &[("name", "A B&c"), ("p", "/agents/x")]
            ),
            "https://api.example/v3/x?name=A+B%26c&p=%2Fagents%2Fx"
        );
        assert_eq!(path_segment("a b/c?"), "a%20b%2Fc%3F");
    }
}
