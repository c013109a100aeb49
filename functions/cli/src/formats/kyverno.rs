//! `kyverno`: a Kyverno `ClusterPolicy` (`kyverno.io/v1`) that rewrites the images of new
//! Pods to the cache with the routing of `ptc map`.
//!
//! Each rule of [`Input::mirrors`] (its upstream namespace, [`Mirror::source`], landing at
//! [`Mirror::location`]) becomes one or more [`Route`]s: an RE2 regular expression over the
//! image as written and the cached URI it becomes. Docker Hub has three (official images get
//! `library/`; a namespaced path with an explicit Docker Hub host; one with no host, whose first
//! component has no `.` and is not `localhost`, as [`ImageReference::parse`] reads it). Every
//! route is one `mutate.foreach` entry per container list (`containers`, `initContainers`, and
//! `ephemeralContainers` in a rule of its own for `kubectl debug`):
//! - its `context` holds the route (`match`, `to`);
//! - its `preconditions`: `regex_match(route.match, element.image)`, and the cached name's
//!   length within ECR's limits (the regex cannot bound a path's length);
//! - its `patchStrategicMerge` sets the container's `image` to
//!   `regex_replace_all(route.match, element.image, route.to)`, the pattern Kyverno's own
//!   sample policy uses (`other/replace-image-registry` in kyverno/policies).
//!
//! Semantics relied on (Kyverno v1.19.0, commit ee97ce0):
//! - `regex_match` is Go's `regexp.Match` (unanchored: our patterns carry `^...$`) and
//!   `regex_replace_all` is `regexp.Compile(re).ReplaceAll(src, repl)`, whose template expands
//!   `$name` / `${name}` (`pkg/engine/jmespath/functions.go`, `jpRegexMatch`,
//!   `jpRegexReplaceAll`; <https://pkg.go.dev/regexp#Regexp.Expand>). The patterns use RE2
//!   syntax only, `${path}` / `${ref}` with braces, and no backslash or `'`, so JMESPath raw
//!   strings read them verbatim in any implementation (kyverno/go-jmespath `lexer.go`,
//!   `consumeRawStringLiteral`, unescapes only `\'`).
//! - `{{ ... }}` may hold single `{...}` pairs (`{0,127}`, `${path}`):
//!   `RegexVariables` in `pkg/engine/variables/regex/vars.go`.
//! - foreach entries run in order, each on the resource the previous one patched (the list is
//!   evaluated again after `AddResource`): `pkg/engine/handlers/mutation/common.go`,
//!   `mutateForEach`. So the first route that matches wins, as in [`RuleSet::route`], and the
//!   rewritten image, on the cache's host, is matched by no route: the mutation is idempotent.
//!   A missing list (no `initContainers`) is one nil element, skipped (`EvaluateList` in
//!   `pkg/engine/utils/foreach.go`, `mutateElements`).
//! - autogen is off (`pod-policies.kyverno.io/autogen-controllers: none`, `pkg/autogen/v1`):
//!   controllers keep their templates (no drift for GitOps), the Pods they create are rewritten.
//! - a rule matching `Pod` also matches `pods/ephemeralcontainers` unless operations exclude it
//!   (`pkg/engine/utils/match.go`); the ephemeral rule matches `Pod/ephemeralcontainers`
//!   `UPDATE` and leaves ephemeral containers that already exist alone (the API server refuses
//!   changes to them).
//! - `webhookConfiguration.failurePolicy: Ignore` (Kyverno 1.13+; `Spec.GetFailurePolicy` in
//!   `api/kyverno/v1/spec_types.go` defaults to `Fail`): with Ignore a failing rule drops the
//!   policy's patches and admits the Pod unchanged (`pkg/webhooks/resource/mutation/mutation.go`,
//!   `applyMutation`), i.e. it pulls from the upstream as before.
//!
//! One difference with [`RuleSet::route`] remains: when two ECR-to-ECR rules serve nested
//! upstream prefixes (`team/sub` and `team`) and the first one's cached name would be too long,
//! `ptc map` refuses the image while the policy tries the next rule.
//!
//! Not used: the `images` context variable, whose Docker Hub normalisation depends on
//! Kyverno's `defaultRegistry` / `enableDefaultRegistryMutation` settings.
//!
//! Docs: <https://kyverno.io/docs/writing-policies/mutate/#foreach>,
//! <https://kyverno.io/docs/writing-policies/jmespath/>,
//! <https://kyverno.io/docs/writing-policies/autogen/>.
//!
//! [`ImageReference::parse`]: ptc_core::reference::ImageReference::parse
//! [`RuleSet::route`]: ptc_core::rules::RuleSet::route

