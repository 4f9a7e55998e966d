//! The engine's gate and sink for the console: questions and record entries travel to the
//! loop as events; answers come back on one-shot channels the loop keeps until the operator
//! replies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::action::{AppEvent, Prompt, PromptKind};
use crate::record::Entry;
use crate::record::event::CustomerDataAnswer;
use crate::runbook::{
    ApprovalRequest, CustomerDataReply, CustomerDataRequest, Decision, FailureChoice, FailureView,
    Gate, ManualRequest, PasteRequest, Sink,
};
use crate::secret::Secret;

/// Where an answer goes once the operator gives it.
#[derive(Debug)]
pub enum Pending {
    Decision(oneshot::Sender<Decision>),
    Paste(oneshot::Sender<Option<Secret>>),
    Failure(oneshot::Sender<FailureChoice>),
    CustomerData(oneshot::Sender<CustomerDataReply>),
}

/// What the engine side sends to the loop.
#[derive(Debug)]
pub enum FromEngine {
    Event(AppEvent),
    Ask(Prompt, Pending),
}

static NEXT_PROMPT: AtomicU64 = AtomicU64::new(1);

pub struct ChannelGate {
    tx: mpsc::UnboundedSender<FromEngine>,
    abort: Arc<AtomicBool>,
    /// Given on the command line (`--customer-data`): the question is answered, not asked.
    customer_data: Option<CustomerDataAnswer>,
}

impl ChannelGate {
    pub fn new(tx: mpsc::UnboundedSender<FromEngine>, abort: Arc<AtomicBool>) -> Self {
        Self {
            tx,
            abort,
            customer_data: None,
        }
    }

    /// Answer the customer-data question with the command line's `--customer-data`.
    pub fn with_customer_data(mut self, answer: Option<CustomerDataAnswer>) -> Self {
        self.customer_data = answer;
        self
    }

    fn ask(&self, kind: PromptKind, pending: Pending) {
        let prompt = Prompt {
            id: NEXT_PROMPT.fetch_add(1, Ordering::Relaxed),
            kind,
        };
        let _ = self.tx.send(FromEngine::Ask(prompt, pending));
    }
}

impl Gate for ChannelGate {
    async fn approve(&mut self, req: &ApprovalRequest<'_>) -> Decision {
        let (tx, rx) = oneshot::channel();
        self.ask(
            PromptKind::Approve {
                key: req.key.to_string(),
                step: req.step.to_string(),
                action: req.action.to_string(),
                summary: req.plan.summary.clone(),
                rendered: req.plan.render(),
                confirm_text: req.confirm_text.map(str::to_string),
            },
            Pending::Decision(tx),
        );
        rx.await.unwrap_or(Decision::Decline {
            via: "console closed".into(),
        })
    }

    async fn confirm_manual(&mut self, req: &ManualRequest<'_>) -> Decision {
        let (tx, rx) = oneshot::channel();
        self.ask(
            PromptKind::Manual {
                key: req.key.to_string(),
                step: req.step.to_string(),
                action: req.action.to_string(),
                instructions: req
                    .instructions
                    .iter()
                    .filter(|l| !l.is_empty())
                    .cloned()
                    .collect(),
            },
            Pending::Decision(tx),
        );
        rx.await.unwrap_or(Decision::Decline {
            via: "console closed".into(),
        })
    }

    async fn paste_secret(&mut self, req: &PasteRequest<'_>) -> Option<Secret> {
        let (tx, rx) = oneshot::channel();
        self.ask(
            PromptKind::Paste {
                key: req.key.to_string(),
                instructions: req
                    .instructions
                    .iter()
                    .filter(|l| !l.is_empty())
                    .cloned()
                    .collect(),
            },
            Pending::Paste(tx),
        );
        rx.await.ok().flatten()
    }

    async fn on_failure(&mut self, f: &FailureView<'_>) -> FailureChoice {
        let (tx, rx) = oneshot::channel();
        self.ask(
            PromptKind::Failure {
                key: f.key.to_string(),
                step: f.step.to_string(),
                action: f.action.to_string(),
                error: f.error.to_string(),
                status: f.status,
            },
            Pending::Failure(tx),
        );
        rx.await.unwrap_or(FailureChoice::Abort)
    }

    async fn customer_data(&mut self, req: &CustomerDataRequest<'_>) -> CustomerDataReply {
        if let Some(answer) = self.customer_data {
            return CustomerDataReply {
                answer,
                note: None,
                via: "--customer-data".into(),
            };
        }
        let (tx, rx) = oneshot::channel();
        self.ask(
            PromptKind::CustomerData {
                key: req.key.to_string(),
                question: req.question(),
                scopes_note: req.scopes_note(),
            },
            Pending::CustomerData(tx),
        );
        rx.await
            .unwrap_or_else(|_| CustomerDataReply::unknown("console closed"))
    }

    fn abort_requested(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }
}

pub struct ChannelSink {
    tx: mpsc::UnboundedSender<FromEngine>,
}

impl ChannelSink {
    pub fn new(tx: mpsc::UnboundedSender<FromEngine>) -> Self {
        Self { tx }
    }
}

impl Sink for ChannelSink {
    fn emit(&mut self, entry: &Entry) {
        let _ = self
            .tx
            .send(FromEngine::Event(AppEvent::Entry(Box::new(entry.clone()))));
    }
}
