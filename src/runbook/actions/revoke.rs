//! Step 1, revoke: disable where the provider can, revoke (by API, or by hand in its
//! console), then prove it: the old value must get the provider's documented
//! invalid-credential answer.

use super::{ActionOutcome, Failure, Res, injected_failure, skipped};
use crate::provider::{Identity, KeyState, Op, OpOutput, Probe, Which};
use crate::record::event::Evidence;
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun, Purpose};
use crate::runbook::gate::{Gate, Sink};

impl Ctx {
    pub(super) async fn disable<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if !run.caps.disable {
            return skipped(format!(
                "{} has no disable; revoke follows",
                run.provider_def.kind
            ));
        }
        match run.facts.old_state {
            Some(KeyState::Disabled) => return skipped("already disabled at the provider"),
            Some(KeyState::Revoked) => return skipped("already revoked at the provider"),
            _ => {}
        }
        let Some(id) = run.facts.provider_key_id.clone() else {
            return skipped("the key was not located");
        };
        injected_failure("disable")?;
        if let Some(OpOutput::Disabled) = self
            .provider_call(run, step, Action::Disable, Op::Disable { id }, gate, sink)
            .await?
        {
            run.facts.old_state = Some(KeyState::Disabled);
        }
        Ok(ActionOutcome::Done)
    }

    pub(super) async fn revoke<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if run.facts.old_state == Some(KeyState::Revoked) {
            if run.facts.revoked_at.is_none() {
                run.facts.revoked_at = Some(self.now());
            }
            return skipped("already revoked at the provider");
        }
        if !run.caps.revoke {
            let id = run
                .key
                .provider_key_id
                .clone()
                .or(run.key.hint.clone())
                .unwrap_or_else(|| run.key.id.clone());
            let mut text = vec![
                self.manual_intro(run),
                format!(
                    "Revoke key {id} at provider `{}` ({}) in its console.",
                    run.provider_def.id, run.provider_def.kind
                ),
                "Confirm here once the provider shows the key as revoked or deleted.".into(),
            ];
            if let Some(note) = self
                .setup
                .runbook
                .note(run.provider_def.kind, StepId::Revoke)
            {
                text.push(note.to_string());
            }
            let out = self
                .manual(run, step, Action::Revoke, text, gate, sink)
                .await?;
            if !self.params.dry_run {
                run.facts.old_state = Some(KeyState::Revoked);
                run.facts.revoked_at = Some(self.now());
            }
            return Ok(out);
        }
        let Some(id) = run.facts.provider_key_id.clone() else {
            return Err(Failure::failed(
                format!("{step}: the key was not located at the provider"),
                true,
            ));
        };
        if self.params.purpose == Purpose::Rotation
            && !self.params.dry_run
            && run.store.is_some()
            && run.facts.new_version.is_none()
        {
            // A rotation revokes only once the store serves the replacement: otherwise the
            // agents still read the old key (a restore was begun, or nothing was stored).
            return Err(Failure::failed(
                format!(
                    "{step}: the store does not serve a replacement; revoking the old key would break its agents"
                ),
                false,
            ));
        }
        if let Some(OpOutput::Revoked { already }) = self
            .provider_call(run, step, Action::Revoke, Op::Revoke { id }, gate, sink)
            .await?
        {
            run.facts.old_state = Some(KeyState::Revoked);
            run.facts.revoked_at = Some(self.now());
            if already {
                let key = run.key.id.clone();
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::Revoke,
                    Evidence::said("the provider no longer knows the key: already revoked"),
                )?;
            }
        }
        Ok(ActionOutcome::Done)
    }

    /// Call the provider with the old value and expect its documented invalid-credential
    /// answer (live), or acceptance (drill: proves the check itself works). Any other answer,
    /// or an old value that is not the located key, leaves the revocation "inconclusive": the
    /// step finishes, and the evidence, summary, report and exit code say it is not proven.
    pub(super) async fn prove_revoked<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        if !run.caps.verify {
            return skipped(format!(
                "not provable: {} has no verify call in keyfire",
                run.provider_def.kind
            ));
        }
        let Some(old) = run.bag.old_key.as_ref() else {
            return skipped(
                "inconclusive: old value unavailable (the store could not be read), so the revocation is not proven",
            );
        };
        let key = run.key.id.clone();
        let identity = crate::provider::identity(
            run.provider_def.kind,
            old,
            run.facts.provider_key_id.as_deref(),
            run.facts.provider_key_hint.as_deref(),
            run.key.fingerprint.as_deref(),
        );
        if self.params.dry_run {
            let out = self
                .provider_read(
                    run,
                    step,
                    Action::ProveRevoked,
                    Op::Verify { which: Which::Old },
                    sink,
                )
                .await?;
            let accepted = matches!(&out, OpOutput::Verified(p) if p.alive());
            let text = if accepted {
                "drill: the old key still authenticates (revoke was not sent); the proof call works"
            } else {
                "drill: the provider already rejects the old key"
            };
            let drilled = Evidence::proof_drill(accepted, identity, text);
            self.evidence(sink, step, &key, Action::ProveRevoked, drilled)?;
            return Ok(ActionOutcome::Done);
        }
        let inconclusive = |reason: String, probe: Option<&Probe>| {
            Evidence::inconclusive(reason, probe, identity.clone())
        };
        if let Identity::Differs { by } | Identity::Unknown { why: by } = &identity {
            let reason = match &identity {
                Identity::Differs { .. } => {
                    format!("the old value read from the store is not the located key ({by})")
                }
                _ => format!("cannot tell whether the stored old value is the located key: {by}"),
            };
            self.evidence(
                sink,
                step,
                &key,
                Action::ProveRevoked,
                inconclusive(reason, None),
            )?;
            return Ok(ActionOutcome::Done);
        }
        let waits = run.provider.proof_waits();
        let mut last = None;
        for attempt in 0..=waits.len() {
            let probe = match self
                .provider_read(
                    run,
                    step,
                    Action::ProveRevoked,
                    Op::Verify { which: Which::Old },
                    sink,
                )
                .await?
            {
                OpOutput::Verified(p) => p,
                _ => {
                    return Err(Failure::failed(
                        format!("{step}: unexpected answer to verify"),
                        false,
                    ));
                }
            };
            if let Probe::Rejected { status, signal } = &probe {
                run.facts.revoked_at = Some(self.now());
                let text = match status {
                    Some(st) => format!(
                        "the provider rejects the old key with HTTP {st} ({signal}, its documented invalid-credential answer)"
                    ),
                    None => format!(
                        "the provider rejects the old key ({signal}, its documented invalid-credential answer)"
                    ),
                };
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::ProveRevoked,
                    Evidence::proven(*status, signal.clone(), identity.clone(), text),
                )?;
                return Ok(ActionOutcome::Done);
            }
            last = Some(probe);
            if let Some(wait) = waits.get(attempt) {
                tokio::time::sleep(*wait).await;
            }
        }
        let tries = waits.len() + 1;
        match last {
            // A provider that confirmed the revoke and still accepts the key, where changes
            // are immediate, did not revoke it: the step fails. Where changes propagate (IAM),
            // a key still accepted after the whole wait is not proof either way.
            Some(Probe::Accepted) if !run.provider.eventually_consistent() => Err(Failure::failed(
                format!(
                    "{step}: the provider still accepts the old key after revocation ({tries} tries)"
                ),
                true,
            )),
            None => Err(Failure::failed(
                format!("{step}: the provider never answered the proof"),
                true,
            )),
            Some(probe) => {
                let reason = format!(
                    "after {tries} tries the last answer was {}",
                    probe.describe()
                );
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::ProveRevoked,
                    inconclusive(reason, Some(&probe)),
                )?;
                Ok(ActionOutcome::Done)
            }
        }
    }
}
