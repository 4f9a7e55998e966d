//! The `drive` loop: runs an opened or resumed incident's keys through their sessions (the
//! containment of every key first, then the rest), settles each action's outcome in the
//! record, asks the operator what to do with a failure, and closes with the timings.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::action::{Action, StepId};
use super::actions::{ActionOutcome, Failure, render_reports};
use super::context::{Ctx, KeyRun, Purpose};
use super::engine::Engine;
use super::error::EngineError;
use super::gate::{FailureChoice, FailureView, Gate, Sink};
use super::session::{Cursor, Order, Status};
use crate::record::event::{
    ActionDone, Closed, ClosedKey, FactsSnapshot, OperatorInput, Resumed, StepFailed, StepFinished,
    StepStarted, serde_name,
};

/// How a pass of [`drive`] ended; the closing line records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every key went through every step; the incident is closed for good.
    Completed,
    /// At least one key has a failed step; the incident stays open and resumable.
    Failed,
    /// The operator stopped it; it stays open and resumable.
    Aborted,
}

impl Outcome {
    /// The outcome as the record spells it: `completed`, `failed`, `aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOutcome {
    Done,
    /// Stopped after containment, waiting for the rest of the campaign to be contained.
    Contained,
    Failed,
    Aborted,
}

/// Which part of each key's runbook a pass of `drive` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Open and revoke (with its proof), then stop.
    Contain,
    /// Everything that is left.
    Rest,
}

/// Run an opened or resumed incident to its end (or until the operator stops it).
pub async fn drive<G: Gate, S: Sink>(
    engine: &mut Engine,
    gate: &mut G,
    sink: &mut S,
) -> Result<Outcome, EngineError> {
    let Engine { ctx, keys, resumed } = engine;
    // Announce the incident to the front-end (its first line is already in the record).
    if let Ok(entries) = crate::record::read_entries(&ctx.record.path())
        && !*resumed
        && let Some(first) = entries.first()
    {
        sink.emit(first);
    }
    if *resumed {
        let pending: Vec<&str> = keys
            .iter()
            .filter(|k| !k.session.is_finished())
            .map(|k| k.key.id.as_str())
            .collect();
        let resumed = Resumed {
            pending_keys: pending.into_iter().map(str::to_string).collect(),
            dry_run: ctx.params.dry_run,
            shared: ctx.share_note.clone(),
        };
        let entry = ctx
            .record
            .append_payload(ctx.setup.clock.as_ref(), &resumed)?;
        sink.emit(&entry);
    }
    // Keys with the widest blast radius go first; each provider runs a bounded number of keys
    // at once (settings.max_concurrency, default 16) to respect its rate limits.
    let inv = ctx.setup.inventory.clone();
    keys.sort_by_key(|k| std::cmp::Reverse(crate::inventory::view::blast_size(&inv, &k.key)));
    let mut limits: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    for k in keys.iter() {
        let n = k
            .provider_def
            .settings
            .get("max_concurrency")
            .and_then(Value::as_u64)
            .unwrap_or(16)
            .clamp(1, 64) as usize;
        limits
            .entry(k.provider_def.id.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(n)));
    }
    let ids: Vec<String> = keys
        .iter()
        .filter(|k| !k.session.is_finished())
        .map(|k| k.key.id.clone())
        .collect();
    let shared_gate = super::campaign::SharedGate::new(gate, &ids);
    let shared_sink = super::campaign::SharedSink::new(sink);
    let resumed = *resumed;
    let ctx_ref: &Ctx = ctx;
    // Contain first: every key's revoke (and its proof) runs before any key's redeploy,
    // audit or report, so the last key of a campaign is not left live while the first ones
    // gather evidence.
    let phases: &[Phase] = if ctx.params.order == Order::ContainFirst {
        &[Phase::Contain, Phase::Rest]
    } else {
        &[Phase::Rest]
    };
    let mut settled: Vec<Option<KeyOutcome>> = keys
        .iter()
        .map(|k| k.session.is_finished().then_some(KeyOutcome::Done))
        .collect();
    for (n, &phase) in phases.iter().enumerate() {
        let first_phase = n == 0;
        let runs = keys
            .iter_mut()
            .zip(settled.iter())
            .enumerate()
            .filter(|(_, (_, done))| done.is_none())
            .map(|(idx, (run, _))| {
                let limit = limits.get(&run.provider_def.id).cloned();
                let shared_gate = &shared_gate;
                let shared_sink = &shared_sink;
                async move {
                    let _permit = match &limit {
                        Some(l) => l.acquire().await.ok(),
                        None => None,
                    };
                    let mut gate = shared_gate.handle();
                    let mut sink = shared_sink.handle();
                    if gate.abort_requested() {
                        return (idx, Ok(KeyOutcome::Aborted));
                    }
                    if resumed && first_phase {
                        match ctx_ref.refresh(run, &mut sink).await {
                            Ok(()) => {}
                            Err(Failure::Fatal(e)) => return (idx, Err(e)),
                            Err(Failure::Aborted(_)) => return (idx, Ok(KeyOutcome::Aborted)),
                            Err(Failure::Failed { error, status, .. }) => {
                                let failed =
                                    StepFailed::new("refresh", error, status.map(u64::from), true);
                                let logged = ctx_ref.record(
                                    &mut sink,
                                    Some(StepId::Open),
                                    &run.key.id,
                                    &failed,
                                );
                                return (
                                    idx,
                                    logged
                                        .map(|_| KeyOutcome::Failed)
                                        .map_err(EngineError::from),
                                );
                            }
                        }
                    }
                    let outcome = run_key(ctx_ref, run, phase, &mut gate, &mut sink).await;
                    if matches!(outcome, Ok(KeyOutcome::Aborted)) {
                        shared_gate.abort_all();
                    }
                    (idx, outcome)
                }
            });
        let results = futures_util::future::join_all(runs).await;
        for (idx, r) in results {
            match r? {
                KeyOutcome::Contained => {}
                other => settled[idx] = Some(other),
            }
        }
    }
    let mut outcome = Outcome::Completed;
    for r in settled.into_iter().flatten() {
        match r {
            KeyOutcome::Done | KeyOutcome::Contained => {}
            KeyOutcome::Failed if outcome == Outcome::Completed => outcome = Outcome::Failed,
            KeyOutcome::Failed => {}
            KeyOutcome::Aborted => outcome = Outcome::Aborted,
        }
    }
    let mut sink = shared_sink.handle();
    close(ctx, keys, outcome, &mut sink)?;
    Ok(outcome)
}

