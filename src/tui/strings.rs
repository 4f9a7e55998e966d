//! User-visible text of the console, so wording is reviewed in one file.

pub const APP: &str = "keyfire";
pub const DRY_RUN_BANNER: &str = " DRY RUN: reads are real, writes are shown and never sent ";
pub const TRAINING_BANNER: &str = " TRAINING ENVIRONMENT: loopback services, throw-away data ";
pub const NO_KEYS: &str = "No keys in the inventory. Add [[keys]] entries to your inventory file.";
pub const NO_MATCH: &str = "No key matches the filter.";
pub const NO_INCIDENTS: &str = "No incidents or drills yet.";
pub const HELP_TITLE: &str = " Keys (? or Esc to close) ";
pub const TYPE_TO_CONFIRM: &str =
    "This cannot be undone. Type the text in brackets, then Enter (Esc declines):";
pub const APPROVE_HINT: &str = "y send · n decline (stops the incident, resumable)";
pub const MANUAL_HINT: &str =
    "Do this in the provider's console, then type `done` and Enter. Esc declines.";
pub const PASTE_HINT: &str = "Paste the replacement key (hidden), then Enter. Esc declines.";
pub const FAILED_HINT: &str = "r retry · s skip (with a reason) · l leave failed · a abort";
pub const SKIP_REASON: &str = "Why skip this action? (recorded) then Enter:";
pub const ABORT_CONFIRM: &str =
    "Abort the incident after the current call? It stays resumable. y abort · n continue";
pub const QUIT_CONFIRM: &str = "Quit? The incident stops after the current call and stays resumable (`keyfire incident resume`). y quit · n continue";
pub const START_TITLE: &str = " Start ";
pub const NO_SCAN: &str = " No scan yet. Run `keyfire scan PATH... --git` (or `--report FILE` for a gitleaks, TruffleHog or GitHub secret-scanning report): its findings show here, and you can start the incident from them.";
pub const LEAKS_HINT: &str = "space mark · a mark every live key · i incident · d drill on the marked (or this) finding · Enter key";
pub const LEAKS_NONE_LIVE: &str = "the last scan found no live inventory key";
pub const CUSTOMER_DATA_HINT: &str = "y yes · n no · u unknown (the report states the answer)";
pub const CUSTOMER_DATA_NOTE: &str =
    "Note for the report (optional, recorded), then Enter. Esc changes the answer:";
pub const START_HINT: &str = "y start · Tab fields · z change order · n/Esc cancel";
pub const START_FIELD_HINT: &str = "Enter start · Tab/Shift-Tab next/previous field · Esc back";
