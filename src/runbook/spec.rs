//! Runbook files (`runbooks/*.toml`): titles, checklists, actions and per-provider notes,
//! validated at load so that a mistyped action fails before any call is made.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::action::{Action, StepId};
use crate::inventory::{Problem, ProviderKind};
use crate::textpos::LineIndex;

/// The default runbook, built into the binary.
pub const DEFAULT_RUNBOOK: &str = include_str!("../../runbooks/key-compromise.toml");
pub const DEFAULT_RUNBOOK_NAME: &str = "runbooks/key-compromise.toml (built in)";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunbookSpec {
    schema: Spanned<i64>,
    name: String,
    title: String,
    description: Option<String>,
    steps: Spanned<Vec<Spanned<StepSpec>>>,
    #[serde(default)]
    notes: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    id: Spanned<String>,
    title: String,
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    checklist: Vec<String>,
}

/// One step of a runbook.
#[derive(Debug, Clone)]
pub struct StepDef {
    /// Which of the fixed steps this is.
    pub id: StepId,
    /// The step's title as the runbook words it.
    pub title: String,
    /// The actions run in this step, in order.
    pub actions: Vec<Action>,
    /// Things the operator checks by hand, shown with the step.
    pub checklist: Vec<String>,
}

/// The steps an incident follows: the built-in key-compromise runbook or a team's own file.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// Short name, recorded in every incident that follows it.
    pub name: String,
    /// Title shown to the operator.
    pub title: String,
    /// What the runbook is for, when it says.
    pub description: Option<String>,
    /// Where it was read from (a path, or the built-in's name).
    pub source: String,
    /// The steps, in the order they run.
    pub steps: Vec<StepDef>,
    notes: HashMap<(ProviderKind, StepId), String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error("cannot read runbook {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}\nrunbook invalid", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl Runbook {
    /// The key-compromise runbook keyfire ships with.
    pub fn builtin() -> Result<Self, RunbookError> {
        parse(Path::new(DEFAULT_RUNBOOK_NAME), DEFAULT_RUNBOOK)
    }

    /// Read and check a runbook file; every problem is reported with its line.
    pub fn load(path: &Path) -> Result<Self, RunbookError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunbookError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        parse(path, &text)
    }

    /// The step with this id, if the runbook has it.
    pub fn step(&self, id: StepId) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The runbook's note for this provider kind at this step, if it has one.
    pub fn note(&self, kind: ProviderKind, step: StepId) -> Option<&str> {
        self.notes.get(&(kind, step)).map(String::as_str)
    }
}

