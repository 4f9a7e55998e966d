//! The headless approval gate: `--yes` approves everything; otherwise the operator answers
//! on the terminal (typing the key id for destructive calls). Without a terminal and without
//! `--yes`, nothing is approved.

use std::io::{BufRead, IsTerminal, Write};

use crate::record::event::CustomerDataAnswer;
use crate::runbook::{
    ApprovalRequest, CustomerDataReply, CustomerDataRequest, Decision, FailureChoice, FailureView,
    Gate, ManualRequest, PasteRequest,
};
use crate::secret::Secret;

pub struct TerminalGate {
    yes: bool,
    interactive: bool,
    /// `--customer-data`: the answer to the report step's question, given up front.
    customer_data: Option<CustomerDataAnswer>,
}

impl TerminalGate {
    pub fn new(yes: bool) -> Self {
        Self {
            yes,
            interactive: std::io::stdin().is_terminal(),
            customer_data: None,
        }
    }

    /// Answer the customer-data question with this instead of asking.
    pub fn with_customer_data(mut self, answer: Option<CustomerDataAnswer>) -> Self {
        self.customer_data = answer;
        self
    }

    /// Whether this gate can approve anything at all.
    pub fn can_approve(&self) -> bool {
        self.yes || self.interactive
    }
}

/// Print `before` (if any) and `prompt`, then read one answer. A progress display is taken
/// off the terminal meanwhile, so the question is not drawn over.
async fn ask_after(before: Option<String>, prompt: String) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        super::progress::interrupt(|| {
            let mut err = std::io::stderr();
            if let Some(text) = before {
                let _ = writeln!(err, "{text}");
            }
            let _ = write!(err, "{prompt}");
            let _ = err.flush();
            let mut line = String::new();
            match std::io::stdin().lock().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line.trim().to_string()),
            }
        })
    })
    .await
    .ok()
    .flatten()
}

async fn ask(prompt: String) -> Option<String> {
    ask_after(None, prompt).await
}

/// A message for the operator on standard error, around any progress display.
fn say(text: &str) {
    super::progress::interrupt(|| eprintln!("{text}"));
}

impl Gate for TerminalGate {
    async fn approve(&mut self, req: &ApprovalRequest<'_>) -> Decision {
        if self.yes {
            return Decision::Approve {
                via: "--yes".into(),
            };
        }
        if !self.interactive {
            return Decision::Decline {
                via: "no terminal (pass --yes)".into(),
            };
        }
        let shown = format!(
            "\n{} / {} / {}: {}\n{}",
            req.key,
            req.step,
            req.action,
            req.plan.summary,
            req.plan.render()
        );
        let answer = match req.confirm_text {
            Some(expected) => ask_after(
                Some(shown),
                format!("This cannot be undone. Type `{expected}` to confirm: "),
            )
            .await
            .map(|a| a == expected),
            None => ask_after(Some(shown), "Send this request? [y/N] ".into())
                .await
                .map(|a| a.eq_ignore_ascii_case("y") || a.eq_ignore_ascii_case("yes")),
        };
        if answer == Some(true) {
            Decision::Approve {
                via: "terminal".into(),
            }
        } else {
            Decision::Decline {
                via: "terminal".into(),
            }
        }
    }

    async fn confirm_manual(&mut self, req: &ManualRequest<'_>) -> Decision {
        let mut shown = format!("\n{} / {} / {}: manual step", req.key, req.step, req.action);
        for line in req.instructions.iter().filter(|l| !l.is_empty()) {
            shown.push_str(&format!("\n  - {line}"));
        }
        if self.yes {
            say(&format!("{shown}\n  (confirmed by --yes)"));
            return Decision::Approve {
                via: "--yes".into(),
            };
        }
        if !self.interactive {
            say(&shown);
            return Decision::Decline {
                via: "no terminal (pass --yes)".into(),
            };
        }
        match ask_after(
            Some(shown),
            "Type `done` when finished (anything else stops the incident): ".into(),
        )
        .await
            .as_deref()
        {
            Some("done") => Decision::Approve {
                via: "terminal".into(),
            },
            _ => Decision::Decline {
                via: "terminal".into(),
            },
        }
    }

    async fn paste_secret(&mut self, req: &PasteRequest<'_>) -> Option<Secret> {
        let mut shown = format!("\n{}: paste the replacement key", req.key);
        for line in req.instructions.iter().filter(|l| !l.is_empty()) {
            shown.push_str(&format!("\n  - {line}"));
        }
        let interactive = self.interactive;
        tokio::task::spawn_blocking(move || super::progress::interrupt(|| {
            eprintln!("{shown}");
            if interactive {
                rpassword::prompt_password("Replacement key (input hidden): ")
                    .ok()
                    .map(Secret::new)
            } else {
                // Wiped when dropped; the copy in stdin's own buffer cannot be reached.
                crate::secret::read_line_wiped(&mut std::io::stdin().lock())
                    .ok()
                    .flatten()
            }
        }))
        .await
        .ok()
        .flatten()
    }

    async fn on_failure(&mut self, _failure: &FailureView<'_>) -> FailureChoice {
        FailureChoice::LeaveFailed
    }

    async fn customer_data(&mut self, req: &CustomerDataRequest<'_>) -> CustomerDataReply {
        if let Some(answer) = self.customer_data {
            say(&format!("\n{} {answer} (--customer-data)", req.question()));
            return CustomerDataReply {
                answer,
                note: None,
                via: "--customer-data".into(),
            };
        }
        // Nobody to ask: unknown, never "no".
        if self.yes || !self.interactive {
            let via = if self.yes { "--yes" } else { "no terminal" };
            say(&format!(
                "\n{} unknown ({via}; pass --customer-data yes|no|unknown to answer)",
                req.question()
            ));
            return CustomerDataReply::unknown(via);
        }
        let mut before = Some(format!("\n{}\n  {}", req.question(), req.scopes_note()));
        let answer = loop {
            match ask_after(before.take(), "Answer yes, no or unknown: ".into()).await {
                None => break CustomerDataAnswer::Unknown,
                Some(a) => match a.parse::<CustomerDataAnswer>() {
                    Ok(answer) => break answer,
                    Err(e) => before = Some(format!("  {e}")),
                },
            }
        };
        let note = ask("Note for the report (optional, Enter to skip): ".into())
            .await
            .filter(|n| !n.is_empty());
        CustomerDataReply {
            answer,
            note,
            via: "terminal".into(),
        }
    }
}
