//! Where keyfire keeps things: data (incident records) and configuration (inventory, config).
//! `KEYFIRE_DATA_DIR`, `KEYFIRE_INVENTORY` and `KEYFIRE_CONFIG` override the platform defaults.

use std::path::PathBuf;

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "keyfire", "keyfire")
}

/// The data directory: `--data-dir`, else `KEYFIRE_DATA_DIR` (handled by clap), else the
/// platform's data directory.
pub(crate) fn data_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| project_dirs().map(|d| d.data_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(".keyfire"))
}

/// Where incident records live: one folder per incident under the data directory.
pub fn incidents_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("incidents")
}

pub(crate) fn config_dir() -> PathBuf {
    project_dirs()
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".keyfire"))
}
