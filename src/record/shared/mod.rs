//! The shared copy of incident records on object storage (DESIGN section 5, "Team scale").
//!
//! Layout under the location's prefix, every object created once and never replaced
//! (`PutMode::Create`, i.e. `If-None-Match: *` on S3 and Azure, `ifGenerationMatch=0` on GCS):
//!
//! ```text
//! incidents/<id>/entries/<seq, 8 digits>.json   one record line, byte for byte (with its newline)
//! incidents/<id>/heads/<seq, 8 digits>.json     the signed head at that line
//! incidents/<id>/lease/<epoch, 8 digits>.json   who may write the incident, until when
//! probes/<host>-<time>.json                     `keyfire records check`
//! ```
//!
//! Concatenating the entries in order gives the local `record.jsonl` exactly, and the newest
//! head is the local `head` file, so a shared record verifies with the same code as a local
//! one. Because nothing is ever overwritten, the layout works under S3 Object Lock in
//! compliance mode (and GCS bucket locks, Azure immutable storage): a create that finds the
//! object already there means another writer, and keyfire stops instead of replacing it.

pub mod adopt;
#[cfg(feature = "aws")]
mod awscred;
pub mod lease;
pub mod location;
pub mod upload;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

pub use lease::Lease;
pub use location::{Location, RecordsConfig};
pub use upload::{ShareStatus, Uploader};

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("records location {location}: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("shared records at {location}: cannot {op} {object}: {reason}")]
    Store {
        location: String,
        op: &'static str,
        object: String,
        reason: String,
    },
    #[error(
        "another keyfire process is writing incident {id}: line {seq} already exists in {location} with different content. This process stops here and overwrites nothing; see `keyfire incident show {id} --records {location}`"
    )]
    Conflict {
        id: String,
        seq: u64,
        location: String,
    },
    #[error("incident {id} in {location}: {reason}")]
    Damaged {
        id: String,
        location: String,
        reason: String,
    },
    #[error("no incident {id} in {location}")]
    NotFound { id: String, location: String },
    #[error(
        "incident {id} is being run by {holder} on {host} (its lease runs until {expires}); let it finish, or pass --take-over if that process is gone (the take-over is recorded)"
    )]
    LeaseHeld {
        id: String,
        holder: String,
        host: String,
        expires: String,
    },
    #[error(
        "incident {id} was taken over by {holder} on {host} while this process was running it: this process stops here and writes nothing more to the shared copy"
    )]
    LeaseLost {
        id: String,
        holder: String,
        host: String,
    },
    #[error("cannot start the runtime for the shared records: {0}")]
    Runtime(String),
}

/// One shared location, opened.
#[derive(Clone)]
pub struct SharedStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    pub(crate) s3: Option<Arc<object_store::aws::AmazonS3>>,
    pub location: Location,
    pub config: RecordsConfig,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("location", &self.location.display)
            .finish()
    }
}

/// How a create went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Written now.
    New,
    /// Already there with the same bytes (a retry after a crash or a lost answer).
    Same,
    /// Already there with other bytes: someone else wrote it.
    Different,
}

/// An incident's shared record, fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The record lines, concatenated (what `record.jsonl` holds).
    pub record: Vec<u8>,
    pub entries: u64,
    /// The newest signed head, if any was shared.
    pub head: Option<Vec<u8>>,
    pub head_seq: Option<u64>,
}

pub fn seq_name(seq: u64) -> String {
    format!("{seq:08}.json")
}

