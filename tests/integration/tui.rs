//! The console: render snapshots of every screen, pure `App::update` behaviour, and a whole
//! incident driven through the real event loop with the fake provider.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use keyfire::incidents::IncidentSummary;
use keyfire::record::Entry;
use keyfire::tui::action::{Action, AppEvent, Effect, Prompt, PromptKind};
use keyfire::tui::app::{App, Screen};
use keyfire::tui::theme::Theme;
use keyfire::tui::ui::{ViewState, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap()
}

const FLEET: &str = r##"schema = 1
[[providers]]
id = "llm"
kind = "fake"
admin_credential = "env:X"
[[providers]]
id = "crm"
kind = "manual"
[[stores]]
id = "vault"
kind = "memory"
[[agents]]
id = "support-bot"
owner = "support@example.com"
oncall = "#support-oncall"
[[agents]]
id = "research"
owner = "research@example.com"
[[keys]]
id = "support-llm"
agents = ["support-bot"]
provider = "llm"
provider_key_id = "key_1"
scopes = ["model.request"]
store = "vault"
secret_path = "agents/support/llm"
last_rotated = 2026-07-01
[[keys]]
id = "research-llm"
agents = ["research", "support-bot"]
provider = "llm"
provider_key_id = "key_2"
scopes = ["model.request", "files.write"]
store = "vault"
secret_path = "agents/research/llm"
last_rotated = 2026-09-10
[[keys]]
id = "sales-crm"
agents = ["research"]
provider = "crm"
scopes = ["contacts.read"]
created_at = 2026-11-01
"##;

fn app_with(text: &str) -> App {
    let inv = keyfire::inventory::load_str(std::path::Path::new("fleet.toml"), text).unwrap();
    let incidents = vec![IncidentSummary {
        id: "drill-20261101-100000-ab12".into(),
        kind: keyfire::record::IncidentKind::Drill,
        drill: true,
        opened: "2026-11-01T10:00:00.000Z".into(),
        keys: vec!["support-llm".into()],
        status: "completed".into(),
        reason: None,
        entries: 40,
        path: "x".into(),
        total_ms: Some(812),
        shared: None,
    }];
    App::new(Arc::new(inv), incidents, now())
}

fn app() -> App {
    app_with(FLEET)
}

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut view = ViewState::default();
    terminal
        .draw(|f| render(app, &mut view, Theme::plain(), f))
        .unwrap();
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn both(name: &str, app: &App) {
    insta::assert_snapshot!(format!("{name}_100x30"), screen(app, 100, 30));
    insta::assert_snapshot!(format!("{name}_80x24"), screen(app, 80, 24));
}

fn entry(seq: u64, kind: &str, step: Option<&str>, data: serde_json::Value) -> Entry {
    Entry {
        seq,
        ts: format!("2026-11-26T03:00:{:02}.000Z", seq.min(59)),
        kind: kind.into(),
        step: step.map(str::to_string),
        data,
        prev: String::new(),
        hash: String::new(),
    }
}

/// An app in the middle of a live incident on support-llm, waiting in the revoke step.
fn incident_app(dry_run: bool) -> App {
    let mut a = app();
    a.update(Action::StartIncident);
    if dry_run {
        a.start.as_mut().unwrap().dry_run = true;
    }
    a.update(Action::Yes);
    let id = if dry_run {
        "drill-20261126-030000-aa11"
    } else {
        "inc-20261126-030000-aa11"
    };
    let events = [
        entry(
            1,
            "incident_opened",
            None,
            json!({"incident": id, "dry_run": dry_run, "order": "contain-first", "keys": ["support-llm"]}),
        ),
        entry(
            2,
            "step_started",
            Some("open"),
            json!({"key": "support-llm", "title": "Open: credentials, locate the key, snapshot before any change", "checklist": []}),
        ),
        entry(
            3,
            "step_finished",
            Some("open"),
            json!({"key": "support-llm", "duration_ms": 42, "status": "done"}),
        ),
        entry(
            4,
            "step_started",
            Some("revoke"),
            json!({"key": "support-llm", "title": "Revoke the leaked key", "checklist": ["Check that the key id matches the leak report.", "Agents stop working until step 2 finishes."], "note": "The fake provider deletes keys for good."}),
        ),
        entry(
            5,
            "plan",
            Some("revoke"),
            json!({"key": "support-llm", "action": "disable", "rendered": "POST http://127.0.0.1:7878/v1/keys/key_1/disable\n  Authorization: Bearer [admin credential]", "plan": {"summary": "Disable key key_1", "access": "write"}}),
        ),
        entry(
            6,
            "response",
            Some("revoke"),
            json!({"key": "support-llm", "action": "disable", "ok": true, "disabled": true}),
        ),
    ];
    for e in events {
        a.on_event(AppEvent::Entry(Box::new(e)));
    }
    a.on_event(AppEvent::Tick(now() + chrono::Duration::seconds(9)));
    a
}

fn approve_delete(id: u64) -> AppEvent {
    AppEvent::Prompt(Prompt {
        id,
        kind: PromptKind::Approve {
            key: "support-llm".into(),
            step: "revoke".into(),
            action: "revoke".into(),
            summary: "Delete key key_1".into(),
            rendered: "DELETE http://127.0.0.1:7878/v1/keys/key_1\n  Authorization: Bearer [admin credential]".into(),
            confirm_text: Some("support-llm".into()),
        },
    })
}

#[test]
fn snapshot_inventory_with_overdue_keys() {
    both("inventory", &app());
}

#[test]
fn snapshot_empty_inventory() {
    both("inventory_empty", &app_with("schema = 1\n"));
}

#[test]
fn snapshot_filter_active() {
    let mut a = app();
    for act in [
        Action::FilterStart,
        Action::Char('f'),
        Action::Char('i'),
        Action::Char('l'),
    ] {
        a.update(act);
    }
    assert_eq!(
        a.inventory.visible.len(),
        1,
        "the files.write scope matches research-llm only"
    );
    both("filter", &a);
}

#[test]
fn snapshot_key_screen() {
    let mut a = app();
    a.update(Action::Down);
    a.update(Action::Open);
    assert!(matches!(a.screen, Screen::Key(_)));
    both("key", &a);
}

#[test]
fn snapshot_help_overlay() {
    let mut a = app();
    a.update(Action::Help);
    both("help", &a);
}

#[test]
fn snapshot_incident_awaiting_typed_approval() {
    let mut a = incident_app(false);
    a.on_event(approve_delete(7));
    a.update(Action::Char('s'));
    a.update(Action::Char('u'));
    both("incident_approval", &a);
}

#[test]
fn snapshot_step_failed() {
    let mut a = incident_app(false);
    a.on_event(AppEvent::Entry(Box::new(entry(7, "step_failed", Some("revoke"), json!({"key": "support-llm", "action": "revoke", "error": "revoke: server error 500: injected failure", "status": 500, "retryable": true})))));
    a.on_event(AppEvent::Prompt(Prompt {
        id: 9,
        kind: PromptKind::Failure {
            key: "support-llm".into(),
            step: "revoke".into(),
            action: "revoke".into(),
            error: "revoke: server error 500: injected failure".into(),
            status: Some(500),
        },
    }));
    both("step_failed", &a);
}

#[test]
fn snapshot_drill_banner() {
    let mut a = incident_app(true);
    a.on_event(AppEvent::Entry(Box::new(entry(7, "not_sent", Some("revoke"), json!({"key": "support-llm", "action": "revoke", "summary": "Delete key key_1", "would_send": "DELETE http://127.0.0.1:7878/v1/keys/key_1"})))));
    both("drill", &a);
}

#[test]
fn snapshot_incidents_screen() {
    let mut a = app();
    a.update(Action::ShowIncidents);
    both("incidents", &a);
}

