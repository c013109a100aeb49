//! A tag for a digest-only watch-list entry (issue 18). An entry pinned by digest alone
//! (`image@sha256:...`, as Helm charts write them) cannot be warmed by pulling it: a first pull
//! by digest is reported not to populate the cache (see `PTC-FACTS.md`, "What a pull does").
//! So the upstream is asked which of its tags has that digest, and the entry is warmed by that
//! tag, then checked against the digest.
//!
//! How, without spending the upstream's pull quota: the tags are listed
//! ([`RegistryClient::list_tags`], bounded), put in a likely newest-first order
//! ([`newest_first`]), and each candidate's manifest is HEADed until one's
//! `Docker-Content-Digest` is the digest. Docker Hub counts manifest GETs as pulls, not HEADs
//! (<https://docs.docker.com/docker-hub/usage/pulls/>, and `PTC-FACTS.md`, "Limits"); a tags list
//! is no manifest GET either. Everything is bounded ([`ResolveLimits`]).
//!
//! What it cannot find: a digest that is a platform manifest inside an index (a HEAD of a tag
//! gives the index's digest; finding the child would need the index's body, a pull), and a
//! tag outside the listed or HEADed bounds.

use ptc_core::Digest;
use ptc_core::oci::{RegistryClient, RegistryError, TagListLimits};

/// Most candidate tags HEADed for one digest: 50. Each HEAD is a request to the upstream
/// (not a Docker Hub pull, but still counted by other registries' request limits); a digest
/// pinned by a chart is usually one of a repository's recent tags, which come first.
pub const MAX_DIGEST_HEADS: usize = 50;

/// The bounds of [`tag_for_digest`]. `Default`: [`TagListLimits::default`] (pages of 1000, at
/// most 10 pages and 10,000 tags) and [`MAX_DIGEST_HEADS`] HEADs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveLimits {
    /// Bounds of the tags listing.
    pub tags: TagListLimits,
    /// Most manifest HEADs.
    pub max_heads: usize,
}

impl Default for ResolveLimits {
    fn default() -> Self {
        Self {
            tags: TagListLimits::default(),
            max_heads: MAX_DIGEST_HEADS,
        }
    }
}

/// What a search for a digest's tag found, and what it looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSearch {
    /// The first candidate (in [`newest_first`] order) whose manifest has the digest.
    pub tag: Option<String>,
    /// Tags listed (valid, without duplicates).
    pub listed: usize,
    /// Whether the listing reached its end (no bound, no refused next link, stopped it).
    pub complete: bool,
    /// Manifest HEADs made.
    pub heads: usize,
    /// Tags-list pages requested.
    pub pages: usize,
}

impl TagSearch {
    /// Why no tag was found, for the entry's failure reason, e.g. `no tag of the upstream has
    /// digest sha256:...: 50 of 1200 listed tags checked (newest first), the list cut at
    /// 10,000`. `None` when a tag was found.
    pub fn not_found_reason(&self, digest: &Digest) -> Option<String> {
        if self.tag.is_some() {
            return None;
        }
        Some(format!(
            "no tag of the upstream was found with digest {digest} (a first pull by digest does not populate the cache): {} of {} listed tags checked, newest first{}",
            self.heads,
            self.listed,
            if self.complete {
                ""
            } else {
                "; the tags list was cut at its bounds"
            }
        ))
    }
}

