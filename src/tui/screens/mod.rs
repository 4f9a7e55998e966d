//! One component per screen: each owns its state, handles its keys (`update`, pure: it only
//! changes state and says what it wants from the app) and draws itself (`render`, reads only).

pub mod audit;
pub mod incident;
pub mod incidents;
pub mod inventory;
pub mod key;
pub mod leaks;

/// What a screen asks of the app after an action: the app owns the screen stack, the dialogs
/// and the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Show this key's screen (a finding's matched key in the Leaks view).
    OpenKey(String),
    /// Show the incident on the incident screen if it is the run on show, else its first key.
    OpenIncident { id: String, key: Option<String> },
    /// Resume this interrupted incident.
    Resume {
        id: String,
        keys: Vec<String>,
        drill: bool,
    },
    /// Tell the operator something in the footer.
    Notice(String),
}

/// Move a selection by `delta` within `len` rows.
pub(super) fn move_selection(delta: i64, len: usize, current: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (current as i64 + delta).clamp(0, len as i64 - 1) as usize
}
