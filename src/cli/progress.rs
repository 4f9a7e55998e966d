//! The headless progress display: on a terminal, a campaign, a drill of many keys or a
//! long audit shows one line that counts keys done / failed / running and the fleet's time
//! to contain so far, instead of a status line per record entry (those come back with `-v`).
//! When standard output or standard error is not a terminal (CI logs, pipes), nothing here
//! is used and the line output is exactly what it always was.
//!
//! The gate asks its questions on the same terminal: [`interrupt`] takes the bar off the
//! screen while it does, and the sink never waits for an answer (it only skips a redraw),
//! so keys still running are not held up by a question on the screen.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::{Entry, Event};
use crate::runbook::{Engine, Sink};

/// `-v` given: on a terminal, the status lines are printed beside the progress display.
static VERBOSE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

pub(crate) fn set_verbose(count: u8) {
    VERBOSE.store(count, std::sync::atomic::Ordering::Relaxed);
}

fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed) > 0
}

/// The headless sink for an engine: on a terminal, a run of many keys gets the progress
/// display (with the lines too under `-v`); a single key, or output that is not a terminal,
/// gets the status lines as always.
pub(crate) fn headless_sink(engine: &Engine) -> HeadlessSink {
    if engine.keys().len() > 1 && on_terminal() {
        HeadlessSink::Progress(Box::new(ProgressSink::start(engine, verbose())))
    } else {
        HeadlessSink::Lines(super::LineSink::new(std::io::stdout()))
    }
}

/// See [`headless_sink`].
pub(crate) enum HeadlessSink {
    Lines(super::LineSink<std::io::Stdout>),
    Progress(Box<ProgressSink>),
}

impl HeadlessSink {
    /// Leave the display's final counts on the screen (nothing for lines).
    pub(crate) fn finish(&self) {
        if let Self::Progress(p) = self {
            p.finish();
        }
    }
}

impl Sink for HeadlessSink {
    fn emit(&mut self, e: &Entry) {
        match self {
            Self::Lines(l) => l.emit(e),
            Self::Progress(p) => p.emit(e),
        }
    }
}

/// The driver borrows the sink, so the caller can [`HeadlessSink::finish`] it afterwards.
impl Sink for &mut HeadlessSink {
    fn emit(&mut self, e: &Entry) {
        (**self).emit(e);
    }
}

/// Whether this process draws progress instead of lines: both outputs are terminals (a
/// redirected stdout keeps the lines for whoever reads them, a redirected stderr has nowhere
/// to draw) and the terminal can move its cursor.
pub(crate) fn on_terminal() -> bool {
    std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// What the record says about each key so far, counted for the display.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    total: usize,
    /// Each key's last step: the key is done when that step finishes.
    last_step: HashMap<String, String>,
    running: HashSet<String>,
    failed: HashSet<String>,
    done: HashSet<String>,
    contained: HashSet<String>,
    opened_at: Option<DateTime<Utc>>,
    /// The latest containment so far, from the incident's opening.
    fleet_contain_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    pub running: usize,
    pub contained: usize,
}

impl Tally {
    /// The keys of an engine about to be driven, with what a resumed incident already did.
    pub(crate) fn of(engine: &Engine) -> Self {
        let mut t = Self::default();
        for key in engine.keys() {
            t.total += 1;
            if let Some(session) = engine.session(&key) {
                if let Some(last) = session.steps.last() {
                    t.last_step.insert(key.clone(), last.id.as_str().to_string());
                }
                if session.is_finished() {
                    t.done.insert(key.clone());
                }
            }
            if engine
                .facts(&key)
                .is_some_and(|f| f.contained_at.is_some())
            {
                t.contained.insert(key.clone());
            }
        }
        // A resumed incident counts from its opening, as the closing summary does.
        if let Ok(entries) =
            crate::record::read_entries(&engine.record_dir().join(crate::record::RECORD_FILE))
            && let Some(first) = entries.first()
        {
            t.opened_at = parse_ts(&first.ts);
        }
        t
    }

