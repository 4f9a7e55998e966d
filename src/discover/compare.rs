//! The comparison itself: pure, over the inventory and what each provider listed.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::inventory::{Inventory, Key, ProviderDef, ProviderKind};
use crate::provider::{KeyListing, KeyState, ListedKey};

/// A key at the provider that no inventory entry names.
#[derive(Debug, Clone, Serialize)]
pub struct Shadow {
    pub provider: String,
    #[serde(serialize_with = "super::kind_name")]
    pub kind: ProviderKind,
    #[serde(flatten)]
    pub key: ListedKey,
}

impl Shadow {
    /// One line about the key: name, hint, owner, created, last used.
    pub fn describe(&self) -> String {
        let k = &self.key;
        let mut parts = vec![format!("id {}", k.id)];
        if let Some(n) = &k.name {
            parts.push(format!("name {n:?}"));
        }
        if let Some(h) = &k.hint {
            parts.push(format!("hint {h}"));
        }
        if let Some(w) = &k.within {
            parts.push(format!("in {w}"));
        }
        if let Some(o) = &k.owner {
            parts.push(format!("owner {o}"));
        }
        if k.state != KeyState::Active {
            parts.push(format!("{:?}", k.state).to_lowercase());
        }
        parts.push(match k.created_at {
            Some(t) => format!("created {}", t.format("%Y-%m-%d")),
            None => "created: unknown".into(),
        });
        parts.push(match k.last_used_at {
            Some(t) => format!("last used {}", t.format("%Y-%m-%d")),
            None => "last used: not reported".into(),
        });
        parts.join(", ")
    }
}

/// An inventory key the provider no longer lists.
#[derive(Debug, Clone, Serialize)]
pub struct Gone {
    pub provider: String,
    /// The inventory key's id.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub why: String,
}

/// What differs between the inventory and the provider for one key.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum Difference {
    /// The inventory lists the key as in use; the provider says it is disabled or revoked.
    Status { at_provider: KeyState },
    Scopes {
        inventory: Vec<String>,
        at_provider: Vec<String>,
    },
    Hint {
        inventory: String,
        at_provider: String,
    },
}

