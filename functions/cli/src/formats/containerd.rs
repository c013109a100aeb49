//! `containerd-hosts`: containerd registry host configs (`certs.d/<registry>/hosts.toml`)
//! that send pulls to the cache, and the kubelet `CredentialProviderConfig` that makes those
//! pulls authenticate.
//!
//! hosts.toml, as containerd reads it (core/remotes/docker/config/hosts.go of
//! <https://github.com/containerd/containerd>, commit 301026e5, August 2026, and its
//! docs/hosts.md):
//! - one directory per registry host the references name (`docker.io`, `quay.io`), under
//!   the CRI plugin's `config_path`;
//! - `parseHostsFile` always appends the root entry (`server` and the top-level keys) after
//!   the `[host."…"]` entries, and `ConfigureHosts` fills an empty `server` with the upstream
//!   (`https://registry-1.docker.io` for `docker.io`) with every capability: a file cannot
//!   leave the upstream out by omitting `server`, and `capabilities = []` means all of them
//!   (`parseHostConfig`: only a non-empty list narrows). So the cache is written as the
//!   `server` itself, with no `[host]` entry: containerd has no upstream fallback for the
//!   namespace. A fallback would get the node's ECR token (kubelet's credentials go to every
//!   host of a pull, see below): a secret where it does not belong, and a registry that
//!   cannot read it refuses the pull anyway;
//! - `parseHostConfig` appends `/v2` to the path unless `override_path = true`, so the cache
//!   is `https://<registry host>/v2/<cache prefix>` with `override_path`, and containerd
//!   requests `<that path>/<repository>/manifests/<ref>`; it names Docker Hub's official
//!   images `library/<name>` itself, which lands on `docker-hub/library/<name>`;
//! - a host config is per registry host: a rule with an upstream repository prefix (only
//!   `<host>/<prefix>/…` is cached, under another path) cannot be written, and is commented.
//!
//! Credentials (what makes a mirrored pull authenticate), from the sources:
//! - kubelet asks a credential provider for the image as written (`docker.io/library/nginx`)
//!   only when one of its `matchImages` matches that image's registry, and hands the answer
//!   to the CRI as username and password with no server address (kubernetes
//!   pkg/credentialprovider/keyring.go, `BasicDockerKeyring.Add`);
//! - containerd's CRI gives credentials without a server address to every host it contacts
//!   for that pull, mirrors included (internal/cri/server/images/image_pull.go, `ParseAuth`);
//! - ecr-credential-provider answers for a host that is not ECR's (`docker.io`) with a token
//!   of the registry in its SDK's default Region since v1.29.0 (kubernetes/cloud-provider-aws
//!   commit cd5ad050, cmd/ecr-credential-provider/main.go); before that it refused.
//!
//! So the provider's `matchImages` must list each upstream host, and its `AWS_REGION` must be
//! the cache's Region. The public reports are this gap: bottlerocket-os/bottlerocket#3631
//! (the provider matched only ECR hosts: the mirror got no credentials),
//! awslabs/amazon-ecr-credential-helper#947 (the containerd credential helper has no mapping),
//! aws/containers-roadmap#2260; kubernetes/kops#16593 does what this file does.

use serde::Serialize;

use ptc_core::adoption::Mirror;
use ptc_core::reference::DOCKER_HUB;

use super::{Input, OutputFile, comment};

/// ECR Public's host, which ecr-credential-provider answers with ECR Public credentials.
const ECR_PUBLIC: &str = "public.ecr.aws";

/// Where the kubelet credential provider config is written, next to `certs.d/`.
pub const CREDENTIAL_PROVIDER_FILE: &str = "kubelet/credential-provider-config.yaml";

/// One hosts.toml: the root entry alone (`server` and the top-level `hostFileConfig` keys of
/// hosts.go), the cache as the namespace's server: no `[host]` entry, no upstream fallback.
#[derive(Debug, Serialize)]
struct HostsFile {
    server: String,
    capabilities: Vec<&'static str>,
    override_path: bool,
}