    pub(crate) fn observe(&mut self, e: &Entry) {
        let event = Event::of(e);
        if let Event::IncidentOpened(_) = &event {
            self.opened_at = self.opened_at.or_else(|| parse_ts(&e.ts));
        }
        if let Event::IncidentClosed(closed) = &event {
            for (key, k) in &closed.keys {
                self.running.remove(key);
                if k.finished {
                    self.failed.remove(key);
                    self.done.insert(key.clone());
                } else if !self.done.contains(key) {
                    self.failed.insert(key.clone());
                }
            }
            if closed.fleet_time_to_contain_ms.is_some() {
                self.fleet_contain_ms = closed.fleet_time_to_contain_ms;
            }
            return;
        }
        let Some(key) = event.key().map(str::to_string) else {
            return;
        };
        if self.done.contains(&key) {
            return;
        }
        match &event {
            Event::StepFailed(_) => {
                self.running.remove(&key);
                self.failed.insert(key);
            }
            Event::ActionDone(done) => {
                // A failed action retried and now through: running again.
                self.failed.remove(&key);
                self.running.insert(key.clone());
                if let Some(at) = done.facts.as_ref().and_then(|f| f.times.contained_at) {
                    self.contained(&key, at);
                }
            }
            Event::StepFinished(fin) => {
                if let Some(at) = fin.facts.as_ref().and_then(|f| f.times.contained_at) {
                    self.contained(&key, at);
                }
                let last = self.last_step.get(&key).map(String::as_str);
                if e.step.is_some() && e.step.as_deref() == last {
                    self.running.remove(&key);
                    self.failed.remove(&key);
                    self.done.insert(key);
                } else if !self.failed.contains(&key) {
                    self.running.insert(key);
                }
            }
            _ => {
                if !self.failed.contains(&key) {
                    self.running.insert(key);
                }
            }
        }
    }

    fn contained(&mut self, key: &str, at: DateTime<Utc>) {
        self.contained.insert(key.to_string());
        if let Some(opened) = self.opened_at {
            let ms = (at - opened).num_milliseconds();
            self.fleet_contain_ms = Some(self.fleet_contain_ms.map_or(ms, |m| m.max(ms)));
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            total: self.total,
            done: self.done.len(),
            failed: self.failed.len(),
            running: self.running.len(),
            contained: self.contained.len(),
        }
    }

    /// The first line's text after the bar: where the keys stand.
    pub(crate) fn message(&self) -> String {
        let c = self.counts();
        format!("{} done, {} failed, {} running", c.done, c.failed, c.running)
    }

    /// The second line: containment, the number an incident is judged by.
    pub(crate) fn containment(&self) -> String {
        let c = self.counts();
        let fleet = match self.fleet_contain_ms {
            Some(ms) if c.contained == c.total => format!("fleet time to contain {}", secs(ms)),
            Some(ms) => format!("fleet time to contain so far {}", secs(ms)),
            None => "fleet time to contain: none contained yet".to_string(),
        };
        format!("contained {}/{}, {fleet}", c.contained, c.total)
    }
}

fn secs(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The bar on standard error, shared by the sink and the gate.
pub(crate) struct Display {
    bar: ProgressBar,
    /// Held while the gate has the terminal; the sink only tries it.
    asking: Mutex<()>,
    /// Lines (`-v`) that arrived while the gate had the terminal, printed after.
    held: Mutex<Vec<String>>,
}

/// The display being drawn, for the gate's [`interrupt`].
static ACTIVE: Mutex<Option<Arc<Display>>> = Mutex::new(None);

impl Display {
    /// Start drawing (on standard error) and make the display the one the gate interrupts.
    pub(crate) fn start(unit: &str, total: usize, second_line: bool) -> Arc<Self> {
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            ProgressDrawTarget::stderr(),
        );
        // Two short lines rather than one long one: both fit an 80-column terminal.
        let second = if second_line { "\n     {prefix}" } else { "" };
        let template = format!("{{elapsed:>4}} [{{bar:20}}] {{pos}}/{{len}} {unit}: {{msg}}{second}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        let display = Arc::new(Self {
            bar,
            asking: Mutex::new(()),
            held: Mutex::new(Vec::new()),
        });
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(display.clone());
        }
        display
    }

    /// New counts (and, with `-v`, a line for standard output). Never waits for the gate.
    pub(crate) fn update(&self, position: usize, (message, second): (String, String), line: Option<String>) {
        let Ok(_free) = self.asking.try_lock() else {
            if let (Some(line), Ok(mut held)) = (line, self.held.lock()) {
                held.push(line);
            }
            return;
        };
        let mut lines: Vec<String> = self
            .held
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        lines.extend(line);
        if !lines.is_empty() {
            self.bar.suspend(|| {
                for l in &lines {
                    println!("{l}");
                }
            });
        }
        self.bar.set_position(position as u64);
        self.bar.set_prefix(second);
        self.bar.set_message(message);
    }

    /// Leave the final counts on the screen, above the summary that follows.
    pub(crate) fn finish(&self, position: usize, (message, second): (String, String)) {
        let lines: Vec<String> = self
            .held
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        if !lines.is_empty() {
            self.bar.suspend(|| lines.iter().for_each(|l| println!("{l}")));
        }
        self.bar.set_position(position as u64);
        self.bar.set_prefix(second);
        self.bar.finish_with_message(message);
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
    }
}

/// A long read over many keys (an audit), counted key by key on a terminal; `None` (no
/// display) for one key or when the output is not a terminal.
pub(crate) struct Counter {
    display: Arc<Display>,
}

impl Counter {
    pub(crate) fn start(unit: &str, total: usize) -> Option<Self> {
        (total > 1 && on_terminal()).then(|| Self {
            display: Display::start(unit, total, false),
        })
    }

