//! What an incident has established about one key. Snapshotted into the record after every
//! action, so that a resumed incident starts from what was proven, not from memory.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::provider::KeyState;
use crate::store::StoreVersion;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// The leaked key's id at the provider.
    pub provider_key_id: Option<String>,
    /// What the provider showed of the leaked key when it was located (its redacted value or
    /// hint): the revocation proof checks that the value it uses is this key.
    pub provider_key_hint: Option<String>,
    pub old_state: Option<KeyState>,
    /// Store version that held the leaked key when the incident opened (0: nothing stored).
    pub old_version: Option<StoreVersion>,
    pub new_key_id: Option<String>,
    pub new_key_hint: Option<String>,
    /// Replacement attempts; a replacement whose value was lost is revoked and replaced.
    pub create_attempt: u32,
    /// Every create request sent for this key, so that a replacement whose answer was lost
    /// (a timeout, a malformed reply, a crash) is found and revoked rather than left live.
    pub create_intents: Vec<CreateIntent>,
    pub create_sent: bool,
    /// A disable of the old key was sent (it may no longer work, though not revoked).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_sent: bool,
    pub revoke_sent: bool,
    pub store_write_sent: bool,
    pub new_version: Option<StoreVersion>,
    /// The stored replacement is the version agents read (promoted from its pending stage,
    /// or written live by a store without stages).
    pub promoted: bool,
    /// When the provider confirmed the revocation (and, if provable, rejected the old key).
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the revoke and its proof settled (proven or not): the end of containment.
    pub contained_at: Option<DateTime<Utc>>,
    /// When the replacement was verified to work.
    pub restored_at: Option<DateTime<Utc>>,
    pub step_ms: BTreeMap<String, i64>,
}

/// One create request as the record knows it (the record module owns the type: the
/// evidence entries write it and resume reads it back).
pub use crate::record::event::CreateIntent;

impl Facts {
    /// Insert or update the record of one create attempt.
    pub fn upsert_intent(&mut self, intent: CreateIntent) {
        match self
            .create_intents
            .iter_mut()
            .find(|i| i.attempt == intent.attempt)
        {
            Some(i) => *i = intent,
            None => self.create_intents.push(intent),
        }
    }

    pub fn intent_mut(&mut self, attempt: u32) -> Option<&mut CreateIntent> {
        self.create_intents
            .iter_mut()
            .find(|i| i.attempt == attempt)
    }
}