/// `kubelet.config.k8s.io/v1` `CredentialProviderConfig`
/// (<https://kubernetes.io/docs/reference/config-api/kubelet-credentialprovider.v1/> and
/// kubelet-config.v1).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialProviderConfig {
    api_version: &'static str,
    kind: &'static str,
    providers: Vec<Provider>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    name: &'static str,
    api_version: &'static str,
    match_images: Vec<String>,
    default_cache_duration: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvVar>,
}

#[derive(Debug, Serialize)]
struct EnvVar {
    name: &'static str,
    value: String,
}

/// `certs.d/<registry>/hosts.toml` for each registry with a rule that covers it whole (no
/// upstream repository prefix), then [`CREDENTIAL_PROVIDER_FILE`]. What cannot be written
/// (rules with an upstream repository prefix, rules that route nothing, references left
/// upstream) is commented in the credential provider file, and in the hosts.toml of the
/// same registry when there is one.
///
/// Errors: a value the TOML or YAML serializer refuses (never for the strings [`Mirror`]
/// holds).
pub fn render(input: &Input) -> Result<Vec<OutputFile>, String> {
    let host = input.registry_host;
    let (whole, partial): (Vec<&Mirror>, Vec<&Mirror>) = input
        .mirrors
        .iter()
        .partition(|m| m.upstream_path.is_none());
    // ECR Public: ecr-credential-provider answers `public.ecr.aws` images with an ECR Public
    // token (us-east-1, `ecrPublicHosts` / `getPublicCredsData` in
    // cmd/ecr-credential-provider/main.go), which the private registry refuses: a mirror for it
    // would fail every such pull. Left out, and said.
    let (public, whole): (Vec<&Mirror>, Vec<&Mirror>) =
        whole.into_iter().partition(|m| m.registry == ECR_PUBLIC);
    let mut partial_notes: Vec<(String, String)> = partial
        .iter()
        .map(|m| (m.registry.clone(), not_expressible(m, host)))
        .collect();
    partial_notes.extend(public.iter().map(|m| {
        (
            m.registry.clone(),
            format!(
                "rule {} ({ECR_PUBLIC} -> {}) not written: ecr-credential-provider answers {ECR_PUBLIC} images with an ECR Public token (cmd/ecr-credential-provider/main.go, ecrPublicHosts), which {host} refuses, so every such pull would fail; reference {}/<path> directly (ptc rewrite, --format kyverno)",
                m.prefix,
                m.location(host),
                m.location(host)
            ),
        )
    }));
    let mut files = Vec::new();
    for mirror in &whole {
        // This file sends the whole registry to `mirror`'s cache path, the partial rules'
        // namespaces too: said where it happens.
        let notes: Vec<String> = partial_notes
            .iter()
            .filter(|(registry, _)| *registry == mirror.registry)
            .map(|(_, note)| {
                format!(
                    "{note}; with this file containerd pulls it through rule {} instead",
                    mirror.prefix
                )
            })
            .collect();
        files.push(hosts_file(mirror, host, &mirror.registry, &notes)?);
        if mirror.registry == DOCKER_HUB {
            for alias in super::docker_hub_hosts_runtimes_keep() {
                let note = format!(
                    "Docker Hub written as {alias}/<namespace>/<name> (containerd keeps that host): the same cache path; a one-component name there needs library/ ({alias}/library/nginx)"
                );
                files.push(hosts_file(mirror, host, alias, &[note])?);
            }
        }
    }
    let mut notes: Vec<String> = partial_notes.into_iter().map(|(_, n)| n).collect();
    for (prefix, reason) in input.unused_rules {
        notes.push(format!("rule {prefix} not written: {reason}"));
    }
    for image in input.images {
        notes.push(match (&image.uri, image.is_routable()) {
            (Some(uri), true) => {
                let mirrored = whole
                    .iter()
                    .any(|m| Some(m.prefix.as_str()) == image.prefix.as_deref());
                if mirrored {
                    format!("{} is pulled from {uri}", image.reference)
                } else {
                    format!(
                        "{} is not mirrored here (see above): reference {uri} instead",
                        image.reference
                    )
                }
            }
            _ => format!(
                "{} stays as written ({}): {}",
                image.reference,
                image.class,
                image.reason.as_deref().unwrap_or("no reason given")
            ),
        });
    }
    files.push(credential_provider_file(input, &whole, &notes)?);
    Ok(files)
}