use std::fmt::Write as _;

use ptc_core::adoption::{Classified, ImageClass, Mirror};
use ptc_core::reference::DOCKER_HUB_ALIASES;

use super::{Input, OutputFile, comment};

/// The file `kyverno` writes.
pub const FILE: &str = "ptc-pull-through-cache.kyverno.yaml";

/// The ClusterPolicy's `metadata.name`.
pub const POLICY_NAME: &str = "ptc-pull-through-cache";

/// One path component a cached repository name may hold: ECR's `repositoryName` component,
/// lowercase letters and digits joined by one `.`, `_` or `-`
/// (<https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html>;
/// [`ptc_core::rules::ecr_repository_name_problem`]). Narrower than the distribution spec's
/// (`a__b`, `a--b`), which the cache cannot hold: such references are left alone.
pub const COMPONENT: &str = "[a-z0-9]+(?:[._-][a-z0-9]+)*";

/// A first component that [`ImageReference::parse`] does not read as a host: no `.` (nor
/// `:`, which no component has). `localhost` is excluded by a precondition (RE2 has no
/// look-ahead).
///
/// [`ImageReference::parse`]: ptc_core::reference::ImageReference::parse
const FIRST_COMPONENT_NOT_A_HOST: &str = "[a-z0-9]+(?:[_-][a-z0-9]+)*";

/// The optional `:tag` (OCI grammar, at most 128) and `@digest` (sha256 / sha512, lowercase
/// hex, as [`ptc_core::reference::Digest::parse`]), captured whole as `ref` and kept.
pub const TAG_AND_DIGEST: &str = "(?P<ref>(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64}|@sha512:[a-f0-9]{128})?)";

/// A reference's repository path is at most 255 characters (`validate_path` in
/// `shared/src/reference.rs`).
const MAX_REFERENCE_PATH: usize = 255;
/// ECR repository names are 2 to 256 characters.
const MAX_ECR_NAME: usize = 256;
const MIN_ECR_NAME: usize = 2;

/// `library/`, which Docker Hub's official images get.
const LIBRARY: &str = "library/";

/// One rewrite: images matching [`pattern`](Self::pattern) become
/// `regex_replace_all(pattern, image, replacement)` when the captured `path` has
/// [`min_path`](Self::min_path) to [`max_path`](Self::max_path) characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What it rewrites, for the comment above it, e.g. `quay.io/<path>`.
    pub from: String,
    /// Where it lands, e.g. `<host>/quay/<path>`.
    pub to: String,
    /// RE2, anchored, with the groups `path` (what follows the rule's upstream namespace) and
    /// `ref` (`:tag`, `@digest`).
    pub pattern: String,
    /// The replacement template (Go `Regexp.Expand`): `<location>/[library/]${path}${ref}`.
    pub replacement: String,
    /// The shortest `path` the cache can name (ECR names have at least 2 characters).
    pub min_path: usize,
    /// The longest: the reference's path at most 255, the cached name at most 256.
    pub max_path: usize,
    /// Whether the image must not start with `localhost/` (Docker Hub without a host).
    pub not_localhost: bool,
}

