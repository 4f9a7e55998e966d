//! Running many keys at once (a campaign): one gate and one sink shared by the keys' tasks,
//! one approval per step and action for the whole batch, and an abort that reaches every key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;

use super::action::{Action, StepId};
use super::gate::{
    ApprovalRequest, CustomerDataReply, CustomerDataRequest, Decision, FailureChoice, FailureView,
    Gate, ManualRequest, PasteRequest, Sink,
};
use crate::record::Entry;
use crate::secret::Secret;

/// The operator's gate, shared by every key of the incident.
pub(super) struct SharedGate<'a, G: Gate> {
    inner: Mutex<&'a mut G>,
    /// Set for campaigns: the keys, so one approval covers them all.
    batch: Option<Vec<String>>,
    /// Keyed by what is approved, not only where: an orphan's deletion during `create` is
    /// a different question from the create itself.
    decisions: Mutex<HashMap<(StepId, Action, bool, String), Decision>>,
    /// A campaign's answer to the customer-data question, asked once for every key.
    customer_data: Mutex<Option<CustomerDataReply>>,
    abort: AtomicBool,
}

impl<'a, G: Gate> SharedGate<'a, G> {
    pub(super) fn new(inner: &'a mut G, keys: &[String]) -> Self {
        Self {
            inner: Mutex::new(inner),
            batch: (keys.len() > 1).then(|| keys.to_vec()),
            decisions: Mutex::new(HashMap::new()),
            customer_data: Mutex::new(None),
            abort: AtomicBool::new(false),
        }
    }

    pub(super) fn handle(&self) -> GateHandle<'_, 'a, G> {
        GateHandle { shared: self }
    }

    /// Stop every key at its next action boundary.
    pub(super) fn abort_all(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }
}

pub(super) struct GateHandle<'s, 'a, G: Gate> {
    shared: &'s SharedGate<'a, G>,
}

fn batch_label(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(4).map(String::as_str).collect();
    let more = keys.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(", and {more} more")
    } else {
        String::new()
    };
    format!("{} keys ({}{tail})", keys.len(), shown.join(", "))
}

impl<G: Gate> Gate for GateHandle<'_, '_, G> {
    async fn approve(&mut self, req: &ApprovalRequest<'_>) -> Decision {
        let Some(keys) = &self.shared.batch else {
            return self.shared.inner.lock().await.approve(req).await;
        };
        // Whoever asks first asks for everyone; the others wait here for the answer.
        let mut decisions = self.shared.decisions.lock().await;
        let what = (
            req.step,
            req.action,
            req.plan.destructive,
            req.plan.method.clone(),
        );
        if let Some(d) = decisions.get(&what) {
            return d.clone();
        }
        let mut plan = req.plan.clone();
        plan.summary = format!(
            "{}, and the same for every key of this incident ({} keys)",
            plan.summary,
            keys.len()
        );
        let label = batch_label(keys);
        let count = keys.len().to_string();
        let batch = ApprovalRequest {
            incident: req.incident,
            key: &label,
            step: req.step,
            action: req.action,
            plan: &plan,
            // A destructive batch is confirmed by typing how many keys it hits.
            confirm_text: req.confirm_text.map(|_| count.as_str()),
        };
        let d = self.shared.inner.lock().await.approve(&batch).await;
        decisions.insert(what, d.clone());
        d
    }

    async fn confirm_manual(&mut self, req: &ManualRequest<'_>) -> Decision {
        self.shared.inner.lock().await.confirm_manual(req).await
    }

    async fn paste_secret(&mut self, req: &PasteRequest<'_>) -> Option<Secret> {
        self.shared.inner.lock().await.paste_secret(req).await
    }

    async fn on_failure(&mut self, failure: &FailureView<'_>) -> FailureChoice {
        let choice = self.shared.inner.lock().await.on_failure(failure).await;
        if choice == FailureChoice::Abort {
            self.shared.abort_all();
        }
        choice
    }

    async fn customer_data(&mut self, req: &CustomerDataRequest<'_>) -> CustomerDataReply {
        let Some(keys) = &self.shared.batch else {
            return self.shared.inner.lock().await.customer_data(req).await;
        };
        // Like an approval: asked once for the batch, the same answer recorded for each key.
        let mut answer = self.shared.customer_data.lock().await;
        if let Some(a) = answer.as_ref() {
            return a.clone();
        }
        let label = batch_label(keys);
        let batch = CustomerDataRequest {
            incident: req.incident,
            key: &label,
            drill: req.drill,
            reaching_scopes: None,
        };
        let a = self.shared.inner.lock().await.customer_data(&batch).await;
        *answer = Some(a.clone());
        a
    }

    fn abort_requested(&self) -> bool {
        if self.shared.abort.load(Ordering::SeqCst) {
            return true;
        }
        // Someone holding the gate is asking the operator: not an abort.
        self.shared
            .inner
            .try_lock()
            .map(|g| g.abort_requested())
            .unwrap_or(false)
    }
}

/// The front-end's sink, shared by every key.
pub(super) struct SharedSink<'a, S: Sink> {
    inner: std::sync::Mutex<&'a mut S>,
}

impl<'a, S: Sink> SharedSink<'a, S> {
    pub(super) fn new(inner: &'a mut S) -> Self {
        Self {
            inner: std::sync::Mutex::new(inner),
        }
    }

    pub(super) fn handle(&self) -> SinkHandle<'_, 'a, S> {
        SinkHandle { shared: self }
    }
}

pub(super) struct SinkHandle<'s, 'a, S: Sink> {
    shared: &'s SharedSink<'a, S>,
}

impl<S: Sink> Sink for SinkHandle<'_, '_, S> {
    fn emit(&mut self, entry: &Entry) {
        let mut s = self.shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.emit(entry);
    }
}
