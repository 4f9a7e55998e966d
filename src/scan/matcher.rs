//! Matching a found value to the inventory, in memory, without keeping it.
//!
//! In order (the first that answers wins):
//!
//! 1. **fingerprint**: the SHA-256 of the value equals a key's `fingerprint = "sha256:..."` or
//!    the SHA-256 of the value its store holds now (`--with-stores`, read in memory; only the
//!    digest is kept, as the audit does: DESIGN section 7);
//! 2. **provider key id**: the value equals a key's `provider_key_id` (an AWS access key id
//!    found beside its secret, a key id in a scanner report);
//! 3. **hint**: the value starts with the prefix and ends with the last four characters of
//!    exactly one key's `hint`. Several keys with matching hints make the finding ambiguous,
//!    never a guess.
//!
//! Then the state: **current** when the store's current value is the one found, **rotated**
//! when the store holds another value (the found one was replaced), **unverified** when the
//! store was not read (the key counts as live: unknown is never clean).

use serde::{Deserialize, Serialize};

use crate::audit::fingerprint;
use crate::inventory::{CredentialRef, Inventory};

/// What keyfire knows about a key's current value in its store.
#[derive(Debug, Clone, Default)]
pub enum StoreKnowledge {
    /// Not read (no `--with-stores`, or the key has no store).
    #[default]
    NotRead,
    /// The SHA-256 of the current value (for an AWS key pair, of its secret half) and, for an
    /// AWS pair, its access key id.
    Value {
        fingerprint: String,
        access_key_id: Option<String>,
    },
    /// The read failed: the reason, already redacted.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// The store's current value is the one found: the leaked key is what agents use now.
    Current,
    /// The store holds another value: the found one was already replaced.
    Rotated,
    /// Matched, but the store's value was not compared (counts as live).
    Unverified,
    /// No inventory key matches: a secret keyfire does not manage.
    Unmanaged,
    /// Several keys' hints match; keyfire does not pick one.
    Ambiguous,
    /// The report withheld the value, so it could not be matched.
    Withheld,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Rotated => "already rotated",
            Self::Unverified => "not compared with the store",
            Self::Unmanaged => "unmanaged",
            Self::Ambiguous => "ambiguous",
            Self::Withheld => "value withheld",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The inventory's `fingerprint` field.
    Fingerprint,
    /// The SHA-256 of the store's current value.
    StoreFingerprint,
    ProviderKeyId,
    Hint,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fingerprint => "fingerprint",
            Self::StoreFingerprint => "store value fingerprint",
            Self::ProviderKeyId => "provider key id",
            Self::Hint => "hint",
        }
    }
}

/// What a found value is, as far as the inventory can tell.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub status: KeyState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<MatchedBy>,
    /// Ambiguous: the keys whose hints match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// Why the state is what it is (a store read that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Verdict {
    fn unmanaged() -> Self {
        Self {
            status: KeyState::Unmanaged,
            key: None,
            matched_by: None,
            candidates: Vec::new(),
            note: None,
        }
    }

    pub fn withheld() -> Self {
        Self {
            status: KeyState::Withheld,
            note: Some("the report withholds the value: check the location by hand".into()),
            ..Self::unmanaged()
        }
    }

    /// Matched a key that may still be live.
    pub fn is_live(&self) -> bool {
        self.key.is_some() && matches!(self.status, KeyState::Current | KeyState::Unverified)
    }

    /// Whether this makes the scan fail (exit 1).
    pub fn is_alarm(&self) -> bool {
        self.status != KeyState::Rotated
    }
}

/// The inventory's ways of recognizing its keys, built once per scan.
pub struct Matcher {
    keys: Vec<String>,
    by_fingerprint: foldhash::HashMap<String, Vec<(usize, MatchedBy)>>,
    by_key_id: foldhash::HashMap<String, Vec<usize>>,
    hints: Vec<(String, String, usize)>,
    stores: Vec<StoreKnowledge>,
}