/// The routes of one rule, in the order [`RuleSet::route`] would try them.
///
/// Errors (the rule is then a comment with this reason): a rule whose upstream is the cache's
/// own registry (its references are already cached, never routed), and names outside the
/// characters [`Mirror`]s are built from (not expected: the routing built them).
///
/// [`RuleSet::route`]: ptc_core::rules::RuleSet::route
pub fn routes(mirror: &Mirror, registry_host: &str) -> Result<Vec<Route>, String> {
    if mirror.registry.eq_ignore_ascii_case(registry_host) {
        return Err(format!(
            "rule {}: its upstream {} is the cache's own registry, whose references are already cached",
            mirror.prefix, mirror.registry
        ));
    }
    let location = mirror.location(registry_host);
    let cache_len = match mirror.cache_path.is_empty() {
        true => 0,
        false => mirror.cache_path.len() + 1,
    };
    let bounds = |upstream_len: usize, library: usize| {
        let max = (MAX_REFERENCE_PATH.saturating_sub(upstream_len + library))
            .min(MAX_ECR_NAME.saturating_sub(cache_len + library));
        let min = MIN_ECR_NAME.saturating_sub(cache_len + library).max(1);
        (min, max)
    };
    let path = format!("{COMPONENT}(?:/{COMPONENT})*");
    let nested = format!("{COMPONENT}(?:/{COMPONENT})+");
    if mirror.official_images_need_library {
        if let Some(up) = &mirror.upstream_path {
            return Err(format!(
                "rule {}: a Docker Hub rule with an upstream repository prefix ({up}) is not one this policy can express",
                mirror.prefix
            ));
        }
        let hosts = format!(
            "(?i:{})(?::443)?",
            DOCKER_HUB_ALIASES
                .iter()
                .map(|h| literal(h))
                .collect::<Result<Vec<_>, _>>()?
                .join("|")
        );
        let (min, max) = bounds(0, LIBRARY.len());
        let (min_ns, max_ns) = bounds(0, 0);
        return Ok(vec![
            Route {
                from: format!(
                    "Docker Hub official images: <name>, with or without a Docker Hub host ({})",
                    DOCKER_HUB_ALIASES.join(", ")
                ),
                to: format!("{location}/library/<name>"),
                pattern: format!("^(?:{hosts}/)?(?P<path>{COMPONENT}){TAG_AND_DIGEST}$"),
                replacement: format!("{location}/library/${{path}}${{ref}}"),
                min_path: min,
                max_path: max,
                not_localhost: false,
            },
            Route {
                from: "Docker Hub <namespace>/<name> (library/ included) after a Docker Hub host"
                    .to_owned(),
                to: format!("{location}/<namespace>/<name>"),
                pattern: format!("^{hosts}/(?P<path>{nested}){TAG_AND_DIGEST}$"),
                replacement: format!("{location}/${{path}}${{ref}}"),
                min_path: min_ns,
                max_path: max_ns,
                not_localhost: false,
            },
            Route {
                from: "Docker Hub <namespace>/<name> with no host (a first component without '.' or ':', not localhost)".to_owned(),
                to: format!("{location}/<namespace>/<name>"),
                pattern: format!(
                    "^(?P<path>{FIRST_COMPONENT_NOT_A_HOST}(?:/{COMPONENT})+){TAG_AND_DIGEST}$"
                ),
                replacement: format!("{location}/${{path}}${{ref}}"),
                min_path: min_ns,
                max_path: max_ns,
                not_localhost: true,
            },
        ]);
    }
    let host = host_pattern(&mirror.registry)?;
    let (upstream, upstream_len) = match &mirror.upstream_path {
        Some(up) => (format!("{}/", literal(up)?), up.len() + 1),
        None => (String::new(), 0),
    };
    let (min, max) = bounds(upstream_len, 0);
    Ok(vec![Route {
        from: format!("{}/<path>", mirror.source()),
        to: format!("{location}/<path>"),
        pattern: format!("^{host}/{upstream}(?P<path>{path}){TAG_AND_DIGEST}$"),
        replacement: format!("{location}/${{path}}${{ref}}"),
        min_path: min,
        max_path: max,
        not_localhost: false,
    }])
}

/// `host[:port]` as an RE2 pattern: the host case-insensitive (references' hosts are read
/// lowercased), `:443` optional when no port is given (a reference's `host:443` is `host`).
fn host_pattern(registry: &str) -> Result<String, String> {
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host = format!("(?i:{})", literal(host)?);
    Ok(match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}:{port}")
        }
        Some(port) => {
            return Err(format!(
                "registry {registry}: port {port:?} is not a number"
            ));
        }
        None => format!("{host}(?::443)?"),
    })
}

/// A host or path as an RE2 literal without backslashes (`.` as `[.]`). Errors on any
/// character other than lowercase letters, digits, `.`, `_`, `-` and `/`.
fn literal(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '.' => out.push_str("[.]"),
            'a'..='z' | '0'..='9' | '_' | '-' | '/' => out.push(c),
            _ => {
                return Err(format!(
                    "{text:?}: {c:?} is not a character of a registry host or repository path"
                ));
            }
        }
    }
    Ok(out)
}

/// The container lists a rule rewrites, each with the rule it belongs to.
const POD_LISTS: [&str; 2] = ["containers", "initContainers"];
const EPHEMERAL_LIST: &str = "ephemeralContainers";

