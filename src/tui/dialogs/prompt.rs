//! A question from the engine (approve a write, confirm a manual step, paste a replacement,
//! decide about a failed step), with the text the operator types to answer it. Shown in the
//! incident screen's "Waiting for you" box.

use ratatui::text::{Line, Span};
use zeroize::Zeroizing;

use super::super::action::{Action, Prompt, PromptKind, Reply};
use super::super::plan_view::plan_lines;
use super::super::strings;
use super::super::theme::Theme;
use crate::record::event::CustomerDataAnswer;
use crate::runbook::{CustomerDataReply, Decision, FailureChoice};
use crate::secret::{Secret, push_str_wiped};

/// Which text field of the question has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptInput {
    /// The key id a destructive approval needs typed.
    Confirm,
    /// `done` once a manual step is done.
    Manual,
    /// The replacement key (never drawn).
    Paste,
    /// Why a failed action is skipped (recorded).
    SkipReason,
    /// The optional note with the customer-data answer (recorded, scrubbed).
    Note,
}

/// What the dialog did with an action.
#[derive(Debug)]
pub enum PromptOutcome {
    /// Not one of the dialog's keys.
    Ignored,
    /// Handled; the question stays open.
    Kept { notice: Option<String> },
    /// Answered or declined: the dialog closes and the reply goes to the engine.
    Answered {
        reply: Reply,
        notice: Option<String>,
    },
}

const DECLINED: &str = "declined: the incident stops here and stays resumable";
const CUSTOMER_DATA_KEYS: &str =
    "answer y (yes), n (no) or u (unknown): the report states it, and nothing is assumed";

pub struct PromptDialog {
    pub prompt: Prompt,
    /// The text field that has the keyboard, if any.
    pub input: Option<PromptInput>,
    pub text: String,
    paste: Zeroizing<String>,
    /// The customer-data answer chosen, while its note is typed.
    pub answer: Option<CustomerDataAnswer>,
}

impl std::fmt::Debug for PromptDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pasted value is never shown, not even in debug output.
        f.debug_struct("PromptDialog")
            .field("prompt", &self.prompt)
            .field("input", &self.input)
            .field("text", &self.text)
            .field("paste_len", &self.paste_len())
            .field("answer", &self.answer)
            .finish()
    }
}

