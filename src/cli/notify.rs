//! `keyfire notify test [ID]`, and the notifiers wired around a headless incident.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{CliError, Context, Exit, runtime};
use crate::inventory::Inventory;
use crate::notify::{Delivery, Detail, Event, Notifier, options};
use crate::secret::Redactor;

pub(super) use crate::notify::drive_with_notifiers;

/// `keyfire notify test [ID]`: one test message to each notifier (or the one named), and
/// what each answered. Exit 0 when every one was delivered, 1 when any was not, 2 when there
/// is no such notifier.
pub(super) fn test(ctx: &Context, id: Option<String>) -> Exit {
    let inv = Arc::new(ctx.inventory()?);
    if inv.notifiers.is_empty() {
        return Err(CliError::input(
            "the inventory has no [[notifiers]]: see the README's notifier example",
        ));
    }
    if let Some(id) = &id
        && inv.notifier(id).is_none()
    {
        let known: Vec<&str> = inv.notifiers.iter().map(|n| n.id.as_str()).collect();
        return Err(CliError::input(format!(
            "unknown notifier `{id}`: expected one of {}",
            known.join(", ")
        )));
    }
    let rt = runtime()?;
    let deliveries = rt.block_on(async {
        let notifier = Notifier::start(inv.clone(), Redactor::new(), options(&inv), None)
            .map_err(|e| CliError::failed(e.to_string()))?;
        let now = ctx.clock.now();
        for def in inv
            .notifiers
            .iter()
            .filter(|n| id.as_ref().is_none_or(|i| *i == n.id))
        {
            let event = Event::new(
                Detail::Test {
                    notifier: def.id.clone(),
                },
                now,
            );
            notifier.notify_each(&event, Some(&def.id));
        }
        Ok::<_, CliError>(notifier.finish().await)
    })?;
    let mut out = String::new();
    for d in &deliveries {
        let _ = writeln!(out, "{}", d.line());
    }
    let failed = deliveries.iter().filter(|d| !d.delivered).count();
    let _ = writeln!(
        out,
        "{} of {} test messages delivered",
        deliveries.len() - failed,
        deliveries.len()
    );
    print!("{out}");
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Send events outside an incident (audit findings, overdue drills) and wait for the answers.
pub(super) fn send_all(inv: Arc<Inventory>, events: Vec<Event>) -> Result<Vec<Delivery>, CliError> {
    if inv.notifiers.is_empty() || events.is_empty() {
        return Ok(Vec::new());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let notifier = Notifier::start(inv.clone(), Redactor::new(), options(&inv), None)
            .map_err(|e| CliError::failed(e.to_string()))?;
        for e in events {
            notifier.notify(e);
        }
        Ok(notifier.finish().await)
    })
}