fn step_title(ctx: &Ctx, step: StepId) -> String {
    match step {
        StepId::Open => {
            "Open: credentials, locate the key and read the store (evidence waits for the revoke)"
                .into()
        }
        other => ctx
            .setup
            .runbook
            .step(other)
            .map(|s| s.title.clone())
            .unwrap_or_else(|| other.to_string()),
    }
}

async fn run_key<G: Gate, S: Sink>(
    ctx: &Ctx,
    run: &mut KeyRun,
    phase: Phase,
    gate: &mut G,
    sink: &mut S,
) -> Result<KeyOutcome, EngineError> {
    while let Some(c) = run.session.next() {
        let step = run.session.step_id(c);
        // The containment pass ends with the proof: the evidence read deferred behind the
        // revoke waits, with the rest, until every key of the campaign is contained.
        if phase == Phase::Contain
            && (run.session.containment_settled() || !matches!(step, StepId::Open | StepId::Revoke))
        {
            return Ok(KeyOutcome::Contained);
        }
        if !run.session.step_started(c) {
            run.session.start_step(c);
            run.step_started.insert(step, ctx.now());
            let checklist = ctx
                .setup
                .runbook
                .step(step)
                .map(|s| s.checklist.clone())
                .unwrap_or_default();
            let note = ctx
                .setup
                .runbook
                .note(run.provider_def.kind, step)
                .map(str::to_string);
            let title = step_title(ctx, step);
            let started = StepStarted::new(title, checklist, note);
            ctx.record(sink, Some(step), &run.key.id, &started)?;
        }
        if gate.abort_requested() {
            let abort = OperatorInput::decision(None::<Action>, "abort")
                .because("operator interrupted the incident");
            ctx.record(sink, Some(step), &run.key.id, &abort)?;
            return Ok(KeyOutcome::Aborted);
        }
        let Some(action) = run.session.action(c) else {
            let started = run
                .step_started
                .get(&step)
                .copied()
                .unwrap_or_else(|| ctx.now());
            let ms = (ctx.now() - started).num_milliseconds();
            run.facts.step_ms.insert(step.as_str().to_string(), ms);
            run.session.finish_step(c);
            let status = run.session.steps[c.step].status;
            let finished = StepFinished::new(status, ms, FactsSnapshot::of(&run.facts));
            ctx.record(sink, Some(step), &run.key.id, &finished)?;
            continue;
        };
        let concurrent_store_read = action == Action::Locate
            && run.caps.locate
            && run.store.is_some()
            && matches!(
                run.session.steps[c.step].actions.get(c.action + 1),
                Some((Action::ReadStore, Status::Pending | Status::Failed))
            );
        tracing::debug!(
            target: "keyfire::runbook",
            key = %run.key.id,
            %step,
            %action,
            store_read_alongside = concurrent_store_read,
            "action started"
        );
        let action_started = std::time::Instant::now();
        let (result, store_read) = if concurrent_store_read {
            ctx.locate_and_read_store(run, step, sink).await
        } else {
            (ctx.run_action(run, step, action, gate, sink).await, None)
        };
        log_action_end(&run.key.id, step, action, action_started.elapsed(), &result);
        match result {
            Ok(ActionOutcome::Done) => {
                run.session.settle(c, Status::Done);
                note_containment(ctx, run);
                let done = ActionDone::done(action, FactsSnapshot::of(&run.facts));
                ctx.record(sink, Some(step), &run.key.id, &done)?;
            }
            Ok(ActionOutcome::Skipped(reason)) => {
                run.session.settle(c, Status::Skipped);
                note_containment(ctx, run);
                let skipped = ActionDone::skipped(action, reason, FactsSnapshot::of(&run.facts));
                ctx.record(sink, Some(step), &run.key.id, &skipped)?;
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Aborted(reason)) => {
                let abort = OperatorInput::decision(Some(action), "abort").because(reason);
                ctx.record(sink, Some(step), &run.key.id, &abort)?;
                return Ok(KeyOutcome::Aborted);
            }
            Err(Failure::Failed {
                error,
                status,
                retryable,
            }) => {
                // Error texts can quote what a server sent back: scrub before anyone sees them.
                let error = ctx.http.redactor().scrub(&error);
                run.session.settle(c, Status::Failed);
                let failed =
                    StepFailed::new(action, error.clone(), status.map(u64::from), retryable);
                ctx.record(sink, Some(step), &run.key.id, &failed)?;
                let view = FailureView {
                    key: &run.key.id,
                    step,
                    action,
                    error: &error,
                    status,
                };
                let choice = gate.on_failure(&view).await;
                match choice {
                    FailureChoice::Retry => {
                        let retry = OperatorInput::decision(Some(action), "retry");
                        ctx.record(sink, Some(step), &run.key.id, &retry)?;
                    }
                    FailureChoice::Skip { reason } => {
                        let skip = OperatorInput::decision(Some(action), "skip").because(&reason);
                        ctx.record(sink, Some(step), &run.key.id, &skip)?;
                        run.session.settle(c, Status::Skipped);
                        note_containment(ctx, run);
                        let skipped = ActionDone::skipped(
                            action,
                            format!("operator skipped after failure: {reason}"),
                            FactsSnapshot::of(&run.facts),
                        );
                        ctx.record(sink, Some(step), &run.key.id, &skipped)?;
                    }
                    FailureChoice::LeaveFailed => {
                        ctx.leave_failed(run, step, gate, sink).await?;
                        return Ok(KeyOutcome::Failed);
                    }
                    FailureChoice::Abort => {
                        let abort = OperatorInput::decision(Some(action), "abort");
                        ctx.record(sink, Some(step), &run.key.id, &abort)?;
                        return Ok(KeyOutcome::Aborted);
                    }
                }
            }
        }
        // The store read that ran beside the locate settles after it (it never fails its
        // step: an unreadable store is evidence unavailable). Not settled: it runs again on
        // its own turn.
        let read_at = Cursor {
            step: c.step,
            action: c.action + 1,
        };
        match store_read {
            Some(Ok(ActionOutcome::Done)) => {
                run.session.settle(read_at, Status::Done);
                let done = ActionDone::done(Action::ReadStore, FactsSnapshot::of(&run.facts));
                ctx.record(sink, Some(step), &run.key.id, &done)?;
            }
            Some(Ok(ActionOutcome::Skipped(reason))) => {
                run.session.settle(read_at, Status::Skipped);
                let skipped =
                    ActionDone::skipped(Action::ReadStore, reason, FactsSnapshot::of(&run.facts));
                ctx.record(sink, Some(step), &run.key.id, &skipped)?;
            }
            Some(Err(Failure::Fatal(e))) => return Err(e),
            Some(Err(_)) | None => {}
        }
    }
    Ok(KeyOutcome::Done)
}