impl PromptDialog {
    pub fn new(prompt: Prompt) -> Self {
        Self {
            prompt,
            input: None,
            text: String::new(),
            paste: Zeroizing::new(String::new()),
            answer: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.prompt.id
    }

    pub fn kind(&self) -> &PromptKind {
        &self.prompt.kind
    }

    /// Questions answered by typing take the keyboard at once.
    pub fn needs_typing(&self) -> bool {
        matches!(
            self.prompt.kind,
            PromptKind::Approve {
                confirm_text: Some(_),
                ..
            } | PromptKind::Manual { .. }
                | PromptKind::Paste { .. }
                | PromptKind::CustomerData { .. }
        )
    }

    /// A text field has the keyboard.
    pub fn typing(&self) -> bool {
        self.input.is_some()
    }

    /// Leave the text field and forget what was typed (the question stays).
    pub fn cancel_input(&mut self) {
        self.input = None;
        self.answer = None;
        self.text.clear();
        self.paste = Zeroizing::new(String::new());
    }

    /// The masked input's length (the value itself is never rendered).
    pub fn paste_len(&self) -> usize {
        self.paste.chars().count()
    }

    /// The reply that declines this question.
    pub fn decline(&self) -> Reply {
        match self.prompt.kind {
            PromptKind::Paste { .. } => Reply::Paste(None),
            PromptKind::Failure { .. } => Reply::Failure(FailureChoice::Abort),
            // Nobody answered: unknown, never "no".
            PromptKind::CustomerData { .. } => {
                Reply::CustomerData(CustomerDataReply::unknown("console (not answered)"))
            }
            _ => Reply::Decision(Decision::Decline {
                via: "console".into(),
            }),
        }
    }

    /// Handle an operator action: the text field's when one has the keyboard, else the
    /// question's own keys.
    pub fn update(&mut self, action: &Action) -> PromptOutcome {
        match self.input {
            Some(input) => self.text_input(input, action),
            None => self.answer(action),
        }
    }

    fn answer(&mut self, action: &Action) -> PromptOutcome {
        let answered = |reply| PromptOutcome::Answered {
            reply,
            notice: None,
        };
        match (&self.prompt.kind, action) {
            (
                PromptKind::Approve {
                    confirm_text: None, ..
                },
                Action::Yes,
            ) => answered(Reply::Decision(Decision::Approve {
                via: "console".into(),
            })),
            (PromptKind::Approve { .. }, Action::No) => {
                answered(Reply::Decision(Decision::Decline {
                    via: "console".into(),
                }))
            }
            (
                PromptKind::Approve {
                    confirm_text: Some(_),
                    ..
                },
                Action::Open | Action::Submit | Action::Char(_),
            ) => {
                self.input = Some(PromptInput::Confirm);
                self.text.clear();
                if let Action::Char(c) = action {
                    self.text.push(*c);
                }
                PromptOutcome::Kept { notice: None }
            }
            (PromptKind::Manual { .. }, Action::Open | Action::Submit | Action::Char(_)) => {
                self.input = Some(PromptInput::Manual);
                self.text.clear();
                if let Action::Char(c) = action {
                    self.text.push(*c);
                }
                PromptOutcome::Kept { notice: None }
            }
            (PromptKind::Paste { .. }, Action::Open | Action::Submit | Action::Char(_)) => {
                self.input = Some(PromptInput::Paste);
                self.paste = Zeroizing::new(String::new());
                if let Action::Char(c) = action {
                    push_str_wiped(&mut self.paste, c.encode_utf8(&mut [0; 4]));
                }
                PromptOutcome::Kept { notice: None }
            }
            (PromptKind::Failure { .. }, Action::Retry) => {
                answered(Reply::Failure(FailureChoice::Retry))
            }
            (PromptKind::Failure { .. }, Action::Skip) => {
                self.input = Some(PromptInput::SkipReason);
                self.text.clear();
                PromptOutcome::Kept { notice: None }
            }
            (PromptKind::Failure { .. }, Action::LeaveFailed) => {
                answered(Reply::Failure(FailureChoice::LeaveFailed))
            }
            (PromptKind::Failure { .. }, Action::Abort) => {
                answered(Reply::Failure(FailureChoice::Abort))
            }
            (PromptKind::CustomerData { .. }, Action::Char(c)) => {
                match c.to_string().parse::<CustomerDataAnswer>() {
                    Ok(answer) => {
                        self.answer = Some(answer);
                        self.input = Some(PromptInput::Note);
                        self.text.clear();
                        PromptOutcome::Kept { notice: None }
                    }
                    Err(_) => PromptOutcome::Kept {
                        notice: Some(CUSTOMER_DATA_KEYS.into()),
                    },
                }
            }
            // The question does not go away with Esc: `u` is the answer for "I do not know".
            (PromptKind::CustomerData { .. }, Action::Back | Action::Submit) => {
                PromptOutcome::Kept {
                    notice: Some(CUSTOMER_DATA_KEYS.into()),
                }
            }
            // Esc on a question that takes the keyboard declines it.
            (_, Action::Back) if self.needs_typing() => PromptOutcome::Answered {
                reply: self.decline(),
                notice: Some(DECLINED.into()),
            },
            _ => PromptOutcome::Ignored,
        }
    }

    fn text_input(&mut self, input: PromptInput, action: &Action) -> PromptOutcome {
        let paste = input == PromptInput::Paste;
        match action {
            Action::Char(c) => {
                if paste {
                    push_str_wiped(&mut self.paste, c.encode_utf8(&mut [0; 4]));
                } else {
                    self.text.push(*c);
                }
                PromptOutcome::Kept { notice: None }
            }
            Action::Backspace => {
                if paste {
                    self.paste.pop();
                } else {
                    self.text.pop();
                }
                PromptOutcome::Kept { notice: None }
            }
            Action::Back => {
                self.cancel_input();
                // Esc on a typed confirmation, a manual step or a paste declines it; on a
                // skip reason it goes back to the failure's choices.
                match input {
                    PromptInput::Confirm | PromptInput::Manual | PromptInput::Paste => {
                        PromptOutcome::Answered {
                            reply: self.decline(),
                            notice: Some(DECLINED.into()),
                        }
                    }
                    PromptInput::SkipReason => PromptOutcome::Kept { notice: None },
                    // Back to the answer's choices.
                    PromptInput::Note => PromptOutcome::Kept { notice: None },
                }
            }
            Action::Submit => self.submit(input),
            _ => PromptOutcome::Kept { notice: None },
        }
    }

    fn submit(&mut self, input: PromptInput) -> PromptOutcome {
        let kept = |notice: String| PromptOutcome::Kept {
            notice: Some(notice),
        };
        match input {
            PromptInput::Confirm => {
                let PromptKind::Approve {
                    confirm_text: Some(expected),
                    ..
                } = &self.prompt.kind
                else {
                    return PromptOutcome::Kept { notice: None };
                };
                if self.text.trim() == expected {
                    self.cancel_input();
                    PromptOutcome::Answered {
                        reply: Reply::Decision(Decision::Approve {
                            via: "console (typed key id)".into(),
                        }),
                        notice: None,
                    }
                } else {
                    let notice =
                        format!("typed text does not match `{expected}`: nothing was sent");
                    self.text.clear();
                    kept(notice)
                }
            }
            PromptInput::Manual => {
                if self.text.trim() == "done" {
                    self.cancel_input();
                    PromptOutcome::Answered {
                        reply: Reply::Decision(Decision::Approve {
                            via: "console".into(),
                        }),
                        notice: None,
                    }
                } else {
                    self.text.clear();
                    kept("type `done` once the step is done in the provider's console".into())
                }
            }
            PromptInput::Paste => {
                self.input = None;
                let value = std::mem::replace(&mut self.paste, Zeroizing::new(String::new()));
                let secret =
                    (!value.trim().is_empty()).then(|| Secret::new(value.trim().to_string()));
                PromptOutcome::Answered {
                    reply: Reply::Paste(secret),
                    notice: None,
                }
            }
            PromptInput::Note => {
                let Some(answer) = self.answer else {
                    self.cancel_input();
                    return kept(CUSTOMER_DATA_KEYS.into());
                };
                let note = std::mem::take(&mut self.text);
                self.cancel_input();
                PromptOutcome::Answered {
                    reply: Reply::CustomerData(CustomerDataReply {
                        answer,
                        note: Some(note.trim().to_string()).filter(|n| !n.is_empty()),
                        via: "console".into(),
                    }),
                    notice: None,
                }
            }
            PromptInput::SkipReason => {
                if self.text.trim().is_empty() {
                    return kept("a skip needs a reason; it goes into the record".into());
                }
                self.input = None;
                let reason = std::mem::take(&mut self.text);
                PromptOutcome::Answered {
                    reply: Reply::Failure(FailureChoice::Skip { reason }),
                    notice: None,
                }
            }
        }
    }

    /// The question as the incident screen's "Waiting for you" box shows it.
    pub fn lines(&self, theme: Theme) -> Vec<Line<'static>> {
        let typing = |input: PromptInput| self.input == Some(input);
        let mut out = Vec::new();
        match &self.prompt.kind {
            PromptKind::Approve {
                key,
                step,
                action,
                summary,
                rendered,
                confirm_text,
            } => {
                let destructive = confirm_text.is_some();
                out.push(Line::from(Span::styled(
                    format!("APPROVAL NEEDED · {key} · {step} · {action}"),
                    if destructive {
                        theme.danger()
                    } else {
                        theme.header()
                    },
                )));
                out.push(Line::from(summary.clone()));
                // The answer line comes before the plan's details, so it stays on screen when the
                // box is too small for everything.
                match confirm_text {
                    Some(expected) => {
                        out.push(Line::from(Span::styled(
                            strings::TYPE_TO_CONFIRM,
                            theme.danger(),
                        )));
                        let typed = if typing(PromptInput::Confirm) {
                            self.text.clone()
                        } else {
                            String::new()
                        };
                        out.push(Line::from(vec![
                            Span::raw(format!("  ({expected}) > ")),
                            Span::styled(format!("{typed}▏"), theme.key_hint()),
                        ]));
                    }
                    None => out.push(Line::from(Span::styled(
                        strings::APPROVE_HINT,
                        theme.key_hint(),
                    ))),
                }
                out.extend(plan_lines(rendered, theme));
            }
            PromptKind::Manual {
                key,
                step,
                action,
                instructions,
            } => {
                out.push(Line::from(Span::styled(
                    format!("MANUAL STEP · {key} · {step} · {action}"),
                    theme.header(),
                )));
                out.push(Line::from(Span::styled(
                    strings::MANUAL_HINT,
                    theme.key_hint(),
                )));
                out.push(Line::from(Span::styled(
                    format!("  > {}▏", self.text),
                    theme.key_hint(),
                )));
                for i in instructions {
                    out.push(Line::from(format!("• {i}")));
                }
            }
            PromptKind::Paste { key, instructions } => {
                out.push(Line::from(Span::styled(
                    format!("REPLACEMENT KEY · {key}"),
                    theme.header(),
                )));
                out.push(Line::from(Span::styled(
                    strings::PASTE_HINT,
                    theme.key_hint(),
                )));
                // The value is never drawn: only that something was typed.
                let n = self.paste_len();
                let shown = if n == 0 {
                    String::new()
                } else {
                    format!("{} ({n} characters, hidden)", "•".repeat(n.min(12)))
                };
                out.push(Line::from(Span::styled(
                    format!("  > {shown}▏"),
                    theme.key_hint(),
                )));
                for i in instructions {
                    out.push(Line::from(format!("• {i}")));
                }
            }
            PromptKind::CustomerData {
                key,
                question,
                scopes_note,
            } => {
                let note = typing(PromptInput::Note).then_some(self.text.as_str());
                customer_data_lines(
                    &mut out,
                    theme,
                    key,
                    question,
                    scopes_note,
                    self.answer,
                    note,
                );
            }
            PromptKind::Failure {
                key,
                step,
                action,
                error,
                status,
            } => {
                let status = status.map_or(String::new(), |s| format!(" · HTTP {s}"));
                out.push(Line::from(Span::styled(
                    format!("STEP FAILED · {key} · {step} · {action}{status}"),
                    theme.danger(),
                )));
                out.push(Line::from(error.clone()));
                if typing(PromptInput::SkipReason) {
                    out.push(Line::from(Span::styled(
                        strings::SKIP_REASON,
                        theme.key_hint(),
                    )));
                    out.push(Line::from(Span::styled(
                        format!("  > {}▏", self.text),
                        theme.key_hint(),
                    )));
                } else {
                    out.push(Line::from(Span::styled(
                        strings::FAILED_HINT,
                        theme.key_hint(),
                    )));
                }
            }
        }
        out
    }
}

/// The customer-data question: the choices, then (once one is chosen) the note field.
fn customer_data_lines(
    out: &mut Vec<Line<'static>>,
    theme: Theme,
    key: &str,
    question: &str,
    scopes_note: &str,
    answer: Option<CustomerDataAnswer>,
    note: Option<&str>,
) {
    out.push(Line::from(Span::styled(
        format!("CUSTOMER DATA · {key} · report"),
        theme.header(),
    )));
    out.push(Line::from(question.to_string()));
    match (answer, note) {
        (Some(answer), Some(note)) => {
            out.push(Line::from(vec![
                Span::raw("  answer: "),
                Span::styled(answer.as_str(), theme.header()),
            ]));
            out.push(Line::from(Span::styled(
                strings::CUSTOMER_DATA_NOTE,
                theme.key_hint(),
            )));
            out.push(Line::from(Span::styled(
                format!("  > {note}▏"),
                theme.key_hint(),
            )));
        }
        _ => out.push(Line::from(Span::styled(
            strings::CUSTOMER_DATA_HINT,
            theme.key_hint(),
        ))),
    }
    out.push(Line::from(Span::styled(
        scopes_note.to_string(),
        theme.muted(),
    )));
}