impl Matcher {
    /// `stores` is indexed like `inv.keys` (empty: nothing read).
    pub fn new(inv: &Inventory, mut stores: Vec<StoreKnowledge>) -> Self {
        stores.resize(inv.keys.len(), StoreKnowledge::NotRead);
        let mut by_fingerprint: foldhash::HashMap<String, Vec<(usize, MatchedBy)>> =
            Default::default();
        let mut by_key_id: foldhash::HashMap<String, Vec<usize>> = Default::default();
        let mut hints = Vec::new();
        for (i, k) in inv.keys.iter().enumerate() {
            if let Some(hex) = k.fingerprint.as_deref().and_then(fingerprint::hex_of) {
                by_fingerprint
                    .entry(hex.to_string())
                    .or_default()
                    .push((i, MatchedBy::Fingerprint));
            }
            if let StoreKnowledge::Value { fingerprint, .. } = &stores[i] {
                by_fingerprint
                    .entry(fingerprint.clone())
                    .or_default()
                    .push((i, MatchedBy::StoreFingerprint));
            }
            if let Some(id) = k.provider_key_id.as_deref().filter(|id| !id.is_empty()) {
                by_key_id.entry(id.to_string()).or_default().push(i);
            }
            if let Some((p, t)) = k
                .hint
                .as_deref()
                .and_then(|h| h.split_once("...").or_else(|| h.split_once('…')))
                .filter(|(_, t)| !t.is_empty())
            {
                hints.push((p.to_string(), t.to_string(), i));
            }
        }
        Self {
            keys: inv.keys.iter().map(|k| k.id.clone()).collect(),
            by_fingerprint,
            by_key_id,
            hints,
            stores,
        }
    }

    /// The verdict on one value. `identifier`: the value only names a credential, so only
    /// the provider key id can match it.
    pub fn judge(&self, value: &str, identifier: bool) -> Verdict {
        if !identifier {
            let fp = fingerprint::of_value(value);
            if let Some(hits) = self.by_fingerprint.get(&fp) {
                // The store's own value is the strongest evidence; then the inventory field.
                let best = hits
                    .iter()
                    .find(|(_, by)| *by == MatchedBy::StoreFingerprint)
                    .or_else(|| hits.first());
                if let Some(&(i, by)) = best {
                    return self.matched(i, by, Some(&fp), None);
                }
            }
        }
        if let Some(hits) = self.by_key_id.get(value)
            && let Some(&i) = hits.first()
        {
            return self.matched(i, MatchedBy::ProviderKeyId, None, Some(value));
        }
        if identifier {
            return Verdict::unmanaged();
        }
        let mut hinted: Vec<usize> = self
            .hints
            .iter()
            .filter(|(p, t, _)| {
                value.len() >= p.len() + t.len() + 8 && value.starts_with(p) && value.ends_with(t)
            })
            .map(|(_, _, i)| *i)
            .collect();
        hinted.dedup();
        match hinted.as_slice() {
            [] => Verdict::unmanaged(),
            [i] => {
                let fp = fingerprint::of_value(value);
                self.matched(*i, MatchedBy::Hint, Some(&fp), None)
            }
            many => Verdict {
                status: KeyState::Ambiguous,
                candidates: many.iter().map(|&i| self.keys[i].clone()).collect(),
                note: Some(
                    "several keys' hints match: add `fingerprint` to the inventory, or scan with --with-stores".into(),
                ),
                ..Verdict::unmanaged()
            },
        }
    }

    fn matched(&self, i: usize, by: MatchedBy, fp: Option<&str>, key_id: Option<&str>) -> Verdict {
        let (status, note) = match &self.stores[i] {
            StoreKnowledge::NotRead => (KeyState::Unverified, None),
            StoreKnowledge::Failed(reason) => (
                KeyState::Unverified,
                Some(format!("store read failed: {reason}")),
            ),
            StoreKnowledge::Value {
                fingerprint,
                access_key_id,
            } => {
                let same = match (fp, key_id) {
                    (Some(fp), _) => fp == fingerprint,
                    (None, Some(id)) => access_key_id.as_deref() == Some(id),
                    (None, None) => false,
                };
                if same {
                    (KeyState::Current, None)
                } else {
                    (KeyState::Rotated, None)
                }
            }
        };
        Verdict {
            status,
            key: Some(self.keys[i].clone()),
            matched_by: Some(by),
            candidates: Vec::new(),
            note,
        }
    }
}

/// Read every key's current value from its store, in memory, and keep only its SHA-256 (and
/// an AWS pair's access key id). A read that fails is remembered with its redacted reason.
pub async fn read_stores(inv: &Inventory, http: &crate::http::Http) -> Vec<StoreKnowledge> {
    let mut out = Vec::with_capacity(inv.keys.len());
    for k in &inv.keys {
        let (Some(store), Some(path)) = (&k.store, &k.secret_path) else {
            out.push(StoreKnowledge::NotRead);
            continue;
        };
        let reference = CredentialRef::Store {
            store: store.clone(),
            path: path.clone(),
            field: k.secret_field.clone(),
        };
        let known = match crate::credential::resolve(&reference, inv, http).await {
            Ok(value) => knowledge_of(value.expose()),
            Err(e) => StoreKnowledge::Failed(http.redactor().scrub(&e.to_string())),
        };
        out.push(known);
    }
    out
}