/// The hosts.toml of one rule that covers its registry whole, for references written with
/// the host `written` (the rule's registry, or a Docker Hub host containerd keeps).
fn hosts_file(
    mirror: &Mirror,
    host: &str,
    written: &str,
    notes: &[String],
) -> Result<OutputFile, String> {
    let url = cache_url(mirror, host);
    let file = HostsFile {
        server: url.clone(),
        capabilities: vec!["pull", "resolve"],
        override_path: true,
    };
    let toml = toml::to_string(&file).map_err(|e| {
        format!(
            "containerd-hosts: cannot write TOML for {}: {e}",
            mirror.registry
        )
    })?;
    let example = if mirror.official_images_need_library && written == DOCKER_HUB {
        format!(
            "nginx:1.25 -> {url}/library/nginx/manifests/1.25 (containerd adds library/ itself)"
        )
    } else {
        format!("{written}/<path>:<tag> -> {url}/<path>/manifests/<tag>")
    };
    let mut lines = vec![
        format!(
            "containerd hosts.toml for {written}: pulls go to the Amazon ECR pull-through cache (rule {}, {}), and only there.",
            mirror.prefix, mirror.upstream_url
        ),
        format!(
            "Install as /etc/containerd/certs.d/{written}/hosts.toml with config_path = \"/etc/containerd/certs.d\" in [plugins.\"io.containerd.cri.v1.images\".registry] (1.x: io.containerd.grpc.v1.cri)."
        ),
        example,
        "override_path: the URL's path is the API root as written; without it containerd appends /v2".to_owned(),
        "(core/remotes/docker/config/hosts.go, parseHostConfig; docs/hosts.md).".to_owned(),
        format!("Credentials: {CREDENTIAL_PROVIDER_FILE} (kubelet)."),
        format!(
            "No upstream fallback ({}): containerd would send it the node's ECR token, which it cannot use.",
            server(mirror)
        ),
    ];
    lines.extend(notes.iter().cloned());
    Ok(OutputFile {
        path: format!("certs.d/{written}/hosts.toml"),
        text: format!("{}\n{toml}", comment(&lines.join("\n"))),
    })
}

/// The upstream server containerd would fall back to: Docker Hub's API host for `docker.io`
/// (containerd's own default, hosts.go), else the registry itself.
fn server(mirror: &Mirror) -> String {
    if mirror.registry == DOCKER_HUB {
        "https://registry-1.docker.io".to_owned()
    } else {
        format!("https://{}", mirror.registry)
    }
}

/// `https://<registry host>/v2[/<cache path>]`: the API root of the rule's namespace.
fn cache_url(mirror: &Mirror, host: &str) -> String {
    if mirror.cache_path.is_empty() {
        format!("https://{host}/v2")
    } else {
        format!("https://{host}/v2/{}", mirror.cache_path)
    }
}

fn not_expressible(mirror: &Mirror, host: &str) -> String {
    format!(
        "rule {} ({} -> {}) not written: hosts.toml is per registry host and cannot route only {}/... to another path; reference {}/<path> directly",
        mirror.prefix,
        mirror.source(),
        mirror.location(host),
        mirror.source(),
        mirror.location(host)
    )
}

/// The Region of `<account>.dkr.ecr[-fips].<region>.<domain>`, `None` for another host.
fn ecr_region(host: &str) -> Option<&str> {
    let mut parts = host.split('.');
    let account = parts.next()?;
    let dkr = parts.next()?;
    let ecr = parts.next()?;
    let region = parts.next()?;
    let ok = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && dkr == "dkr"
        && (ecr == "ecr" || ecr == "ecr-fips")
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(region)
}