/// The tag of `repository` on `upstream` whose manifest digest is `digest`, looked for within
/// `limits` (see the module documentation).
///
/// `Ok` with [`TagSearch::tag`] `None` when no candidate within the bounds has the digest
/// (the caller fails the entry with [`TagSearch::not_found_reason`]). `Err` when the tags
/// cannot be listed, or a HEAD fails for another reason than 404 (a tag deleted since the
/// listing is skipped): a rate limit ([`RegistryError::RateLimited`], or a 503 asking to wait)
/// stops the search at once with that error, so the caller can defer the entry; so does any
/// other failure that the client's retries did not cure. A HEAD answer without a
/// `Docker-Content-Digest` cannot match and counts as checked.
pub async fn tag_for_digest(
    upstream: &RegistryClient,
    repository: &str,
    digest: &Digest,
    limits: ResolveLimits,
) -> Result<TagSearch, RegistryError> {
    let list = upstream.list_tags(repository, limits.tags).await?;
    let mut search = TagSearch {
        tag: None,
        listed: list.tags.len(),
        complete: list.complete,
        heads: 0,
        pages: list.pages,
    };
    for tag in newest_first(list.tags).into_iter().take(limits.max_heads) {
        search.heads += 1;
        match upstream.head_manifest(repository, &tag).await {
            Ok(head) if head.digest.as_ref() == Some(digest) => {
                search.tag = Some(tag);
                return Ok(search);
            }
            Ok(_) | Err(RegistryError::NotFound { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(search)
}

/// Tags in a likely newest-first order, without pulling anything (a tags list has no dates):
/// version-like tags first, in descending version order, then the others in reverse lexical
/// order (which puts date-stamped and numbered names, e.g. `nightly-20261130`, newest first).
///
/// Version-like: an optional `v`, then dot-separated numbers (`1`, `1.25`, `v2.3.4`,
/// `20261130`), then any suffix (`1.25.3-alpine`, `2.0.0rc1`). Compared number by number
/// (`1.10` after `1.9`, `1.25.3` before `1.25`); for equal numbers, the tag without a suffix
/// first (a release before its pre-releases and variants), then suffixes in reverse lexical
/// order. `latest` is one of the others: a chart's pinned digest is usually a version's, and
/// a version tag moves less.
pub fn newest_first(tags: Vec<String>) -> Vec<String> {
    let (mut versions, mut others): (Vec<_>, Vec<_>) = tags
        .into_iter()
        .map(|t| (version(&t), t))
        .partition(|(v, _)| v.is_some());
    versions.sort_by(|(a, ta), (b, tb)| {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        b.0.cmp(&a.0)
            .then_with(|| a.1.is_empty().cmp(&b.1.is_empty()).reverse())
            .then_with(|| b.1.cmp(&a.1))
            .then_with(|| tb.cmp(ta))
    });
    others.sort_by(|(_, a), (_, b)| b.cmp(a));
    versions
        .into_iter()
        .chain(others)
        .map(|(_, tag)| tag)
        .collect()
}

/// The numbers and the suffix of a version-like tag (see [`newest_first`]).
fn version(tag: &str) -> Option<(Vec<u64>, String)> {
    let rest = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let mut numbers = Vec::new();
    let mut at = 0;
    loop {
        let digits = rest[at..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        numbers.push(rest[at..at + digits].parse::<u64>().ok()?);
        at += digits;
        let after = &rest[at..];
        if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit()) {
            at += 1;
        } else {
            break;
        }
    }
    if numbers.is_empty() {
        return None;
    }
    Some((numbers, rest[at..].to_owned()))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use ptc_core::oci::{Credentials, RetryPolicy, http_client};

    use super::*;

    /// What the fake upstream holds and counts.
    struct Fake {
        /// The repository's tags, in the order the tags list gives them.
        tags: Vec<String>,
        /// The tag whose manifest has the wanted digest.
        target: Option<String>,
        /// Page size the server uses, whatever `n` asks.
        page: usize,
        /// Answer every HEAD with this status instead (e.g. 429).
        head_status: Option<u16>,
        heads: AtomicUsize,
        lists: AtomicUsize,
        requests: Mutex<Vec<String>>,
    }

    fn wanted() -> Digest {
        Digest::sha256_of(b"the pinned manifest")
    }

    fn fake(tags: Vec<String>, target: Option<&str>) -> Fake {
        Fake {
            tags,
            target: target.map(str::to_owned),
            page: 100,
            head_status: None,
            heads: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// A fake upstream registry on 127.0.0.1: `GET /v2/<repo>/tags/list` in pages with `Link`
    /// (`last` is the last tag of the previous page), `HEAD /v2/<repo>/manifests/<tag>` with a
    /// `Docker-Content-Digest` that is [`wanted`] for the target tag only.
    fn serve(fake: Arc<Fake>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { return };
                let fake = fake.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    fake.requests.lock().unwrap().push(line.clone());
                    let mut parts = line.split_whitespace();
                    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let (status, headers, body) = answer(&fake, method, target);
                    let mut text = format!(
                        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        text.push_str(&format!("{k}: {v}\r\n"));
                    }
                    text.push_str("\r\n");
                    let _ = socket.write_all(text.as_bytes());
                    if method != "HEAD" {
                        let _ = socket.write_all(body.as_bytes());
                    }
                });
            }
        });
        base
    }

    fn answer(fake: &Fake, method: &str, target: &str) -> (u16, Vec<(String, String)>, String) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if method == "GET" && path.ends_with("/tags/list") {
            fake.lists.fetch_add(1, Ordering::Relaxed);
            let last = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("last="))
                .map(str::to_owned);
            let start = last
                .and_then(|l| fake.tags.iter().position(|t| *t == l).map(|i| i + 1))
                .unwrap_or(0);
            let end = (start + fake.page).min(fake.tags.len());
            let page = &fake.tags[start..end];
            let mut headers = Vec::new();
            if end < fake.tags.len() {
                headers.push((
                    "Link".to_owned(),
                    format!(
                        "<{path}?n={}&last={}>; rel=\"next\"",
                        fake.page,
                        page[page.len() - 1]
                    ),
                ));
            }
            let body = serde_json::json!({"name": "a/b", "tags": page}).to_string();
            return (200, headers, body);
        }
        if method == "HEAD" && path.contains("/manifests/") {
            fake.heads.fetch_add(1, Ordering::Relaxed);
            if let Some(status) = fake.head_status {
                return (
                    status,
                    vec![("Retry-After".into(), "3600".into())],
                    String::new(),
                );
            }
            let tag = path.rsplit('/').next().unwrap_or_default();
            let digest = if fake.target.as_deref() == Some(tag) {
                wanted()
            } else {
                Digest::sha256_of(tag.as_bytes())
            };
            return (
                200,
                vec![("Docker-Content-Digest".into(), digest.to_string())],
                String::new(),
            );
        }
        (404, Vec::new(), String::new())
    }

    fn client(base: &str) -> RegistryClient {
        RegistryClient::new(
            http_client(Duration::from_secs(5)).unwrap(),
            base,
            Arc::new(Credentials::Anonymous),
        )
        .with_retry(RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        })
    }

    fn names(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn version_like_tags_come_first_newest_first_then_the_others_in_reverse_lexical_order() {
        let tags = names(&[
            "latest",
            "1.9",
            "1.10",
            "v1.10.1",
            "1.10.1-alpine",
            "1.10.1",
            "alpine",
            "2",
            "1.25.3-rc1",
            "1.25.3",
            "nightly-20261129",
            "nightly-20261130",
            "sha-abc",
            "1.2.x",
        ]);
        assert_eq!(
            newest_first(tags),
            names(&[
                "2",
                "1.25.3",
                "1.25.3-rc1",
                "v1.10.1",
                "1.10.1",
                "1.10.1-alpine",
                "1.10",
                "1.9",
                "1.2.x",
                "sha-abc",
                "nightly-20261130",
                "nightly-20261129",
                "latest",
                "alpine",
            ])
        );
    }

    #[test]
    fn what_is_a_version() {
        assert_eq!(version("v1.2.3"), Some((vec![1, 2, 3], String::new())));
        assert_eq!(
            version("1.25.3-alpine"),
            Some((vec![1, 25, 3], "-alpine".to_owned()))
        );
        assert_eq!(version("1.2."), Some((vec![1, 2], ".".to_owned())));
        assert_eq!(version("latest"), None);
        assert_eq!(version("v"), None);
        assert_eq!(
            version("99999999999999999999999"),
            None,
            "too large to be a number"
        );
    }

    #[tokio::test]
    async fn the_tag_is_found_among_many() {
        let mut tags: Vec<String> = (0..300).map(|i| format!("1.{i}.0")).collect();
        tags.push("latest".into());
        let fake = Arc::new(fake(tags, Some("1.290.0")));
        let base = serve(fake.clone());
        let search = tag_for_digest(&client(&base), "a/b", &wanted(), ResolveLimits::default())
            .await
            .unwrap();
        assert_eq!(search.tag.as_deref(), Some("1.290.0"));
        assert_eq!((search.listed, search.complete), (301, true));
        // Newest first: 1.299.0 ... 1.290.0 is the tenth HEAD.
        assert_eq!(search.heads, 10);
        assert_eq!(fake.heads.load(Ordering::Relaxed), 10);
        assert_eq!(
            fake.lists.load(Ordering::Relaxed),
            4,
            "pages of 100 followed"
        );
        assert_eq!(search.not_found_reason(&wanted()), None);
    }

    #[tokio::test]
    async fn not_found_within_the_head_bound() {
        let tags: Vec<String> = (0..300).map(|i| format!("1.{i}.0")).collect();
        // The oldest version: the 300th candidate, past the 50 HEADs.
        let fake = Arc::new(fake(tags, Some("1.0.0")));
        let base = serve(fake.clone());
        let search = tag_for_digest(&client(&base), "a/b", &wanted(), ResolveLimits::default())
            .await
            .unwrap();
        assert_eq!(search.tag, None);
        assert_eq!(search.heads, MAX_DIGEST_HEADS);
        assert_eq!(fake.heads.load(Ordering::Relaxed), MAX_DIGEST_HEADS);
        let reason = search.not_found_reason(&wanted()).unwrap();
        assert!(reason.contains("50 of 300 listed tags checked"), "{reason}");
    }

    #[tokio::test]
    async fn pagination_is_followed_and_bounded() {
        let tags: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
        let mut fake = fake(tags, Some("t0999"));
        fake.page = 10;
        let fake = Arc::new(fake);
        let base = serve(fake.clone());
        let limits = ResolveLimits {
            tags: TagListLimits {
                page_size: 10,
                max_pages: 5,
                max_tags: 10_000,
            },
            max_heads: 100,
        };
        let search = tag_for_digest(&client(&base), "a/b", &wanted(), limits)
            .await
            .unwrap();
        assert_eq!(
            fake.lists.load(Ordering::Relaxed),
            5,
            "no page past max_pages"
        );
        assert_eq!((search.listed, search.complete), (50, false));
        assert_eq!(search.tag, None, "t0999 is on a page not fetched");
        assert_eq!(search.heads, 50);
        let requests = fake.requests.lock().unwrap();
        assert!(
            requests[1].contains("/v2/a/b/tags/list?n=10&last=t0009"),
            "{requests:?}"
        );
        let reason = search.not_found_reason(&wanted()).unwrap();
        assert!(reason.contains("cut at its bounds"), "{reason}");
    }

    /// A next link to another origin is not followed: the other server sees nothing, and the
    /// search goes on with the tags it has.
    #[tokio::test]
    async fn a_next_link_to_another_origin_is_not_followed() {
        let other = Arc::new(fake(names(&["9.9.9"]), Some("9.9.9")));
        let other_base = serve(other.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(AtomicUsize::new(0));
        let counted = heads.clone();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { return };
                let mut buf = [0u8; 4096];
                let n = socket.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (status, extra, body) = if head.starts_with("HEAD ") {
                    counted.fetch_add(1, Ordering::Relaxed);
                    let digest = Digest::sha256_of(b"other");
                    (
                        200,
                        format!("Docker-Content-Digest: {digest}\r\n"),
                        String::new(),
                    )
                } else {
                    (
                        200,
                        format!(
                            "Link: <{other_base}/v2/a/b/tags/list?n=1&last=1.0>; rel=\"next\"\r\n"
                        ),
                        r#"{"name":"a/b","tags":["1.0","../../evil","1.1"]}"#.to_owned(),
                    )
                };
                let _ = socket.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n{}",
                        body.len(),
                        if head.starts_with("HEAD ") { "" } else { body.as_str() }
                    )
                    .as_bytes(),
                );
            }
        });
        let search = tag_for_digest(&client(&base), "a/b", &wanted(), ResolveLimits::default())
            .await
            .unwrap();
        assert_eq!(search.tag, None);
        assert_eq!(
            (search.listed, search.complete),
            (2, false),
            "the invalid tag dropped"
        );
        assert_eq!(heads.load(Ordering::Relaxed), 2);
        assert!(
            other.requests.lock().unwrap().is_empty(),
            "nothing sent to the other origin"
        );
    }

    /// A tags list of 50,000 entries in one page keeps 10,000 and HEADs at most 50.
    #[tokio::test]
    async fn a_huge_tags_list_is_cut() {
        let tags: Vec<String> = (0..50_000).map(|i| format!("t{i}")).collect();
        let mut fake = fake(tags, None);
        fake.page = 50_000;
        let fake = Arc::new(fake);
        let base = serve(fake.clone());
        let search = tag_for_digest(&client(&base), "a/b", &wanted(), ResolveLimits::default())
            .await
            .unwrap();
        assert_eq!((search.listed, search.complete), (10_000, false));
        assert_eq!(fake.heads.load(Ordering::Relaxed), MAX_DIGEST_HEADS);
    }

    /// A 429 (here with an hour-long Retry-After) stops the search with that error.
    #[tokio::test]
    async fn a_rate_limit_stops_the_search() {
        let tags: Vec<String> = (0..20).map(|i| format!("1.{i}")).collect();
        let mut fake = fake(tags, Some("1.0"));
        fake.head_status = Some(429);
        let fake = Arc::new(fake);
        let base = serve(fake.clone());
        let err = tag_for_digest(&client(&base), "a/b", &wanted(), ResolveLimits::default())
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::RateLimited { .. }), "{err:?}");
        assert_eq!(
            fake.heads.load(Ordering::Relaxed),
            1,
            "no HEAD after the 429"
        );
    }
}
