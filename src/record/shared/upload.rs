//! Sharing a record while the incident runs, off its critical path.
//!
//! The local record stays the first copy: each entry is written and fsynced there before the
//! action it precedes, exactly as without a shared location. After a durable entry the writer
//! only signals this uploader (a condition variable, no I/O); a thread of its own then creates
//! every line up to it as `entries/<seq>.json`, in order, each with a create-only put, and the
//! signed head after them. What is not shared yet is the local record beyond the count kept in
//! `shared.json` in the incident folder: that is the queue. An unreachable store leaves it
//! there; the thread retries with backoff, and `incident resume` or `records flush` (any
//! machine with the folder) carries on from the same count, so order is kept.
//!
//! A create that finds a line already there with other bytes means another process is
//! writing this incident; so does losing the lease. Either stops the uploader for good and
//! the writer refuses further entries with that reason.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::lease::Lease;
use super::{Created, SharedError, SharedStore};
use crate::record::{HEAD_FILE, RECORD_FILE, files};

pub const QUEUE_FILE: &str = "shared.json";

/// The queue's state in the incident folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFile {
    pub location: String,
    /// Lines 1..=shared are in the store.
    pub shared: u64,
    /// The newest head in the store.
    pub head: u64,
}

impl QueueFile {
    pub fn read(dir: &Path, location: &str) -> Self {
        files::read(&dir.join(QUEUE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<QueueFile>(&b).ok())
            .filter(|q| q.location == location)
            .unwrap_or_else(|| QueueFile {
                location: location.to_string(),
                ..Default::default()
            })
    }

    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut body = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        body.push(b'\n');
        files::write_atomic(&dir.join(QUEUE_FILE), &body)
    }
}

/// How far the shared copy is.
#[derive(Debug, Clone, Serialize)]
pub struct ShareStatus {
    pub location: String,
    /// Lines in the store.
    pub shared: u64,
    /// Lines of the local record that are due to be shared.
    pub durable: u64,
    /// The last failure to reach the store, while lines are waiting.
    pub last_error: Option<String>,
    /// Why sharing stopped for good (another writer).
    pub stopped: Option<String>,
    /// Lines whose whole round is over: the line, the signed head after it and the queue
    /// file. Until then the upload thread may still be using the disk and a core, which is
    /// what a benchmark of the critical path waits out.
    #[serde(skip)]
    pub settled: u64,
}

impl ShareStatus {
    pub fn pending(&self) -> u64 {
        self.durable.saturating_sub(self.shared)
    }
}

/// How the lease starts.
pub enum LeaseStart {
    /// Take it from the uploader's thread: a new incident (the open never waits for the
    /// store), or a resume that found the store unreachable.
    Acquire(Duration),
    /// Taken before the writer reopened the record (`incident resume`).
    Held(Box<Lease>),
    /// No lease (`records flush` of a finished or foreign queue).
    None,
}

