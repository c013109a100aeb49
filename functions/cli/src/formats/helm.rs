//! `helm-values`: for each image reference, the `registry` / `repository` / `tag` / `digest`
//! split Helm charts take, keyed by the reference as written.
//!
//! Charts compose an image as `{{ registry }}/{{ repository }}:{{ tag }}`:
//! - bitnami's `common.images.image`
//!   (<https://github.com/bitnami/charts/blob/main/bitnami/common/templates/_images.tpl>):
//!   `printf "%s/%s%s%s" $registryName $repositoryName $separator $termination`, where the
//!   termination is `:<tag>`, or `@<digest>` instead when `digest` is set;
//! - the nats chart of the seeds' HelmRelease (`container.image` / `reloader.image`,
//!   <https://github.com/nats-io/k8s/blob/main/helm/charts/nats/templates/_helpers.tpl>,
//!   `nats.image`): `printf "%s:%s" .repository .tag`, then `printf "%s/%s" .registry $image`
//!   when a registry is set (no digest).
//!
//! So `registry` is where the rule's upstream lands in the cache, `<registry host>/<prefix>`
//! (the same value for every image of a rule, the `registry_<prefix>` local of
//! `terraform-locals`), and `repository` the upstream path under the rule's upstream, Docker
//! Hub's `library/` included for official images (`library/nats`): the cache names the image
//! `docker-hub/library/nats`, and a chart's default `repository: nats` composed with the cache's
//! registry would miss it. (The seeds' HelmRelease writes the same image as
//! `registry: .../docker-hub/library`, `repository: nats`; both compose to the same URI.)
//!
//! References that are not routable are comments with their class and reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ptc_core::adoption::{Classified, Mirror};
use serde::Serialize;

use super::{Input, OutputFile, comment};

/// The file `helm-values` writes.
pub const FILE: &str = "ptc-images.values.yaml";

/// A routable reference as the cache serves it, relative to its rule: the cached URI is
/// `<registry>/<repository>[:<tag>][@<digest>]`, the upstream `<mirror source>/<repository>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed<'a> {
    /// The rule that routes it.
    pub mirror: &'a Mirror,
    /// Where the rule's upstream lands: [`Mirror::location`], `<registry host>/<prefix>`.
    pub registry: String,
    /// The upstream path under [`Mirror::source`]: `library/nginx`, `jetstack/cert-manager-controller`.
    pub repository: String,
    /// The tag (`latest` when the reference gives neither tag nor digest).
    pub tag: Option<String>,
    /// The digest, when the reference gives one.
    pub digest: Option<String>,
}

impl Routed<'_> {
    /// `[:tag][@digest]`.
    pub fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(tag) = &self.tag {
            let _ = write!(out, ":{tag}");
        }
        if let Some(digest) = &self.digest {
            let _ = write!(out, "@{digest}");
        }
        out
    }
}

/// `image` split against the rule that routes it (found in `input.mirrors` by the prefix
/// [`ptc_core::adoption::classify`] gave): nothing is routed here, the split is checked
/// against the classified cached URI and upstream reference.
///
/// Errors (one line, for a comment): the class and reason of a reference that is not
/// routable; a rule with no mirror (shadowed); a split that does not give back the
/// classified URI.
pub fn routed<'a>(input: &Input<'a>, image: &Classified) -> Result<Routed<'a>, String> {
    if !image.is_routable() {
        return Err(format!(
            "{}: {}",
            image.class,
            image.reason.as_deref().unwrap_or("not routable")
        ));
    }
    let prefix = image.prefix.as_deref().unwrap_or_default();
    let mirror = input
        .mirrors
        .iter()
        .find(|m| m.prefix.as_str() == prefix)
        .ok_or_else(|| format!("rule {prefix} routes it but routes no namespace as a whole"))?;
    let upstream = image
        .upstream_reference()
        .ok_or_else(|| "no upstream reference".to_owned())?;
    let full = format!("{}/{}", upstream.registry, upstream.repository);
    let source = mirror.source();
    let repository = full
        .strip_prefix(&format!("{source}/"))
        .ok_or_else(|| format!("{full} is not under rule {prefix}'s upstream {source}"))?
        .to_owned();
    let routed = Routed {
        mirror,
        registry: mirror.location(input.registry_host),
        repository,
        tag: upstream.tag.clone(),
        digest: upstream.digest.as_ref().map(|d| d.to_string()),
    };
    let composed = format!(
        "{}/{}{}",
        routed.registry,
        routed.repository,
        routed.suffix()
    );
    if image.uri.as_deref() != Some(composed.as_str()) {
        return Err(format!(
            "rule {prefix} caches it as {}, not under {}/",
            image.uri.as_deref().unwrap_or_default(),
            routed.registry
        ));
    }
    Ok(routed)
}

/// One image's values, as charts name them.
#[derive(Debug, Serialize)]
struct Values<'a> {
    registry: &'a str,
    repository: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
}