/// An action's end in the debug log, with its outcome and how long it took (the error is
/// the one the record gets, scrubbed again by the log's writer).
fn log_action_end(
    key: &str,
    step: StepId,
    action: Action,
    took: std::time::Duration,
    result: &Result<ActionOutcome, Failure>,
) {
    let ms = took.as_millis();
    match result {
        Ok(ActionOutcome::Done) => tracing::debug!(
            target: "keyfire::runbook",
            %key, %step, %action, ms, outcome = "done", "action finished"
        ),
        Ok(ActionOutcome::Skipped(reason)) => tracing::debug!(
            target: "keyfire::runbook",
            %key, %step, %action, ms, outcome = "skipped", %reason, "action finished"
        ),
        Err(Failure::Failed { error, status, retryable }) => tracing::debug!(
            target: "keyfire::runbook",
            %key, %step, %action, ms, outcome = "failed", status, retryable, %error,
            "action finished"
        ),
        Err(Failure::Aborted(reason)) => tracing::debug!(
            target: "keyfire::runbook",
            %key, %step, %action, ms, outcome = "aborted", %reason, "action finished"
        ),
        Err(Failure::Fatal(e)) => tracing::warn!(
            target: "keyfire::runbook",
            %key, %step, %action, ms, outcome = "fatal", error = %e, "action finished"
        ),
    }
}