struct State {
    durable: u64,
    shared: u64,
    settled: u64,
    last_error: Option<String>,
    stopped: Option<String>,
    finish: bool,
    done: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

pub struct Uploader {
    state: Shared,
    location: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("location", &self.location)
            .finish()
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.0.lock().unwrap_or_else(|e| e.into_inner())
}

impl Uploader {
    /// Start sharing the record in `dir` (incident `id`); lines `1..=durable` are due now.
    pub fn start(
        store: SharedStore,
        id: &str,
        dir: &Path,
        durable: u64,
        lease: LeaseStart,
    ) -> Self {
        let queue = QueueFile::read(dir, store.display());
        let state: Shared = Arc::new((
            Mutex::new(State {
                durable,
                shared: queue.shared,
                settled: queue.shared,
                last_error: None,
                stopped: None,
                finish: false,
                done: false,
            }),
            Condvar::new(),
        ));
        let location = store.display().to_string();
        let worker = Worker {
            store,
            id: id.to_string(),
            dir: dir.to_path_buf(),
            queue,
            state: state.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("keyfire-share".into())
            .spawn(move || worker.run(lease))
            .ok();
        let up = Self {
            state,
            location,
            thread,
        };
        if up.thread.is_none() {
            lock(&up.state).last_error = Some("cannot start the upload thread".into());
        }
        up
    }

    /// Lines up to `seq` are durable: share them (returns at once).
    pub fn notify(&self, seq: u64) {
        let mut st = lock(&self.state);
        if seq > st.durable {
            st.durable = seq;
        }
        self.state.1.notify_all();
    }

    /// Why sharing stopped for good, if it did.
    pub fn stopped(&self) -> Option<String> {
        lock(&self.state).stopped.clone()
    }

    pub fn status(&self) -> ShareStatus {
        let st = lock(&self.state);
        ShareStatus {
            location: self.location.clone(),
            shared: st.shared,
            durable: st.durable,
            last_error: st.last_error.clone(),
            stopped: st.stopped.clone(),
            settled: st.settled,
        }
    }

    /// Wait until everything due is shared, or the store failed once more, or `within`
    /// passed; release the lease when everything is shared. What is left stays queued.
    pub fn finish(&mut self, within: Duration) -> ShareStatus {
        {
            let mut st = lock(&self.state);
            st.finish = true;
            self.state.1.notify_all();
            let deadline = Instant::now() + within;
            while !st.done {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = self
                    .state
                    .1
                    .wait_timeout(st, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        }
        let done = lock(&self.state).done;
        if done && let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.status()
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish(Duration::from_secs(20));
        }
    }
}

struct Worker {
    store: SharedStore,
    id: String,
    dir: PathBuf,
    queue: QueueFile,
    state: Shared,
}

enum Round {
    /// Everything due is shared.
    Clean,
    /// The store failed; try again later.
    Failed(String),
    /// Another writer: stop for good.
    Stop(String),
}

impl Worker {
    fn run(mut self, lease: LeaseStart) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let mut st = lock(&self.state);
                st.last_error = Some(format!("cannot start the upload runtime: {e}"));
                st.done = true;
                self.state.1.notify_all();
                return;
            }
        };
        let (mut lease, mut first_ttl) = match lease {
            LeaseStart::Acquire(ttl) => (None, Some(ttl)),
            LeaseStart::Held(l) => (Some(*l), None),
            LeaseStart::None => (None, None),
        };
        let mut backoff = Duration::from_millis(500);
        let mut retry_at = Instant::now();
        let mut next_renew = lease.as_ref().map(|l| Instant::now() + l.renew_every());
        let mut failed_since_finish = false;
        loop {
            // Wait for work: new lines, a retry, a renewal, or the end.
            let finishing;
            {
                let mut st = lock(&self.state);
                loop {
                    let now = Instant::now();
                    let due = st.durable > st.shared || first_ttl.is_some();
                    let renew = next_renew.is_some_and(|t| now >= t);
                    if st.finish && (!due || failed_since_finish) {
                        break;
                    }
                    if (due && now >= retry_at) || renew || (st.finish && due) {
                        break;
                    }
                    let mut until = if due {
                        retry_at
                    } else {
                        now + Duration::from_secs(3600)
                    };
                    if let Some(t) = next_renew {
                        until = until.min(t);
                    }
                    let wait = until
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(5));
                    st = self
                        .state
                        .1
                        .wait_timeout(st, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                finishing = st.finish;
                if finishing
                    && (st.durable <= st.shared && first_ttl.is_none() || failed_since_finish)
                {
                    drop(st);
                    // Everything shared (or the store still down): hand the incident back.
                    if let Some(l) = lease.as_mut()
                        && !failed_since_finish
                    {
                        let _ = rt.block_on(l.renew(&self.store, true));
                    }
                    let mut st = lock(&self.state);
                    st.done = true;
                    self.state.1.notify_all();
                    return;
                }
            }
            // The lease of a new incident comes first.
            if let Some(ttl) = first_ttl {
                match rt.block_on(Lease::acquire(&self.store, &self.id, ttl, false)) {
                    Ok(l) => {
                        next_renew = Some(Instant::now() + l.renew_every());
                        lease = Some(l);
                        first_ttl = None;
                    }
                    Err(e @ SharedError::LeaseHeld { .. }) => {
                        self.stop(e.to_string());
                        return;
                    }
                    Err(e) => {
                        self.failed(e.to_string(), &mut backoff, &mut retry_at);
                        failed_since_finish = finishing;
                        continue;
                    }
                }
            }
            match rt.block_on(self.round()) {
                Round::Clean => {
                    backoff = Duration::from_millis(500);
                    lock(&self.state).last_error = None;
                }
                Round::Failed(e) => {
                    self.failed(e, &mut backoff, &mut retry_at);
                    failed_since_finish = finishing;
                }
                Round::Stop(e) => {
                    self.stop(e);
                    return;
                }
            }
            if let (Some(l), Some(t)) = (lease.as_mut(), next_renew)
                && Instant::now() >= t
            {
                match rt.block_on(l.renew(&self.store, false)) {
                    Ok(()) => next_renew = Some(Instant::now() + l.renew_every()),
                    Err(e @ SharedError::LeaseLost { .. }) => {
                        self.stop(e.to_string());
                        return;
                    }
                    Err(e) => {
                        next_renew = Some(Instant::now() + backoff);
                        self.failed(e.to_string(), &mut backoff, &mut retry_at);
                    }
                }
            }
        }
    }

