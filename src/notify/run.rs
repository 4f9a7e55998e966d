//! Running an incident with its notifiers around it (the headless CLI and the console).

use std::sync::Arc;
use std::time::Duration;

use super::{Delivery, Notifier, NotifyGate, NotifySink, Options, Recorder};
use crate::inventory::Inventory;
use crate::runbook::{Engine, EngineError, Gate, Outcome, Sink, drive};

/// The notifier options the inventory's policy sets.
pub fn options(inv: &Inventory) -> Options {
    Options {
        send_timeout: Duration::from_secs(u64::from(inv.policy.notify_timeout_seconds)),
        ..Options::default()
    }
}

/// Drive an incident with its notifications: events are queued as the record grows and sent
/// in the background; at the end keyfire waits at most one send timeout for the rest.
pub async fn drive_with_notifiers<G: Gate, S: Sink>(
    engine: &mut Engine,
    gate: &mut G,
    mut sink: S,
    notify: bool,
) -> Result<(Outcome, Vec<Delivery>), EngineError> {
    let inv = engine.inventory();
    if !notify || inv.notifiers.is_empty() {
        let outcome = drive(engine, gate, &mut sink).await?;
        return Ok((outcome, Vec::new()));
    }
    let recorder: Arc<dyn Recorder> = Arc::new(engine.appender());
    let notifier = Notifier::start(
        inv.clone(),
        engine.http().redactor().clone(),
        options(&inv),
        Some(recorder),
    )?;
    let mut sink = NotifySink::new(sink, notifier.clone(), inv.clone(), &engine.record_dir());
    let rotation =
        crate::record::read_entries(&engine.record_dir().join(crate::record::RECORD_FILE))
            .ok()
            .and_then(|e| crate::record::IncidentState::fold(&e))
            .is_some_and(|s| s.purpose == "rotation");
    let mut gate =
        NotifyGate::new(gate, notifier.clone(), inv, engine.dry_run()).for_rotation(rotation);
    let outcome = drive(engine, &mut gate, &mut sink).await;
    let deliveries = notifier.finish().await;
    Ok((outcome?, deliveries))
}
