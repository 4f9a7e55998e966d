//! Sending in the background. Each notifier has a worker task and a queue: its messages go
//! out in order (a PagerDuty resolve never overtakes its trigger), one notifier's dead
//! receiver never holds up another, and the runbook only ever enqueues. Every attempt has a
//! short timeout and a transient failure (timeout, connection refused, 429, 5xx) is retried
//! a few times with backoff by the HTTP layer; the outcome is recorded (`notification`
//! entries in the incident record, never a secret) and shown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use super::event::Event;
use super::message::{Expect, Message, Outgoing};
use super::{pagerduty, slack, webhook};
use crate::http::{Http, HttpConfig, HttpError, RetryPolicy};
use crate::inventory::{Endpoint, Inventory, NotifierDef, NotifierKind};
use crate::plan::{RequestPlan, SecretBag};
use crate::secret::{Redactor, Secret};

/// How long and how often keyfire tries to deliver one message.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// One attempt's limit (connect and answer), and how long keyfire waits at its end for
    /// messages still in flight.
    pub send_timeout: Duration,
    /// Attempts per message (the first included).
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            send_timeout: Duration::from_secs(5),
            attempts: 3,
        }
    }
}

/// What happened to one message at one notifier. Holds no secret: the notifier's id and
/// kind, the event's name, and a scrubbed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub notifier: String,
    /// `slack`, `pagerduty` or `webhook`.
    pub kind: String,
    pub event: String,
    pub incident: Option<String>,
    /// PagerDuty's `event_action`, for the PagerDuty kind.
    pub action: Option<pagerduty::Action>,
    pub delivered: bool,
    pub status: Option<u16>,
    /// Why it was not delivered (scrubbed).
    pub error: Option<String>,
}

impl Delivery {
    /// One line for the terminal.
    pub fn line(&self) -> String {
        let action = self
            .action
            .map(|a| format!(" ({})", a.as_str()))
            .unwrap_or_default();
        match (&self.error, self.status) {
            (None, Some(s)) => format!(
                "{} {}{action}: delivered (HTTP {s})",
                self.notifier, self.event
            ),
            (None, None) => format!("{} {}{action}: delivered", self.notifier, self.event),
            (Some(e), _) => format!(
                "{} {}{action}: NOT delivered: {e}",
                self.notifier, self.event
            ),
        }
    }
}

/// Where outcomes are written besides the terminal (the incident record).
pub trait Recorder: Send + Sync {
    fn record(&self, delivery: &Delivery);
}

impl Recorder for crate::runbook::RecordAppender {
    fn record(&self, delivery: &Delivery) {
        // A record that cannot take the line loses only the notification's outcome; the
        // terminal still shows it.
        if let Ok(data) = serde_json::to_value(delivery) {
            let _ = self.append("notification", data);
        }
    }
}

struct Job {
    id: u64,
    event: Event,
}

struct Pending {
    notifier: usize,
    event: &'static str,
    incident: Option<String>,
    action: Option<pagerduty::Action>,
}

struct Shared {
    inv: Arc<Inventory>,
    defs: Vec<NotifierDef>,
    http: Http,
    options: Options,
    recorder: Option<Arc<dyn Recorder>>,
    pending: Mutex<BTreeMap<u64, Pending>>,
    deliveries: Mutex<Vec<Delivery>>,
    next: AtomicU64,
}

/// The notifiers of an inventory, sending in the background. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
    senders: Arc<Mutex<Vec<Option<mpsc::UnboundedSender<Job>>>>>,
    workers: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("notifiers", &self.shared.defs.len())
            .finish()
    }
}

impl Notifier {
    /// Start one worker per notifier (call inside a tokio runtime). `only` limits it to one
    /// notifier id (`keyfire notify test ID`).
    pub fn start(
        inv: Arc<Inventory>,
        redactor: Redactor,
        options: Options,
        recorder: Option<Arc<dyn Recorder>>,
    ) -> Result<Self, HttpError> {
        let retry = RetryPolicy {
            max_attempts: options.attempts.max(1),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(2),
        };
        // Never a drill client: a drill's messages are sent only when `--notify` asked for
        // them, and then they are meant to arrive.
        let http = Http::with_config(
            false,
            redactor,
            HttpConfig {
                connect_timeout: options.send_timeout,
                request_timeout: options.send_timeout,
                retry,
            },
        )?;
        let defs = inv.notifiers.clone();
        let shared = Arc::new(Shared {
            inv,
            defs,
            http,
            options,
            recorder,
            pending: Mutex::new(BTreeMap::new()),
            deliveries: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
        });
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for idx in 0..shared.defs.len() {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(Some(tx));
            workers.push(tokio::spawn(worker(shared.clone(), idx, rx)));
        }
        Ok(Self {
            shared,
            senders: Arc::new(Mutex::new(senders)),
            workers: Arc::new(Mutex::new(workers)),
        })
    }