/// The digest of a stored value; an AWS key pair (`{"AccessKeyId", "SecretAccessKey"}`,
/// DESIGN section 3) is known by its secret half and its id.
fn knowledge_of(value: &str) -> StoreKnowledge {
    if value.trim_start().starts_with('{')
        && let Ok(pair) = serde_json::from_str::<PairWire>(value)
    {
        // Moved, not copied, into a zeroizing holder.
        let secret = crate::secret::Secret::new(pair.secret_access_key);
        return StoreKnowledge::Value {
            fingerprint: fingerprint::of_value(secret.expose()),
            access_key_id: Some(pair.access_key_id),
        };
    }
    StoreKnowledge::Value {
        fingerprint: fingerprint::of_value(value),
        access_key_id: None,
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PairWire {
    access_key_id: String,
    secret_access_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "fk-FAKEoldFAKEold0123456789abcd";
    const OTHER: &str = "fk-FAKEotherFAKE0123456789wxyz";

    fn inventory() -> Inventory {
        crate::inventory::load_str(
            std::path::Path::new("inventory.toml"),
            &format!(
                r#"schema = 1
[[providers]]
id = "p"
kind = "manual"
[[agents]]
id = "a"
[[keys]]
id = "by-fp"
agents = ["a"]
provider = "p"
hint = "fk-...zzzz"
fingerprint = "sha256:{}"
[[keys]]
id = "by-hint"
agents = ["a"]
provider = "p"
hint = "fk-...wxyz"
[[keys]]
id = "aws"
agents = ["a"]
provider = "p"
provider_key_id = "AKIAFAKEFAKEFAKE2345"
[[keys]]
id = "twin-1"
agents = ["a"]
provider = "p"
hint = "sk-...same"
[[keys]]
id = "twin-2"
agents = ["a"]
provider = "p"
hint = "sk-...same"
"#,
                fingerprint::of_value(OLD)
            ),
        )
        .expect("inventory")
    }

    #[test]
    fn matches_by_fingerprint_id_and_unambiguous_hint() {
        let inv = inventory();
        let m = Matcher::new(&inv, Vec::new());
        let v = m.judge(OLD, false);
        assert_eq!(v.key.as_deref(), Some("by-fp"));
        assert_eq!(v.matched_by, Some(MatchedBy::Fingerprint));
        assert_eq!(v.status, KeyState::Unverified);
        assert!(v.is_live() && v.is_alarm());
        let v = m.judge(OTHER, false);
        assert_eq!(v.key.as_deref(), Some("by-hint"));
        assert_eq!(v.matched_by, Some(MatchedBy::Hint));
        let v = m.judge("AKIAFAKEFAKEFAKE2345", true);
        assert_eq!(v.key.as_deref(), Some("aws"));
        assert_eq!(m.judge("AKIAFAKEFAKEFAKE9999", true).key, None);
        let v = m.judge("sk-FAKEfakeFAKEfake0123same", false);
        assert_eq!(v.status, KeyState::Ambiguous);
        assert_eq!(v.candidates, ["twin-1", "twin-2"]);
        assert!(v.is_alarm() && !v.is_live());
        let v = m.judge("sk-FAKEfakeFAKEfake0123nope", false);
        assert_eq!(v.status, KeyState::Unmanaged);
    }

    #[test]
    fn store_values_tell_current_from_rotated() {
        let inv = inventory();
        let mut stores = vec![StoreKnowledge::NotRead; inv.keys.len()];
        // by-fp: the store now holds another value; by-hint: the store holds the found one.
        stores[0] = knowledge_of("fk-FAKEnewFAKEnew0123456789zzzz");
        stores[1] = knowledge_of(OTHER);
        stores[2] = knowledge_of(
            r#"{"AccessKeyId":"AKIAFAKEFAKEFAKE2345","SecretAccessKey":"fakeFAKEfakeFAKEfakeFAKEfakeFAKE/+fake00"}"#,
        );
        let m = Matcher::new(&inv, stores);
        let v = m.judge(OLD, false);
        assert_eq!(
            (v.key.as_deref(), v.status),
            (Some("by-fp"), KeyState::Rotated)
        );
        assert!(!v.is_alarm());
        let v = m.judge(OTHER, false);
        assert_eq!(v.matched_by, Some(MatchedBy::StoreFingerprint));
        assert_eq!(v.status, KeyState::Current);
        let v = m.judge("fakeFAKEfakeFAKEfakeFAKEfakeFAKE/+fake00", false);
        assert_eq!(
            (v.key.as_deref(), v.status),
            (Some("aws"), KeyState::Current)
        );
        let v = m.judge("AKIAFAKEFAKEFAKE2345", true);
        assert_eq!(v.status, KeyState::Current);
    }
}