pub fn parse(path: &Path, text: &str) -> Result<Runbook, RunbookError> {
    let lines = LineIndex::new(text);
    let mut problems = Vec::new();
    let mut at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = lines.locate(text, span.start);
        problems.push(Problem {
            path: path.to_path_buf(),
            line,
            column,
            message,
        });
    };
    let spec: RunbookSpec = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            at(
                e.span().unwrap_or(0..0),
                crate::secret::scrub_formats(e.message().trim()),
            );
            return Err(RunbookError::Invalid(problems));
        }
    };
    if *spec.schema.get_ref() != 1 {
        at(
            spec.schema.span(),
            format!(
                "unsupported runbook schema {}: expected 1",
                spec.schema.get_ref()
            ),
        );
    }
    let steps_span = spec.steps.span();
    let raw_steps = spec.steps.into_inner();
    if raw_steps.len() != StepId::RUNBOOK.len() {
        at(
            steps_span.clone(),
            format!(
                "a runbook has exactly five steps (revoke, redeploy, audit, report, reschedule), found {}",
                raw_steps.len()
            ),
        );
    }
    let mut steps = Vec::new();
    for (i, s) in raw_steps.into_iter().enumerate() {
        let s = s.into_inner();
        let expected = StepId::RUNBOOK.get(i).copied();
        let id = StepId::parse(s.id.get_ref()).filter(|id| *id != StepId::Open);
        match (id, expected) {
            (Some(id), Some(exp)) if id == exp => {}
            (_, Some(exp)) => {
                at(
                    s.id.span(),
                    format!("step {} must be `{exp}`, found `{}`", i + 1, s.id.get_ref()),
                );
                continue;
            }
            (_, None) => continue,
        }
        let Some(step) = id else { continue };
        let mut actions: Vec<Action> = Vec::new();
        for a in &s.actions {
            match Action::parse(a.get_ref()) {
                Some(action) if action.step() == step => {
                    if actions.contains(&action) {
                        at(a.span(), format!("action `{action}` is listed twice"));
                    } else if actions
                        .last()
                        .is_some_and(|prev| prev.rank() > action.rank())
                    {
                        at(
                            a.span(),
                            format!(
                                "action `{action}` is out of order: keep the order {}",
                                names(step)
                            ),
                        );
                    } else {
                        actions.push(action);
                    }
                }
                Some(action) => at(
                    a.span(),
                    format!(
                        "action `{action}` belongs to step `{}`, not `{step}`",
                        action.step()
                    ),
                ),
                None => at(
                    a.span(),
                    format!(
                        "unknown action `{}` in step `{step}`: expected one of {}",
                        a.get_ref(),
                        names(step)
                    ),
                ),
            }
        }
        for required in Action::of_step(step).filter(|a| a.required()) {
            if !actions.contains(&required) {
                at(
                    s.id.span(),
                    format!("step `{step}` must include the action `{required}`"),
                );
            }
        }
        steps.push(StepDef {
            id: step,
            title: s.title,
            actions,
            checklist: s.checklist,
        });
    }
    let mut notes = HashMap::new();
    for (kind, per_step) in spec.notes {
        let Some(k) = ProviderKind::parse(kind.get_ref()) else {
            at(
                kind.span(),
                format!(
                    "notes for unknown provider kind `{}`: expected one of {}",
                    kind.get_ref(),
                    ProviderKind::names()
                ),
            );
            continue;
        };
        for (step, note) in per_step {
            match StepId::parse(step.get_ref()).filter(|s| *s != StepId::Open) {
                Some(s) => {
                    notes.insert((k, s), note);
                }
                None => at(
                    step.span(),
                    format!("note for unknown step `{}`", step.get_ref()),
                ),
            }
        }
    }
    if !problems.is_empty() {
        return Err(RunbookError::Invalid(problems));
    }
    Ok(Runbook {
        name: spec.name,
        title: spec.title,
        description: spec.description,
        source: path.display().to_string(),
        steps,
        notes,
    })
}

fn names(step: StepId) -> String {
    Action::of_step(step)
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_runbook_is_valid() {
        let rb = Runbook::builtin().unwrap();
        assert_eq!(rb.steps.len(), 5);
        assert_eq!(
            rb.steps[0].actions,
            vec![Action::Disable, Action::Revoke, Action::ProveRevoked]
        );
        assert!(rb.note(ProviderKind::Manual, StepId::Revoke).is_some());
    }

    #[test]
    fn unknown_action_is_reported_with_position() {
        let text = DEFAULT_RUNBOOK.replace("\"prove_revoked\"", "\"prove_dead\"");
        let err = parse(Path::new("rb.toml"), &text).unwrap_err().to_string();
        assert!(
            err.contains("unknown action `prove_dead` in step `revoke`"),
            "{err}"
        );
        assert!(err.starts_with("rb.toml:"), "{err}");
    }

    #[test]
    fn missing_required_action_is_reported() {
        let text = DEFAULT_RUNBOOK.replace("actions = [\"write_report\"]", "actions = []");
        let err = parse(Path::new("rb.toml"), &text).unwrap_err().to_string();
        assert!(
            err.contains("must include the action `write_report`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_step_order_is_reported() {
        let text = DEFAULT_RUNBOOK.replacen("id = \"revoke\"", "id = \"audit\"", 1);
        let err = parse(Path::new("rb.toml"), &text).unwrap_err().to_string();
        assert!(err.contains("step 1 must be `revoke`"), "{err}");
    }
}
