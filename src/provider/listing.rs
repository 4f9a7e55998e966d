//! Listing every key a provider holds, for `inventory discover` and `lint --online`.
//!
//! A provider kind plugs in by implementing one read, [`ListKeys`], and adding one arm to
//! [`super::AnyProvider::list_keys`]: a plan describing the first call (shown to the operator
//! and checked by the drill guard) and the listing itself. Only read plans exist here; the
//! dispatcher refuses anything else before a byte is sent.
//!
//! Paging: lists whose next cursor comes from the previous answer (`after=<last id>`,
//! `Marker`) are read one page after another ([`follow_cursor`]); lists whose pages are known
//! in advance once the first answer gives their count (page numbers, offsets) are read
//! concurrently ([`indexed_pages`]). Independent lists (projects, users) are read at once by
//! the providers, bounded by [`LIST_CONCURRENCY`].

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{KeyState, ProviderError};
use crate::http::Http;
use crate::plan::{RequestPlan, SecretBag};

/// Independent reads in flight at once per provider (projects, users, page numbers).
pub const LIST_CONCURRENCY: usize = 8;
/// A list that keeps saying there is more past this many pages is not a list keyfire trusts.
pub const MAX_LIST_PAGES: u32 = 10_000;

/// One key as the provider lists it: metadata only (the APIs never return a value here).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ListedKey {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the provider shows of the value (`sk-proj-ab...wxyz`), or the id's ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub state: KeyState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Who owns the key, where the API says (a user's e-mail, a service account, an IAM user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where the key lives inside the provider (an OpenAI project, an Anthropic workspace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// What the key may do, as the provider reports it; `None`: the API does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// Everything one provider listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyListing {
    pub keys: Vec<ListedKey>,
    /// Calls made (pages and per-key reads).
    pub calls: u32,
    /// Whether the provider's API reports scopes at all (when not, scopes are not compared).
    pub reports_scopes: bool,
    /// What was listed, in the operator's words ("project proj_abc", "every IAM user").
    pub scope: String,
    /// Facts the operator should know (a key whose last use could not be read, ...).
    pub notes: Vec<String>,
}

/// The one read a provider implements to take part in discovery.
pub trait ListKeys {
    /// The first call of the listing, as a plan (never a write).
    fn list_plan(&self) -> Result<RequestPlan, ProviderError>;

    /// Every key, read to the last page.
    fn list_keys(
        &self,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> impl Future<Output = Result<KeyListing, ProviderError>> + Send;
}

/// One page of a list paginated by `after=<last id>` / `has_more` (OpenAI's and Anthropic's
/// list objects share this shape).
#[derive(serde::Deserialize)]
pub(crate) struct CursorPage<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub last_id: Option<String>,
}

/// Read a cursor-paginated list to its end: the next page's URL comes from the previous
/// page's `last_id`, so pages are read one after another.
pub(crate) async fn follow_cursor<T: serde::de::DeserializeOwned>(
    http: &Http,
    secrets: &SecretBag,
    first: &RequestPlan,
    next_url: impl Fn(&str) -> String,
) -> Result<(Vec<T>, u32), ProviderError> {
    let mut page = first.clone();
    let mut out = Vec::new();
    for pages in 1..=MAX_LIST_PAGES {
        let p: CursorPage<T> = http.send(&page, secrets).await?.json()?;
        out.extend(p.data);
        match (p.has_more, p.last_id) {
            (true, Some(last)) => page.url = next_url(&last),
            (true, None) => {
                return Err(ProviderError::Malformed(
                    "a list page says has_more but has no last_id".into(),
                ));
            }
            (false, _) => return Ok((out, pages)),
        }
    }
    Err(ProviderError::Malformed(format!(
        "a key list did not end after {MAX_LIST_PAGES} pages"
    )))
}

/// Read pages `2..=total` of a list whose pages are addressed by number (or offset), at most
/// `concurrency` at once, after the caller has read page 1 and learned `total` from it.
/// Results come back in page order.
pub async fn indexed_pages<T, F, Fut>(
    total: u32,
    concurrency: usize,
    fetch: F,
) -> Result<Vec<T>, ProviderError>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    if total > MAX_LIST_PAGES {
        return Err(ProviderError::Malformed(format!(
            "a list claims {total} pages, more than the {MAX_LIST_PAGES} keyfire reads"
        )));
    }
    let gate = tokio::sync::Semaphore::new(concurrency.max(1));
    let reads = (2..=total).map(|n| {
        let gate = &gate;
        let fetch = &fetch;
        async move {
            let _slot = gate
                .acquire()
                .await
                .map_err(|e| ProviderError::Malformed(e.to_string()))?;
            fetch(n).await
        }
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .collect()
}

/// Run independent reads (one per project, user, ...) at most `concurrency` at once.
pub(crate) async fn bounded<T, Fut>(
    concurrency: usize,
    reads: impl IntoIterator<Item = Fut>,
) -> Vec<T>
where
    Fut: Future<Output = T>,
{
    let gate = tokio::sync::Semaphore::new(concurrency.max(1));
    let reads = reads.into_iter().map(|read| {
        let gate = &gate;
        async move {
            // A closed semaphore cannot happen here (it is never closed); run regardless.
            let _slot = gate.acquire().await.ok();
            read.await
        }
    });
    futures_util::future::join_all(reads).await
}

/// Inside `impl Provider for X` of a backend that implements [`ListKeys`]: declares that it
/// lists keys and hands both listing calls to that trait, so the forwarding is written once.
macro_rules! lists_keys {
    () => {
        const LISTS_KEYS: bool = true;

        fn list_plan(&self) -> Result<$crate::plan::RequestPlan, $crate::provider::ProviderError> {
            $crate::provider::ListKeys::list_plan(self)
        }

        async fn list_keys(
            &self,
            plan: &$crate::plan::RequestPlan,
            http: &$crate::http::Http,
            secrets: &$crate::plan::SecretBag,
        ) -> Result<$crate::provider::KeyListing, $crate::provider::ProviderError> {
            $crate::provider::ListKeys::list_keys(self, plan, http, secrets).await
        }
    };
}
pub(crate) use lists_keys;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn indexed_pages_are_read_concurrently_within_the_bound_and_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let now = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let pages = rt
            .block_on(indexed_pages(20, 4, |n| {
                let (now, most) = (&now, &most);
                async move {
                    let at = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(at, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, ProviderError>(n)
                }
            }))
            .unwrap();
        assert_eq!(pages, (2..=20).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 4);
        let too_many = rt.block_on(indexed_pages(MAX_LIST_PAGES + 1, 4, |n| async move {
            Ok::<_, ProviderError>(n)
        }));
        assert!(matches!(too_many, Err(ProviderError::Malformed(_))));
    }
}