/// The policy: a head comment (how to apply it, what it does, its limits, the rules and
/// references it does not rewrite with why), then the `ClusterPolicy`.
///
/// Errors: no rule that can be written as a route (nothing would be rewritten).
pub fn render(input: &Input) -> Result<Vec<OutputFile>, String> {
    let host = input.registry_host;
    let mut written: Vec<(&Mirror, Vec<Route>)> = Vec::new();
    let mut left_out: Vec<String> = input
        .unused_rules
        .iter()
        .map(
            |(prefix, reason)| match reason.starts_with(&format!("rule {prefix} ")) {
                true => reason.clone(),
                false => format!("rule {prefix}: {reason}"),
            },
        )
        .collect();
    for mirror in input.mirrors {
        match routes(mirror, host) {
            Ok(routes) => written.push((mirror, routes)),
            Err(reason) => left_out.push(reason),
        }
    }
    if written.is_empty() {
        return Err(match left_out.is_empty() {
            true => "no pull-through cache rule: a Kyverno policy would rewrite nothing".to_owned(),
            false => format!(
                "no rule can be written as a Kyverno rewrite: {}",
                left_out.join("; ")
            ),
        });
    }
    let mut text = head(input, &written, &left_out);
    text.push_str(&policy(&written));
    Ok(vec![OutputFile {
        path: FILE.to_owned(),
        text,
    }])
}

fn head(input: &Input, written: &[(&Mirror, Vec<Route>)], left_out: &[String]) -> String {
    let host = input.registry_host;
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(if s.is_empty() { "#" } else { "" });
        out.push_str(&comment(s));
        out.push('\n');
    };
    line(&format!(
        "Kyverno ClusterPolicy {POLICY_NAME}, written by `ptc map --format kyverno`: new Pods' images"
    ));
    line(&format!(
        "pulled through the Amazon ECR pull-through cache {host}, with the routing of `ptc map`:"
    ));
    for (mirror, _) in written {
        let library = match mirror.official_images_need_library {
            true => " (official images: library/<name>)",
            false => "",
        };
        line(&format!(
            "  {} -> {}{library}   (rule {})",
            mirror.source(),
            mirror.location(host),
            mirror.prefix
        ));
    }
    for text in [
        "",
        "Apply (Kyverno 1.13 or later):",
        &format!("  kubectl apply -f {FILE}"),
        "  kubectl run ptc-check --image=nginx:1.25 --dry-run=server -o jsonpath='{.spec.containers[0].image}'",
        "What it does:",
        "- Pods at creation (containers, initContainers) and ephemeral containers added later",
        "  (kubectl debug). Deployments, StatefulSets, Jobs... keep their specs (autogen off, so",
        "  GitOps tools see no drift); the Pods they create are rewritten.",
        "- Tags and digests are kept; a reference with neither stays so (the kubelet pulls :latest).",
        "- Images no rule routes are left as they are: other registries, the cache's own URIs (so a",
        "  second pass changes nothing), EKS add-on registries, names ECR cannot hold (a__b).",
        "- The first route that matches wins, in the order of the rules, as `ptc map` routes.",
        "Limits:",
        "- Failure policy Ignore: when Kyverno is unavailable or a rule fails, Pods are admitted",
        "  unchanged and pull from the upstream. Set webhookConfiguration.failurePolicy: Fail if",
        "  pulls must never go upstream.",
        "- Existing Pods keep their images until they are recreated (background: false; a Pod",
        "  update is not rewritten: a new image would restart the container).",
        "- Kyverno's default resourceFilters skip kube-system, kube-public, kube-node-lease and",
        "  Kyverno's own namespace.",
        "- Nodes pull with their own role: it needs ecr:BatchImportUpstreamImage (and",
        "  ecr:CreateRepository for an image's first pull) on these repositories.",
        "- Hosts match case-insensitively with Go's Unicode case folding, so a host written with",
        "  K (U+212A) or long s (U+017F), which `ptc map` calls invalid, is rewritten too.",
    ] {
        line(text);
    }
    if !left_out.is_empty() {
        line("Rules not written:");
        for reason in left_out {
            line(&format!("- {reason}"));
        }
    }
    if !input.images.is_empty() {
        line("References given:");
        for image in input.images {
            line(&reference_line(image));
        }
    }
    out.push('\n');
    out
}

fn reference_line(image: &Classified) -> String {
    match (image.class, &image.uri) {
        (ImageClass::Routable, Some(uri)) => format!("- {} -> {uri}", image.reference),
        (class, _) => format!(
            "- {}: left as it is, {class}: {}",
            image.reference,
            image.reason.as_deref().unwrap_or_default()
        ),
    }
}

