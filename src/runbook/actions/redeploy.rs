//! Step 2, redeploy: create the replacement (by API, or pasted by the operator), write it to
//! the store, promote it where the store stages versions, read it back and check that it
//! authenticates.

use chrono::Utc;

use super::{ActionOutcome, Failure, Res, skipped};
use crate::plan::SecretRef;
use crate::provider::{Op, OpOutput, Probe, Which};
use crate::record::event::{Evidence, OperatorInput};
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun};
use crate::runbook::facts::CreateIntent;
use crate::runbook::gate::{Gate, PasteRequest, Sink};
use crate::store::{StoreOp, StoreOutput};

impl Ctx {
    pub(super) async fn create<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        if run.store.is_none() {
            let text = vec![
                format!(
                    "keyfire has no store for key `{key}`, so it cannot deliver a replacement."
                ),
                format!(
                    "Create a replacement at provider `{}` and deploy it to the agents ({}) yourself, then confirm.",
                    run.provider_def.id,
                    run.key.agents.join(", ")
                ),
            ];
            return self
                .manual(run, step, Action::Create, text, gate, sink)
                .await;
        }
        if let Some(v) = &run.facts.new_version {
            return skipped(format!("the replacement is already stored (version {v})"));
        }
        if run.bag.new_key.is_some() {
            return skipped("the replacement already exists in memory");
        }
        if !run.caps.create {
            return self.paste_replacement(run, step, gate, sink).await;
        }
        // A replacement created before a crash (or by a create whose answer was lost) but
        // whose value never reached the store.
        if !self.params.dry_run
            && !run.caps.create_idempotent
            && (run.facts.create_sent || run.facts.create_intents.iter().any(|i| !i.settled))
        {
            self.revoke_orphan(run, step, gate, sink).await?;
            if let Some(v) = &run.facts.new_version {
                return skipped(format!(
                    "the store already serves the replacement (version {v})"
                ));
            }
        }
        if run.facts.create_attempt == 0 {
            run.facts.create_attempt = 1;
        }
        let attempt = run.facts.create_attempt;
        let name = self.replacement_name(run);
        let op = Op::Create {
            name: name.clone(),
            idempotency_key: format!("{}:{}:create:{attempt}", self.id, key),
        };
        // The intent goes into the record before the request leaves: if its answer is lost,
        // this is how the replacement is found again. A replay of the same attempt keeps the
        // first send time (the provider may have made the key then).
        if !self.params.dry_run && run.facts.intent_mut(attempt).is_none() {
            let intent = CreateIntent {
                attempt,
                name,
                sent_at: Some(Utc::now()),
                ..Default::default()
            };
            self.record_intent(run, step, sink, intent)?;
        }
        let created = self
            .provider_call(run, step, Action::Create, op, gate, sink)
            .await;
        if let Err(Failure::Failed { .. }) = &created
            && let Some(mut intent) = run.facts.intent_mut(attempt).cloned()
        {
            intent.answered_at = Some(Utc::now());
            self.record_intent(run, step, sink, intent)?;
        }
        if let Some(OpOutput::Created { id, value }) = created? {
            self.http.redactor().learn(&value);
            run.facts.new_key_id = Some(id.clone());
            run.facts.new_key_hint = Some(value.hint());
            run.bag.new_key = Some(value);
            if let Some(intent) = run.facts.intent_mut(attempt) {
                intent.key_id = Some(id.clone());
            }
            self.evidence(
                sink,
                step,
                &key,
                Action::Create,
                Evidence::created(
                    id,
                    run.facts.new_key_hint.clone(),
                    run.facts.intent_mut(attempt).cloned(),
                ),
            )?;
        }
        Ok(ActionOutcome::Done)
    }

    /// A provider keyfire cannot create keys at: the operator makes one in its console and
    /// pastes it into a masked prompt; keyfire learns it (to scrub it everywhere) and keeps
    /// it in memory only.
    async fn paste_replacement<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        let mut text = vec![self.manual_intro(run)];
        text.push(format!(
            "Create a replacement key at provider `{}` ({}) in its console.",
            run.provider_def.id, run.provider_def.kind
        ));
        text.push(
            "Paste it into the masked prompt: keyfire stores and verifies it and never shows it."
                .into(),
        );
        if let Some(note) = self
            .setup
            .runbook
            .note(run.provider_def.kind, StepId::Redeploy)
        {
            text.push(note.to_string());
        }
        if !self.manual_plan(run, step, Action::Create, &text, sink)? {
            return Ok(ActionOutcome::Done);
        }
        let req = PasteRequest {
            incident: &self.id,
            key: &key,
            instructions: &text,
        };
        let Some(secret) = gate.paste_secret(&req).await.filter(|s| !s.is_empty()) else {
            return Err(Failure::Aborted("no replacement key was pasted".into()));
        };
        if run
            .bag
            .old_key
            .as_ref()
            .is_some_and(|old| old.expose() == secret.expose())
        {
            return Err(Failure::failed(
                format!("{step}: the pasted key is the leaked key"),
                true,
            ));
        }
        self.http.redactor().learn(&secret);
        run.facts.new_key_hint = Some(secret.hint());
        run.bag.new_key = Some(secret);
        let pasted = OperatorInput::pasted(Action::Create, run.facts.new_key_hint.clone());
        self.record(sink, Some(step), &key, &pasted)?;
        Ok(ActionOutcome::Done)
    }

    pub(super) fn replacement_name(&self, run: &KeyRun) -> String {
        let base = format!("keyfire-{}-{}", self.id, run.key.id);
        if run.facts.create_attempt > 1 {
            format!("{base}-{}", run.facts.create_attempt)
        } else {
            base
        }
    }

    pub(super) async fn store_write<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if run.store.is_none() {
            return skipped("the key has no store (the operator deployed the replacement)");
        }
        if let Some(v) = &run.facts.new_version {
            return skipped(format!("already stored as version {v}"));
        }
        if run.bag.new_key.is_none() && !self.params.dry_run {
            return Err(Failure::failed(
                format!("{step}: no replacement in memory to store"),
                true,
            ));
        }
        if run.facts.old_version.is_none() {
            // The read at open failed (it never holds up the revoke); the write's
            // check-and-set needs the version the store holds now.
            let current = self
                .store_read(run, step, Action::ReadStore, None, sink)
                .await?;
            self.apply_store_read(run, step, current, sink).await?;
        }
        let cas = run.facts.old_version.clone();
        let key = run.key.id.clone();
        let pending = self.stages_replacement(run);
        let token = self.store_token(run);
        if !self.params.dry_run {
            crate::failpoint::failpoint("store_write");
        }
        if let Some(StoreOutput::Written { version }) = self
            .store_call(
                run,
                step,
                Action::StoreWrite,
                StoreOp::Write {
                    cas: cas.clone(),
                    pending,
                    token,
                    value: SecretRef::NewKey,
                },
                gate,
                sink,
            )
            .await?
        {
            run.facts.new_version = Some(version.clone());
            run.facts.promoted = !pending;
            self.evidence(
                sink,
                step,
                &key,
                Action::StoreWrite,
                Evidence::stored(version, cas, pending),
            )?;
        }
        Ok(ActionOutcome::Done)
    }

    /// Whether the replacement waits in a pending stage for `promote`: only when the store
    /// has stages and the runbook promotes.
    fn stages_replacement(&self, run: &KeyRun) -> bool {
        let store_has_stages = run.store.as_ref().is_some_and(|(s, _)| s.has_stages());
        let runbook_promotes = self
            .setup
            .runbook
            .step(StepId::Redeploy)
            .is_some_and(|s| s.actions.contains(&Action::Promote));
        store_has_stages && runbook_promotes
    }

    /// The name of this replacement's store write: the same on every retry and resume of the
    /// same create attempt, different for a new attempt (a new value).
    pub(super) fn store_token(&self, run: &KeyRun) -> String {
        format!(
            "{}:{}:store:{}",
            self.id,
            run.key.id,
            run.facts.create_attempt.max(1)
        )
    }

    pub(super) async fn promote<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        let Some((store, _)) = run.store.clone() else {
            return skipped("the key has no store");
        };
        let key = run.key.id.clone();
        if !self.stages_replacement(run) {
            if let Some(v) = run.facts.new_version.clone() {
                run.facts.promoted = true;
                let text = format!(
                    "{} has no stages: version {v} became current when it was written",
                    store.kind()
                );
                let noop = Evidence::promotion_noop(v, text);
                self.evidence(sink, step, &key, Action::Promote, noop)?;
                return Ok(ActionOutcome::Done);
            }
            return skipped(format!(
                "{} has no stages: nothing to promote",
                store.kind()
            ));
        }
        if run.facts.promoted {
            return skipped("the replacement is already current");
        }
        let version = match (&run.facts.new_version, self.params.dry_run) {
            (Some(v), _) => v.clone(),
            // A drill shows the promotion it would send, naming the version the write
            // would have created.
            (None, true) => match store.version_for_token(&self.store_token(run)) {
                Some(v) => v,
                None => return skipped("drill: nothing was written to promote"),
            },
            (None, false) => return skipped("nothing was written by keyfire"),
        };
        if !self.params.dry_run {
            crate::failpoint::failpoint("promote");
        }
        let from = run
            .facts
            .old_version
            .clone()
            .filter(|v| v.number() != Some(0));
        if let Some(StoreOutput::Promoted { version, .. }) = self
            .store_call(
                run,
                step,
                Action::Promote,
                StoreOp::Promote {
                    version: version.clone(),
                    from: from.clone(),
                },
                gate,
                sink,
            )
            .await?
        {
            run.facts.promoted = true;
            let text = format!("version {version} is now the one agents read");
            let promoted = Evidence::promoted(version, from, text);
            self.evidence(sink, step, &key, Action::Promote, promoted)?;
        }
        Ok(ActionOutcome::Done)
    }

    pub(super) async fn store_read_back<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        if self.params.dry_run {
            return skipped("drill: nothing was written to read back");
        }
        let Some(version) = run.facts.new_version.clone() else {
            return skipped("nothing was written by keyfire");
        };
        let key = run.key.id.clone();
        match self
            .store_read(
                run,
                step,
                Action::StoreReadBack,
                Some(version.clone()),
                sink,
            )
            .await?
        {
            Some(StoreOutput::Value { value, .. }) => {
                let matches = match &run.bag.new_key {
                    Some(new) => new.expose() == value.expose(),
                    None => {
                        run.bag.new_key = Some(value);
                        true
                    }
                };
                if !matches {
                    return Err(Failure::failed(
                        format!("{step}: store version {version} does not hold the replacement"),
                        false,
                    ));
                }
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::StoreReadBack,
                    Evidence::read_back(version),
                )?;
                Ok(ActionOutcome::Done)
            }
            _ => Err(Failure::failed(
                format!("{step}: store version {version} cannot be read back"),
                true,
            )),
        }
    }

    pub(super) async fn verify_new<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if self.params.dry_run {
            return skipped("drill: no replacement was created");
        }
        let key = run.key.id.clone();
        // After a resume the replacement may sit in the store (a pending version agents do
        // not read yet) but not in memory: read it back rather than fall back to asking.
        if run.caps.verify
            && run.bag.new_key.is_none()
            && run.store.is_some()
            && let Some(version) = run.facts.new_version.clone()
            && let Some(StoreOutput::Value { value, .. }) = self
                .store_read(run, step, Action::VerifyNew, Some(version), sink)
                .await?
        {
            run.bag.new_key = Some(value);
        }
        if !run.caps.verify || run.bag.new_key.is_none() {
            let text = vec![format!(
                "Confirm that the agents ({}) work with the replacement.",
                run.key.agents.join(", ")
            )];
            let out = self
                .manual(run, step, Action::VerifyNew, text, gate, sink)
                .await?;
            run.facts.restored_at = Some(self.now());
            return Ok(out);
        }
        // A new key can take a moment to work everywhere (IAM is eventually consistent).
        let waits = run.provider.proof_waits();
        let mut last = None;
        for attempt in 0..=waits.len() {
            match self
                .provider_read(
                    run,
                    step,
                    Action::VerifyNew,
                    Op::Verify { which: Which::New },
                    sink,
                )
                .await?
            {
                // Restricted: the key authenticated, it may just not make this call.
                OpOutput::Verified(p) if p.alive() => {
                    run.facts.restored_at = Some(self.now());
                    let works =
                        Evidence::new_key_works(p, "the replacement authenticates at the provider");
                    self.evidence(sink, step, &key, Action::VerifyNew, works)?;
                    return Ok(ActionOutcome::Done);
                }
                OpOutput::Verified(p) => last = Some(p),
                _ => {}
            }
            if let Some(wait) = waits.get(attempt) {
                tokio::time::sleep(*wait).await;
            }
        }
        Err(Failure::Failed {
            error: format!(
                "{step}: the replacement does not authenticate: {}",
                last.as_ref()
                    .map_or_else(|| "no answer".into(), Probe::describe)
            ),
            status: last.as_ref().and_then(Probe::status),
            retryable: true,
        })
    }
}