    /// Queue an event for every notifier whose route and agents it matches. Never waits.
    pub fn notify(&self, event: Event) {
        let matching: Vec<usize> = self
            .shared
            .defs
            .iter()
            .enumerate()
            .filter(|(_, d)| wants(d, &event))
            .map(|(i, _)| i)
            .collect();
        self.enqueue(event, &matching);
    }

    /// Queue an event for the given notifiers whatever their routes (`notify test`).
    pub fn notify_each(&self, event: &Event, only: Option<&str>) -> usize {
        let chosen: Vec<usize> = self
            .shared
            .defs
            .iter()
            .enumerate()
            .filter(|(_, d)| only.is_none_or(|o| d.id == o))
            .map(|(i, _)| i)
            .collect();
        self.enqueue(event.clone(), &chosen);
        chosen.len()
    }

    fn enqueue(&self, event: Event, targets: &[usize]) {
        let Ok(senders) = self.senders.lock() else {
            return;
        };
        for &idx in targets {
            let def = &self.shared.defs[idx];
            let action = match def.kind {
                NotifierKind::PagerDuty => match pagerduty::action(&event) {
                    Some(a) => Some(a),
                    // Chat-only events page nobody.
                    None => continue,
                },
                _ => None,
            };
            let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut p) = self.shared.pending.lock() {
                p.insert(
                    id,
                    Pending {
                        notifier: idx,
                        event: event.name(),
                        incident: event.incident.clone(),
                        action,
                    },
                );
            }
            if let Some(Some(tx)) = senders.get(idx) {
                let _ = tx.send(Job {
                    id,
                    event: event.clone(),
                });
            }
        }
    }

    /// Outcomes so far, in the order they settled.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .deliveries
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Stop taking events and wait for the queued ones, at most one send timeout; what is
    /// still unsent then is recorded as not delivered. Returns every outcome.
    pub async fn finish(&self) -> Vec<Delivery> {
        if let Ok(mut senders) = self.senders.lock() {
            senders.iter_mut().for_each(|s| *s = None);
        }
        let workers: Vec<_> = self
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
        let all = futures_util::future::join_all(workers);
        if tokio::time::timeout(self.shared.options.send_timeout, all)
            .await
            .is_err()
        {
            aborts.iter().for_each(|a| a.abort());
        }
        let left: Vec<(u64, Pending)> = self
            .shared
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default();
        for (_, p) in left {
            let def = &self.shared.defs[p.notifier];
            self.shared.settle(Delivery {
                notifier: def.id.clone(),
                kind: def.kind.as_str().to_string(),
                event: p.event.to_string(),
                incident: p.incident,
                action: p.action,
                delivered: false,
                status: None,
                error: Some(format!(
                    "still unsent when keyfire finished (waited {} s more after the runbook; the receiver is slow or unreachable)",
                    self.shared.options.send_timeout.as_secs_f32()
                )),
            });
        }
        self.deliveries()
    }
}

/// Routing: the event's route among the notifier's, and one of its agents when it names any.
fn wants(def: &NotifierDef, event: &Event) -> bool {
    let Some(route) = event.route() else {
        return false;
    };
    def.routes.contains(&route)
        && (def.agents.is_empty() || event.agents.iter().any(|a| def.agents.contains(a)))
}

impl Shared {
    fn settle(&self, delivery: Delivery) {
        if let Some(r) = &self.recorder {
            r.record(&delivery);
        }
        if let Ok(mut d) = self.deliveries.lock() {
            d.push(delivery);
        }
    }
}

/// A notifier's secrets, resolved once by its worker.
struct Creds {
    url: Option<Secret>,
    routing_key: Option<Secret>,
    secret: Option<Secret>,
}

async fn resolve(shared: &Shared, def: &NotifierDef) -> Result<Creds, String> {
    let get = |r: Option<&crate::inventory::CredentialRef>| {
        let r = r.cloned();
        async move {
            match r {
                None => Ok(None),
                Some(r) => crate::credential::resolve(&r, &shared.inv, &shared.http)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string()),
            }
        }
    };
    let url = match &def.url {
        Some(Endpoint::Url(u)) => Some(Secret::new(u.clone())),
        Some(Endpoint::Secret(r)) => get(Some(r)).await?,
        None if def.kind == NotifierKind::PagerDuty => Some(Secret::new(pagerduty::DEFAULT_URL)),
        None => None,
    };
    let routing_key = get(def.routing_key.as_ref()).await?;
    let secret = get(def.secret.as_ref()).await?;
    Ok(Creds {
        url,
        routing_key,
        secret,
    })
}