fn policy(written: &[(&Mirror, Vec<Route>)]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: {POLICY_NAME}
  annotations:
    policies.kyverno.io/title: Pull images through the ECR pull-through cache
    policies.kyverno.io/subject: Pod
    policies.kyverno.io/minversion: 1.13.0
    # Pods only: controllers keep their templates, the Pods they create are rewritten.
    pod-policies.kyverno.io/autogen-controllers: none
spec:
  admission: true
  # Admission only: existing Pods are not rewritten.
  background: false
  webhookConfiguration:
    # Kyverno down or a rule failing: the Pod is admitted unchanged (pulls from the upstream).
    failurePolicy: Ignore
    timeoutSeconds: 10
  rules:
  - name: rewrite-pod-images
    match:
      any:
      - resources:
          kinds:
          - Pod
          # Not UPDATE: a new image on a running Pod restarts its container.
          operations:
          - CREATE
    mutate:
      foreach:
"
    ));
    for (mirror, routes) in written {
        for route in routes {
            for list in POD_LISTS {
                foreach(&mut out, mirror, route, list, false);
            }
        }
    }
    out.push_str(
        "  - name: rewrite-ephemeral-container-images
    match:
      any:
      - resources:
          kinds:
          - Pod/ephemeralcontainers
          operations:
          - UPDATE
    mutate:
      foreach:
",
    );
    for (mirror, routes) in written {
        for route in routes {
            foreach(&mut out, mirror, route, EPHEMERAL_LIST, true);
        }
    }
    out
}

/// One `mutate.foreach` entry: `route` over the containers of `list`.
fn foreach(out: &mut String, mirror: &Mirror, route: &Route, list: &str, only_new: bool) {
    let what = format!("rule {}: {}\n  -> {}", mirror.prefix, route.from, route.to);
    for line in comment(&what).lines() {
        let _ = writeln!(out, "      {line}");
    }
    let _ = writeln!(out, "      - list: request.object.spec.{list}");
    let _ = writeln!(out, "        context:");
    let _ = writeln!(out, "        - name: route");
    let _ = writeln!(out, "          variable:");
    let _ = writeln!(out, "            value:");
    let _ = writeln!(
        out,
        "              match: {}",
        single_quoted(&route.pattern)
    );
    let _ = writeln!(
        out,
        "              to: {}",
        single_quoted(&route.replacement)
    );
    let _ = writeln!(out, "        preconditions:");
    let _ = writeln!(out, "          all:");
    let condition = |out: &mut String, key: &str, operator: &str, value: &str| {
        let _ = writeln!(out, "          - key: {}", double_quoted(key));
        let _ = writeln!(out, "            operator: {operator}");
        let _ = writeln!(out, "            value: {value}");
    };
    condition(
        out,
        "{{ regex_match(route.match, element.image) }}",
        "Equals",
        "true",
    );
    let path_length = "{{ length(regex_replace_all(route.match, element.image, '${path}')) }}";
    if route.min_path > 1 {
        condition(
            out,
            path_length,
            "GreaterThanOrEquals",
            &route.min_path.to_string(),
        );
    }
    condition(
        out,
        path_length,
        "LessThanOrEquals",
        &route.max_path.to_string(),
    );
    if route.not_localhost {
        condition(
            out,
            "{{ starts_with(element.image, 'localhost/') }}",
            "Equals",
            "false",
        );
    }
    if only_new {
        // Existing ephemeral containers cannot be changed: only the ones this request adds.
        condition(
            out,
            "{{ contains(request.oldObject.spec.ephemeralContainers[].name || `[]`, element.name) }}",
            "Equals",
            "false",
        );
    }
    let _ = writeln!(out, "        patchStrategicMerge:");
    let _ = writeln!(out, "          spec:");
    let _ = writeln!(out, "            {list}:");
    let _ = writeln!(out, "            - name: \"{{{{ element.name }}}}\"");
    let _ = writeln!(
        out,
        "              image: {}",
        double_quoted("{{ regex_replace_all(route.match, element.image, route.to) }}")
    );
}

/// A YAML single-quoted scalar (`'` doubled).
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A YAML double-quoted scalar: JSON's string escapes are YAML's.
fn double_quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

#[cfg(test)]
mod tests {
    use ptc_core::adoption::mirrors;
    use ptc_core::rules::{PtcRule, RuleSet};

    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";

    fn rule_set(rules: Vec<PtcRule>) -> RuleSet {
        RuleSet::new(rules)
    }

