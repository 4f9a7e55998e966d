//! Step 0, open: resolve the credentials, locate the key at the provider, read the store
//! (the old value the proof and the audit need), and snapshot usage a revoke would destroy.
//! On resume the same reads run again before anything else (`refresh`).

use chrono::Duration;

use super::{ActionOutcome, Failure, Res, skipped};
use crate::plan::Access;
use crate::provider::{KeyState, Op, OpOutput};
use crate::record::event::{Evidence, Resolved};
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun};
use crate::runbook::gate::{ApproveAll, Sink};
use crate::store::{StoreOp, StoreOutput, StoreVersion};

/// The days of usage read before anything changes (a revoke can make it unreadable).
const SNAPSHOT_DAYS: u32 = 7;

/// How the key is looked up: the id the incident found, the inventory's id, or its hint.
fn locate_op(run: &KeyRun) -> Op {
    Op::Locate {
        id: run
            .facts
            .provider_key_id
            .clone()
            .or_else(|| run.key.provider_key_id.clone()),
        name: None,
        hint: run.key.hint.clone(),
    }
}

impl Ctx {
    /// On resume: secrets were never persisted and the world may have moved on, so resolve
    /// credentials and read provider and store state again before continuing.
    pub(in crate::runbook) async fn refresh<S: Sink>(
        &self,
        run: &mut KeyRun,
        sink: &mut S,
    ) -> Result<(), Failure> {
        self.record(sink, Some(StepId::Open), &run.key.id, &Evidence::refresh())?;
        self.resolve_credentials(run, StepId::Open, sink).await?;
        if run.caps.locate {
            self.locate(run, StepId::Open, sink).await?;
        }
        self.read_store(run, StepId::Open, sink).await?;
        self.reopen_lost_replacement(run, sink)?;
        Ok(())
    }

