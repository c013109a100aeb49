//! `registries-conf`: containers-registries.conf(5) version 2 mirrors for CRI-O, podman,
//! buildah and skopeo (everything built on containers/image), one `[[registry]]` per rule.
//!
//! What containers/image does with it (pkg/sysregistriesv2/system_registries_v2.go of
//! <https://github.com/containers/image>, commit df7e80d2, August 2025):
//! - `FindRegistry` picks the `[[registry]]` whose `prefix` is the longest match of the
//!   fully qualified reference (`refMatchingPrefix`: the prefix, then end, `/`, `:` or `@`).
//!   References are normalised first, so `nginx` is `docker.io/library/nginx`: the prefix
//!   `docker.io` covers Docker Hub and its official images.
//! - `rewriteReference` replaces the prefix by an endpoint's `location` and keeps the rest:
//!   `docker.io/library/nginx:1.25` with prefix `docker.io` and mirror location
//!   `<host>/docker-hub` is pulled as `<host>/docker-hub/library/nginx:1.25`, the cached
//!   repository ECR names. A rule with an upstream repository prefix is the prefix
//!   `<host>/<upstream prefix>`, so what follows it lands under the rule's cache prefix,
//!   as ECR routes it.
//! - `PullSourcesFromReference` tries the mirrors in order, then the registry's own
//!   `location`. `pull-from-mirror` is left out: its default, `all`, uses the mirror for tag
//!   and digest pulls (and older parsers, such as skopeo 1.9, do not know the key).
//! - A mirror is authenticated with the credentials of its own host; credentials given for
//!   the image's registry are dropped for a mirror on another host
//!   (docker/docker_image_src.go, `newImageSourceAttempt`).
//!
//! The TOML is written by the `toml` crate, one `[[registry]]` at a time so that each gets
//! its comment; the concatenation is one valid document (arrays of tables append).

use serde::Serialize;

use ptc_core::adoption::{Classified, Mirror};

use super::{Input, OutputFile, comment};

/// The single output file, a drop-in under `/etc/containers` (containers-registries.conf.d(5)):
/// `--out-dir /etc/containers` adds it beside the system's `registries.conf`, never over it.
pub const FILE: &str = "registries.conf.d/50-ecr-pull-through-cache.conf";

/// One `[[registry]]` table (containers-registries.conf(5), `Registry` in
/// system_registries_v2.go).
#[derive(Debug, Serialize)]
struct Registry {
    prefix: String,
    location: String,
    mirror: Vec<Endpoint>,
}

/// One `[[registry.mirror]]` table (`Endpoint`).
#[derive(Debug, Serialize)]
struct Endpoint {
    location: String,
}

#[derive(Serialize)]
struct Document<'a> {
    registry: &'a [Registry],
}

/// One file, `registries.conf`: a header, one `[[registry]]` per mirror (prefix
/// [`Mirror::source`], mirror location [`Mirror::location`]), each after a comment naming its
/// rule, then comments for the rules that route nothing and the references left upstream.
///
/// Errors: a value the TOML serializer refuses (never for the strings [`Mirror`] holds).
pub fn render(input: &Input) -> Result<Vec<OutputFile>, String> {
    let host = input.registry_host;
    let mut text = header(host);
    for (about, registry) in input.mirrors.iter().flat_map(|m| registries_of(m, host)) {
        text.push('\n');
        text.push_str(&comment(&about));
        text.push('\n');
        text.push_str(&serialise(&[registry])?);
    }
    if input.mirrors.is_empty() {
        text.push_str("\n# No rule routes anything: no [[registry]] is written.\n");
    }
    let notes = notes(input);
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&comment(&notes.join("\n")));
        text.push('\n');
    }
    Ok(vec![OutputFile {
        path: FILE.to_owned(),
        text,
    }])
}

/// The `[[registry]]` tables of one mirror, each with the comment above it: the mirror's
/// ([`registry`]), then for Docker Hub one per host containers/image keeps
/// ([`super::docker_hub_hosts_runtimes_keep`]), with the same mirror.
fn registries_of(mirror: &Mirror, host: &str) -> Vec<(String, Registry)> {
    let mut out = vec![(describe(mirror, host), registry(mirror, host))];
    if mirror.registry == ptc_core::reference::DOCKER_HUB {
        for alias in super::docker_hub_hosts_runtimes_keep() {
            out.push((
                format!(
                    "rule {} as references written {alias}/<namespace>/<name> name it (containers/image keeps that host); a one-component name there needs library/",
                    mirror.prefix
                ),
                Registry {
                    prefix: alias.to_owned(),
                    location: alias.to_owned(),
                    mirror: vec![Endpoint {
                        location: mirror.location(host),
                    }],
                },
            ));
        }
    }
    out
}

/// The `[[registry]]` of one mirror: its upstream namespace as prefix and location (the
/// fallback), the cache as its one mirror.
fn registry(mirror: &Mirror, host: &str) -> Registry {
    Registry {
        prefix: mirror.source(),
        location: mirror.source(),
        mirror: vec![Endpoint {
            location: mirror.location(host),
        }],
    }
}

fn serialise(registries: &[Registry]) -> Result<String, String> {
    toml::to_string(&Document {
        registry: registries,
    })
    .map_err(|e| format!("registries-conf: cannot write TOML: {e}"))
}

