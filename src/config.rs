//! The optional configuration file (`--config`, `KEYFIRE_CONFIG`, or `config.toml` in the
//! config directory): default inventory, runbook, data directory and shared records.

use std::path::PathBuf;

use serde::Deserialize;

use crate::paths::config_dir;

/// The optional configuration file (`--config`, `KEYFIRE_CONFIG`, or `config.toml` in the
/// config directory).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Inventory files or directories used when `--inventory` is not given.
    #[serde(default)]
    pub inventory: Vec<PathBuf>,
    /// A runbook file to use instead of the built-in one.
    pub runbook: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// The team's shared record location (`[records]`).
    #[serde(default)]
    pub records: Option<crate::record::shared::RecordsConfig>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

pub(crate) fn load_config(explicit: Option<PathBuf>) -> Result<Config, ConfigError> {
    let (path, required) = match explicit {
        Some(p) => (p, true),
        None => (config_dir().join("config.toml"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Config::default());
        }
        Err(source) => return Err(ConfigError::Io { path, source }),
    };
    let mut config: Config = toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| crate::textpos::LineIndex::new(&text).locate(&text, s.start))
            .unwrap_or((1, 1));
        ConfigError::Invalid {
            path: path.clone(),
            message: format!(
                "{line}:{col}: {}",
                crate::secret::scrub_formats(e.message().trim())
            ),
        }
    })?;
    // Relative paths in the config file are relative to the file.
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    for p in config
        .inventory
        .iter_mut()
        .chain(config.runbook.iter_mut())
        .chain(config.data_dir.iter_mut())
        .chain(
            config
                .records
                .iter_mut()
                .flat_map(|r| r.public_keys.iter_mut()),
        )
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(config)
}

/// The inventory paths to load: flags/env first, then the config file, then the default
/// `inventory.toml` or `inventory/` in the config directory.
pub(crate) fn inventory_paths(explicit: &[PathBuf], config: &Config) -> Option<Vec<PathBuf>> {
    if !explicit.is_empty() {
        return Some(explicit.to_vec());
    }
    if !config.inventory.is_empty() {
        return Some(config.inventory.clone());
    }
    let dir = config_dir();
    [dir.join("inventory.toml"), dir.join("inventory")]
        .into_iter()
        .find(|p| p.exists())
        .map(|p| vec![p])
}