impl Difference {
    pub fn describe(&self) -> String {
        match self {
            Self::Status { at_provider } => format!(
                "the provider lists the key as {} while the inventory has it in use",
                format!("{at_provider:?}").to_lowercase()
            ),
            Self::Scopes {
                inventory,
                at_provider,
            } => format!(
                "scopes differ: inventory [{}], provider [{}]",
                inventory.join(", "),
                at_provider.join(", ")
            ),
            Self::Hint {
                inventory,
                at_provider,
            } => format!("hint differs: inventory {inventory}, provider {at_provider}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub provider: String,
    /// The inventory key's id.
    pub key: String,
    pub provider_key_id: String,
    #[serde(flatten)]
    pub difference: Difference,
}

/// An inventory key that could not be compared (its hint matches several keys).
#[derive(Debug, Clone, Serialize)]
pub struct Unmatched {
    pub provider: String,
    pub key: String,
    pub why: String,
    /// The provider's keys it could be.
    pub candidates: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Diff {
    pub shadow: Vec<Shadow>,
    pub gone: Vec<Gone>,
    pub drift: Vec<Drift>,
    pub unmatched: Vec<Unmatched>,
}

/// Compare each listed provider's keys with the inventory keys of that provider. A provider
/// without a listing (it failed) contributes nothing: its keys are unknown, not gone.
pub fn compare(inv: &Inventory, listings: &[(&ProviderDef, Option<&KeyListing>)]) -> Diff {
    // Provider key ids the inventory names under any provider of a kind: a key another
    // provider entry of the same kind holds (two entries over one project) is not a shadow.
    let named: HashSet<(ProviderKind, &str)> = inv
        .keys
        .iter()
        .filter_map(|k| {
            let kind = inv.provider_of(k)?.kind;
            Some((kind, k.provider_key_id.as_deref()?))
        })
        .collect();
    let mut by_provider: HashMap<&str, Vec<&Key>> = HashMap::new();
    for k in &inv.keys {
        by_provider.entry(k.provider.as_str()).or_default().push(k);
    }
    let mut diff = Diff::default();
    let mut shadow_seen: HashSet<(ProviderKind, String)> = HashSet::new();
    for (def, listing) in listings {
        let Some(listing) = listing else { continue };
        let keys = by_provider
            .get(def.id.as_str())
            .cloned()
            .unwrap_or_default();
        let matched = compare_provider(def, listing, &keys, &mut diff);
        for k in &listing.keys {
            let revoked = k.state == KeyState::Revoked;
            if revoked
                || matched.contains(k.id.as_str())
                || named.contains(&(def.kind, k.id.as_str()))
                || !shadow_seen.insert((def.kind, k.id.clone()))
            {
                continue;
            }
            diff.shadow.push(Shadow {
                provider: def.id.clone(),
                kind: def.kind,
                key: k.clone(),
            });
        }
    }
    diff
}

/// Match the provider's inventory keys to its listing; record gone, drift and unmatched.
/// Returns the ids of the listed keys an inventory key matched.
fn compare_provider<'l>(
    def: &ProviderDef,
    listing: &'l KeyListing,
    keys: &[&Key],
    diff: &mut Diff,
) -> HashSet<&'l str> {
    let by_id: HashMap<&str, &ListedKey> =
        listing.keys.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut matched = HashSet::new();
    for key in keys {
        let found = match (&key.provider_key_id, &key.hint) {
            (Some(id), _) => match by_id.get(id.as_str()) {
                Some(l) => Some(*l),
                None => {
                    diff.gone.push(Gone {
                        provider: def.id.clone(),
                        key: key.id.clone(),
                        provider_key_id: Some(id.clone()),
                        hint: key.hint.clone(),
                        why: format!("{id} is not among the keys of {}", listing.scope),
                    });
                    None
                }
            },
            (None, Some(hint)) => {
                let candidates: Vec<&ListedKey> = listing
                    .keys
                    .iter()
                    .filter(|l| {
                        l.hint
                            .as_deref()
                            .is_some_and(|h| crate::provider::hint_matches(hint, h))
                    })
                    .collect();
                match candidates.as_slice() {
                    [one] => Some(*one),
                    [] => {
                        diff.gone.push(Gone {
                            provider: def.id.clone(),
                            key: key.id.clone(),
                            provider_key_id: None,
                            hint: Some(hint.clone()),
                            why: format!("no key of {} matches hint {hint}", listing.scope),
                        });
                        None
                    }
                    many => {
                        // Several keys share the hint: none is picked, none is a shadow key.
                        matched.extend(many.iter().map(|l| l.id.as_str()));
                        diff.unmatched.push(Unmatched {
                            provider: def.id.clone(),
                            key: key.id.clone(),
                            why: format!(
                                "hint {hint} matches {} keys: set provider_key_id to say which",
                                many.len()
                            ),
                            candidates: many.iter().map(|l| l.id.clone()).collect(),
                        });
                        None
                    }
                }
            }
            // Validation requires one of them for API providers; nothing to match with.
            (None, None) => None,
        };
        let Some(listed) = found else { continue };
        matched.insert(listed.id.as_str());
        for difference in differences(key, listed, listing.reports_scopes) {
            diff.drift.push(Drift {
                provider: def.id.clone(),
                key: key.id.clone(),
                provider_key_id: listed.id.clone(),
                difference,
            });
        }
    }
    matched
}

fn differences(key: &Key, listed: &ListedKey, reports_scopes: bool) -> Vec<Difference> {
    let mut out = Vec::new();
    if listed.state != KeyState::Active {
        out.push(Difference::Status {
            at_provider: listed.state,
        });
    }
    if let (Some(inv), Some(at)) = (&key.hint, &listed.hint)
        && !crate::provider::hint_matches(inv, at)
    {
        out.push(Difference::Hint {
            inventory: inv.clone(),
            at_provider: at.clone(),
        });
    }
    if reports_scopes && let Some(at) = &listed.scopes {
        let mut a: Vec<String> = key.scopes.clone();
        let mut b: Vec<String> = at.clone();
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        if a != b {
            out.push(Difference::Scopes {
                inventory: a,
                at_provider: b,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = r#"schema = 1
[[providers]]
id = "oa"
kind = "openai"
admin_credential = "env:KF_OA_ADMIN"
settings = { project_id = "proj_1" }

[[keys]]
id = "by-id"
agents = []
provider = "oa"
provider_key_id = "key_a"
hint = "sk-proj-aa...aaaa"

[[keys]]
id = "by-hint"
agents = []
provider = "oa"
hint = "sk-proj-bb...bbbb"

[[keys]]
id = "removed"
agents = []
provider = "oa"
provider_key_id = "key_gone"

[[keys]]
id = "twins"
agents = []
provider = "oa"
hint = "sk-proj-tw...twin"

[[keys]]
id = "disabled"
agents = []
provider = "oa"
provider_key_id = "key_d"
"#;

    fn listed(id: &str, hint: &str, state: KeyState) -> ListedKey {
        ListedKey {
            id: id.into(),
            name: None,
            hint: Some(hint.into()),
            state,
            created_at: None,
            last_used_at: None,
            owner: None,
            within: None,
            scopes: Some(vec!["all".into()]),
        }
    }

    #[test]
    fn shadow_gone_drift_and_ambiguity_are_told_apart() {
        let inv = crate::inventory::load_str(std::path::Path::new("inv.toml"), INV).unwrap();
        let listing = KeyListing {
            keys: vec![
                listed("key_a", "sk-proj-aa...aaaa", KeyState::Active),
                listed("key_b", "sk-proj-bb...bbbb", KeyState::Active),
                listed("key_t1", "sk-proj-tw...twin", KeyState::Active),
                listed("key_t2", "sk-proj-tw...twin", KeyState::Active),
                listed("key_d", "sk-proj-dd...dddd", KeyState::Disabled),
                listed("key_new", "sk-proj-nn...nnnn", KeyState::Active),
                listed("key_archived", "sk-proj-zz...zzzz", KeyState::Revoked),
            ],
            scope: "project proj_1".into(),
            ..KeyListing::default()
        };
        let oa = inv.provider("oa").unwrap();
        let d = compare(&inv, &[(oa, Some(&listing))]);
        let shadow: Vec<&str> = d.shadow.iter().map(|s| s.key.id.as_str()).collect();
        assert_eq!(
            shadow,
            ["key_new"],
            "archived keys and ambiguous candidates are not shadow keys"
        );
        let gone: Vec<&str> = d.gone.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(gone, ["removed"]);
        assert_eq!(d.unmatched.len(), 1);
        assert_eq!(d.unmatched[0].candidates, ["key_t1", "key_t2"]);
        assert_eq!(d.drift.len(), 1);
        assert_eq!(d.drift[0].key, "disabled");
        assert_eq!(
            d.drift[0].difference,
            Difference::Status {
                at_provider: KeyState::Disabled
            }
        );
        // Scopes are compared only when the provider reports them.
        let with_scopes = KeyListing {
            reports_scopes: true,
            ..listing.clone()
        };
        let d = compare(&inv, &[(oa, Some(&with_scopes))]);
        assert!(
            d.drift
                .iter()
                .any(|x| x.key == "by-id" && matches!(x.difference, Difference::Scopes { .. }))
        );
        // A failed listing says nothing: no key is gone.
        let d = compare(&inv, &[(oa, None)]);
        assert!(d.gone.is_empty() && d.shadow.is_empty());
    }
}
