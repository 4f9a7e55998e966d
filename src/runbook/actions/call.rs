//! The one sequence every provider, store and manual call goes through, and the record
//! helpers the actions share:
//!
//! plan -> record the plan -> gate (a drill records a write as not sent; a write in a live
//! incident waits for the operator's approval) -> record the request -> send -> record the
//! answer.
//!
//! Reads (`provider_read`, `store_read`) are sent in drills too and need no approval: they go
//! through an approve-everything gate and refuse a plan that would write.

use serde_json::Value;

use super::{ActionOutcome, Failure, Res, skipped};
use crate::plan::{Access, RequestPlan};
use crate::provider::{Op, OpOutput, ProviderError, manual_reason};
use crate::record::event::{
    Evidence, NotSent, OperatorInput, Payload, Planned, RequestSent, Response,
};
use crate::record::{Entry, RecordError};
use crate::runbook::action::{Action, StepId};
use crate::runbook::context::{Ctx, KeyRun};
use crate::runbook::gate::{ApprovalRequest, ApproveAll, Decision, Gate, ManualRequest, Sink};
use crate::store::{StoreError, StoreOp, StoreOutput, StoreVersion};

fn provider_failure(step: StepId, e: &ProviderError) -> Failure {
    Failure::Failed {
        error: format!("{step}: {e}"),
        status: e.status(),
        retryable: e.retryable(),
    }
}

fn store_failure(step: StepId, e: &StoreError) -> Failure {
    let status = match e {
        StoreError::Http(h) => h.status(),
        _ => None,
    };
    Failure::Failed {
        error: format!("{step}: store: {e}"),
        status,
        retryable: true,
    }
}

impl Ctx {
    /// Append one typed entry about a key to the record (durably), then tell the front-end.
    /// Every entry the runbook writes goes through here: the engine adds the key.
    pub(in crate::runbook) fn record<S: Sink, P: Payload>(
        &self,
        sink: &mut S,
        step: Option<StepId>,
        key: &str,
        payload: &P,
    ) -> Result<Entry, RecordError> {
        let mut data = payload.data();
        if let Value::Object(map) = &mut data {
            map.insert("key".into(), Value::String(key.to_string()));
        }
        let entry = self.record.append(
            self.setup.clock.as_ref(),
            P::KIND,
            step.map(StepId::as_str),
            data,
        )?;
        sink.emit(&entry);
        Ok(entry)
    }

