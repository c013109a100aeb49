//! Tag mutability and the cache: ECR refreshes a cached tag when the upstream moves it, which
//! an immutable tag forbids. Since July 2025 mutability can have exclusions:
//! `IMMUTABLE_WITH_EXCLUSION` (tags matching a filter stay mutable) and
//! `MUTABLE_WITH_EXCLUSION` (tags matching a filter are immutable), each filter a `*`
//! wildcard pattern
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html>,
//! <https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageTagMutabilityExclusionFilter.html>).
//! Never changed by the product: reported.

/// Does `tag` match the wildcard `pattern` (`*` any run of characters, every other
/// character itself)?
pub fn matches(pattern: &str, tag: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), tag.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the tag position it was tried at, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Is this tag immutable under `mutability` and its exclusion `filters`?
pub fn is_immutable(mutability: &str, filters: &[String], tag: &str) -> bool {
    let excluded = filters.iter().any(|f| matches(f, tag));
    match mutability {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !excluded,
        "MUTABLE_WITH_EXCLUSION" => excluded,
        _ => false,
    }
}

/// Does this setting make any tag immutable at all? (`IMMUTABLE_WITH_EXCLUSION` with a `*`
/// filter does not; `MUTABLE_WITH_EXCLUSION` without filters does not.)
pub fn may_freeze_tags(mutability: &str, filters: &[String]) -> bool {
    match mutability {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !filters.iter().any(|f| f.chars().all(|c| c == '*')),
        "MUTABLE_WITH_EXCLUSION" => !filters.is_empty(),
        _ => false,
    }
}

/// The finding for a repository whose cached `tags` include immutable ones: `ECR cannot
/// refresh ...` naming up to ten of them; `None` when every tag can be refreshed.
pub fn repository_problem(mutability: &str, filters: &[String], tags: &[String]) -> Option<String> {
    let frozen: Vec<&str> = tags
        .iter()
        .filter(|t| is_immutable(mutability, filters, t))
        .map(String::as_str)
        .collect();
    if frozen.is_empty() {
        return None;
    }
    let shown = frozen
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    let more = frozen.len().saturating_sub(10);
    let how = match mutability {
        "IMMUTABLE" => "set it to MUTABLE".to_owned(),
        "IMMUTABLE_WITH_EXCLUSION" => format!(
            "they match none of the exclusion filters ({}); add filters for them or set MUTABLE",
            filters.join(", ")
        ),
        _ => format!(
            "they match the exclusion filters ({}), which make them immutable",
            filters.join(", ")
        ),
    };
    Some(format!(
        "tag mutability is {mutability}: ECR cannot refresh the cached tags {shown}{} when their upstream moves; {how} (never changed automatically)",
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// The finding for a creation template's mutability (no tags exist yet): `None` when it
/// cannot freeze a tag.
pub fn template_problem(mutability: &str, filters: &[String]) -> Option<String> {
    if !may_freeze_tags(mutability, filters) {
        return None;
    }
    Some(match mutability {
        "IMMUTABLE" => "makes tags immutable: ECR cannot refresh cached tags".to_owned(),
        "IMMUTABLE_WITH_EXCLUSION" => format!(
            "makes tags immutable except those matching {}: ECR cannot refresh the other cached tags",
            filters.join(", ")
        ),
        _ => format!(
            "makes tags matching {} immutable: ECR cannot refresh those cached tags",
            filters.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn wildcards_match_as_ecr_filters_do() {
        assert!(matches("latest", "latest"));
        assert!(!matches("latest", "latest2"));
        assert!(matches("v*", "v1.2.3"));
        assert!(matches("*-rc*", "1.0-rc1"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(!matches("v*", "latest"));
    }

    #[test]
    fn exclusions_that_cover_the_cached_tags_are_fine() {
        // Mutable `latest` and `*-nightly` in an otherwise immutable repository, the
        // documented use: a cache of `latest` only is fine.
        let filters = v(&["latest", "*-nightly"]);
        assert_eq!(
            repository_problem(
                "IMMUTABLE_WITH_EXCLUSION",
                &filters,
                &v(&["latest", "2.0-nightly"])
            ),
            None
        );
        let problem = repository_problem(
            "IMMUTABLE_WITH_EXCLUSION",
            &filters,
            &v(&["latest", "v1.2"]),
        )
        .unwrap();
        assert!(problem.contains("cached tags v1.2 when"), "{problem}");
        // MUTABLE_WITH_EXCLUSION freezes what matches.
        let problem = repository_problem(
            "MUTABLE_WITH_EXCLUSION",
            &v(&["v*"]),
            &v(&["latest", "v1.2"]),
        )
        .unwrap();
        assert!(problem.contains("cached tags v1.2 "), "{problem}");
        assert_eq!(repository_problem("MUTABLE", &[], &v(&["v1"])), None);
        assert!(repository_problem("IMMUTABLE", &[], &v(&["v1"])).is_some());
    }

    #[test]
    fn templates() {
        assert_eq!(
            template_problem("IMMUTABLE_WITH_EXCLUSION", &v(&["*"])),
            None
        );
        assert_eq!(template_problem("MUTABLE_WITH_EXCLUSION", &[]), None);
        assert_eq!(template_problem("MUTABLE", &[]), None);
        assert!(
            template_problem("IMMUTABLE_WITH_EXCLUSION", &v(&["latest"]))
                .unwrap()
                .contains("except those matching latest")
        );
        assert!(template_problem("IMMUTABLE", &[]).is_some());
    }
}