    /// `done` keys finished; `now` says what is in flight.
    pub(crate) fn at(&self, done: usize, now: String) {
        self.display.update(done, (now, String::new()), None);
    }

    pub(crate) fn finish(&self, done: usize, last: String) {
        self.display.finish(done, (last, String::new()));
    }
}

/// Run `f` (a question or a message of the gate on the terminal) with the bar off the
/// screen; without a display, just run it.
pub(crate) fn interrupt<R>(f: impl FnOnce() -> R) -> R {
    let active = ACTIVE.lock().ok().and_then(|a| a.clone());
    match active {
        None => f(),
        Some(d) => {
            let _asking = d.asking.lock().unwrap_or_else(|e| e.into_inner());
            d.bar.suspend(f)
        }
    }
}

/// The headless sink on a terminal: the tally drawn as a bar, and with `-v` the status
/// lines too (between redraws).
pub(crate) struct ProgressSink {
    tally: Tally,
    display: Arc<Display>,
    lines: bool,
}

impl ProgressSink {
    pub(crate) fn start(engine: &Engine, lines: bool) -> Self {
        let tally = Tally::of(engine);
        let display = Display::start("keys", tally.total, true);
        display.update(position(&tally), texts(&tally), None);
        Self {
            tally,
            display,
            lines,
        }
    }

    pub(crate) fn finish(&self) {
        self.display
            .finish(position(&self.tally), texts(&self.tally));
    }
}

fn texts(t: &Tally) -> (String, String) {
    (t.message(), t.containment())
}

fn position(t: &Tally) -> usize {
    let c = t.counts();
    c.done + c.failed
}

impl Sink for ProgressSink {
    fn emit(&mut self, e: &Entry) {
        self.tally.observe(e);
        let line = self.lines.then(|| super::sink::status_line(e));
        self.display
            .update(position(&self.tally), texts(&self.tally), line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, step: Option<&str>, data: serde_json::Value, ts: &str) -> Entry {
        Entry {
            seq: 1,
            ts: ts.into(),
            kind: kind.into(),
            step: step.map(str::to_string),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn tally() -> Tally {
        let mut t = Tally {
            total: 2,
            ..Default::default()
        };
        for k in ["a", "b"] {
            t.last_step.insert(k.into(), "reschedule".into());
        }
        t
    }

    #[test]
    fn keys_move_from_running_to_failed_or_done_and_containment_is_timed() {
        let mut t = tally();
        let opened = entry(
            "incident_opened",
            None,
            serde_json::json!({}),
            "2026-11-26T10:00:00.000Z",
        );
        t.observe(&opened);
        assert_eq!(t.counts().running, 0);
        t.observe(&entry(
            "step_started",
            Some("open"),
            serde_json::json!({"key": "a"}),
            "2026-11-26T10:00:00.100Z",
        ));
        t.observe(&entry(
            "step_started",
            Some("open"),
            serde_json::json!({"key": "b"}),
            "2026-11-26T10:00:00.100Z",
        ));
        assert_eq!(t.counts().running, 2);
        assert!(
            t.containment().contains("none contained yet"),
            "{}",
            t.containment()
        );
        t.observe(&entry(
            "action_done",
            Some("revoke"),
            serde_json::json!({"key": "a", "action": "verify_revoked", "status": "done",
                "facts": {"contained_at": "2026-11-26T10:00:02.500Z"}}),
            "2026-11-26T10:00:02.500Z",
        ));
        assert_eq!(t.counts().contained, 1);
        assert_eq!(
            t.containment(),
            "contained 1/2, fleet time to contain so far 2.5 s"
        );
        t.observe(&entry(
            "step_failed",
            Some("revoke"),
            serde_json::json!({"key": "b", "action": "revoke", "error": "x", "retryable": true}),
            "2026-11-26T10:00:03.000Z",
        ));
        t.observe(&entry(
            "step_finished",
            Some("reschedule"),
            serde_json::json!({"key": "a", "status": "done"}),
            "2026-11-26T10:00:04.000Z",
        ));
        assert_eq!(
            t.counts(),
            Counts {
                total: 2,
                done: 1,
                failed: 1,
                running: 0,
                contained: 1
            }
        );
        assert_eq!(t.message(), "1 done, 1 failed, 0 running");
    }

    #[test]
    fn the_closing_line_settles_every_key() {
        let mut t = tally();
        t.observe(&entry(
            "step_started",
            Some("open"),
            serde_json::json!({"key": "a"}),
            "2026-11-26T10:00:00.100Z",
        ));
        t.observe(&entry(
            "incident_closed",
            None,
            serde_json::json!({"outcome": "failed", "fleet_time_to_contain_ms": null,
                "keys": {"a": {"finished": true}, "b": {"finished": false}}}),
            "2026-11-26T10:00:09.000Z",
        ));
        let c = t.counts();
        assert_eq!((c.done, c.failed, c.running), (1, 1, 0));
    }
}