    #[test]
    fn docker_hub_has_three_routes_and_others_one() {
        let rules = rule_set(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let (found, _) = mirrors(&rules);
        let hub = routes(&found[0], HOST).unwrap();
        assert_eq!(hub.len(), 3);
        assert_eq!(
            hub[0].replacement,
            format!("{HOST}/docker-hub/library/${{path}}${{ref}}")
        );
        // docker-hub/library/<name> is at most 256: <name> at most 256 - 11 - 8.
        assert_eq!(hub[0].max_path, 237);
        assert!(hub[2].not_localhost);
        let quay = routes(&found[1], HOST).unwrap();
        assert_eq!(quay.len(), 1);
        assert!(
            quay[0]
                .pattern
                .starts_with("^(?i:quay[.]io)(?::443)?/(?P<path>")
        );
        assert_eq!(quay[0].max_path, 251);
    }

    #[test]
    fn upstream_prefix_is_a_literal_and_root_needs_two_characters() {
        let upstream = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";
        let rules = rule_set(vec![
            PtcRule::new("team-ecr", upstream)
                .unwrap()
                .with_upstream_prefix("team"),
            PtcRule::new("ROOT", "quay.io").unwrap(),
        ]);
        let (found, unused) = mirrors(&rules);
        assert!(unused.is_empty(), "{unused:?}");
        let root = routes(&found[0], HOST).unwrap();
        assert_eq!(root[0].replacement, format!("{HOST}/${{path}}${{ref}}"));
        assert_eq!(root[0].min_path, 2);
        let team = routes(&found[1], HOST).unwrap();
        assert!(
            team[0]
                .pattern
                .contains("amazonaws[.]com)(?::443)?/team/(?P<path>"),
            "{}",
            team[0].pattern
        );
        // team/<path> at most 255 (250), team-ecr/<path> at most 256 (247).
        assert_eq!(team[0].max_path, 247);
    }

    #[test]
    fn a_rule_for_the_caches_own_registry_is_a_comment() {
        let rules = rule_set(vec![
            PtcRule::new("self", HOST).unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let (found, unused) = mirrors(&rules);
        let input = Input {
            registry_host: HOST,
            mirrors: &found,
            unused_rules: &unused,
            images: &[],
        };
        let text = render(&input).unwrap().remove(0).text;
        assert!(
            text.contains("# - rule self: its upstream") && text.contains("already cached"),
            "{text}"
        );
        assert!(!text.contains("      # rule self:"), "{text}");
        assert!(text.contains("      # rule quay:"), "{text}");
    }

    #[test]
    fn shadowed_rules_and_references_left_upstream_are_comments_with_why() {
        let rules = rule_set(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("hub2", "docker.io").unwrap(),
        ]);
        let (found, unused) = mirrors(&rules);
        let images: Vec<Classified> = ["nginx:1.25", "gcr.io/x/y"]
            .iter()
            .map(|r| ptc_core::adoption::classify(r, &rules, HOST))
            .collect();
        let input = Input {
            registry_host: HOST,
            mirrors: &found,
            unused_rules: &unused,
            images: &images,
        };
        let text = render(&input).unwrap().remove(0).text;
        assert!(
            text.contains(
                "\n# - rule hub2 is never used: rule docker-hub routes docker.io first\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "\n# - nginx:1.25 -> {HOST}/docker-hub/library/nginx:1.25\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "\n# - gcr.io/x/y: left as it is, unsupported: registry gcr.io is not supported"
            ),
            "{text}"
        );
        let yaml: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(yaml["kind"], "ClusterPolicy");
    }

    #[test]
    fn no_rule_is_an_error() {
        let input = Input {
            registry_host: HOST,
            mirrors: &[],
            unused_rules: &[],
            images: &[],
        };
        assert!(render(&input).unwrap_err().contains("rewrite nothing"));
    }

    #[test]
    fn patterns_carry_no_backslash_nor_quote() {
        let rules = rule_set(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("local", "registry.example.com:5000").unwrap(),
        ]);
        let (found, _) = mirrors(&rules);
        for mirror in &found {
            for route in routes(mirror, HOST).unwrap() {
                for text in [&route.pattern, &route.replacement] {
                    assert!(!text.contains(['\\', '\'', '"']), "{text}");
                    assert!(!text.contains("{{"), "{text}");
                }
            }
        }
        let local = routes(&found[1], HOST).unwrap();
        assert!(
            local[0]
                .pattern
                .starts_with("^(?i:registry[.]example[.]com):5000/"),
            "{}",
            local[0].pattern
        );
    }
}