async fn worker(shared: Arc<Shared>, idx: usize, mut rx: mpsc::UnboundedReceiver<Job>) {
    let def = &shared.defs[idx];
    let mut creds: Option<Result<Creds, String>> = None;
    while let Some(job) = rx.recv().await {
        if creds.is_none() {
            let limit = shared.options.send_timeout;
            creds = Some(
                match tokio::time::timeout(limit, resolve(&shared, def)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "its credentials could not be resolved within {} s",
                        limit.as_secs_f32()
                    )),
                },
            );
        }
        // Stays pending until settled: a send cut off by `finish` is reported from there.
        let action = shared
            .pending
            .lock()
            .ok()
            .and_then(|p| p.get(&job.id).and_then(|p| p.action));
        let result = match &creds {
            Some(Ok(c)) => deliver(&shared, def, c, &job, action).await,
            Some(Err(e)) => Err((None, format!("notifier not usable: {e}"))),
            None => Err((None, "notifier not usable".into())),
        };
        let (status, error) = match result {
            Ok(status) => (Some(status), None),
            Err((status, e)) => (status, Some(shared.http.redactor().scrub(&e))),
        };
        if shared
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&job.id))
            .is_none()
        {
            // `finish` gave up on it and reported it already.
            continue;
        }
        shared.settle(Delivery {
            notifier: def.id.clone(),
            kind: def.kind.as_str().to_string(),
            event: job.event.name().to_string(),
            incident: job.event.incident.clone(),
            action,
            delivered: error.is_none(),
            status,
            error,
        });
    }
}

type Failure = (Option<u16>, String);

async fn deliver(
    shared: &Shared,
    def: &NotifierDef,
    creds: &Creds,
    job: &Job,
    action: Option<pagerduty::Action>,
) -> Result<u16, Failure> {
    let msg = Message::render(&job.event, &shared.inv, def.owners, shared.http.redactor());
    let missing = |what: &str| (None, format!("no {what} resolved"));
    let url = creds.url.as_ref().ok_or_else(|| missing("url"))?;
    let out: Outgoing = match def.kind {
        NotifierKind::Slack => slack::request(url, &msg),
        NotifierKind::PagerDuty => {
            let key = creds
                .routing_key
                .as_ref()
                .ok_or_else(|| missing("routing_key"))?;
            let action = action.unwrap_or(pagerduty::Action::Trigger);
            let dedup = pagerduty::dedup_key(&job.event, &def.id);
            pagerduty::request(url.expose(), key, action, &dedup, &msg)
        }
        NotifierKind::Webhook => {
            let secret = creds.secret.as_ref().ok_or_else(|| missing("secret"))?;
            webhook::request(
                url,
                secret,
                &format!("kf-{}-{}", job.event.at.timestamp_millis(), job.id),
                &msg,
            )
        }
    };
    send(&shared.http, def, &out).await
}

async fn send(http: &Http, def: &NotifierDef, out: &Outgoing) -> Result<u16, Failure> {
    // Retried by the HTTP layer: a repeated message is harmless (PagerDuty deduplicates by
    // dedup_key, webhook receivers by X-Keyfire-Delivery), a lost one is not.
    let mut plan =
        RequestPlan::write(format!("notify {}", def.id), "POST", out.url.expose()).idempotent(true);
    for (name, value) in &out.headers {
        plan = plan.header(name, value);
    }
    let resp = http
        .send_with_body(&plan, &SecretBag::default(), &out.body)
        .await
        .map_err(|e| (e.status(), e.to_string()))?;
    let text = String::from_utf8_lossy(&resp.body);
    let accepted = match out.expect {
        Expect::Success => true,
        Expect::SlackOk => text.trim() == "ok",
        Expect::PagerDutyAccepted => {
            resp.status == 202
                && serde_json::from_slice::<serde_json::Value>(&resp.body)
                    .ok()
                    .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string))
                    .as_deref()
                    == Some("success")
        }
    };
    if accepted {
        Ok(resp.status)
    } else {
        Err((
            Some(resp.status),
            format!(
                "unexpected answer: HTTP {} {}",
                resp.status,
                crate::http::truncate(&http.redactor().scrub(&text), 120)
            ),
        ))
    }
}