fn header(host: &str) -> String {
    let lines = [
        format!("containers-registries.conf(5) v2: pull through the Amazon ECR pull-through cache {host}."),
        "For CRI-O, podman, buildah, skopeo: /etc/containers/registries.conf.d/50-ecr-pull-through-cache.conf".to_owned(),
        "(or merged into /etc/containers/registries.conf). Generated by `ptc map --format registries-conf`.".to_owned(),
        "The longest matching prefix wins and what follows it is appended to the mirror's location".to_owned(),
        "(containers/image pkg/sysregistriesv2: refMatchingPrefix, rewriteReference); the upstream".to_owned(),
        "`location` is tried only when the mirror fails. Use fully qualified names: short names".to_owned(),
        "(nginx) go through short-name aliases and search registries first.".to_owned(),
        format!("Credentials: the mirror is logged in as {host} itself, from the auth file or a credential"),
        "helper (containers-auth.json(5)); credentials for the image's registry (kubelet's, --creds)".to_owned(),
        "are never sent to a mirror (containers/image docker/docker_image_src.go). ECR tokens last".to_owned(),
        format!("12 hours: refresh `aws ecr get-login-password | podman login -u AWS --password-stdin {host}`"),
        "(CRI-O: its global_auth_file), or set credential-helpers = [\"containers-auth.json\", \"ecr-login\"]".to_owned(),
        "with docker-credential-ecr-login (amazon-ecr-credential-helper) installed.".to_owned(),
    ];
    format!("{}\n", comment(&lines.join("\n")))
}

/// The comment above one `[[registry]]`: its rule and an example of the rewrite.
fn describe(mirror: &Mirror, host: &str) -> String {
    let location = mirror.location(host);
    let example = if mirror.official_images_need_library {
        format!(
            "e.g. nginx = {0}/library/nginx -> {location}/library/nginx (official images keep library/)",
            mirror.source()
        )
    } else {
        format!("e.g. {}/<path> -> {location}/<path>", mirror.source())
    };
    let rule = match &mirror.upstream_path {
        Some(up) => format!(
            "rule {} ({}, upstream repository prefix {up}): only {}/...",
            mirror.prefix,
            mirror.upstream_url,
            mirror.source()
        ),
        None => format!("rule {} ({})", mirror.prefix, mirror.upstream_url),
    };
    format!("{rule}: {example}")
}

/// Comments for the rules left out and each reference given: routable ones with their
/// cached image, the others with why they stay upstream.
fn notes(input: &Input) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, reason) in input.unused_rules {
        out.push(format!("rule {prefix} not written: {reason}"));
    }
    for image in input.images {
        out.push(image_note(image));
    }
    out
}

fn image_note(image: &Classified) -> String {
    match (&image.uri, image.is_routable()) {
        (Some(uri), true) => format!("{} is pulled as {uri}", image.reference),
        _ => format!(
            "{} stays as written ({}): {}",
            image.reference,
            image.class,
            image.reason.as_deref().unwrap_or("no reason given")
        ),
    }
}

#[cfg(test)]
mod tests {
    use ptc_core::adoption::{self, classify};
    use ptc_core::rules::{PtcRule, RuleSet};

    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
    const ECR_UP: &str = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";

    fn render_rules(rules: &RuleSet, refs: &[&str]) -> String {
        let (mirrors, unused) = adoption::mirrors(rules);
        let images: Vec<Classified> = refs.iter().map(|r| classify(r, rules, HOST)).collect();
        let input = Input {
            registry_host: HOST,
            mirrors: &mirrors,
            unused_rules: &unused,
            images: &images,
        };
        let files = render(&input).unwrap();
        assert_eq!(files.len(), 1);
        files[0].text.clone()
    }

    /// The per-registry concatenation is the document the serializer writes for all of them
    /// at once, and an upstream repository prefix is the registry prefix.
    #[test]
    fn concatenated_tables_are_one_document() {
        let rules = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("team-ecr", ECR_UP)
                .unwrap()
                .with_upstream_prefix("team"),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let text = render_rules(&rules, &["nginx:1.25", "gcr.io/x/y:1"]);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let (mirrors, _) = adoption::mirrors(&rules);
        let all: Vec<Registry> = mirrors
            .iter()
            .flat_map(|m| registries_of(m, HOST))
            .map(|(_, r)| r)
            .collect();
        let whole: toml::Table = toml::from_str(&serialise(&all).unwrap()).unwrap();
        assert_eq!(parsed, whole);
        assert!(
            text.contains(&format!("prefix = \"{ECR_UP}/team\"")),
            "{text}"
        );
        assert!(
            text.contains(&format!("location = \"{HOST}/team-ecr\"")),
            "{text}"
        );
        assert!(
            text.contains("# gcr.io/x/y:1 stays as written (unsupported)"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "# nginx:1.25 is pulled as {HOST}/docker-hub/library/nginx:1.25"
            )),
            "{text}"
        );
    }

    /// A reason with a newline cannot end its comment early.
    #[test]
    fn multi_line_reasons_stay_comments() {
        let rules = RuleSet::new(vec![PtcRule::new("quay", "quay.io").unwrap()]);
        let (mirrors, _) = adoption::mirrors(&rules);
        let unused = vec![(
            ptc_core::rules::Prefix::parse("other").unwrap(),
            "line one\n[[registry]]\nprefix = \"evil\"".to_owned(),
        )];
        let input = Input {
            registry_host: HOST,
            mirrors: &mirrors,
            unused_rules: &unused,
            images: &[],
        };
        let text = render(&input).unwrap().remove(0).text;
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["registry"].as_array().unwrap().len(), 1, "{text}");
    }
}