    /// Record what an action learned.
    pub(super) fn evidence<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        evidence: Evidence,
    ) -> Result<(), Failure> {
        self.record(sink, Some(step), key, &evidence.about(action))?;
        Ok(())
    }

    /// A best-effort read failed: record "evidence unavailable: reason" and go on. Evidence
    /// never blocks containment (DESIGN non-negotiable 7); drills list these as problems.
    /// Anything but a failed call (an abort, a record error) is passed on.
    pub(super) fn unavailable<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        failure: Failure,
    ) -> Res {
        let Failure::Failed { error, status, .. } = failure else {
            return Err(failure);
        };
        let reason = self.http.redactor().scrub(&error);
        let text = format!("evidence unavailable: {reason}");
        self.evidence(
            sink,
            step,
            key,
            action,
            Evidence::unavailable(reason, status),
        )?;
        skipped(text)
    }

    /// Record the plan, then decide: `Ok(true)` send it, `Ok(false)` drill (recorded as not
    /// sent). Writes in a live incident wait for the operator's approval.
    pub(super) async fn gate_plan<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        plan: &RequestPlan,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<bool, Failure> {
        let key = run.key.id.clone();
        self.record(sink, Some(step), &key, &Planned::request(action, plan))?;
        if plan.access == Access::Write {
            if self.params.dry_run {
                self.record(sink, Some(step), &key, &NotSent::request(action, plan))?;
                return Ok(false);
            }
            let confirm = plan.destructive.then_some(key.as_str());
            let req = ApprovalRequest {
                incident: &self.id,
                key: &key,
                step,
                action,
                plan,
                confirm_text: confirm,
            };
            let decision = gate.approve(&req).await;
            match decision {
                Decision::Approve { via } => {
                    let approved = OperatorInput::decision(Some(action), "approve").via(via);
                    self.record(sink, Some(step), &key, &approved)?;
                }
                Decision::Decline { via } => {
                    let declined = OperatorInput::decision(Some(action), "decline").via(via);
                    self.record(sink, Some(step), &key, &declined)?;
                    return Err(Failure::Aborted(format!(
                        "operator declined: {}",
                        plan.summary
                    )));
                }
            }
        }
        match action {
            Action::Create => run.facts.create_sent = true,
            Action::Disable => run.facts.disable_sent = true,
            Action::Revoke => run.facts.revoke_sent = true,
            Action::StoreWrite => run.facts.store_write_sent = true,
            _ => {}
        }
        self.record(sink, Some(step), &key, &RequestSent::of(action, plan))?;
        Ok(true)
    }

    /// Plan, gate, send a provider operation. `Ok(None)`: drilled, not sent.
    pub(super) async fn provider_call<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        op: Op,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<Option<OpOutput>, Failure> {
        let plan = run
            .provider
            .plan(&op)
            .map_err(|e| provider_failure(step, &e))?;
        if !self.gate_plan(run, step, action, &plan, gate, sink).await? {
            return Ok(None);
        }
        let key = run.key.id.clone();
        let result = run.provider.execute(&op, &plan, &self.http, &run.bag).await;
        self.provider_response(sink, step, &key, action, result)
            .map(Some)
    }

    /// Record a provider's answer to a sent plan.
    pub(super) fn provider_response<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        result: Result<OpOutput, ProviderError>,
    ) -> Result<OpOutput, Failure> {
        match result {
            Ok(out) => {
                self.record(sink, Some(step), key, &Response::of_provider(action, &out))?;
                Ok(out)
            }
            Err(e) => {
                let failed = Response::failed(action, e.status().map(u64::from), e.to_string());
                self.record(sink, Some(step), key, &failed)?;
                Err(provider_failure(step, &e))
            }
        }
    }

    /// Record a store's answer to a sent plan.
    pub(super) fn store_response<S: Sink>(
        &self,
        sink: &mut S,
        step: StepId,
        key: &str,
        action: Action,
        result: Result<StoreOutput, StoreError>,
    ) -> Result<StoreOutput, Failure> {
        match result {
            Ok(out) => {
                self.record(sink, Some(step), key, &Response::of_store(action, &out))?;
                Ok(out)
            }
            Err(e) => {
                let status = match &e {
                    StoreError::Http(h) => h.status(),
                    _ => None,
                };
                let failed = Response::failed(action, status.map(u64::from), e.to_string());
                self.record(sink, Some(step), key, &failed)?;
                Err(store_failure(step, &e))
            }
        }
    }

    /// Reads only: plan and send without a gate (drills send reads too).
    pub(super) async fn provider_read<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        op: Op,
        sink: &mut S,
    ) -> Result<OpOutput, Failure> {
        // These calls go through an approve-everything gate: they must never plan a write.
        if run
            .provider
            .plan(&op)
            .is_ok_and(|p| p.access == Access::Write)
        {
            return Err(Failure::failed(
                format!("{step}: a read was planned as a write"),
                false,
            ));
        }
        let mut gate = ApproveAll::default();
        match self
            .provider_call(run, step, action, op, &mut gate, sink)
            .await?
        {
            Some(out) => Ok(out),
            None => Err(Failure::failed(
                format!("{step}: a read was planned as a write"),
                false,
            )),
        }
    }

    /// Read the store (the current version, or a given one). Reads need no approval, so this
    /// goes through an approve-everything gate and refuses a plan that would write.
    pub(super) async fn store_read<S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        version: Option<StoreVersion>,
        sink: &mut S,
    ) -> Result<Option<StoreOutput>, Failure> {
        let op = StoreOp::Read { version };
        let is_write = run.store.as_ref().is_some_and(|(store, loc)| {
            store
                .plan(&op, loc)
                .is_ok_and(|p| p.access == Access::Write)
        });
        if is_write {
            return Err(Failure::failed(
                format!("{step}: a store read was planned as a write"),
                false,
            ));
        }
        let mut reads = ApproveAll::default();
        self.store_call(run, step, action, op, &mut reads, sink)
            .await
    }

    pub(super) async fn store_call<G: Gate, S: Sink>(
        &self,
        run: &mut KeyRun,
        step: StepId,
        action: Action,
        op: StoreOp,
        gate: &mut G,
        sink: &mut S,
    ) -> Result<Option<StoreOutput>, Failure> {
        let Some((store, loc)) = run.store.clone() else {
            return Err(Failure::failed(format!("{step}: key has no store"), false));
        };
        self.store_credential(run, step).await?;
        let plan = store.plan(&op, &loc).map_err(|e| store_failure(step, &e))?;
        if !self.gate_plan(run, step, action, &plan, gate, sink).await? {
            return Ok(None);
        }
        let key = run.key.id.clone();
        let result = store.execute(&op, &loc, &plan, &self.http, &run.bag).await;
        self.store_response(sink, step, &key, action, result)
            .map(Some)
    }

    /// Resolve the store's credential into the bag unless it is there or not needed.
    /// `Some(reference)` when this call resolved it.
    pub(super) async fn store_credential(
        &self,
        run: &mut KeyRun,
        step: StepId,
    ) -> Result<Option<String>, Failure> {
        let Some(store_id) = run.key.store.clone() else {
            return Ok(None);
        };
        let needs = run
            .store
            .as_ref()
            .is_some_and(|(s, _)| s.needs_credential());
        let cref = self
            .setup
            .inventory
            .store(&store_id)
            .and_then(|s| s.credential.clone());
        let (true, Some(cref), None) = (needs, cref, run.bag.store_credential.as_ref()) else {
            return Ok(None);
        };
        let secret = crate::credential::resolve(&cref, &self.setup.inventory, &self.http)
            .await
            .map_err(|e| {
                Failure::failed(
                    format!("{step}: credential for store `{store_id}`: {e}"),
                    true,
                )
            })?;
        run.bag.store_credential = Some(secret);
        Ok(Some(cref.to_string()))
    }

    /// A step the operator does by hand, confirmed at the gate (a drill records what it
    /// would ask).
    pub(super) async fn manual<G: Gate, S: Sink>(
        &self,
        run: &KeyRun,
        step: StepId,
        action: Action,
        instructions: Vec<String>,
        gate: &mut G,
        sink: &mut S,
    ) -> Res {
        if !self.manual_plan(run, step, action, &instructions, sink)? {
            return Ok(ActionOutcome::Done);
        }
        let key = run.key.id.clone();
        let req = ManualRequest {
            incident: &self.id,
            key: &key,
            step,
            action,
            instructions: &instructions,
        };
        match gate.confirm_manual(&req).await {
            Decision::Approve { via } => {
                let confirmed = OperatorInput::decision(Some(action), "confirmed")
                    .manual()
                    .via(via);
                self.record(sink, Some(step), &key, &confirmed)?;
                Ok(ActionOutcome::Done)
            }
            Decision::Decline { via } => {
                let declined = OperatorInput::decision(Some(action), "decline")
                    .manual()
                    .via(via);
                self.record(sink, Some(step), &key, &declined)?;
                Err(Failure::Aborted(
                    "operator did not confirm the manual step".into(),
                ))
            }
        }
    }

    /// Record the instructions of a hand-made step as its plan: `Ok(true)` ask the operator,
    /// `Ok(false)` drill (recorded as what would be asked, not sent).
    pub(super) fn manual_plan<S: Sink>(
        &self,
        run: &KeyRun,
        step: StepId,
        action: Action,
        instructions: &[String],
        sink: &mut S,
    ) -> Result<bool, Failure> {
        let key = &run.key.id;
        if self.params.dry_run {
            self.record(
                sink,
                Some(step),
                key,
                &NotSent::manual(action, instructions),
            )?;
            return Ok(false);
        }
        self.record(
            sink,
            Some(step),
            key,
            &Planned::manual(action, instructions),
        )?;
        Ok(true)
    }

    pub(super) fn manual_intro(&self, run: &KeyRun) -> String {
        manual_reason(run.provider_def.kind)
            .map_or_else(String::new, |r| format!("Manual step: {r}."))
    }
}