/// The moment the key's revoke and its proof settled: the end of its containment, whatever
/// the proof said. Evidence read after it (the deferred usage snapshot) does not count.
fn note_containment(ctx: &Ctx, run: &mut KeyRun) {
    if run.facts.contained_at.is_none() && run.session.containment_settled() {
        run.facts.contained_at = Some(ctx.now());
    }
}

fn close<S: Sink>(
    ctx: &Ctx,
    keys: &[KeyRun],
    outcome: Outcome,
    sink: &mut S,
) -> Result<(), EngineError> {
    let now = ctx.now();
    let mut per_key = std::collections::BTreeMap::new();
    for run in keys {
        let ms = |t: Option<DateTime<Utc>>| t.map(|t| (t - ctx.opened_at).num_milliseconds());
        per_key.insert(
            run.key.id.clone(),
            ClosedKey {
                finished: run.session.is_finished(),
                time_to_revoke_ms: ms(run.facts.revoked_at),
                time_to_restore_ms: ms(run.facts.restored_at),
                time_to_contain_ms: ms(run.facts.contained_at),
                step_ms: run.facts.step_ms.clone(),
                new_key_id: run.facts.new_key_id.clone(),
                new_version: run.facts.new_version.clone(),
            },
        );
    }
    // Until the last key's containment settled; unknown while any key is not contained.
    let fleet_time_to_contain_ms = keys
        .iter()
        .map(|k| k.facts.contained_at)
        .collect::<Option<Vec<_>>>()
        .and_then(|ts| ts.into_iter().max())
        .map(|t| (t - ctx.opened_at).num_milliseconds());
    let closed = Closed {
        outcome: serde_name(&outcome),
        dry_run: ctx.params.dry_run,
        total_ms: Some((now - ctx.opened_at).num_milliseconds()),
        fleet_time_to_contain_ms,
        keys: per_key,
    };
    let entry = ctx
        .record
        .append_payload(ctx.setup.clock.as_ref(), &closed)?;
    sink.emit(&entry);
    // The final report, with the closing timings. A failure here loses nothing: the record
    // is complete and `keyfire report` renders it again.
    if ctx.params.purpose == Purpose::Incident {
        let _ = render_reports(ctx);
    }
    Ok(())
}