/// The kubelet `CredentialProviderConfig` for ecr-credential-provider: the cache host and
/// every mirrored registry in `matchImages`, `AWS_REGION` the cache's Region.
fn credential_provider_file(
    input: &Input,
    whole: &[&Mirror],
    notes: &[String],
) -> Result<OutputFile, String> {
    let host = input.registry_host;
    let mut match_images = vec![host.to_owned()];
    for mirror in whole {
        let mut hosts = vec![mirror.registry.clone()];
        if mirror.registry == DOCKER_HUB {
            hosts.extend(super::docker_hub_hosts_runtimes_keep().map(str::to_owned));
        }
        for h in hosts {
            if !match_images.contains(&h) {
                match_images.push(h);
            }
        }
    }
    let region = ecr_region(host);
    let config = CredentialProviderConfig {
        api_version: "kubelet.config.k8s.io/v1",
        kind: "CredentialProviderConfig",
        providers: vec![Provider {
            name: "ecr-credential-provider",
            api_version: "credentialprovider.kubelet.k8s.io/v1",
            match_images,
            default_cache_duration: "12h",
            env: region
                .map(|r| {
                    vec![EnvVar {
                        name: "AWS_REGION",
                        value: r.to_owned(),
                    }]
                })
                .unwrap_or_default(),
        }],
    };
    let yaml = serde_norway::to_string(&config)
        .map_err(|e| format!("containerd-hosts: cannot write YAML: {e}"))?;
    let mut lines = vec![
        "kubelet CredentialProviderConfig: --image-credential-provider-config=<this file>,".to_owned(),
        "--image-credential-provider-bin-dir=<dir holding ecr-credential-provider v1.29.0 or later>.".to_owned(),
        "Why it makes a mirrored pull authenticate (read in the sources, not run against a live kubelet here):".to_owned(),
        "- kubelet calls the provider only for images whose registry matches matchImages: the upstream".to_owned(),
        "  hosts (docker.io, ...) must be listed, not only the ECR host (bottlerocket-os/bottlerocket#3631);".to_owned(),
        "- ecr-credential-provider >= v1.29.0 answers for a host that is not ECR with a token of the".to_owned(),
        "  registry in AWS_REGION (kubernetes/cloud-provider-aws cmd/ecr-credential-provider/main.go);".to_owned(),
        "  older versions refuse such images;".to_owned(),
        "- kubelet passes it to the CRI with no server address (kubernetes pkg/credentialprovider/keyring.go),".to_owned(),
        "  and containerd then sends it to every host of that pull, the mirror included".to_owned(),
        "  (containerd internal/cri/server/images/image_pull.go, ParseAuth). The node role needs the".to_owned(),
        "  cache's pull permissions (ecr:BatchGetImage, ecr:BatchImportUpstreamImage, ...).".to_owned(),
        "- `ctr`/`nerdctl` pulls do not go through kubelet: they get no credentials from this file.".to_owned(),
    ];
    match region {
        Some(r) => lines.push(format!("AWS_REGION={r}: the Region of {host}, whose token the provider asks for.")),
        None => lines.push(format!(
            "{host} is not an ECR host of the form <account>.dkr.ecr.<region>.<domain>: set AWS_REGION in env yourself."
        )),
    }
    if whole.iter().any(|m| ecr_region(&m.registry).is_some()) {
        lines.push(
            "For an ECR upstream the provider takes the Region from the image's host, not AWS_REGION: if it is another Region, its token may not open the cache; reference the cache URI directly.".to_owned(),
        );
    }
    lines.extend(notes.iter().cloned());
    let mut text = format!("{}\n{yaml}", comment(&lines.join("\n")));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(OutputFile {
        path: CREDENTIAL_PROVIDER_FILE.to_owned(),
        text,
    })
}

#[cfg(test)]
mod tests {
    use ptc_core::adoption::{self, Classified, classify};
    use ptc_core::rules::{PtcRule, RuleSet};

    use super::*;

    const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
    const ECR_UP: &str = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";

    fn render_rules(rules: &RuleSet, refs: &[&str]) -> Vec<OutputFile> {
        let (mirrors, unused) = adoption::mirrors(rules);
        let images: Vec<Classified> = refs.iter().map(|r| classify(r, rules, HOST)).collect();
        render(&Input {
            registry_host: HOST,
            mirrors: &mirrors,
            unused_rules: &unused,
            images: &images,
        })
        .unwrap()
    }