/// Render `helm-values`: one `images:` map keyed by each routable reference as written
/// (the first of repeated ones), then the others as comments. Errors: none but a YAML
/// serialiser failure (`ptc map` refuses the format without references before this).
pub fn render(input: &Input) -> Result<Vec<OutputFile>, String> {
    let mut entries = String::new();
    let mut left = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for image in input.images {
        if !seen.insert(image.reference.as_str()) {
            continue;
        }
        match routed(input, image) {
            Ok(r) => {
                let values = Values {
                    registry: &r.registry,
                    repository: &r.repository,
                    tag: r.tag.as_deref(),
                    digest: r.digest.as_deref(),
                };
                let one = BTreeMap::from([(image.reference.as_str(), values)]);
                let yaml = serde_norway::to_string(&one).map_err(|e| e.to_string())?;
                for line in quote_yaml11(&yaml).lines() {
                    let _ = writeln!(entries, "  {line}");
                }
            }
            Err(reason) => left.push(format!("{}: {reason}", image.reference)),
        }
    }
    let text = comment(&format!(
        "Helm values for the Amazon ECR pull-through cache at {host}: for each image reference\n\
         (the key, as written), the split charts compose as\n\
         {{{{ registry }}}}/{{{{ repository }}}}:{{{{ tag }}}} (digest: @{{{{ digest }}}} instead of the tag in\n\
         bitnami's common.images.image, https://github.com/bitnami/charts/blob/main/bitnami/common/templates/_images.tpl;\n\
         the nats chart composes registry/repository:tag, no digest,\n\
         https://github.com/nats-io/k8s/blob/main/helm/charts/nats/templates/_helpers.tpl).\n\
         registry: where the rule's upstream lands in the cache (<registry host>/<prefix>).\n\
         repository: the upstream path; Docker Hub's official images keep library/ (library/nats):\n\
         the cache names them docker-hub/library/<name>, so a chart's default repository: nats\n\
         must change too.\n\
         Copy an entry's values under the chart's image key (e.g. the nats chart's container.image).\n\
         Generated by ptc map --format helm-values.",
        host = input.registry_host
    ));
    Ok(vec![super::images_document(
        FILE, text, &entries, "{}", &left,
    )])
}

/// serde_norway quotes the strings a YAML 1.2 reader would take for something else (`1.25`,
/// `1e3`, `true`, `010`), and writes the rest plain. Helm reads values through
/// sigs.k8s.io/yaml, go-yaml v2, whose resolver is YAML 1.1
/// (<https://github.com/go-yaml/yaml/blob/v2/resolve.go>: `y`, `yes`, `on`, `off` are
/// booleans, `1_000` and `0b1` integers), and so is PyYAML; a tag such as `on` or `1_000`
/// written plain would reach the chart as a boolean or a number. This single-quotes every
/// plain key or value of `yaml` (serde_norway's block output: `key: value`, `- key: value`,
/// `key:` lines) that a YAML 1.1 resolver would not read as a string. Over-quoting is harmless:
/// a quoted scalar is a string in every schema. Comment lines are left alone.
pub fn quote_yaml11(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 16);
    for line in yaml.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (dash, body) = match body.strip_prefix("- ") {
            Some(rest) => ("- ", rest),
            None => ("", body),
        };
        out.push_str(indent);
        out.push_str(dash);
        if body.starts_with('#') {
            out.push_str(body);
        } else if let Some((key, value)) = body.split_once(": ") {
            let _ = write!(out, "{}: {}", quote_plain(key), quote_plain(value));
        } else if let Some(key) = body.strip_suffix(':') {
            let _ = write!(out, "{}:", quote_plain(key));
        } else {
            out.push_str(&quote_plain(body));
        }
        out.push('\n');
    }
    out
}

/// `scalar` single-quoted when it is plain and a YAML 1.1 resolver would not read it as a
/// string; else as it is.
fn quote_plain(scalar: &str) -> String {
    if yaml11_not_a_string(scalar) {
        format!("'{scalar}'")
    } else {
        scalar.to_owned()
    }
}

/// Whether a plain `scalar` might resolve to a non-string in YAML 1.1 (go-yaml v2, PyYAML):
/// the booleans and nulls of YAML 1.1 and go-yaml v2, and, conservatively, anything made
/// only of digits, signs, `.`, `_`, `:` and the letters of hex, binary, octal and exponent
/// notations that holds a digit, and `.inf` / `.nan`. Quoted scalars (`'...'`, `"..."`)
/// and flow collections are not plain and never match.
fn yaml11_not_a_string(scalar: &str) -> bool {
    const WORDS: [&str; 29] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "",
        "=", "<<",
    ];
    if WORDS.contains(&scalar) {
        return true;
    }
    let unsigned = scalar.trim_start_matches(['+', '-']);
    if matches!(
        unsigned.to_ascii_lowercase().as_str(),
        ".inf" | ".nan" | "inf" | "nan"
    ) {
        return true;
    }
    scalar.bytes().any(|b| b.is_ascii_digit())
        && scalar
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b"+-._:xXoObB".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_booleans_and_numbers_are_quoted_and_names_are_not() {
        let yaml =
            "a:\n  tag: on\n  other: 1_000\n  name: library/nginx\n- d: 2.10.12-alpine\nyes:\n";
        assert_eq!(
            quote_yaml11(yaml),
            "a:\n  tag: 'on'\n  other: '1_000'\n  name: library/nginx\n- d: 2.10.12-alpine\n'yes':\n"
        );
        for s in ["0x1F", "0b101", "1.5e+3", ".5", "y", "190:20:30", "-.inf"] {
            assert!(yaml11_not_a_string(s), "{s}");
        }
        for s in ["v1.25", "latest", "sha256:ab", "2.10.12-alpine", "cafe"] {
            assert!(!yaml11_not_a_string(s), "{s}");
        }
    }
}