fn parse_seq(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Incident ids as keyfire makes them (`inc-…`, `drill-…`, `rot-…`): letters, digits, `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SharedStore {
    pub async fn open(location: Location, config: RecordsConfig) -> Result<Self, SharedError> {
        let opened = location.open().await?;
        Ok(Self {
            store: opened.store,
            prefix: opened.prefix,
            s3: opened.s3,
            location,
            config,
        })
    }

    pub fn display(&self) -> &str {
        &self.location.display
    }

    pub(crate) fn path(&self, parts: &[&str]) -> ObjectPath {
        let mut p = self.prefix.clone();
        for part in parts {
            p = p.clone().join(*part);
        }
        p
    }

    fn incident(&self, id: &str, sub: &str) -> ObjectPath {
        self.path(&["incidents", id, sub])
    }

    pub(crate) fn err(
        &self,
        op: &'static str,
        object: &ObjectPath,
        e: object_store::Error,
    ) -> SharedError {
        SharedError::Store {
            location: self.location.display.clone(),
            op,
            object: object.to_string(),
            reason: crate::secret::scrub_formats(&e.to_string()),
        }
    }

    /// Create `object` with `bytes` unless it exists; an existing object is compared.
    pub async fn create(
        &self,
        object: &ObjectPath,
        bytes: Vec<u8>,
    ) -> Result<Created, SharedError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let body = Bytes::from(bytes);
        let started = std::time::Instant::now();
        let put = self
            .store
            .put_opts(object, PutPayload::from_bytes(body.clone()), opts)
            .await;
        log_call("create", object, started, put.as_ref().err());
        match put {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let there = self.get(object).await?;
                Ok(if there.as_deref() == Some(&body[..]) {
                    Created::Same
                } else {
                    Created::Different
                })
            }
            Err(e) => Err(self.err("create", object, e)),
        }
    }

    /// An object's bytes, `None` when it is not there.
    pub async fn get(&self, object: &ObjectPath) -> Result<Option<Vec<u8>>, SharedError> {
        let started = std::time::Instant::now();
        let got = self.store.get(object).await;
        log_call("read", object, started, got.as_ref().err());
        match got {
            Ok(r) => match r.bytes().await {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(e) => Err(self.err("read", object, e)),
            },
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("read", object, e)),
        }
    }

    /// The sequence numbers under `dir` (`entries`, `heads` or `lease`), ascending.
    pub async fn list_seqs(&self, dir: &ObjectPath) -> Result<Vec<u64>, SharedError> {
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        let mut stream = self.store.list(Some(dir));
        while let Some(item) = stream.next().await {
            let meta = match item {
                Ok(meta) => meta,
                Err(e) => {
                    log_call("list", dir, started, Some(&e));
                    return Err(self.err("list", dir, e));
                }
            };
            if let Some(seq) = meta.location.filename().and_then(parse_seq) {
                out.push(seq);
            }
        }
        log_call("list", dir, started, None);
        out.sort_unstable();
        Ok(out)
    }

    pub fn entry_path(&self, id: &str, seq: u64) -> ObjectPath {
        self.incident(id, "entries").join(seq_name(seq))
    }

    pub fn head_path(&self, id: &str, seq: u64) -> ObjectPath {
        self.incident(id, "heads").join(seq_name(seq))
    }

    pub fn lease_dir(&self, id: &str) -> ObjectPath {
        self.incident(id, "lease")
    }

    /// The incidents in the store (their ids), sorted.
    pub async fn list_incidents(&self) -> Result<Vec<String>, SharedError> {
        let dir = self.path(&["incidents"]);
        let started = std::time::Instant::now();
        let listed = self.store.list_with_delimiter(Some(&dir)).await;
        log_call("list", &dir, started, listed.as_ref().err());
        let listed = listed.map_err(|e| self.err("list", &dir, e))?;
        let mut ids: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|id| valid_id(id))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Fetch an incident's shared record: every entry in order (a gap is damage) and the
    /// newest head.
    pub async fn fetch(&self, id: &str) -> Result<Fetched, SharedError> {
        let damaged = |reason: String| SharedError::Damaged {
            id: id.to_string(),
            location: self.location.display.clone(),
            reason,
        };
        let seqs = self.list_seqs(&self.incident(id, "entries")).await?;
        if seqs.is_empty() {
            return Err(SharedError::NotFound {
                id: id.to_string(),
                location: self.location.display.clone(),
            });
        }
        let mut record = Vec::new();
        for (i, seq) in seqs.iter().enumerate() {
            let want = i as u64 + 1;
            if *seq != want {
                return Err(damaged(format!(
                    "line {want} is missing from the shared copy (the next one there is {seq}): it was deleted"
                )));
            }
            let path = self.entry_path(id, *seq);
            let bytes = self
                .get(&path)
                .await?
                .ok_or_else(|| damaged(format!("line {seq} vanished while it was read")))?;
            if !bytes.ends_with(b"\n") || bytes[..bytes.len() - 1].contains(&b'\n') {
                return Err(damaged(format!("{path} is not one record line")));
            }
            record.extend_from_slice(&bytes);
        }
        let heads = self.list_seqs(&self.incident(id, "heads")).await?;
        let (head, head_seq) = match heads.last() {
            Some(seq) => (self.get(&self.head_path(id, *seq)).await?, Some(*seq)),
            None => (None, None),
        };
        Ok(Fetched {
            record,
            entries: seqs.len() as u64,
            head,
            head_seq,
        })
    }

    /// `keyfire records check`: whether the location refuses a second create and a delete.
    pub async fn check_retention(&self) -> Result<RetentionReport, SharedError> {
        let host = lease::host_name();
        let name = format!(
            "{}-{}-{}.json",
            host.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            std::process::id()
        );
        let probe = self.path(&["probes", &name]);
        let body = serde_json::json!({
            "probe": "keyfire records check",
            "host": host,
            "at": chrono::Utc::now().to_rfc3339(),
        })
        .to_string()
        .into_bytes();
        let put = self
            .store
            .put_opts(
                &probe,
                PutPayload::from(body.clone()),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err("create", &probe, e))?;
        let second = self.create(&probe, b"overwrite attempt".to_vec()).await?;
        let create_only = second == Created::Different;
        let still_same = self.get(&probe).await?.as_deref() == Some(&body[..]);
        let delete = upload::delete_version(self, &probe, put.version.as_deref()).await;
        let after = self.get(&probe).await?;
        Ok(RetentionReport {
            probe: probe.to_string(),
            create_only: create_only && still_same,
            delete_refused: delete.is_err() && after.is_some(),
            delete_error: delete.err(),
            versioned: put.version.is_some(),
        })
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }
}

/// What `records check` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetentionReport {
    pub probe: String,
    /// A second create of the probe was refused and the probe kept its bytes.
    pub create_only: bool,
    /// Deleting the probe (its version, where the store keeps versions) was refused.
    pub delete_refused: bool,
    pub delete_error: Option<String>,
    pub versioned: bool,
}

impl RetentionReport {
    pub fn enforced(&self) -> bool {
        self.create_only && self.delete_refused
    }
}

/// Run `fut` to completion from synchronous code, inside or outside a tokio runtime: on a
/// short-lived thread with its own runtime (the engine's callers may already be in one).
pub fn block_on<T, F>(fut: F) -> Result<T, SharedError>
where
    F: std::future::Future<Output = Result<T, SharedError>> + Send,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SharedError::Runtime(e.to_string()))?
                .block_on(fut)
        })
        .join()
    })
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The shared location an incident command works with, and how it takes the lease.
#[derive(Debug, Clone)]
pub struct Sharing {
    pub store: SharedStore,
    pub lease_ttl: std::time::Duration,
    /// `--take-over`: take a live lease (recorded in `incident_resumed`).
    pub take_over: bool,
}

impl Sharing {
    pub fn new(store: SharedStore) -> Self {
        let lease_ttl = store
            .config
            .lease_seconds
            .map_or(lease::DEFAULT_TTL, std::time::Duration::from_secs);
        Self {
            store,
            lease_ttl,
            take_over: false,
        }
    }

    /// The team's keys (`[records] public_keys`), which records fetched from the store may be
    /// signed with besides this machine's.
    pub fn team_keys(&self) -> Result<Vec<crate::record::PublicKey>, String> {
        match &self.store.config.public_keys {
            Some(p) => crate::record::signing::read_public_keys(p),
            None => Ok(Vec::new()),
        }
    }

    /// This machine's keys and the team's.
    pub fn trust(&self) -> Result<crate::record::VerifyOptions, String> {
        let mut opts = crate::record::VerifyOptions::local();
        for k in self.team_keys()? {
            if !opts.trusted.contains(&k) {
                opts.trusted.push(k);
            }
        }
        Ok(opts)
    }
}

/// One debug-log line per call to the shared location: the operation, the object (paths hold
/// incident ids and sequence numbers, nothing secret), the time, and how it ended. The error's
/// text is in the runbook's message, scrubbed; here only its kind.
fn log_call(
    op: &str,
    object: &ObjectPath,
    started: std::time::Instant,
    error: Option<&object_store::Error>,
) {
    let ms = started.elapsed().as_millis();
    let outcome = match error {
        None => "ok",
        Some(object_store::Error::AlreadyExists { .. }) => "already exists",
        Some(object_store::Error::NotFound { .. }) => "not found",
        Some(object_store::Error::Precondition { .. }) => "precondition failed",
        Some(object_store::Error::PermissionDenied { .. }) => "permission denied",
        Some(object_store::Error::Unauthenticated { .. }) => "unauthenticated",
        Some(_) => "failed",
    };
    tracing::debug!(target: "keyfire::shared", op, %object, ms, outcome, "call");
}