    #[test]
    fn upstream_prefix_rules_are_comments_and_others_files() {
        let rules = RuleSet::new(vec![
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("team-ecr", ECR_UP)
                .unwrap()
                .with_upstream_prefix("team"),
        ]);
        let files = render_rules(&rules, &["nginx:1.25"]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "certs.d/docker.io/hosts.toml",
                "certs.d/registry-1.docker.io/hosts.toml",
                "certs.d/registry.hub.docker.com/hosts.toml",
                CREDENTIAL_PROVIDER_FILE
            ]
        );
        let hosts: toml::Table = toml::from_str(&files[0].text).unwrap();
        assert_eq!(
            hosts["server"].as_str(),
            Some(format!("https://{HOST}/v2/docker-hub").as_str())
        );
        assert_eq!(hosts["override_path"].as_bool(), Some(true));
        assert!(hosts.get("host").is_none(), "no [host]: no fallback");
        let provider = &files[3].text;
        assert!(
            provider.contains(&format!("# rule team-ecr ({ECR_UP}/team -> {HOST}/team-ecr) not written: hosts.toml is per registry host")),
            "{provider}"
        );
        let yaml: serde_norway::Value = serde_norway::from_str(provider).unwrap();
        let matches = &yaml["providers"][0]["matchImages"];
        assert_eq!(
            matches,
            &serde_norway::to_value([
                HOST,
                "docker.io",
                "registry-1.docker.io",
                "registry.hub.docker.com"
            ])
            .unwrap()
        );
        assert_eq!(
            yaml["providers"][0]["env"][0]["value"].as_str(),
            Some("eu-west-2")
        );
    }

    /// A whole-registry rule and an upstream-prefix rule on one ECR upstream: the hosts.toml
    /// sends the prefix's namespace through the whole rule, and says so.
    #[test]
    fn a_partial_rule_beside_a_whole_one_is_named_in_its_hosts_file() {
        let rules = RuleSet::new(vec![
            PtcRule::new("a-apps", ECR_UP)
                .unwrap()
                .with_upstream_prefix("apps"),
            PtcRule::new("b-all", ECR_UP).unwrap(),
        ]);
        let files = render_rules(&rules, &[]);
        assert_eq!(files[0].path, format!("certs.d/{ECR_UP}/hosts.toml"));
        assert!(
            files[0].text.contains(&format!(
                "# rule a-apps ({ECR_UP}/apps -> {HOST}/a-apps) not written: hosts.toml is per registry host"
            )) && files[0]
                .text
                .contains("with this file containerd pulls it through rule b-all instead"),
            "{}",
            files[0].text
        );
        let hosts: toml::Table = toml::from_str(&files[0].text).unwrap();
        assert_eq!(
            hosts["server"].as_str(),
            Some(format!("https://{HOST}/v2/b-all").as_str())
        );
    }

    /// ecr-credential-provider answers public.ecr.aws with ECR Public credentials, which the
    /// private registry refuses (a review): no hosts.toml, no matchImages entry, the reason.
    #[test]
    fn an_ecr_public_rule_is_not_a_node_mirror() {
        let rules = RuleSet::new(vec![
            PtcRule::new("ecr-public", "public.ecr.aws").unwrap(),
            PtcRule::new("quay", "quay.io").unwrap(),
        ]);
        let files = render_rules(&rules, &[]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["certs.d/quay.io/hosts.toml", CREDENTIAL_PROVIDER_FILE]
        );
        let provider = &files[1].text;
        assert!(
            provider.contains("# rule ecr-public (public.ecr.aws -> ")
                && provider.contains("an ECR Public token"),
            "{provider}"
        );
        let yaml: serde_norway::Value = serde_norway::from_str(provider).unwrap();
        assert_eq!(
            yaml["providers"][0]["matchImages"],
            serde_norway::to_value([HOST, "quay.io"]).unwrap()
        );
    }

    #[test]
    fn ecr_regions_are_read_from_the_host() {
        assert_eq!(ecr_region(HOST), Some("eu-west-2"));
        assert_eq!(
            ecr_region("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"),
            Some("us-east-1")
        );
        assert_eq!(ecr_region("127.0.0.1:5000"), None);
        assert_eq!(ecr_region("quay.io"), None);
    }
}