    pub(super) async fn resolve_credentials<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        let mut resolved = Vec::new();
        if run.caps != crate::provider::Capabilities::NONE
            && let Some(cref) = run.provider_def.admin_credential.clone()
        {
            let secret = crate::credential::resolve(&cref, &self.setup.inventory, &self.http)
                .await
                .map_err(|e| {
                    Failure::failed(
                        format!(
                            "{step}: admin credential for provider `{}`: {e}",
                            run.provider_def.id
                        ),
                        true,
                    )
                })?;
            run.bag.admin = Some(secret);
            resolved.push(Resolved {
                used_for: format!("provider {}", run.provider_def.id),
                reference: cref.to_string(),
            });
        }
        // The store is not needed for the revoke: a credential that cannot be resolved is
        // recorded and tried again by the first store call that needs it.
        match self.store_credential(run, step).await {
            Ok(Some(reference)) => resolved.push(Resolved {
                used_for: format!("store {}", run.key.store.clone().unwrap_or_default()),
                reference,
            }),
            Ok(None) => {}
            Err(Failure::Failed { error, .. }) => {
                let error = self.http.redactor().scrub(&error);
                let text = format!(
                    "store credential unavailable: {error}; the revoke goes on, store calls try again"
                );
                let unavailable = Evidence::unavailable_saying(error, text);
                self.evidence(sink, step, &key, Action::ResolveCredentials, unavailable)?;
            }
            Err(other) => return Err(other),
        }
        self.evidence(
            sink,
            step,
            &key,
            Action::ResolveCredentials,
            Evidence::resolved(resolved),
        )?;
        Ok(ActionOutcome::Done)
    }

    pub(super) async fn locate<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        if !run.caps.locate {
            return skipped(format!(
                "{} cannot look keys up by API",
                run.provider_def.kind
            ));
        }
        let op = locate_op(run);
        let out = self
            .provider_read(run, step, Action::Locate, op, sink)
            .await?;
        self.apply_located(run, step, out, sink)
    }

    /// Locate the key and read the store at once: the revoke needs the first, the proof the
    /// second, and neither waits for the other (one round trip before the revoke, not two).
    /// Both plans are recorded before either is sent; both answers after. `None` for the
    /// store read when it did not run (it runs on its own turn then).
    pub(in crate::runbook) async fn locate_and_read_store<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> (Res, Option<Res>) {
        let key = run.key.id.clone();
        let op = locate_op(run);
        let store_op = StoreOp::Read { version: None };
        let credential = self.store_credential(run, step).await;
        let provider_plan = run.provider.plan(&op).ok();
        let store = run.store.clone().and_then(|(store, loc)| {
            let plan = store.plan(&store_op, &loc).ok()?;
            Some((store, loc, plan))
        });
        let (Ok(_), Some(plan), Some((store, loc, store_plan))) =
            (credential, provider_plan, store)
        else {
            // Something is off with one of the plans: the sequential actions say what.
            let located = self.locate(run, step, sink).await;
            return (located, None);
        };
        if plan.access == Access::Write || store_plan.access == Access::Write {
            let located = self.locate(run, step, sink).await;
            return (located, None);
        }
        let mut reads = ApproveAll::default();
        for (action, p) in [(Action::Locate, &plan), (Action::ReadStore, &store_plan)] {
            match self.gate_plan(run, step, action, p, &mut reads, sink).await {
                Ok(true) => {}
                Ok(false) => return (self.locate(run, step, sink).await, None),
                Err(f) => return (Err(f), None),
            }
        }
        let (located, stored) = tokio::join!(
            run.provider.execute(&op, &plan, &self.http, &run.bag),
            store.execute(&store_op, &loc, &store_plan, &self.http, &run.bag),
        );
        let located = self.provider_response(sink, step, &key, Action::Locate, located);
        let stored = self.store_response(sink, step, &key, Action::ReadStore, stored);
        let located = match located {
            Ok(out) => self.apply_located(run, step, out, sink),
            Err(f) => Err(f),
        };
        let stored = match stored {
            Ok(out) => self.apply_store_read(run, step, Some(out), sink).await,
            Err(f) => self.unavailable(sink, step, &key, Action::ReadStore, f),
        };
        (located, Some(stored))
    }

    fn apply_located<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        out: OpOutput,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        match out {
            OpOutput::Located(Some(found)) => {
                run.facts.provider_key_id = Some(found.id.clone());
                run.facts.provider_key_hint = found.hint.clone();
                run.facts.old_state = Some(found.state);
                self.evidence(sink, step, &key, Action::Locate, Evidence::located(found))?;
                Ok(ActionOutcome::Done)
            }
            OpOutput::Located(None)
                if run.facts.revoke_sent || run.facts.old_state == Some(KeyState::Revoked) =>
            {
                run.facts.old_state = Some(KeyState::Revoked);
                let gone = Evidence::gone("the key is gone at the provider: it was revoked");
                self.evidence(sink, step, &key, Action::Locate, gone)?;
                Ok(ActionOutcome::Done)
            }
            OpOutput::Located(None) => Err(Failure::Failed {
                error: format!(
                    "{step}: key not found at provider `{}` (provider_key_id {:?}, hint {:?}): check the inventory, or skip if it was already deleted",
                    run.provider_def.id, run.key.provider_key_id, run.key.hint
                ),
                status: Some(404),
                retryable: false,
            }),
            // Several keys look like the leaked one: picking any could revoke the wrong key.
            OpOutput::Ambiguous(candidates) => {
                let listed: Vec<String> = candidates
                    .iter()
                    .map(|c| {
                        format!(
                            "{} (name {}, created {}, last used {})",
                            c.id,
                            c.name.as_deref().unwrap_or("-"),
                            c.created_at.as_deref().unwrap_or("unknown"),
                            c.last_used_at.as_deref().unwrap_or("unknown")
                        )
                    })
                    .collect();
                let text = format!(
                    "{} keys at provider `{}` match hint {}: {}. Nothing was changed: set provider_key_id of key `{key}` in the inventory to the leaked key's id, then resume",
                    candidates.len(),
                    run.provider_def.id,
                    run.key.hint.as_deref().unwrap_or("-"),
                    listed.join("; ")
                );
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::Locate,
                    Evidence::ambiguous(candidates, text.clone()),
                )?;
                Err(Failure::failed(format!("{step}: {text}"), false))
            }
            _ => Err(Failure::failed(
                format!("{step}: unexpected answer to locate"),
                false,
            )),
        }
    }

    pub(super) async fn read_store<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        if run.store.is_none() {
            return skipped("the key has no store");
        }
        let key = run.key.id.clone();
        let current = match self
            .store_read(run, step, Action::ReadStore, None, sink)
            .await
        {
            Ok(current) => current,
            // The proof and the audit's fingerprint need the old value, the revoke does not.
            Err(f) => return self.unavailable(sink, step, &key, Action::ReadStore, f),
        };
        self.apply_store_read(run, step, current, sink).await
    }

    /// Take in the store's current value: the leaked key, or (on resume) keyfire's own
    /// replacement with the leaked key read back by its version.
    pub(super) async fn apply_store_read<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        current: Option<StoreOutput>,
        sink: &mut S,
    ) -> Res {
        let key = run.key.id.clone();
        match current {
            Some(StoreOutput::Value { value, version }) => {
                let mut old_version = run
                    .facts
                    .old_version
                    .get_or_insert_with(|| version.clone())
                    .clone();
                if version == old_version {
                    run.bag.old_key = Some(value);
                } else {
                    let served = value.clone();
                    // The store moved on since the incident opened. It is keyfire's replacement
                    // only if keyfire sent a write and the value is the one it created (same
                    // hint); someone else's write is never adopted.
                    let ours = run
                        .facts
                        .new_key_hint
                        .as_ref()
                        .is_none_or(|h| *h == value.hint());
                    if run.facts.new_version.is_none() && run.facts.store_write_sent && ours {
                        run.facts.new_version = Some(version.clone());
                    }
                    if run.facts.new_version.as_ref() == Some(&version) {
                        run.facts.promoted = true;
                        run.bag.new_key = Some(value);
                    }
                    // Without the old value the proof is inconclusive; nothing else stops.
                    let old = self
                        .store_read(
                            run,
                            step,
                            Action::ReadStore,
                            Some(old_version.clone()),
                            sink,
                        )
                        .await;
                    match old {
                        Ok(Some(StoreOutput::Value { value, .. })) => run.bag.old_key = Some(value),
                        Ok(_) => {}
                        Err(Failure::Failed { error, .. }) => {
                            let error = self.http.redactor().scrub(&error);
                            let text = format!(
                                "evidence unavailable: the leaked version {old_version} could not be read back: {error}"
                            );
                            let unavailable = Evidence::unavailable_saying(error, text);
                            self.evidence(sink, step, &key, Action::ReadStore, unavailable)?;
                        }
                        Err(other) => return Err(other),
                    }
                    // The leaked key's value served under a newer version: a restore reached
                    // the store but its answer did not reach keyfire (killed while the store
                    // held it), or someone put the key back by hand. That version is the one
                    // a replacement goes over; checking against the older one would fail
                    // every write.
                    if run.facts.new_version.as_ref() != Some(&version)
                        && run
                            .bag
                            .old_key
                            .as_ref()
                            .is_some_and(|old| old.expose() == served.expose())
                    {
                        run.facts.old_version = Some(version.clone());
                        old_version = version.clone();
                    }
                }
                let text = format!(
                    "store holds version {version}; the leaked key is version {old_version}"
                );
                self.evidence(
                    sink,
                    step,
                    &key,
                    Action::ReadStore,
                    Evidence::store_holds(version, old_version, text),
                )?;
                self.recover_pending(run, step, sink).await?;
            }
            _ => {
                run.facts.old_version.get_or_insert(StoreVersion::Number(0));
                let nothing = Evidence::nothing_stored("nothing stored at the secret path yet");
                self.evidence(sink, step, &key, Action::ReadStore, nothing)?;
            }
        }
        Ok(ActionOutcome::Done)
    }

    pub(super) async fn snapshot_usage<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        sink: &mut S,
    ) -> Res {
        if !run.caps.usage {
            return skipped(format!(
                "{} has no usage API in keyfire",
                run.provider_def.kind
            ));
        }
        if run.facts.provider_key_id.is_none() {
            return skipped("the key was not located");
        }
        let end = self.now();
        let key = run.key.id.clone();
        let report = match self
            .usage(
                run,
                step,
                Action::SnapshotUsage,
                end - Duration::days(i64::from(SNAPSHOT_DAYS)),
                end,
                sink,
            )
            .await
        {
            Ok(Some(report)) => report,
            Ok(None) => return skipped("no usage returned"),
            Err(f) => return self.unavailable(sink, step, &key, Action::SnapshotUsage, f),
        };
        let text = format!(
            "last 7 days before any change: {} requests, ${:.2}",
            report.requests(),
            report.cost_usd()
        );
        self.evidence(
            sink,
            step,
            &key,
            Action::SnapshotUsage,
            Evidence::usage_snapshot(&report, SNAPSHOT_DAYS, text),
        )?;
        Ok(ActionOutcome::Done)
    }
}
