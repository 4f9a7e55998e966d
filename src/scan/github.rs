//! `--github OWNER/REPO`: the repository's secret-scanning alerts, fetched from GitHub's REST
//! API through keyfire's shared HTTP layer (timeouts, retries on 429/5xx, redacted errors).
//!
//! | call | spec |
//! | --- | --- |
//! | `GET /repos/{owner}/{repo}/secret-scanning/alerts?per_page=100&page=N` | "List secret scanning alerts for a repository" (docs.github.com/rest/secret-scanning/secret-scanning; github/rest-api-description `secret-scanning/list-alerts-for-repo`): `per_page` at most 100, `page` from 1; answers a JSON array of `secret-scanning-alert` objects, 404 when secret scanning is off or the repository is not visible to the token, 503 when the service is unavailable |
//! | headers | `Accept: application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`, `Authorization: Bearer <token>` (a fine-grained token with "Secret scanning alerts" read, or a classic token with `repo` or `security_events`) |
//!
//! Pages are read until one holds fewer than 100 alerts. Each page is parsed by
//! [`super::reports`] as a GitHub alert array, so a fetched alert and one read from a file
//! are the same finding.

use zeroize::Zeroizing;

use super::{Found, ScanError};
use crate::http::Http;
use crate::plan::{RequestPlan, SecretBag, SecretRef};
use crate::secret::Secret;

pub const DEFAULT_API: &str = "https://api.github.com";
const PER_PAGE: usize = 100;
/// A bound on pages (10,000 alerts), so a misbehaving server cannot keep the scan going.
const MAX_PAGES: usize = 100;

/// `OWNER/REPO`, both non-empty and without further slashes.
pub fn parse_repo(text: &str) -> Option<(&str, &str)> {
    let (owner, repo) = text.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(repo)).then_some((owner, repo))
}

/// Fetch every alert of `owner/repo` and hand each to `on`. Returns how many were read.
pub async fn fetch_alerts(
    http: &Http,
    api: &str,
    owner_repo: &str,
    token: Secret,
    on: &(dyn Fn(Found<'_>) + Sync),
) -> Result<u64, ScanError> {
    let failed = |reason: String| ScanError::Github {
        repo: owner_repo.to_string(),
        reason,
    };
    let (owner, repo) =
        parse_repo(owner_repo).ok_or_else(|| ScanError::BadGithubRepo(owner_repo.to_string()))?;
    let bag = SecretBag {
        admin: Some(token),
        ..Default::default()
    };
    let label = std::path::PathBuf::from(format!("github:{owner}/{repo}"));
    let mut total = 0u64;
    for page in 1..=MAX_PAGES {
        let url = format!(
            "{}/repos/{owner}/{repo}/secret-scanning/alerts?per_page={PER_PAGE}&page={page}",
            api.trim_end_matches('/')
        );
        let plan = RequestPlan::read(
            format!("List secret scanning alerts of {owner}/{repo} (page {page})"),
            "GET",
            url,
        )
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .secret_header("Authorization", "Bearer ", SecretRef::AdminCredential);
        let resp = http
            .send(&plan, &bag)
            .await
            .map_err(|e| failed(http.redactor().scrub(&e.to_string())))?;
        let text = Zeroizing::new(
            String::from_utf8(resp.body.to_vec())
                .map_err(|_| failed("the answer is not UTF-8".into()))?,
        );
        let count = super::reports::parse_github_page(&label, &text, on)?;
        total += count;
        if (count as usize) < PER_PAGE {
            return Ok(total);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_repo_are_checked() {
        assert_eq!(parse_repo("octo/fleet"), Some(("octo", "fleet")));
        assert_eq!(parse_repo("octo/fleet.git"), Some(("octo", "fleet.git")));
        assert_eq!(parse_repo("octo"), None);
        assert_eq!(parse_repo("octo/"), None);
        assert_eq!(parse_repo("a/b/c"), None);
        assert_eq!(parse_repo("a/b?x=1"), None);
    }
}
