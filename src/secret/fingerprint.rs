//! Key fingerprints: the SHA-256 of a key value in lowercase hex. Gateways log this instead of
//! the key (LiteLLM's `LiteLLM_SpendLogs.api_key` is `hash_token(key)`, SHA-256 hex), so an
//! audit matches log lines to a key by fingerprint: from the inventory's `fingerprint` field,
//! or computed in memory from the store's value during an incident (never written anywhere).

use sha2::{Digest, Sha256};

const PREFIX: &str = "sha256:";

/// `sha256:<64 lowercase hex>`, the only form the inventory accepts.
pub fn is_valid(v: &str) -> bool {
    v.strip_prefix(PREFIX).is_some_and(is_hash)
}

/// The 64 hex digits of a valid `sha256:` field, lowercase.
pub fn hex_of(field: &str) -> Option<&str> {
    field.strip_prefix(PREFIX).filter(|h| is_hash(h))
}

/// The SHA-256 of a key value, lowercase hex (what LiteLLM stores as `api_key`).
pub fn of_value(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// 64 lowercase hex digits.
pub fn is_hash(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a log's key value looks like a SHA-256 hex digest (either case, optional prefix).
pub fn looks_hashed(v: &str) -> bool {
    let v = v.strip_prefix(PREFIX).unwrap_or(v);
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_value_is_lowercase_hex_and_valid_with_the_prefix() {
        // FIPS 180-2 test vector for "abc".
        let h = of_value("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_valid(&format!("sha256:{h}")));
        assert_eq!(hex_of(&format!("sha256:{h}")), Some(h.as_str()));
        assert!(!is_valid(&h), "the prefix is required");
        assert!(!is_valid(&format!("sha256:{}", h.to_uppercase())));
        assert!(!is_valid(&format!("sha256:{h}0")));
        assert!(!is_valid("sha256:sk-proj-abcdef"));
        assert!(looks_hashed(&h.to_uppercase()));
        assert!(!looks_hashed("sk-1234"));
    }
}
