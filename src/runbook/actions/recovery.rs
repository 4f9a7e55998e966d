//! What an interruption or a failure leaves behind, and how it is made safe: a replacement
//! whose value was lost (created again), a pending store version written before a crash
//! (taken back), replacements nobody can use (orphans, revoked), and a rotation that failed
//! after storing (the previous version restored, so exactly the old key is in use).

use super::Failure;
use crate::plan::SecretRef;
use crate::provider::{KeyState, Op, OpOutput};
use crate::record::event::Evidence;
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun, Purpose};
use crate::runbook::error::EngineError;
use crate::runbook::facts::CreateIntent;
use crate::runbook::gate::{Gate, Sink};
use crate::runbook::session::Status;
use crate::store::{StoreOp, StoreOutput};

impl Ctx {
    /// A key's step failed and the operator leaves it failed. A failed rotation must leave
    /// exactly the old key in use: a replacement that was asked for but never stored (its
    /// answer may have been lost: no id is needed to find it) is revoked now, the store read
    /// again first so the replacement it serves is never revoked; a replacement the store
    /// already serves is undone by restoring the previous version, then revoked. Only a
    /// record error stops this: a cleanup that fails is in the record and the key stays
    /// failed.
    pub(in crate::runbook) async fn leave_failed<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<(), EngineError> {
        let key = run.key.id.clone();
        let unstored = run.facts.new_version.is_none()
            && (run.facts.create_sent || run.facts.create_intents.iter().any(|i| !i.settled));
        if self.params.purpose == Purpose::Rotation && unstored && !self.params.dry_run {
            let revoking = Evidence::said(
                "the rotation failed before its replacement was stored: revoking the replacement, the old key stays in use",
            );
            self.record(sink, Some(step), &key, &revoking.about(Action::Create))?;
            match self.revoke_orphan(run, step, gate, sink).await {
                Ok(()) | Err(Failure::Failed { .. }) | Err(Failure::Aborted(_)) => {}
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
        if self.params.purpose == Purpose::Rotation
            && !self.params.dry_run
            && let Some(v) = run.facts.new_version.clone()
            && !run.facts.revoke_sent
        {
            // The store serves the replacement and the old key still works:
            // put the previous version back, then revoke the replacement, so
            // exactly the old key is in use again. Where the store cannot, both
            // keys stay, loudly, and the rotation stays open to be finished.
            let restored = if run.facts.disable_sent {
                // The old key may no longer work: the agents keep the
                // replacement, which is the key that does.
                Ok(Some("the old key was disabled before the failure".into()))
            } else {
                self.restore_previous(run, step, gate, sink).await
            };
            let cannot = match restored {
                Ok(None) => None,
                Ok(Some(why)) => Some(why),
                Err(Failure::Failed { error, .. }) => Some(error),
                Err(Failure::Aborted(_)) => Some("the operator declined the restore".into()),
                Err(Failure::Fatal(e)) => return Err(e),
            };
            match cannot {
                None => match self.revoke_orphan(run, step, gate, sink).await {
                    Ok(()) | Err(Failure::Failed { .. }) | Err(Failure::Aborted(_)) => {}
                    Err(Failure::Fatal(e)) => return Err(e),
                },
                Some(why) => {
                    let why = self.http.redactor().scrub(&why);
                    let text = format!(
                        "the rotation failed after storing and the previous version was not restored ({why}): the store serves the replacement (version {v}) and the old key was NOT revoked; both keys stay until `keyfire rotate --resume {}` finishes the rotation",
                        self.id
                    );
                    let both = Evidence::both_keys_live(v, text);
                    self.record(sink, Some(step), &key, &both.about(Action::StoreWrite))?;
                }
            }
        }
        Ok(())
    }

    /// A replacement created before the interruption whose value never reached the store is
    /// unusable: its value lived only in the dead process's memory. Offer the create again;
    /// it revokes that key first when the provider cannot replay a create (see `create`).
    pub(super) fn reopen_lost_replacement<S: Sink>(
        &self,
        run: &mut KeyRun,
        sink: &mut S,
    ) -> Result<(), Failure> {
        let lost = !self.params.dry_run
            && run.store.is_some()
            && run.facts.new_version.is_none()
            && run.bag.new_key.is_none()
            && run.session.status_of(StepId::Redeploy, Action::Create) == Some(Status::Done);
        if !lost || !run.session.reopen_from(StepId::Redeploy, Action::Create) {
            return Ok(());
        }
        // A pasted replacement is simply asked for again.
        run.facts.create_sent = run.caps.create;
        let key = run.key.id.clone();
        let lost = Evidence::lost_replacement(
            run.facts.new_key_id.clone(),
            "the replacement made before the interruption never reached the store and its value is gone: the create runs again",
        );
        self.evidence(sink, StepId::Redeploy, &key, Action::Create, lost)?;
        Ok(())
    }

    /// After an interruption during a staged write: the store may hold the replacement as a
    /// pending version that the record never saw confirmed. Find it by its deterministic
    /// name and take the value back into memory, so no second replacement is made.
    pub(super) async fn recover_pending<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Result<(), Failure> {
        if run.facts.new_version.is_some() || !run.facts.store_write_sent {
            return Ok(());
        }
        let token = self.store_token(run);
        let Some(version) = run
            .store
            .as_ref()
            .and_then(|(s, _)| s.version_for_token(&token))
        else {
            return Ok(());
        };
        let found = self
            .store_read(run, step, Action::ReadStore, Some(version.clone()), sink)
            .await?;
        if let Some(StoreOutput::Value { value, .. }) = found {
            run.facts.new_version = Some(version.clone());
            run.bag.new_key = Some(value);
            let key = run.key.id.clone();
            let pending = Evidence::pending_found(
                version,
                "the replacement written before the interruption is in the store: it is used, not recreated",
            );
            self.evidence(sink, step, &key, Action::ReadStore, pending)?;
        }
        Ok(())
    }

    /// Record what keyfire knows about one create attempt (replayed on resume).
    pub(super) fn record_intent<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
        intent: CreateIntent,
    ) -> Result<(), Failure> {
        let key = run.key.id.clone();
        run.facts.upsert_intent(intent.clone());
        self.evidence(sink, step, &key, Action::Create, Evidence::intent(intent))?;
        Ok(())
    }

    /// Revoke every replacement whose value was lost, so that no unknown key stays live: each
    /// create attempt the record knows of (a crash during a second attempt leaves two), found
    /// by its recorded id, else by the record's intent (its name, the time it was sent, and
    /// not a key the record gives to someone else). The store is read again first: the
    /// replacement it serves as current is never revoked (an ambiguous write that landed).
    pub(super) async fn revoke_orphan<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<(), Failure> {
        let key = run.key.id.clone();
        if run.store.is_some() && run.facts.store_write_sent && run.facts.new_version.is_none() {
            // Unknown is not "unstored": if the store cannot be read, nothing is revoked.
            let current = self
                .store_read(run, step, Action::ReadStore, None, sink)
                .await?;
            self.apply_store_read(run, step, current, sink).await?;
        }
        let served = run
            .facts
            .new_version
            .is_some()
            .then(|| run.facts.new_key_id.clone())
            .flatten();
        if run.facts.new_version.is_some() {
            let attempt = run.facts.create_attempt;
            if let Some(mut intent) = run.facts.intent_mut(attempt).cloned() {
                intent.settled = true;
                self.record_intent(run, step, sink, intent)?;
            }
            self.evidence(
                sink,
                step,
                &key,
                Action::Create,
                Evidence::said("the store serves the replacement: it is kept, not revoked"),
            )?;
        }
        let mut pending: Vec<CreateIntent> = run
            .facts
            .create_intents
            .iter()
            .filter(|i| !i.settled)
            .cloned()
            .collect();
        if run.facts.create_intents.is_empty()
            && run.facts.create_sent
            && run.facts.new_version.is_none()
        {
            // A record written before intents were recorded: search by the name and id.
            pending.push(CreateIntent {
                attempt: run.facts.create_attempt.max(1),
                name: self.replacement_name(run),
                key_id: run.facts.new_key_id.clone(),
                ..Default::default()
            });
        }
        let exclude = if pending.is_empty() {
            Vec::new()
        } else {
            self.ids_of_others(run)
        };
        for intent in pending {
            let orphan = self.find_orphan(run, step, &intent, &exclude, sink).await?;
            // Never take the leaked key (while it still serves the agents) or the replacement
            // the store serves for an orphan.
            let leaked_live = |id: &String| {
                run.facts.provider_key_id.as_ref() == Some(id)
                    && run.facts.old_state != Some(KeyState::Revoked)
            };
            if let Some(id) = orphan.filter(|id| !leaked_live(id) && served.as_ref() != Some(id)) {
                let orphan = Evidence::orphan(
                    id.clone(),
                    intent.attempt,
                    "a replacement whose value was lost (its create answer, or the process, did not survive) is revoked",
                );
                self.evidence(sink, step, &key, Action::Create, orphan)?;
                self.provider_call(run, step, Action::Create, Op::Revoke { id }, gate, sink)
                    .await?;
            }
            if run.facts.intent_mut(intent.attempt).is_some() {
                let mut settled = intent.clone();
                settled.settled = true;
                self.record_intent(run, step, sink, settled)?;
            }
        }
        if run.facts.new_version.is_none() {
            run.facts.create_attempt = run.facts.create_attempt.max(1) + 1;
            run.facts.new_key_id = None;
            run.facts.create_sent = false;
        }
        Ok(())
    }

    /// Key ids the record or the inventory gives to someone other than this key: the
    /// replacements other keys of this incident recorded, and every inventory key's id. An
    /// orphan search never takes one of these.
    fn ids_of_others(&self, run: &KeyRun) -> Vec<String> {
        let mut ids: Vec<String> = self
            .setup
            .inventory
            .keys
            .iter()
            .filter_map(|k| k.provider_key_id.clone())
            .collect();
        if let Ok(entries) = crate::record::read_entries(&self.record.path()) {
            for e in &entries {
                if let crate::record::Event::Evidence(ev) = crate::record::Event::of(e)
                    && ev.key.as_deref() != Some(run.key.id.as_str())
                    && let Some(id) = ev.replacement_id()
                {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// The provider's id of one create attempt's replacement, if it exists.
    async fn find_orphan<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        intent: &CreateIntent,
        exclude: &[String],
        sink: &mut S,
    ) -> Result<Option<String>, Failure> {
        // Read the provider's state rather than trusting the record: the key may be gone
        // already, and revoking it may need what only a lookup tells (its owner, at OpenAI).
        if !run.caps.locate {
            return Ok(intent.key_id.clone());
        }
        let op = match intent.sent_at {
            Some(sent_at) => Op::FindReplacement(crate::provider::ReplacementQuery {
                name: intent.name.clone(),
                id: intent.key_id.clone(),
                sent_at,
                answered_at: intent.answered_at,
                exclude: exclude.to_vec(),
            }),
            None => Op::Locate {
                id: intent.key_id.clone(),
                name: Some(intent.name.clone()),
                hint: None,
            },
        };
        Ok(
            match self
                .provider_read(run, step, Action::Create, op, sink)
                .await?
            {
                OpOutput::Located(Some(k)) if k.state != KeyState::Revoked => Some(k.id),
                _ => None,
            },
        )
    }

    /// After a rotation failed with its replacement stored and the old key still live: make
    /// the previous version the one agents read again, so the replacement can be revoked and
    /// exactly the old key stays in use. A store with stages moves its current label back
    /// (nothing is written when the replacement was never promoted); a store without stages
    /// gets the previous value written over the replacement (check-and-set on the
    /// replacement's version, so a write by someone else since is never overwritten).
    /// `Ok(None)`: restored; `Ok(Some(why))`: this store cannot restore, and why.
    async fn restore_previous<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<Option<String>, Failure> {
        let Some((store, _)) = run.store.clone() else {
            return Ok(Some("the key has no store".into()));
        };
        let Some(new) = run.facts.new_version.clone() else {
            return Ok(None);
        };
        let Some(old) = run
            .facts
            .old_version
            .clone()
            .filter(|v| v.number() != Some(0))
        else {
            return Ok(Some(
                "the store held nothing before the replacement, so there is no version to go back to"
                    .into(),
            ));
        };
        let key = run.key.id.clone();
        // Recorded before anything is sent: a resume after a crash here must treat the
        // replacement as no longer served (see `replay`).
        self.evidence(
            sink,
            step,
            &key,
            Action::StoreWrite,
            Evidence::restore_begun(format!("putting version {old} back as the one agents read")),
        )?;
        if store.has_stages() {
            if run.facts.promoted {
                let promoted = self
                    .store_call(
                        run,
                        step,
                        Action::StoreWrite,
                        StoreOp::Promote {
                            version: old.clone(),
                            from: Some(new.clone()),
                        },
                        gate,
                        sink,
                    )
                    .await?;
                if !matches!(promoted, Some(StoreOutput::Promoted { .. })) {
                    return Ok(Some("the store did not confirm the promotion".into()));
                }
            }
            Self::forget_replacement(run);
            let text = format!(
                "version {old} (the key in use before the rotation) is again the one agents read; the replacement, version {new}, is not"
            );
            let restored = Evidence::restored(old, new, text);
            self.evidence(sink, step, &key, Action::StoreWrite, restored)?;
            return Ok(None);
        }
        if run.bag.old_key.is_none() {
            match self
                .store_read(run, step, Action::ReadStore, Some(old.clone()), sink)
                .await?
            {
                Some(StoreOutput::Value { value, .. }) => run.bag.old_key = Some(value),
                _ => {
                    return Ok(Some(format!(
                        "{} keeps no copy of version {old} to restore",
                        store.kind()
                    )));
                }
            }
        }
        let token = format!(
            "{}:{}:restore:{}",
            self.id,
            run.key.id,
            run.facts.create_attempt.max(1)
        );
        let written = self
            .store_call(
                run,
                step,
                Action::StoreWrite,
                StoreOp::Write {
                    cas: Some(new.clone()),
                    pending: false,
                    token,
                    value: SecretRef::OldKey,
                },
                gate,
                sink,
            )
            .await?;
        let Some(StoreOutput::Written { version }) = written else {
            return Ok(Some("the store did not confirm the write".into()));
        };
        run.facts.old_version = Some(version.clone());
        Self::forget_replacement(run);
        let text = format!(
            "the key in use before the rotation (version {old}) is written back as version {version}; agents read it again, not the replacement (version {new})"
        );
        self.evidence(
            sink,
            step,
            &key,
            Action::StoreWrite,
            Evidence::restored(version, new, text),
        )?;
        Ok(None)
    }

    /// After a restore the replacement is stored but not served: it is an orphan to revoke,
    /// never a write to adopt (which is what a sent write with no known version means to
    /// `recover_pending` and to the store read before cleanup).
    pub(in crate::runbook) fn forget_replacement(run: &mut KeyRun) {
        run.facts.new_version = None;
        run.facts.promoted = false;
        run.facts.store_write_sent = false;
    }
}