// ---- pure update ---------------------------------------------------------------------

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn keys_map_to_named_actions_per_mode() {
    use keyfire::tui::keymap::{Mode, map};
    let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    for mode in [Mode::Inventory, Mode::Key, Mode::Incident, Mode::Incidents] {
        assert_eq!(map(mode, key('q')), Some(Action::Quit), "{mode:?}");
        assert_eq!(
            map(mode, esc),
            Some(Action::Back),
            "Esc never quits ({mode:?})"
        );
    }
    assert_eq!(map(Mode::Inventory, key('/')), Some(Action::FilterStart));
    assert_eq!(
        map(Mode::Text, key('q')),
        Some(Action::Char('q')),
        "typing q into a field does not quit"
    );
    assert_eq!(
        map(
            Mode::Inventory,
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
        ),
        Some(Action::Interrupt)
    );
    assert_eq!(map(Mode::Failure, key('r')), Some(Action::Retry));
    // The start dialog's fields: Tab and Shift-Tab move, letters are text.
    let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
    let back_tab = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(map(Mode::Form, tab), Some(Action::NextField));
    assert_eq!(map(Mode::Form, back_tab), Some(Action::PrevField));
    assert_eq!(map(Mode::Form, key('y')), Some(Action::Char('y')));
    assert_eq!(map(Mode::Dialog, tab), Some(Action::NextField));
    assert_eq!(map(Mode::Text, tab), None, "the filter has no fields");
}

#[test]
fn no_destructive_approval_without_the_typed_key_id() {
    let mut a = incident_app(false);
    a.on_event(approve_delete(7));
    assert!(
        a.update(Action::Yes).is_empty(),
        "y does not approve a deletion"
    );
    assert!(a.update(Action::Open).is_empty());
    for c in "support-lm".chars() {
        assert!(a.update(Action::Char(c)).is_empty());
    }
    assert!(a.update(Action::Submit).is_empty(), "a typo sends nothing");
    assert!(a.notice.as_deref().unwrap().contains("does not match"));
    for c in "support-llm".chars() {
        a.update(Action::Char(c));
    }
    let effects = a.update(Action::Submit);
    assert!(
        matches!(effects.as_slice(), [Effect::Reply { prompt: 7, .. }]),
        "{effects:?}"
    );
    assert!(a.prompt.is_none());
}

#[test]
fn non_destructive_writes_need_one_explicit_key() {
    let mut a = incident_app(false);
    a.on_event(AppEvent::Prompt(Prompt {
        id: 3,
        kind: PromptKind::Approve {
            key: "support-llm".into(),
            step: "redeploy".into(),
            action: "store_write".into(),
            summary: "Write".into(),
            rendered: "PATCH …".into(),
            confirm_text: None,
        },
    }));
    assert!(a.update(Action::Down).is_empty());
    assert!(a.prompt.is_some());
    let effects = a.update(Action::Yes);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Reply {
            prompt: 3,
            reply: keyfire::tui::action::Reply::Decision(
                keyfire::runbook::Decision::Approve { .. }
            )
        }]
    ));
}

#[test]
fn start_dialog_chooses_drill_or_incident_and_order() {
    let mut a = app();
    assert!(
        a.update(Action::StartDrill).is_empty(),
        "a dialog first, nothing starts on one key"
    );
    a.update(Action::ToggleOrder);
    let effects = a.update(Action::Yes);
    match effects.as_slice() {
        [Effect::Open(p)] => {
            assert_eq!(p.keys.len(), 1);
            assert!(p.dry_run);
            assert_eq!(p.order, keyfire::runbook::Order::ZeroDowntime);
            // Nothing typed: the command line's defaults.
            assert_eq!(p.exposed_since, None);
            assert!(p.logs.is_empty());
            assert_eq!(p.reason.as_deref(), Some("opened from the console"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.screen, Screen::Incident);
    // q asks first; "no" keeps the incident and the console.
    assert!(a.update(Action::Quit).is_empty());
    assert!(
        a.abort_confirm && a.quit_after_run,
        "q asks before quitting"
    );
    assert!(a.update(Action::No).is_empty());
    assert!(!a.abort_confirm && !a.quit);
    // "yes" stops the incident at the next boundary; the console quits once it has stopped.
    a.update(Action::Quit);
    let effects = a.update(Action::Yes);
    assert!(
        effects.iter().any(|e| matches!(e, Effect::RequestAbort)),
        "{effects:?}"
    );
    assert!(!a.quit, "not before the incident has stopped");
    let effects = a.on_event(AppEvent::RunFinished);
    assert!(matches!(effects.as_slice(), [Effect::Quit]), "{effects:?}");
    assert!(a.quit);
}

#[test]
fn esc_on_the_inventory_clears_the_filter_and_never_quits() {
    let mut a = app();
    a.inventory.filter = "support".into();
    a.update(Action::Back);
    assert!(a.inventory.filter.is_empty());
    assert!(a.update(Action::Back).is_empty());
    assert!(!a.quit);
}

#[test]
fn ctrl_c_asks_then_requests_an_abort_and_declines_the_open_question() {
    let mut a = incident_app(false);
    a.on_event(approve_delete(7));
    assert!(a.update(Action::Interrupt).is_empty());
    assert!(a.abort_confirm);
    let effects = a.update(Action::Yes);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::RequestAbort, Effect::Reply { prompt: 7, .. }]
        ),
        "{effects:?}"
    );
}

#[test]
fn pasted_secret_is_never_rendered() {
    let mut a = incident_app(false);
    a.on_event(AppEvent::Prompt(Prompt {
        id: 5,
        kind: PromptKind::Paste {
            key: "support-llm".into(),
            instructions: vec!["Create a key in the console.".into()],
        },
    }));
    let canary = "sk-CANARYpastedValue9Zq8Wx7";
    for c in canary.chars() {
        a.update(Action::Char(c));
    }
    let text = screen(&a, 100, 30);
    assert!(!text.contains("CANARY"), "{text}");
    assert!(text.contains(&format!("({} characters, hidden)", canary.len())));
    let effects = a.update(Action::Submit);
    match effects.as_slice() {
        [
            Effect::Reply {
                reply: keyfire::tui::action::Reply::Paste(Some(s)),
                ..
            },
        ] => assert_eq!(s.expose(), canary),
        other => panic!("{other:?}"),
    }
}

#[test]
fn skipping_a_failed_step_needs_a_reason() {
    let mut a = incident_app(false);
    a.on_event(AppEvent::Prompt(Prompt {
        id: 2,
        kind: PromptKind::Failure {
            key: "k".into(),
            step: "audit".into(),
            action: "fetch_usage".into(),
            error: "x".into(),
            status: Some(503),
        },
    }));
    assert!(a.update(Action::Skip).is_empty());
    assert!(a.update(Action::Submit).is_empty(), "empty reason refused");
    for c in "usage api down".chars() {
        a.update(Action::Char(c));
    }
    let effects = a.update(Action::Submit);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Reply {
            reply: keyfire::tui::action::Reply::Failure(
                keyfire::runbook::FailureChoice::Skip { .. }
            ),
            ..
        }]
    ));
}

#[test]
fn filter_keeps_up_with_100k_keys() {
    let mut text = String::from(
        "schema = 1\n[[providers]]\nid = \"p\"\nkind = \"manual\"\n[[agents]]\nid = \"a\"\n",
    );
    for i in 0..100_000 {
        text.push_str(&format!(
            "[[keys]]\nid = \"key-{i}\"\nagents = [\"a\"]\nprovider = \"p\"\n"
        ));
    }
    let mut a = app_with(&text);
    a.update(Action::FilterStart);
    for c in "key-9999".chars() {
        a.update(Action::Char(c));
    }
    assert_eq!(
        a.inventory.visible.len(),
        11,
        "key-9999 and key-99990..99999"
    );
    let shown = screen(&a, 80, 24);
    assert!(shown.contains("key-9999"));
}