    fn failed(&self, e: String, backoff: &mut Duration, retry_at: &mut Instant) {
        lock(&self.state).last_error = Some(e);
        *retry_at = Instant::now() + *backoff;
        *backoff = (*backoff * 2).min(Duration::from_secs(30));
    }

    fn stop(&self, why: String) {
        let mut st = lock(&self.state);
        st.stopped = Some(why);
        st.done = true;
        self.state.1.notify_all();
    }

    /// Share every due line in order, then the newest head.
    async fn round(&mut self) -> Round {
        let due = lock(&self.state).durable;
        if due > self.queue.shared {
            let bytes = match files::read(&self.dir.join(RECORD_FILE)) {
                Ok(b) => b,
                Err(e) => return Round::Failed(format!("cannot read the local record: {e}")),
            };
            let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
            while self.queue.shared < due {
                let seq = self.queue.shared + 1;
                let Some(line) = lines.get(seq as usize - 1).filter(|l| l.ends_with(b"\n")) else {
                    return Round::Failed(format!("line {seq} is not in the local record yet"));
                };
                let path = self.store.entry_path(&self.id, seq);
                match self.store.create(&path, line.to_vec()).await {
                    Ok(Created::New | Created::Same) => {
                        self.queue.shared = seq;
                        lock(&self.state).shared = seq;
                    }
                    Ok(Created::Different) => {
                        let _ = self.queue.write(&self.dir);
                        return Round::Stop(
                            SharedError::Conflict {
                                id: self.id.clone(),
                                seq,
                                location: self.store.display().to_string(),
                            }
                            .to_string(),
                        );
                    }
                    Err(e) => {
                        let _ = self.queue.write(&self.dir);
                        return Round::Failed(e.to_string());
                    }
                }
            }
        }
        // The head only ever names a line that is shared by now.
        if let Ok(head) = files::read(&self.dir.join(HEAD_FILE))
            && let Ok(h) = serde_json::from_slice::<crate::record::Head>(&head)
            && h.seq > self.queue.head
            && h.seq <= self.queue.shared
        {
            let path = self.store.head_path(&self.id, h.seq);
            match self.store.create(&path, head).await {
                Ok(Created::New | Created::Same) => self.queue.head = h.seq,
                Ok(Created::Different) => {
                    return Round::Stop(
                        SharedError::Conflict {
                            id: self.id.clone(),
                            seq: h.seq,
                            location: self.store.display().to_string(),
                        }
                        .to_string(),
                    );
                }
                Err(e) => {
                    let _ = self.queue.write(&self.dir);
                    return Round::Failed(e.to_string());
                }
            }
        }
        if let Err(e) = self.queue.write(&self.dir) {
            return Round::Failed(format!("cannot write the upload queue: {e}"));
        }
        lock(&self.state).settled = self.queue.shared;
        Round::Clean
    }
}

/// Delete `object`, its version `version` where the store keeps versions (S3 with
/// versioning, which Object Lock requires): a plain DELETE there only adds a delete marker,
/// which proves nothing about retention. `Err` says why the store refused.
pub async fn delete_version(
    store: &SharedStore,
    object: &object_store::path::Path,
    version: Option<&str>,
) -> Result<(), String> {
    use object_store::ObjectStoreExt;
    if let (Some(v), Some(s3)) = (version, store.s3.as_ref()) {
        use object_store::signer::{SignedUrlOptions, Signer};
        let opts = SignedUrlOptions::default().with_query([("versionId", v)]);
        let url = s3
            .signed_url_opts(
                reqwest::Method::DELETE,
                object,
                Duration::from_secs(60),
                &opts,
            )
            .await
            .map_err(|e| e.to_string())?;
        let resp = reqwest::Client::new()
            .delete(url)
            .send()
            .await
            .map_err(|e| crate::secret::scrub_formats(&e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let code = body
            .split("<Code>")
            .nth(1)
            .and_then(|r| r.split("</Code>").next())
            .unwrap_or("");
        return Err(format!("HTTP {} {code}", status.as_u16())
            .trim()
            .to_string());
    }
    store
        .store()
        .delete(object)
        .await
        .map_err(|e| crate::secret::scrub_formats(&e.to_string()))
}
