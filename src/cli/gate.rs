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

async fn ask(prompt: String) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let mut err = std::io::stderr();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_string()),
        }
    })
    .await
    .ok()
    .flatten()
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
        eprintln!(
            "\n{} / {} / {}: {}\n{}",
            req.key,
            req.step,
            req.action,
            req.plan.summary,
            req.plan.render()
        );
        let answer = match req.confirm_text {
            Some(expected) => ask(format!(
                "This cannot be undone. Type `{expected}` to confirm: "
            ))
            .await
            .map(|a| a == expected),
            None => ask("Send this request? [y/N] ".into())
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
        eprintln!("\n{} / {} / {}: manual step", req.key, req.step, req.action);
        for line in req.instructions.iter().filter(|l| !l.is_empty()) {
            eprintln!("  - {line}");
        }
        if self.yes {
            eprintln!("  (confirmed by --yes)");
            return Decision::Approve {
                via: "--yes".into(),
            };
        }
        if !self.interactive {
            return Decision::Decline {
                via: "no terminal (pass --yes)".into(),
            };
        }
        match ask("Type `done` when finished (anything else stops the incident): ".into())
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
        eprintln!("\n{}: paste the replacement key", req.key);
        for line in req.instructions.iter().filter(|l| !l.is_empty()) {
            eprintln!("  - {line}");
        }
        let interactive = self.interactive;
        tokio::task::spawn_blocking(move || {
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
        })
        .await
        .ok()
        .flatten()
    }

    async fn on_failure(&mut self, _failure: &FailureView<'_>) -> FailureChoice {
        FailureChoice::LeaveFailed
    }

    async fn customer_data(&mut self, req: &CustomerDataRequest<'_>) -> CustomerDataReply {
        if let Some(answer) = self.customer_data {
            eprintln!("\n{} {answer} (--customer-data)", req.question());
            return CustomerDataReply {
                answer,
                note: None,
                via: "--customer-data".into(),
            };
        }
        // Nobody to ask: unknown, never "no".
        if self.yes || !self.interactive {
            let via = if self.yes { "--yes" } else { "no terminal" };
            eprintln!(
                "\n{} unknown ({via}; pass --customer-data yes|no|unknown to answer)",
                req.question()
            );
            return CustomerDataReply::unknown(via);
        }
        eprintln!("\n{}\n  {}", req.question(), req.scopes_note());
        let answer = loop {
            match ask("Answer yes, no or unknown: ".into()).await {
                None => break CustomerDataAnswer::Unknown,
                Some(a) => match a.parse::<CustomerDataAnswer>() {
                    Ok(answer) => break answer,
                    Err(e) => eprintln!("  {e}"),
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