// ---- components and their routing -----------------------------------------------------

fn failure_prompt(id: u64) -> AppEvent {
    AppEvent::Prompt(Prompt {
        id,
        kind: PromptKind::Failure {
            key: "support-llm".into(),
            step: "audit".into(),
            action: "fetch_usage".into(),
            error: "usage api down".into(),
            status: Some(503),
        },
    })
}

#[test]
fn esc_on_a_skip_reason_goes_back_to_the_failure_choices() {
    use keyfire::tui::keymap::Mode;
    let mut a = incident_app(false);
    a.on_event(failure_prompt(4));
    a.update(Action::Skip);
    assert_eq!(a.mode(), Mode::Text, "the reason field has the keyboard");
    a.update(Action::Char('x'));
    assert!(a.update(Action::Back).is_empty(), "Esc sends nothing");
    assert_eq!(a.mode(), Mode::Failure, "the question stays open");
    let effects = a.update(Action::Abort);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Reply {
                prompt: 4,
                reply: keyfire::tui::action::Reply::Failure(keyfire::runbook::FailureChoice::Abort)
            }]
        ),
        "{effects:?}"
    );
    assert!(a.prompt.is_none());
}

#[test]
fn esc_on_a_typed_confirmation_declines_it() {
    let mut a = incident_app(false);
    a.on_event(approve_delete(7));
    a.update(Action::Char('s'));
    let effects = a.update(Action::Back);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Reply {
                prompt: 7,
                reply: keyfire::tui::action::Reply::Decision(
                    keyfire::runbook::Decision::Decline { .. }
                )
            }]
        ),
        "{effects:?}"
    );
    assert!(a.prompt.is_none());
    assert!(a.notice.as_deref().unwrap().contains("declined"));
}

#[test]
fn only_an_open_incident_resumes_and_one_at_a_time() {
    let mut a = app();
    a.update(Action::ShowIncidents);
    assert!(a.update(Action::Resume).is_empty());
    assert_eq!(
        a.notice.as_deref(),
        Some("drill-20261101-100000-ab12 is completed: nothing to resume")
    );
    let mut open = a.fleet.incidents[0].clone();
    open.id = "inc-20261120-100000-cd34".into();
    open.kind = keyfire::record::IncidentKind::Incident;
    open.drill = false;
    open.status = "open".into();
    a.set_incidents(vec![open]);
    assert_eq!(a.fleet.open_incidents, 1);
    let effects = a.update(Action::Resume);
    assert!(
        matches!(effects.as_slice(), [Effect::ResumeRun { id }] if id == "inc-20261120-100000-cd34"),
        "{effects:?}"
    );
    assert_eq!(a.screen, Screen::Incident);
    assert!(a.running());
    a.update(Action::ShowIncidents);
    assert!(a.update(Action::Resume).is_empty());
    assert_eq!(a.notice.as_deref(), Some("an incident is already running"));
}

#[test]
fn back_returns_to_the_key_that_was_on_show() {
    let mut a = app();
    a.update(Action::Bottom);
    a.update(Action::Open);
    let Screen::Key(first) = a.screen.clone() else {
        panic!("{:?}", a.screen)
    };
    a.update(Action::ShowIncidents);
    a.update(Action::Open);
    let Screen::Key(second) = a.screen.clone() else {
        panic!("{:?}", a.screen)
    };
    assert_eq!(second.id, "support-llm", "the drill's key");
    assert_ne!(first, second);
    a.update(Action::Back);
    assert_eq!(a.screen, Screen::Incidents);
    a.update(Action::Back);
    assert_eq!(a.screen, Screen::Key(first));
}

