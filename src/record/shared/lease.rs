//! One writer per incident across machines: a lease made of create-only objects.
//!
//! `incidents/<id>/lease/<epoch>.json` holds the holder, its host and when the lease ends.
//! Renewing, handing over and releasing all create the next epoch, so the store's conditional
//! create decides every race (two machines after the same epoch: one create wins) and no lease
//! object is ever replaced, which keeps the layout valid under Object Lock. The current lease is
//! the highest epoch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Created, SharedError, SharedStore, seq_name};

pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    pub incident: String,
    pub epoch: u64,
    /// `user@host pid N` plus a random tag: unique per process.
    pub holder: String,
    pub host: String,
    pub expires: DateTime<Utc>,
    #[serde(default)]
    pub released: bool,
    /// The holder of the live lease this one took over (`--take-over`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<String>,
}

/// A lease this process holds.
#[derive(Debug, Clone)]
pub struct Lease {
    pub body: LeaseBody,
    pub ttl: Duration,
    /// The live lease that `--take-over` displaced, for the record.
    pub displaced: Option<LeaseBody>,
}

pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown-host".into())
}

fn holder_id() -> String {
    use ring::rand::SecureRandom;
    let mut tag = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut tag);
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    format!(
        "{user}@{} pid {} ({})",
        host_name(),
        std::process::id(),
        hex::encode(tag)
    )
}

fn ttl_chrono(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(300))
}

async fn latest(store: &SharedStore, id: &str) -> Result<Option<LeaseBody>, SharedError> {
    let dir = store.lease_dir(id);
    let Some(epoch) = store.list_seqs(&dir).await?.last().copied() else {
        return Ok(None);
    };
    let path = dir.join(seq_name(epoch));
    let bytes = store.get(&path).await?.unwrap_or_default();
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SharedError::Damaged {
            id: id.to_string(),
            location: store.display().to_string(),
            reason: format!("lease {path} is not a lease: {e}"),
        })
}

/// Create epoch `body.epoch`; `Ok(false)` when someone else created it first.
async fn create(store: &SharedStore, body: &LeaseBody) -> Result<bool, SharedError> {
    let path = store.lease_dir(&body.incident).join(seq_name(body.epoch));
    let bytes = serde_json::to_vec(body).map_err(|e| SharedError::Runtime(e.to_string()))?;
    Ok(store.create(&path, bytes).await? != Created::Different)
}

fn held(id: &str, b: &LeaseBody) -> SharedError {
    SharedError::LeaseHeld {
        id: id.to_string(),
        holder: b.holder.clone(),
        host: b.host.clone(),
        expires: b.expires.to_rfc3339(),
    }
}

impl Lease {
    /// Take the lease of `id`: the first one for a new incident, the next epoch after an
    /// expired or released one, or (with `take_over`) after a live one. A live lease is
    /// waited for until it ends; if its holder renews it meanwhile, it is alive and this
    /// fails with `LeaseHeld`.
    pub async fn acquire(
        store: &SharedStore,
        id: &str,
        ttl: Duration,
        take_over: bool,
    ) -> Result<Self, SharedError> {
        let holder = holder_id();
        let mut waited = false;
        loop {
            let current = latest(store, id).await?;
            let now = Utc::now();
            let live = current
                .as_ref()
                .filter(|c| !c.released && c.expires > now)
                .cloned();
            if let Some(c) = &live
                && !take_over
            {
                // Still live after waiting once for it to end: its holder renewed it, so it
                // is alive.
                if waited {
                    return Err(held(id, c));
                }
                waited = true;
                let left = (c.expires - now).to_std().unwrap_or_default();
                if left > ttl.max(DEFAULT_TTL) {
                    return Err(held(id, c));
                }
                tokio::time::sleep(left + Duration::from_millis(250)).await;
                continue;
            }
            let body = LeaseBody {
                incident: id.to_string(),
                epoch: current.as_ref().map_or(1, |c| c.epoch + 1),
                holder: holder.clone(),
                host: host_name(),
                expires: Utc::now() + ttl_chrono(ttl),
                released: false,
                took_over: live.as_ref().map(|l| l.holder.clone()),
            };
            if create(store, &body).await? {
                return Ok(Self {
                    body,
                    ttl,
                    displaced: live,
                });
            }
            // Another machine took this epoch first.
            if !take_over && let Some(c) = latest(store, id).await? {
                return Err(held(id, &c));
            }
        }
    }

    /// Extend the lease by creating the next epoch. Losing the race means someone took the
    /// incident over: `LeaseLost`.
    pub async fn renew(&mut self, store: &SharedStore, released: bool) -> Result<(), SharedError> {
        let mut next = self.body.clone();
        next.epoch += 1;
        next.released = released;
        next.took_over = None;
        next.expires = if released {
            Utc::now()
        } else {
            Utc::now() + ttl_chrono(self.ttl)
        };
        if create(store, &next).await? {
            self.body = next;
            return Ok(());
        }
        let by = latest(store, &self.body.incident).await?;
        Err(SharedError::LeaseLost {
            id: self.body.incident.clone(),
            holder: by.as_ref().map_or("?".into(), |b| b.holder.clone()),
            host: by.map_or("?".into(), |b| b.host),
        })
    }

    /// When to renew: a third of the way through.
    pub fn renew_every(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(200))
    }
}