#[test]
fn key_screen_draws_the_view_model_inventory_show_prints() {
    let mut a = app();
    let (by_api, history) = {
        let row = a.inventory.row("support-llm").unwrap().clone();
        let key = a.fleet.inventory.key("support-llm").unwrap();
        let view =
            keyfire::key_view::KeyView::new(&a.fleet.inventory, key, row, &a.fleet.incidents);
        assert_eq!(
            view.by_api().unwrap(),
            ["locate", "verify", "disable", "revoke", "create", "usage"]
        );
        assert_eq!(
            view.redeploy_target(),
            Some(("vault", "agents/support/llm"))
        );
        assert_eq!(view.history.len(), 1, "the drill on this key");
        assert_eq!(view.radius.other_keys[0].id, "research-llm");
        (view.by_api(), view.history.len())
    };
    while a.inventory.selected_row().map(|r| r.id.as_str()) != Some("support-llm") {
        a.update(Action::Down);
    }
    a.update(Action::Open);
    let Screen::Key(k) = &a.screen else {
        panic!("{:?}", a.screen)
    };
    let shown = k.view(&a.fleet, &a.inventory).unwrap();
    assert_eq!(shown.by_api(), by_api);
    assert_eq!(shown.history.len(), history);
    let drills = shown.drills.unwrap();
    assert_eq!(
        drills.key.map(|d| d.to_string()).as_deref(),
        Some("2026-11-01")
    );
    // Wide enough that no line wraps.
    let text = screen(&a, 200, 30);
    for expected in [
        "locate, verify, disable, revoke, create, usage",
        "redeploy to vault:agents/support/llm",
        "also exposed: research-llm (llm) via research, support-bot",
        "2026-11-01 drill completed drill-20261101-100000-ab12",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
}

// ---- the real loop, headless ------------------------------------------------------------

/// The real console loop on a test terminal, its engine channel and runner, over `env`.
struct Console {
    app: App,
    runner: keyfire::tui::runner::Runner,
    terminal: Terminal<TestBackend>,
    // Kept open: a closed input stream would end the loop.
    _input_tx: tokio::sync::mpsc::UnboundedSender<keyfire::tui::runner::Input>,
    inputs: tokio::sync::mpsc::UnboundedReceiver<keyfire::tui::runner::Input>,
    engine_rx: tokio::sync::mpsc::UnboundedReceiver<keyfire::tui::bridge::FromEngine>,
}

impl Console {
    fn new(env: &crate::common::TestEnv) -> Self {
        let setup = env.setup();
        let app = App::new(setup.inventory.clone(), Vec::new(), Utc::now());
        let (_input_tx, inputs) = tokio::sync::mpsc::unbounded_channel();
        let (engine_tx, engine_rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            app,
            runner: keyfire::tui::runner::Runner::new(setup, engine_tx),
            terminal: Terminal::new(TestBackend::new(100, 30)).unwrap(),
            _input_tx,
            inputs,
            engine_rx,
        }
    }

    /// Run the loop with `script` typing, for 20 s at most; whether it ended.
    async fn drive(&mut self, script: &mut dyn FnMut(&App) -> Vec<KeyEvent>) -> bool {
        let run = keyfire::tui::runner::run_loop(
            &mut self.terminal,
            &mut self.app,
            &mut self.inputs,
            &mut self.engine_rx,
            &mut self.runner,
            Theme::plain(),
            Some(script),
        );
        tokio::time::timeout(std::time::Duration::from_secs(20), run)
            .await
            .is_ok()
    }
}

/// What an operator types at a console prompt: the typed key id where one is asked, `done`
/// for a manual step, no pasted value, abort on a failure, and `customer_data` (an answer
/// key, then an optional note) at the customer-data question.
fn operator_keys(kind: &PromptKind, customer_data: &str) -> Vec<KeyEvent> {
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    let typed = |s: &str| {
        let mut keys: Vec<KeyEvent> = s.chars().map(key).collect();
        keys.push(enter);
        keys
    };
    match kind {
        PromptKind::Approve {
            confirm_text: Some(t),
            ..
        } => typed(t),
        PromptKind::Approve { .. } => vec![key('y')],
        PromptKind::Manual { .. } => typed("done"),
        PromptKind::Paste { .. } => vec![KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)],
        PromptKind::Failure { .. } => vec![key('a')],
        PromptKind::CustomerData { .. } => typed(customer_data),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_incident_runs_through_the_console_loop() {
    let env = crate::common::TestEnv::new();
    env.api
        .set_usage(&env.old_key_id, crate::llm::planted_usage());
    let mut console = Console::new(&env);
    let mut stage = 0;
    let mut typed_confirmations = 0;
    let before = console.app.inventory.row("support-llm").unwrap().clone();
    // What the key table said about the key at the first question (the incident is open).
    let mut during: Option<(String, Option<String>)> = None;
    let mut script = |app: &App| -> Vec<KeyEvent> {
        if app.prompt.is_some() && during.is_none() {
            during = Some((
                app.inventory
                    .row("support-llm")
                    .unwrap()
                    .status
                    .as_str()
                    .to_string(),
                app.fleet
                    .open_incident_of("support-llm")
                    .map(|i| i.id.clone()),
            ));
        }
        let chars = |s: &str| s.chars().map(key).collect::<Vec<_>>();
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        if stage == 0 {
            stage = 1;
            let mut keys = vec![key('/')];
            keys.extend(chars("support"));
            keys.extend([enter, key('i'), key('y')]);
            return keys;
        }
        if let Some(p) = &app.prompt {
            if matches!(
                p.kind(),
                PromptKind::Approve {
                    confirm_text: Some(_),
                    ..
                }
            ) {
                typed_confirmations += 1;
            }
            return operator_keys(p.kind(), "yprompts held CRM notes");
        }
        if !app.running() && app.run().is_some_and(|r| r.outcome.is_some()) {
            return vec![key('q'), key('q')];
        }
        Vec::new()
    };
    let finished = console.drive(&mut script).await;
    let Console {
        mut app, terminal, ..
    } = console;
    assert!(
        finished,
        "the incident did not finish: screen {:?}, prompt {:?}, log {:#?}",
        app.screen,
        app.prompt,
        app.run().map(|r| r.log.clone())
    );

    let run = app.run().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.log);
    assert_eq!(
        typed_confirmations, 1,
        "only the deletion needs the typed key id"
    );
    assert!(app.quit);
    assert!(!env.api.accepts(&env.canaries.old_key));
    let id = run.id.clone().unwrap();
    // While it ran, the key's row and key screen knew about the open incident.
    assert_eq!(
        during,
        Some(("incident-open".to_string(), Some(id.clone())))
    );
    // Step 5 wrote the rotation to the inventory file; the console read it back.
    assert_eq!(before.status.as_str(), "overdue");
    let after = app.inventory.row("support-llm").unwrap();
    assert_eq!(
        (after.age_days, after.due_in_days),
        (Some(0), Some(30)),
        "rotated today, due again after policy.after_incident_rotation_days"
    );
    assert_eq!(after.status.as_str(), "ok", "closed and no longer overdue");
    assert_eq!(
        app.fleet
            .inventory
            .key("support-llm")
            .unwrap()
            .rotation_days,
        Some(30)
    );
    let entries = env.entries(&id);
    let approvals: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == "operator_input")
        .filter_map(|e| e.data["via"].as_str())
        .collect();
    assert!(
        approvals.contains(&"console (typed key id)"),
        "{approvals:?}"
    );
    assert!(keyfire::record::verify_file(&env.record_path(&id)).ok());
    // The customer-data answer typed in the console is in the record and the report.
    let answer = entries
        .iter()
        .find(|e| e.kind == "operator_input" && e.data.get("customer_data").is_some())
        .expect("the report step asked about customer data");
    assert_eq!(answer.data["customer_data"], "yes");
    assert_eq!(answer.data["note"], "prompts held CRM notes");
    assert_eq!(answer.data["via"], "console");
    let report = keyfire::report::build(&id, &entries).unwrap();
    assert_eq!(
        report.keys[0].customer_data.operator_answer.as_deref(),
        Some("yes")
    );
    let buf = terminal.backend().buffer();
    let text: String = buf.content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("keyfire"), "the last frame was drawn");
    // The audit view draws what the audit step recorded, from the same record.
    app.screen = keyfire::tui::app::Screen::Incident;
    app.incident.run.as_mut().unwrap().show_audit = true;
    let audit = screen(&app, 100, 30);
    assert!(!audit.contains("no usage fetched yet"), "{audit}");
    assert!(audit.contains("volume"), "the rules' verdicts: {audit}");
    let progress = &app.run().unwrap().state.per_key["support-llm"];
    assert!(!progress.usage.is_empty(), "the chart's buckets");
    assert_eq!(progress.rules.len(), 5, "every rule's verdict");
    assert!(audit.contains("Usage per day"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_lines_customer_data_answer_is_used_by_the_console_instead_of_asking() {
    use keyfire::record::event::CustomerDataAnswer;
    let env = crate::common::TestEnv::new();
    let mut console = Console::new(&env);
    // As `keyfire incident start support-llm --customer-data no` on a terminal does.
    console
        .runner
        .answer_customer_data(Some(CustomerDataAnswer::No));
    let params = keyfire::runbook::IncidentParams {
        keys: vec!["support-llm".into()],
        ..Default::default()
    };
    let effects = console
        .app
        .open_incident(keyfire::tui::Opening::Start(Box::new(params)));
    console.runner.perform(&mut console.app, effects);
    let mut asked = false;
    let mut script = |app: &App| -> Vec<KeyEvent> {
        if let Some(p) = &app.prompt {
            asked |= matches!(p.kind(), PromptKind::CustomerData { .. });
            return operator_keys(p.kind(), "y");
        }
        if !app.running() && app.run().is_some_and(|r| r.outcome.is_some()) {
            return vec![key('q'), key('q')];
        }
        Vec::new()
    };
    let finished = console.drive(&mut script).await;
    let app = console.app;
    assert!(finished, "the incident did not finish: {:?}", app.prompt);
    assert!(
        !asked,
        "the console asked a question the command line answered"
    );
    let run = app.run().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("completed"), "{:?}", run.log);
    let id = run.id.clone().unwrap();
    let entries = env.entries(&id);
    let answer = entries
        .iter()
        .find(|e| e.kind == "operator_input" && e.data.get("customer_data").is_some())
        .expect("the report step recorded the customer-data answer");
    assert_eq!(answer.data["customer_data"], "no");
    assert_eq!(answer.data["via"], "--customer-data");
}

// ---- screens from records the engine wrote ----------------------------------------------

/// Make an engine-written entry reproducible: the sims' addresses, the temporary folder,
/// the incident id's random tag and the sims' own clocks are replaced by fixed text.
fn normalized(e: &Entry, env: &crate::common::TestEnv, id: &str) -> Entry {
    fn fix_times(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if k == "created_at" && v.is_string() {
                        *v = json!("2026-01-10T00:00:00+00:00");
                    } else {
                        fix_times(v);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(fix_times),
            _ => {}
        }
    }
    let text = serde_json::to_string(e)
        .unwrap()
        .replace(&env.api.base_url(), "http://127.0.0.1:7878")
        .replace(&env.vault.address(), "http://127.0.0.1:8200")
        .replace(&env.dir.path().display().to_string(), "/srv/keyfire")
        .replace(id, "inc-20261126-030000-aa11");
    let mut e: Entry = serde_json::from_str(&text).unwrap();
    fix_times(&mut e.data);
    e
}

/// The console after a real live incident on support-llm, fed the entries the engine wrote
/// (fixed clock; the provider's usage has a two-day spike at the end).
fn engine_app() -> App {
    let env = crate::common::TestEnv::new();
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let days = (now() - start).num_days();
    let buckets = (0..=days)
        .map(|i| {
            let s = start + chrono::Duration::days(i);
            let requests = if i >= days - 1 {
                9_000
            } else {
                200 + (i as u64 % 7) * 10
            };
            keyfire::provider::UsageBucket {
                start: s,
                end: s + chrono::Duration::days(1),
                requests,
                input_tokens: requests * 900,
                output_tokens: requests * 300,
                cost_usd: requests as f64 * 0.01,
            }
        })
        .collect();
    env.api.set_usage(&env.old_key_id, buckets);
    let mut setup = env.setup();
    setup.clock = Arc::new(keyfire::clock::FixedClock(now()));
    let params = crate::common::params(
        &["support-llm"],
        false,
        keyfire::runbook::Order::ContainFirst,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (id, entries) = rt.block_on(async {
        let mut engine = keyfire::runbook::Engine::open(setup.clone(), params).unwrap();
        let mut sink = keyfire::runbook::CollectSink::default();
        let outcome = keyfire::runbook::drive(
            &mut engine,
            &mut keyfire::runbook::ApproveAll::default(),
            &mut sink,
        )
        .await
        .unwrap();
        assert_eq!(outcome, keyfire::runbook::Outcome::Completed);
        (engine.id().to_string(), env.entries(engine.id()))
    });
    let mut a = App::new(setup.inventory.clone(), Vec::new(), now());
    a.incident.run = Some(keyfire::tui::app::RunView::new(
        vec!["support-llm".into()],
        false,
        keyfire::runbook::Order::ContainFirst,
    ));
    a.screen = Screen::Incident;
    for e in &entries {
        a.on_event(AppEvent::Entry(Box::new(normalized(e, &env, &id))));
    }
    a.on_event(AppEvent::Tick(now()));
    a
}

#[test]
fn snapshot_incident_from_an_engine_record() {
    let a = engine_app();
    let run = a.run().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("completed"));
    both("engine_incident", &a);
}

#[test]
fn snapshot_audit_from_an_engine_record() {
    let mut a = engine_app();
    a.update(Action::ToggleAudit);
    let k = &a.run().unwrap().state.per_key["support-llm"];
    assert!(
        k.rules
            .iter()
            .any(|r| r.rule == "volume" && r.status == "findings"),
        "the spike is found: {:?}",
        k.rules
    );
    both("engine_audit", &a);
}

// ---- the start dialog: exposure start, gateway logs, reason -----------------------------

fn type_text(a: &mut App, text: &str) {
    for c in text.chars() {
        a.update(Action::Char(c));
    }
}

#[test]
fn start_dialog_carries_exposure_logs_and_reason_like_the_flags() {
    use keyfire::tui::keymap::Mode;
    let dir = tempfile::tempdir().unwrap();
    let gw1 = dir.path().join("gateway-1.jsonl");
    let gw2 = dir.path().join("gateway-2.csv");
    std::fs::write(&gw1, "").unwrap();
    std::fs::write(&gw2, "").unwrap();
    let mut a = app();
    a.update(Action::StartIncident);
    assert_eq!(
        a.mode(),
        Mode::Dialog,
        "the choices have the keyboard first"
    );
    a.update(Action::NextField);
    assert_eq!(a.mode(), Mode::Form, "a field takes typed keys");
    type_text(&mut a, "2026-11-20T08:30:00Z");
    a.update(Action::NextField);
    type_text(&mut a, &format!("{}, {}", gw1.display(), gw2.display()));
    a.update(Action::NextField);
    // y, n and z are text here, not the dialog's keys.
    type_text(&mut a, "key in a public gist, yes");
    // Shift-Tab goes back a field, Tab forward again, then Enter starts.
    a.update(Action::PrevField);
    a.update(Action::NextField);
    let effects = a.update(Action::Submit);
    let [Effect::Open(p)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(p.keys, ["support-llm"]);
    assert!(!p.dry_run);
    assert_eq!(
        p.exposed_since,
        Some(Utc.with_ymd_and_hms(2026, 11, 20, 8, 30, 0).unwrap())
    );
    assert_eq!(p.logs, [gw1, gw2]);
    assert_eq!(p.reason.as_deref(), Some("key in a public gist, yes"));
    assert_eq!(p.purpose, keyfire::runbook::Purpose::Incident);
    assert!(a.start.is_none());
    assert_eq!(a.screen, Screen::Incident);
}

#[test]
fn start_dialog_takes_a_date_as_midnight_utc_like_the_flag() {
    let mut a = app();
    a.update(Action::StartDrill);
    a.update(Action::NextField);
    type_text(&mut a, "2026-11-01");
    let effects = a.update(Action::Submit);
    let [Effect::Open(p)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(p.dry_run);
    assert_eq!(
        p.exposed_since,
        Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap())
    );
}

#[test]
fn an_invalid_date_or_a_missing_log_keeps_the_dialog_open_with_the_error() {
    use keyfire::tui::dialogs::start::StartField;
    let mut a = app();
    a.update(Action::StartIncident);
    a.update(Action::NextField);
    type_text(&mut a, "2026-13-45");
    a.update(Action::NextField);
    a.update(Action::NextField);
    assert!(a.update(Action::Submit).is_empty(), "nothing starts");
    let d = a.start.as_ref().expect("the dialog stays open");
    assert_eq!(d.focus, StartField::ExposedSince, "the bad field has focus");
    let (field, error) = d.error.clone().unwrap();
    assert_eq!(field, StartField::ExposedSince);
    assert!(error.contains("invalid time \"2026-13-45\""), "{error}");
    both("start_dialog_error", &a);

    // Fixed, but a gateway log that does not exist is refused like `--logs`.
    for _ in 0.."2026-13-45".len() {
        a.update(Action::Backspace);
    }
    assert!(a.start.as_ref().unwrap().error.is_none(), "edited: cleared");
    type_text(&mut a, "2026-11-01");
    a.update(Action::NextField);
    type_text(&mut a, "/nonexistent/gateway.jsonl");
    assert!(a.update(Action::Submit).is_empty());
    let d = a.start.as_ref().unwrap();
    assert_eq!(d.focus, StartField::Logs);
    assert_eq!(
        d.error.as_ref().unwrap().1,
        "/nonexistent/gateway.jsonl: no such file"
    );
}

#[test]
fn esc_in_a_start_field_backs_out_to_the_choices_then_cancels() {
    use keyfire::tui::keymap::Mode;
    let mut a = app();
    a.update(Action::StartIncident);
    a.update(Action::PrevField);
    type_text(&mut a, "x");
    assert_eq!(a.mode(), Mode::Form);
    assert!(a.update(Action::Back).is_empty());
    assert_eq!(a.mode(), Mode::Dialog, "back on the choices");
    assert_eq!(a.start.as_ref().unwrap().reason, "x", "the text stays");
    a.update(Action::No);
    assert!(a.start.is_none());
    assert!(!a.quit);
}

#[test]
fn snapshot_start_dialog_with_defaults_and_typed_fields() {
    let mut a = app();
    a.update(Action::StartIncident);
    both("start_dialog", &a);
    a.update(Action::NextField);
    type_text(&mut a, "2026-11-20");
    a.update(Action::NextField);
    a.update(Action::NextField);
    // A key pasted into the reason is never drawn.
    type_text(
        &mut a,
        "leaked in #general: sk-proj-CANARYq8Zr2Lm5Xw9Tt4Hb7Nc1Vd3Yp6Ka0Jf",
    );
    let shown = screen(&a, 100, 30);
    assert!(!shown.contains("CANARY"), "{shown}");
    both("start_dialog_typed", &a);
}

// ---- the report step's customer-data question -------------------------------------------

fn customer_data_prompt(id: u64) -> AppEvent {
    AppEvent::Prompt(Prompt {
        id,
        kind: PromptKind::CustomerData {
            key: "support-llm".into(),
            question: "Could customer data have been reached with support-llm?".into(),
            scopes_note: "Its scopes do not reach customer data directly; prompts sent with it may still hold some.".into(),
        },
    })
}

#[test]
fn the_customer_data_question_takes_an_answer_and_a_note() {
    use keyfire::record::event::CustomerDataAnswer;
    use keyfire::tui::action::Reply;
    use keyfire::tui::keymap::Mode;
    let mut a = incident_app(false);
    a.on_event(customer_data_prompt(11));
    assert_eq!(a.mode(), Mode::Text, "the question takes the keyboard");
    both("customer_data_question", &a);
    assert!(a.update(Action::Char('x')).is_empty());
    assert!(a.notice.as_deref().unwrap().contains("u (unknown)"));
    assert!(a.update(Action::Back).is_empty(), "Esc does not dismiss it");
    assert!(a.prompt.is_some());
    a.update(Action::Char('n'));
    // Esc in the note goes back to the choices: the answer can change.
    a.update(Action::Back);
    assert!(a.prompt.as_ref().unwrap().answer.is_none());
    a.update(Action::Char('y'));
    type_text(&mut a, "CRM notes in prompts");
    both("customer_data_note", &a);
    let effects = a.update(Action::Submit);
    match effects.as_slice() {
        [
            Effect::Reply {
                prompt: 11,
                reply: Reply::CustomerData(r),
            },
        ] => {
            assert_eq!(r.answer, CustomerDataAnswer::Yes);
            assert_eq!(r.note.as_deref(), Some("CRM notes in prompts"));
            assert_eq!(r.via, "console");
        }
        other => panic!("{other:?}"),
    }
    assert!(a.prompt.is_none());
}

#[test]
fn an_abort_answers_the_customer_data_question_unknown() {
    use keyfire::record::event::CustomerDataAnswer;
    use keyfire::tui::action::Reply;
    let mut a = incident_app(false);
    a.on_event(customer_data_prompt(12));
    a.update(Action::Interrupt);
    let effects = a.update(Action::Yes);
    match effects.as_slice() {
        [
            Effect::RequestAbort,
            Effect::Reply {
                prompt: 12,
                reply: Reply::CustomerData(r),
            },
        ] => assert_eq!(r.answer, CustomerDataAnswer::Unknown, "never no"),
        other => panic!("{other:?}"),
    }
}

// ---- an inventory edit's diff ------------------------------------------------------------

const EDIT_PLAN: &str = "EDIT /srv/keyfire/fleet.toml\n  {\"diff\":\"--- /srv/keyfire/fleet.toml\\n+++ /srv/keyfire/fleet.toml\\n@@ -46,1 +46,2 @@\\n-last_rotated = 2026-07-01\\n+last_rotated = 2026-11-26\\n+rotation_days = 30\\n\",\"last_rotated\":\"2026-11-26\",\"rotation_days\":30}";

fn reschedule_app(dry_run: bool) -> App {
    let mut a = incident_app(dry_run);
    a.on_event(AppEvent::Entry(Box::new(entry(
        20,
        "step_started",
        Some("reschedule"),
        json!({"key": "support-llm", "title": "Reschedule the next rotation", "checklist": []}),
    ))));
    a.on_event(AppEvent::Entry(Box::new(entry(
        21,
        "plan",
        Some("reschedule"),
        json!({"key": "support-llm", "action": "update_inventory", "rendered": EDIT_PLAN, "plan": {"summary": "Set last_rotated", "access": "write"}}),
    ))));
    a
}

#[test]
fn snapshot_reschedule_diff_is_a_unified_diff_not_escaped_json() {
    let a = reschedule_app(false);
    let shown = screen(&a, 100, 30);
    assert!(!shown.contains("\\n"), "no escaped newlines: {shown}");
    assert!(!shown.contains("{\"diff\""), "no JSON string: {shown}");
    for line in [
        "--- /srv/keyfire/fleet.toml",
        "@@ -46,1 +46,2 @@",
        "-last_rotated = 2026-07-01",
        "+last_rotated = 2026-11-26",
        "+rotation_days = 30",
        "last_rotated: 2026-11-26 · rotation_days: 30",
    ] {
        assert!(shown.contains(line), "{line:?} in {shown}");
    }
    both("reschedule_diff", &a);
}

#[test]
fn the_diff_is_coloured_added_green_removed_red_hunks_dim() {
    use ratatui::style::{Color, Modifier};
    let a = reschedule_app(false);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal
        .draw(|f| render(&a, &mut ViewState::default(), Theme::colored(), f))
        .unwrap();
    let buf = terminal.backend().buffer();
    // The style of the first cell of the line that starts with `text`.
    let style_of = |text: &str| {
        for y in 0..buf.area.height {
            let row: String = (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            if let Some(at) = row.find(text) {
                let x = row[..at].chars().count() as u16;
                return buf[(x, y)].style();
            }
        }
        panic!("{text:?} not on screen");
    };
    assert_eq!(style_of("+last_rotated").fg, Some(Color::Green));
    assert_eq!(style_of("+rotation_days").fg, Some(Color::Green));
    assert_eq!(style_of("-last_rotated").fg, Some(Color::Red));
    let hunk = style_of("@@ -46,1");
    assert!(hunk.add_modifier.contains(Modifier::DIM), "{hunk:?}");
}

#[test]
fn an_approval_of_an_inventory_edit_shows_the_diff() {
    let mut a = reschedule_app(false);
    a.on_event(AppEvent::Prompt(Prompt {
        id: 30,
        kind: PromptKind::Approve {
            key: "support-llm".into(),
            step: "reschedule".into(),
            action: "update_inventory".into(),
            summary: "Set last_rotated = 2026-11-26 and rotation_days = 30".into(),
            rendered: EDIT_PLAN.into(),
            confirm_text: None,
        },
    }));
    let shown = screen(&a, 100, 30);
    assert!(shown.contains("+rotation_days = 30"), "{shown}");
    assert!(!shown.contains("\\n"), "{shown}");
}

// ---- the mouse ---------------------------------------------------------------------------

fn mouse(
    kind: ratatui::crossterm::event::MouseEventKind,
    row: u16,
) -> ratatui::crossterm::event::MouseEvent {
    ratatui::crossterm::event::MouseEvent {
        kind,
        column: 10,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

#[test]
fn the_wheel_scrolls_the_list_and_a_click_selects_the_row_under_it() {
    use keyfire::tui::ui::mouse_action;
    use ratatui::crossterm::event::{MouseButton, MouseEventKind};
    let mut a = app();
    let mut view = ViewState::default();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal
        .draw(|f| render(&a, &mut view, Theme::plain(), f))
        .unwrap();
    let text = screen(&a, 100, 30);
    let rows: Vec<&str> = text.lines().collect();
    // The row on screen that shows sales-crm, and the index the click must select.
    let y = rows.iter().position(|l| l.contains("sales-crm")).unwrap() as u16;
    let want = a
        .inventory
        .visible
        .iter()
        .position(|&i| a.inventory.rows[i].id == "sales-crm")
        .unwrap();
    let click = mouse_action(&a, &view, mouse(MouseEventKind::Down(MouseButton::Left), y));
    assert_eq!(click, Some(Action::SelectRow(want)));
    a.update(click.unwrap());
    assert_eq!(a.inventory.selected_row().unwrap().id, "sales-crm");
    // Below the last row, or on the table's header: nothing.
    assert_eq!(
        mouse_action(
            &a,
            &view,
            mouse(MouseEventKind::Down(MouseButton::Left), y + 5)
        ),
        None
    );
    assert_eq!(
        mouse_action(&a, &view, mouse(MouseEventKind::Down(MouseButton::Left), 2)),
        None
    );
    // The wheel moves the selection like the arrow keys.
    let up = mouse_action(&a, &view, mouse(MouseEventKind::ScrollUp, 0)).unwrap();
    assert_eq!(up, Action::Up);
    a.update(up);
    assert_ne!(a.inventory.selected_row().unwrap().id, "sales-crm");
    assert_eq!(
        mouse_action(&a, &view, mouse(MouseEventKind::ScrollDown, 0)),
        Some(Action::Down)
    );
    // A dialog has the keyboard: the mouse does nothing under it.
    a.update(Action::StartIncident);
    assert_eq!(
        mouse_action(&a, &view, mouse(MouseEventKind::ScrollDown, 0)),
        None
    );
}

#[test]
fn a_click_selects_an_incident() {
    use keyfire::tui::ui::mouse_action;
    use ratatui::crossterm::event::{MouseButton, MouseEventKind};
    let mut a = app();
    let mut open = a.fleet.incidents[0].clone();
    open.id = "inc-20261120-100000-cd34".into();
    a.set_incidents(vec![a.fleet.incidents[0].clone(), open]);
    a.update(Action::ShowIncidents);
    let mut view = ViewState::default();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal
        .draw(|f| render(&a, &mut view, Theme::plain(), f))
        .unwrap();
    let text = screen(&a, 100, 30);
    let y = text
        .lines()
        .position(|l| l.contains("inc-20261120-100000-cd34"))
        .unwrap() as u16;
    let click = mouse_action(&a, &view, mouse(MouseEventKind::Down(MouseButton::Left), y));
    assert!(matches!(click, Some(Action::SelectRow(_))), "{click:?}");
    a.update(click.unwrap());
    assert_eq!(a.incidents.selected, {
        a.fleet
            .incidents
            .iter()
            .position(|i| i.id == "inc-20261120-100000-cd34")
            .unwrap()
    });
}

/// After a run whose record is shared with the team, the incident screen says how far the
/// shared copy got: quietly when every entry is there, loudly when some are still queued.
#[test]
fn the_incident_screen_says_how_many_entries_are_not_yet_shared() {
    use keyfire::record::shared::ShareStatus;
    let status = |shared, durable, last_error: Option<&str>| ShareStatus {
        location: "s3://team-records/keyfire".into(),
        shared,
        durable,
        last_error: last_error.map(str::to_string),
        stopped: None,
        settled: shared,
    };
    let mut a = incident_app(false);
    a.on_event(AppEvent::Shared(status(3, 7, Some("connection refused"))));
    a.on_event(AppEvent::RunFinished);
    let text = screen(&a, 160, 30);
    assert!(
        text.contains(
            "NOT YET SHARED: 4 entries (connection refused; `keyfire records flush` sends them)"
        ),
        "{text}"
    );
    let mut a = incident_app(false);
    a.on_event(AppEvent::Shared(status(7, 7, None)));
    let text = screen(&a, 160, 30);
    assert!(text.contains("shared: 7 entries"), "{text}");
    assert!(!text.contains("NOT YET SHARED"), "{text}");
}

// ---- the Leaks view ----------------------------------------------------------------------

use keyfire::scan::saved::SavedScan;
use keyfire::scan::{FileKind, Finding, KeyState, Location, MatchedBy, Source, Verdict};

const LEAK_COMMIT_DATE: &str = "2026-11-20T09:30:00Z";

fn finding(
    source: Source,
    path: &str,
    line: u64,
    dated: bool,
    key: Option<&str>,
    status: KeyState,
    what: (&str, &str),
) -> Finding {
    let date = dated.then(|| LEAK_COMMIT_DATE.parse().unwrap());
    Finding {
        source,
        location: Location {
            path: path.into(),
            line: Some(line),
            commit: dated.then(|| "3f2a9c1e0b7d4a5f6e8c9b0a1d2e3f4a5b6c7d8e".into()),
            author_date: date,
            commit_date: date,
            report: None,
        },
        file_kind: FileKind::of_path(path),
        format: what.0.into(),
        what: what.1.into(),
        hint: match key {
            Some("support-llm") => "fk-...Q7d2".into(),
            Some(_) => "fk-...Zz91".into(),
            None => "sk-proj-...w0Rk".into(),
        },
        verdict: Verdict {
            status,
            key: key.map(str::to_string),
            matched_by: key.map(|_| MatchedBy::Fingerprint),
            candidates: Vec::new(),
            note: None,
        },
    }
}

/// A scan of an agents repository: support-llm committed in a .env, research-llm in the
/// working tree's settings, an OpenAI key nobody manages, and sales-crm's old value.
fn saved_scan(a: &App) -> SavedScan {
    let fake = ("keyfire-training-key", "keyfire training key");
    let openai = ("openai-project-key", "OpenAI project key");
    let findings = vec![
        finding(
            Source::File,
            "deploy/config.py",
            3,
            false,
            None,
            KeyState::Unmanaged,
            openai,
        ),
        finding(
            Source::File,
            "settings.toml",
            2,
            false,
            Some("research-llm"),
            KeyState::Unverified,
            fake,
        ),
        finding(
            Source::Git,
            "old/crm.env",
            1,
            true,
            Some("sales-crm"),
            KeyState::Rotated,
            fake,
        ),
        finding(
            Source::Git,
            ".env",
            1,
            true,
            Some("support-llm"),
            KeyState::Unverified,
            fake,
        ),
    ];
    let inv = &a.fleet.inventory;
    let keys = keyfire::scan::summarize_keys(inv, &findings);
    let totals = keyfire::scan::summary::totals(&findings, &keys);
    SavedScan {
        version: keyfire::scan::saved::VERSION,
        ran_at: now() - chrono::Duration::hours(2),
        paths: vec!["/srv/agents".into()],
        git: true,
        since: None,
        reports: Vec::new(),
        github: None,
        findings,
        keys,
        totals,
        coverage: keyfire::scan::Coverage {
            files: 41,
            commits: 118,
            ..Default::default()
        },
    }
}

fn leaks_app() -> App {
    let mut a = app();
    let effects = a.update(Action::ShowLeaks);
    assert!(
        matches!(effects.as_slice(), [Effect::LoadLeaks]),
        "{effects:?}"
    );
    let scan = saved_scan(&a);
    a.leaks.set(Ok(Some(scan)));
    a
}

#[test]
fn snapshot_leaks_view() {
    let mut a = leaks_app();
    assert_eq!(a.screen, Screen::Leaks);
    // Live inventory keys first, then the unmanaged one, then the rotated value.
    let order: Vec<String> = (0..4)
        .map(|_| {
            let f = a.leaks.current().unwrap().location.path.clone();
            a.update(Action::Down);
            f
        })
        .collect();
    assert_eq!(
        order,
        ["settings.toml", ".env", "deploy/config.py", "old/crm.env"]
    );
    a.update(Action::Top);
    a.update(Action::ToggleMark);
    both("leaks", &a);
}

#[test]
fn snapshot_leaks_start_dialog() {
    let mut a = leaks_app();
    a.update(Action::MarkLive);
    a.update(Action::StartIncident);
    assert!(a.start.is_some());
    both("leaks_start", &a);
}

#[test]
fn leaks_start_the_campaign_scan_start_incident_would_open() {
    let mut a = leaks_app();
    // Both live keys and the unmanaged key marked: the unmanaged one is left out, and said so.
    a.update(Action::ToggleMark);
    a.update(Action::ToggleMark);
    a.update(Action::ToggleMark);
    assert_eq!(a.leaks.marked.len(), 3);
    assert!(a.update(Action::StartIncident).is_empty(), "a dialog first");
    let leak = a.start.as_ref().unwrap().leak.clone().unwrap();
    assert_eq!(leak.left_out.len(), 1);
    assert!(
        leak.left_out[0].starts_with("deploy/config.py:3: unmanaged"),
        "{:?}",
        leak.left_out
    );
    let chosen = a.leaks.chosen();
    let expected = keyfire::scan::incident_for(&a.fleet.inventory, &chosen).unwrap();
    a.update(Action::ToggleOrder);
    let effects = a.update(Action::Yes);
    let [Effect::Open(params)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(params.keys, ["research-llm", "support-llm"]);
    assert_eq!(params.keys, expected.keys);
    assert_eq!(
        params.reason.as_deref(),
        Some(
            "keyfire scan: research-llm found in settings.toml:2 | support-llm found in .env:1 (commit 3f2a9c1e0b7d, 2026-11-20)"
        )
    );
    assert_eq!(params.reason.as_deref(), Some(expected.reason.as_str()));
    assert_eq!(
        params.exposed_since,
        Some(LEAK_COMMIT_DATE.parse().unwrap()),
        "the earliest commit date of a live finding"
    );
    assert!(!params.dry_run);
    assert_eq!(params.order, keyfire::runbook::Order::ZeroDowntime);
    assert_eq!(a.screen, Screen::Incident);
    assert!(a.running());
}

#[test]
fn a_drill_from_the_leaks_view_is_a_dry_run_of_the_same_campaign() {
    let mut a = leaks_app();
    a.update(Action::Down); // the .env finding under the cursor, nothing marked
    a.update(Action::StartDrill);
    let effects = a.update(Action::Yes);
    let [Effect::Open(params)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(params.dry_run);
    assert_eq!(params.keys, ["support-llm"]);
}

#[test]
fn unmanaged_and_rotated_findings_cannot_start_an_incident_and_say_why() {
    let mut a = leaks_app();
    a.update(Action::Bottom);
    a.update(Action::Up); // the unmanaged OpenAI key
    assert!(a.update(Action::StartIncident).is_empty());
    assert!(a.start.is_none(), "no dialog");
    let notice = a.notice.clone().unwrap();
    assert!(notice.contains("cannot start an incident"), "{notice}");
    assert!(notice.contains("no inventory key matches it"), "{notice}");
    a.update(Action::Bottom); // sales-crm's value, already rotated
    assert!(a.update(Action::StartIncident).is_empty());
    assert!(a.notice.as_deref().unwrap().contains("already rotated"));
    // Enter on a matched finding opens its key.
    a.update(Action::Top);
    a.update(Action::Open);
    assert_eq!(
        a.screen,
        Screen::Key(keyfire::tui::screens::key::KeyScreen::new(
            "research-llm".into()
        ))
    );
}

#[test]
fn leaks_view_without_a_scan_says_how_to_run_one_and_shows_a_bad_file_as_an_error() {
    let mut a = app();
    a.update(Action::ShowLeaks);
    a.leaks.set(Ok(None));
    let text = screen(&a, 100, 30);
    assert!(
        text.contains("No scan yet. Run `keyfire scan PATH... --git`"),
        "{text}"
    );
    assert!(a.update(Action::StartIncident).is_empty());
    assert!(
        a.notice
            .as_deref()
            .unwrap()
            .contains("run `keyfire scan` first")
    );

    let dir = tempfile::tempdir().unwrap();
    let scan = saved_scan(&a);
    let file = keyfire::scan::saved::save(dir.path(), &scan).unwrap();
    let newer = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"version\": 1", "\"version\": 2");
    std::fs::write(&file, newer).unwrap();
    a.leaks.set(keyfire::scan::saved::load(dir.path()));
    let text = screen(&a, 200, 30);
    assert!(text.contains("The last scan cannot be shown"), "{text}");
    assert!(
        text.contains("written by a newer keyfire (format 2"),
        "{text}"
    );
    assert!(
        a.update(Action::Down).is_empty(),
        "nothing to move over, no crash"
    );
}

// ---- the inventory after an edit, and its columns -------------------------------------------

/// Agents and scopes a column each, beside a key id much longer than either.
const LONG_FLEET: &str = r##"schema = 1
[[providers]]
id = "openai"
kind = "manual"
[[agents]]
id = "support-bot"
[[agents]]
id = "billing-bot"
[[keys]]
id = "payments-reconciliation-nightly-batch-worker-openai"
agents = ["support-bot", "billing-bot"]
provider = "openai"
scopes = ["model.request"]
created_at = 2026-11-01
[[keys]]
id = "support-llm"
agents = ["support-bot"]
provider = "openai"
scopes = ["files.read"]
created_at = 2026-10-01
"##;

#[test]
fn snapshot_inventory_columns_fit_the_terminal_width() {
    let a = app_with(LONG_FLEET);
    let narrow = screen(&a, 100, 12);
    // The key column is the widest: it is cut, with an ellipsis; agents and scopes are whole.
    assert!(narrow.contains("support-bot,billing-bot"), "{narrow}");
    assert!(narrow.contains("model.request"), "{narrow}");
    assert!(narrow.contains("payments-reconciliation-…"), "{narrow}");
    insta::assert_snapshot!("inventory_columns_100x12", narrow);
    let wide = screen(&a, 160, 12);
    assert!(
        wide.contains("payments-reconciliation-nightly-batch-worker-openai"),
        "{wide}"
    );
    insta::assert_snapshot!("inventory_columns_160x12", wide);
}

#[test]
fn a_reloaded_inventory_shows_the_new_age_and_keeps_filter_and_selection() {
    let mut a = app();
    a.update(Action::FilterStart);
    for c in "llm".chars() {
        a.update(Action::Char(c));
    }
    a.update(Action::Submit);
    a.update(Action::Down);
    let selected = a.inventory.selected_row().unwrap().id.clone();
    assert_eq!(
        a.inventory.row("support-llm").unwrap().status.as_str(),
        "overdue"
    );
    // Step 5 wrote last_rotated = today and rotation_days = 30 for support-llm.
    let edited = FLEET.replacen(
        "last_rotated = 2026-07-01",
        "last_rotated = 2026-11-26\nrotation_days = 30",
        1,
    );
    let inv = keyfire::inventory::load_str(std::path::Path::new("fleet.toml"), &edited).unwrap();
    a.set_inventory(Arc::new(inv));
    let row = a.inventory.row("support-llm").unwrap();
    assert_eq!((row.age_days, row.due_in_days), (Some(0), Some(30)));
    assert_eq!(row.status.as_str(), "ok");
    assert_eq!(a.inventory.filter, "llm");
    assert_eq!(
        a.inventory.selected_row().unwrap().id,
        selected,
        "the same key stays selected"
    );
}

#[test]
fn an_open_incident_shows_on_the_keys_row_and_key_screen() {
    let mut a = app();
    let mut open = a.fleet.incidents[0].clone();
    open.id = "inc-20261126-020000-cd34".into();
    open.kind = keyfire::record::IncidentKind::Incident;
    open.drill = false;
    open.status = "open".into();
    open.keys = vec!["research-llm".into()];
    open.opened = "2026-11-26T02:00:00.000Z".into();
    let mut all = a.fleet.incidents.clone();
    all.push(open);
    a.set_incidents(all);
    assert_eq!(
        a.inventory.row("research-llm").unwrap().status.as_str(),
        "incident-open"
    );
    let table = screen(&a, 100, 30);
    assert!(table.contains("incident-open"), "{table}");
    while a.inventory.selected_row().map(|r| r.id.as_str()) != Some("research-llm") {
        a.update(Action::Down);
    }
    a.update(Action::Open);
    let key = screen(&a, 200, 30);
    assert!(
        key.contains("incident     inc-20261126-020000-cd34 open since 2026-11-26 02:00"),
        "{key}"
    );
}
