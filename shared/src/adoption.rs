//! Adoption: where the images a cluster runs stand with respect to the cache, and the routing
//! of each rule as the formats that point clusters at the cache need it.
//!
//! Both come from [`RuleSet::route`], the one routing of this code base:
//! - [`classify`] tells, for one reference as written in a manifest, whether it is
//!   [`ImageClass::Routable`] (and its cached URI), already on the cache, on AWS's own
//!   registries, for an upstream with no rule, for an upstream ECR cannot cache, or invalid;
//! - [`mirrors`] gives, for each rule, the upstream namespace it serves (`quay.io`,
//!   `docker.io`, `<host>/<upstream prefix>`) and where it lands in the cache
//!   (`<registry host>/<prefix>`), found by routing a probe reference through the rules, so
//!   that every format (`terraform-locals`, `containerd-hosts`, `registries-conf`, `kyverno`)
//!   says what [`RuleSet::route`] says.
//!
//! Sources: the upstreams and prefixes of
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html>; Docker
//! Hub's official images need `library/` in the cached name
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-working-pulling.html>);
//! the EKS add-on registries of
//! <https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html>.

use serde::Serialize;

use crate::reference::{DOCKER_HUB, ImageReference};
use crate::rules::{Prefix, RuleError, RuleSet, UpstreamKind};

/// Where one image reference stands with respect to the cache. Serialised in kebab case
/// (`routable`, `already-cached`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageClass {
    /// A rule routes it: [`Classified::uri`] is where the cache serves it.
    Routable,
    /// It already names the cache: the registry host and a repository under a rule's prefix.
    AlreadyCached,
    /// It is on AWS's own registries, where the cache gains nothing: the EKS add-on
    /// registries ([`EKS_ADDON_ACCOUNTS`]), ECR Public when no rule caches it, and any other
    /// private ECR registry no rule caches (already in Amazon ECR).
    AwsOwned,
    /// An upstream ECR supports, with no rule in this registry (or outside every rule's
    /// upstream repository prefix): a rule would make it routable.
    NoRule,
    /// An upstream ECR pull-through cache cannot cache from (Google's registries, MCR,
    /// self-hosted registries), or a name ECR cannot create.
    Unsupported,
    /// Not an image reference.
    Invalid,
}

impl ImageClass {
    /// The class as printed: `routable`, `already-cached`, `aws-owned`, `no-rule`,
    /// `unsupported`, `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routable => "routable",
            Self::AlreadyCached => "already-cached",
            Self::AwsOwned => "aws-owned",
            Self::NoRule => "no-rule",
            Self::Unsupported => "unsupported",
            Self::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for ImageClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reference, classified ([`classify`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classified {
    /// As written (trimmed).
    pub reference: String,
    /// Where it stands.
    pub class: ImageClass,
    /// The normalised upstream reference (`docker.io/library/nginx:1.25`), when it parses.
    /// For [`ImageClass::Routable`] this is what a watch list holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The rule's prefix that routes it (routable and already cached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The cached repository name, `<prefix>/<upstream path>` (routable and already cached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The tag as the reference gives it (`latest` when it gives neither tag nor digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The digest, when the reference gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The cached image URI, `<registry host>/<repository>[:tag][@digest]` (routable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Why it is not routable (every class but routable has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Classified {
    /// The parsed upstream reference, when the reference parses (`None` for invalid ones).
    pub fn upstream_reference(&self) -> Option<ImageReference> {
        self.upstream
            .as_deref()
            .and_then(|u| ImageReference::parse(u).ok())
    }

    /// Whether the class is [`ImageClass::Routable`].
    pub fn is_routable(&self) -> bool {
        self.class == ImageClass::Routable
    }

    fn bare(reference: &str, class: ImageClass, reason: String) -> Self {
        Self {
            reference: reference.to_owned(),
            class,
            upstream: None,
            prefix: None,
            repository: None,
            tag: None,
            digest: None,
            uri: None,
            reason: Some(reason),
        }
    }
}

/// The accounts of the EKS add-on registries (`<account>.dkr.ecr.<region>.amazonaws.com`),
/// one per Region or shared, from
/// <https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html> (November 2026).
/// Their images are pulled with the node role over AWS's network; a cache gains nothing.
pub const EKS_ADDON_ACCOUNTS: [&str; 23] = [
    "602401143452", // most Regions
    "877085696533", // af-south-1
    "800184023465", // ap-east-1
    "533267051163", // ap-east-2
    "296578399912", // ap-southeast-3
    "900889452093", // ap-south-2
    "491585149902", // ap-southeast-4
    "151610086707", // ap-southeast-5
    "333609536671", // ap-southeast-6
    "121268973566", // ap-southeast-7
    "918309763551", // cn-north-1
    "961992271922", // cn-northwest-1
    "590381155156", // eu-south-1
    "455263428931", // eu-south-2
    "900612956339", // eu-central-2
    "066635153087", // il-central-1
    "730335286997", // mx-central-1
    "558608220178", // me-south-1
    "759879836304", // me-central-1
    "761377655185", // ca-west-1
    "151742754352", // us-gov-east-1
    "013241004608", // us-gov-west-1
    "877088126301", // eusc-de-east-1 (amazonaws.eu)
];

/// The account of a private ECR registry host, in every form ecr-credential-provider's
/// `ecrPrivateHostPattern` accepts (kubernetes/cloud-provider-aws
/// cmd/ecr-credential-provider/main.go):
/// `<12 digits>.dkr(.|-)ecr[-fips].<region>.<domain>`, the domain one of `amazonaws.com`,
/// `amazonaws.com.cn`, `amazonaws.eu`, `on.aws`, `on.amazonwebservices.com.cn` (dual-stack),
/// `sc2s.sgov.gov`, `c2s.ic.gov`, `cloud.adc-e.uk`, `csp.hci.ic.gov`. `None` for any other host.
fn ecr_account(host: &str) -> Option<&str> {
    const DOMAINS: [&str; 9] = [
        "amazonaws.com",
        "amazonaws.com.cn",
        "amazonaws.eu",
        "on.aws",
        "on.amazonwebservices.com.cn",
        "sc2s.sgov.gov",
        "c2s.ic.gov",
        "cloud.adc-e.uk",
        "csp.hci.ic.gov",
    ];
    let host = host.split(':').next().unwrap_or_default();
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = ["dkr.ecr-fips.", "dkr-ecr-fips.", "dkr.ecr.", "dkr-ecr."]
        .iter()
        .find_map(|p| rest.strip_prefix(p))?;
    let (region, domain) = rest.split_once('.')?;
    let region_ok = region.starts_with(|c: char| c.is_ascii_alphanumeric())
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (region_ok && DOMAINS.contains(&domain)).then_some(account)
}

/// Classify one reference as written (a container's `image:`, a `FROM` line, a list entry)
/// against `rules`, the cache being on `registry_host` (`<account>.dkr.ecr.<region>.amazonaws.com`).
///
/// In order: invalid when [`ImageReference::parse`] refuses it; already cached when it names
/// `registry_host` and a repository under a rule's prefix; routable when [`RuleSet::route`]
/// routes it; then AWS-owned (EKS add-on registries, ECR Public and other private ECR
/// registries no rule serves), no rule, unsupported, from [`RuleSet::route`]'s error. Never
/// fails: the reason is in [`Classified::reason`].
pub fn classify(input: &str, rules: &RuleSet, registry_host: &str) -> Classified {
    let written = input.trim();
    let reference = match ImageReference::parse(written) {
        Ok(r) => r,
        Err(err) => return Classified::bare(written, ImageClass::Invalid, err.to_string()),
    };
    let mut out = Classified {
        reference: written.to_owned(),
        class: ImageClass::Routable,
        upstream: Some(reference.to_string()),
        prefix: None,
        repository: None,
        tag: reference.tag.clone(),
        digest: reference.digest.as_ref().map(|d| d.to_string()),
        uri: None,
        reason: None,
    };
    if reference
        .registry
        .eq_ignore_ascii_case(registry_host.trim_end_matches('/'))
    {
        return match rules.upstream_of(&reference.repository) {
            Ok(up) => Classified {
                class: ImageClass::AlreadyCached,
                prefix: Some(up.prefix.to_string()),
                repository: Some(reference.repository.clone()),
                reason: Some(format!(
                    "already on the cache: rule {} pulls it from {}/{}",
                    up.prefix, up.registry, up.repository
                )),
                ..out
            },
            Err(_) => Classified {
                class: ImageClass::AwsOwned,
                reason: Some(format!(
                    "a repository of this registry ({}) under no pull-through cache rule: already in Amazon ECR",
                    reference.registry
                )),
                ..out
            },
        };
    }
    match rules.route(&reference) {
        Ok(cached) => {
            out.uri = Some(cached.uri(registry_host));
            out.prefix = Some(cached.prefix.to_string());
            out.repository = Some(cached.repository);
            out
        }
        Err(err) => {
            let (class, reason) = not_routable(&reference, err);
            Classified {
                class,
                reason: Some(reason),
                ..out
            }
        }
    }
}

/// The class and reason of a reference [`RuleSet::route`] refused.
fn not_routable(reference: &ImageReference, err: RuleError) -> (ImageClass, String) {
    let host = reference.registry.as_str();
    if let Some(account) = ecr_account(host) {
        if EKS_ADDON_ACCOUNTS.contains(&account) {
            return (
                ImageClass::AwsOwned,
                format!(
                    "an Amazon EKS add-on registry ({host}): pulled with the node role over AWS's network, a cache gains nothing"
                ),
            );
        }
        return (
            ImageClass::AwsOwned,
            format!("already in Amazon ECR ({host}), and no ECR-to-ECR rule caches it"),
        );
    }
    if host == "public.ecr.aws" {
        return (
            ImageClass::AwsOwned,
            "Amazon ECR Public, on AWS's own infrastructure, and no rule caches it (an ecr-public rule would)".to_owned(),
        );
    }
    let class = match err {
        RuleError::NoRule { .. } | RuleError::OutsideUpstreamPrefix { .. } => ImageClass::NoRule,
        _ => ImageClass::Unsupported,
    };
    (class, err.to_string())
}

/// The routing of one rule as a namespace: what the formats that redirect a whole upstream
/// (mirrors, locals, admission policies) need. Found by routing a probe reference through
/// [`RuleSet::route`] (see [`mirrors`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    /// The rule's prefix (`docker-hub`, `quay`, `ROOT`).
    pub prefix: Prefix,
    /// The rule's upstream kind.
    pub kind: UpstreamKind,
    /// The rule's `upstreamRegistryUrl` (`registry-1.docker.io` for Docker Hub).
    pub upstream_url: String,
    /// The registry host as image references name it: `docker.io` for Docker Hub (which
    /// containerd's `certs.d` and registries.conf key it by), else the upstream URL.
    pub registry: String,
    /// The rule's upstream repository prefix, when it has one (ECR-to-ECR rules): only paths
    /// under it are routed.
    pub upstream_path: Option<String>,
    /// The cached repository names' leading part: `<prefix>` (`docker-hub`), empty for a
    /// `ROOT` rule.
    pub cache_path: String,
    /// Docker Hub: a one-component name (`nginx`) is `library/nginx`, in the cache too
    /// (`docker-hub/library/nginx`).
    pub official_images_need_library: bool,
}

impl Mirror {
    /// The upstream namespace: `registry[/upstream_path]`, e.g. `quay.io` or
    /// `111122223333.dkr.ecr.eu-west-1.amazonaws.com/team`.
    pub fn source(&self) -> String {
        match &self.upstream_path {
            Some(p) => format!("{}/{p}", self.registry),
            None => self.registry.clone(),
        }
    }

    /// Where the namespace lands: `<registry host>[/<cache path>]`, e.g.
    /// `123456789012.dkr.ecr.eu-west-2.amazonaws.com/quay`.
    pub fn location(&self, registry_host: &str) -> String {
        if self.cache_path.is_empty() {
            registry_host.to_owned()
        } else {
            format!("{registry_host}/{}", self.cache_path)
        }
    }
}

/// The repository name every probe routes: a valid OCI and ECR name that no real image is
/// expected to have.
const PROBE: &str = "ptc-probe";

/// The first path component of a probe: `ptc-probe-ns`, or `ptc-probe-ns-<n>` when a rule's
/// upstream repository prefix starts with it, so that a probe for a whole-registry rule never
/// falls under another rule's upstream prefix.
fn probe_namespace(rules: &RuleSet) -> String {
    let taken = |ns: &str| {
        rules.rules().iter().any(|r| {
            r.upstream_repository_prefix
                .as_deref()
                .is_some_and(|p| p.split('/').next() == Some(ns))
        })
    };
    let mut ns = "ptc-probe-ns".to_owned();
    let mut n = 1;
    while taken(&ns) {
        ns = format!("ptc-probe-ns-{n}");
        n += 1;
    }
    ns
}

/// Every rule of `rules` as a [`Mirror`], in the set's order (sorted by prefix), each found by
/// routing `<registry>/<upstream path>/ptc-probe-ns/ptc-probe` through [`RuleSet::route`] and checking that
/// the answer came from that rule: a rule another rule shadows (same upstream and upstream
/// prefix, an earlier prefix) is left out with its reason in the second list.
pub fn mirrors(rules: &RuleSet) -> (Vec<Mirror>, Vec<(Prefix, String)>) {
    let tail = format!("{}/{PROBE}", probe_namespace(rules));
    let mut found = Vec::new();
    let mut shadowed = Vec::new();
    for rule in rules.rules() {
        let registry = if rule.kind == UpstreamKind::DockerHub
            || crate::reference::DOCKER_HUB_ALIASES.contains(&rule.upstream_url.as_str())
        {
            DOCKER_HUB.to_owned()
        } else {
            rule.upstream_url.clone()
        };
        let upstream_path = rule
            .upstream_repository_prefix
            .as_deref()
            .filter(|p| !p.is_empty() && *p != Prefix::ROOT)
            .map(str::to_owned);
        let probe_path = match &upstream_path {
            Some(p) => format!("{p}/{tail}"),
            None => tail.clone(),
        };
        let probe = format!("{registry}/{probe_path}");
        let routed = ImageReference::parse(&probe)
            .map_err(|e| e.to_string())
            .and_then(|r| rules.route(&r).map_err(|e| e.to_string()));
        match routed {
            Ok(cached) if cached.prefix == rule.prefix => {
                let cache_path = cached
                    .repository
                    .strip_suffix(&tail)
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned();
                found.push(Mirror {
                    prefix: rule.prefix.clone(),
                    kind: rule.kind.clone(),
                    upstream_url: rule.upstream_url.clone(),
                    official_images_need_library: registry == DOCKER_HUB,
                    registry,
                    upstream_path,
                    cache_path,
                });
            }
            Ok(cached) => shadowed.push((
                rule.prefix.clone(),
                format!(
                    "rule {} is never used: rule {} routes {} first",
                    rule.prefix,
                    cached.prefix,
                    registry_and_path(&registry, upstream_path.as_deref())
                ),
            )),
            Err(err) => shadowed.push((rule.prefix.clone(), err)),
        }
    }
    (found, shadowed)
}

fn registry_and_path(registry: &str, path: Option<&str>) -> String {
    match path {
        Some(p) => format!("{registry}/{p}"),
        None => registry.to_owned(),
    }
}

/// The registry host of an account's private registry: `<account>.dkr.ecr.<region>.amazonaws.com`,
/// `.amazonaws.com.cn` in the China Regions (`cn-*`)
/// (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html>).
/// Errors: an account that is not 12 digits, a Region that is not lowercase letters, digits
/// and `-`.
pub fn registry_host_of(account: &str, region: &str) -> Result<String, String> {
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account {account:?} is not a 12-digit account ID"));
    }
    let region_ok = !region.is_empty()
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(format!(
            "Region {region:?} is not a Region name such as eu-west-1"
        ));
    }
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("{account}.dkr.ecr.{region}.{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::PtcRule;

    const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";

    /// The seeds' rules: quay, k8s, docker-hub, ghcr.
    fn seeds() -> RuleSet {
        RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("k8s", "registry.k8s.io").unwrap(),
            PtcRule::new("docker-hub", "registry-1.docker.io").unwrap(),
            PtcRule::new("ghcr", "ghcr.io").unwrap(),
        ])
    }

    #[test]
    fn every_class_has_its_case() {
        let rules = seeds();
        let cases = [
            ("nginx:1.25", ImageClass::Routable),
            ("docker.io/grafana/grafana:11.0.0", ImageClass::Routable),
            (
                "quay.io/jetstack/cert-manager-controller:v1.15.0",
                ImageClass::Routable,
            ),
            (
                "123456789012.dkr.ecr.eu-west-2.amazonaws.com/quay/prometheus/prometheus:v2.53.0",
                ImageClass::AlreadyCached,
            ),
            (
                "602401143452.dkr.ecr.eu-west-2.amazonaws.com/eks/coredns:v1.11.1-eksbuild.9",
                ImageClass::AwsOwned,
            ),
            (
                "public.ecr.aws/karpenter/controller:1.0.0",
                ImageClass::AwsOwned,
            ),
            (
                "123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/app:1",
                ImageClass::AwsOwned,
            ),
            ("registry.gitlab.com/group/app:1", ImageClass::NoRule),
            (
                "gcr.io/k8s-staging-multitenancy/hnc-manager:v1.1.0",
                ImageClass::Unsupported,
            ),
            ("registry.example.com/app:1", ImageClass::Unsupported),
            (
                "quay.io/eclipse/che--centos--mysql-57-centos7",
                ImageClass::Unsupported,
            ),
            ("Nginx", ImageClass::Invalid),
        ];
        for (input, class) in cases {
            let c = classify(input, &rules, HOST);
            assert_eq!(c.class, class, "{input}: {c:?}");
            assert_eq!(c.reason.is_none(), class == ImageClass::Routable, "{input}");
        }
        let nginx = classify("nginx:1.25", &rules, HOST);
        assert_eq!(
            nginx.uri.as_deref(),
            Some("123456789012.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/library/nginx:1.25")
        );
        assert_eq!(
            nginx.upstream.as_deref(),
            Some("docker.io/library/nginx:1.25")
        );
        assert!(
            classify(
                "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy:v1",
                &rules,
                HOST
            )
            .reason
            .unwrap()
            .contains("EKS add-on")
        );
    }

    /// EKS add-on registries on FIPS and dual-stack endpoints are AWS's too (a review found
    /// them `unsupported`), in the forms ecr-credential-provider accepts.
    #[test]
    fn every_ecr_endpoint_form_is_known() {
        let rules = seeds();
        for host in [
            "602401143452.dkr.ecr-fips.us-east-1.amazonaws.com",
            "602401143452.dkr-ecr.us-east-1.on.aws",
            "602401143452.dkr-ecr-fips.us-east-1.on.aws",
            "918309763551.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "877088126301.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            "013241004608.dkr.ecr.us-gov-west-1.amazonaws.com",
        ] {
            let c = classify(&format!("{host}/eks/coredns:v1.11.1"), &rules, HOST);
            assert_eq!(c.class, ImageClass::AwsOwned, "{host}: {c:?}");
            assert!(
                c.reason.as_deref().unwrap().contains("EKS add-on"),
                "{host}"
            );
        }
        for host in [
            "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
            "210987654321.dkr-ecr.eu-west-1.on.aws",
        ] {
            let c = classify(&format!("{host}/team/app:1"), &rules, HOST);
            assert_eq!(c.class, ImageClass::AwsOwned, "{host}");
            assert!(
                c.reason
                    .as_deref()
                    .unwrap()
                    .contains("already in Amazon ECR")
            );
        }
        for host in [
            "602401143452.dkr.ecr.evil.example",
            "60240114345.dkr.ecr.us-east-1.amazonaws.com",
        ] {
            let c = classify(&format!("{host}/eks/x:1"), &rules, HOST);
            assert_ne!(c.class, ImageClass::AwsOwned, "{host}");
        }
    }

    #[test]
    fn an_ecr_public_rule_makes_ecr_public_routable() {
        let mut rules = seeds().rules().to_vec();
        rules.push(PtcRule::new("ecr-public", "public.ecr.aws").unwrap());
        let c = classify(
            "public.ecr.aws/karpenter/controller:1.0.0",
            &RuleSet::new(rules),
            HOST,
        );
        assert_eq!(c.class, ImageClass::Routable);
        assert_eq!(
            c.repository.as_deref(),
            Some("ecr-public/karpenter/controller")
        );
    }

    #[test]
    fn mirrors_come_from_the_routing() {
        let mut rules = seeds().rules().to_vec();
        rules.push(
            PtcRule::new("team/ecr", "210987654321.dkr.ecr.eu-west-1.amazonaws.com")
                .unwrap()
                .with_upstream_prefix("upstream-app"),
        );
        let (mirrors, shadowed) = mirrors(&RuleSet::new(rules));
        assert!(shadowed.is_empty(), "{shadowed:?}");
        let by = |p: &str| mirrors.iter().find(|m| m.prefix.as_str() == p).unwrap();
        let hub = by("docker-hub");
        assert_eq!(hub.registry, "docker.io");
        assert_eq!(hub.location(HOST), format!("{HOST}/docker-hub"));
        assert!(hub.official_images_need_library);
        let ecr = by("team/ecr");
        assert_eq!(
            ecr.source(),
            "210987654321.dkr.ecr.eu-west-1.amazonaws.com/upstream-app"
        );
        assert_eq!(ecr.cache_path, "team/ecr");
        let root = super::mirrors(&RuleSet::new(vec![
            PtcRule::new("ROOT", "quay.io").unwrap(),
        ]))
        .0;
        assert_eq!(root[0].cache_path, "");
        assert_eq!(root[0].location(HOST), HOST);
    }

    /// A whole-registry rule after a rule with an upstream prefix on the same ECR host: the
    /// probe of the first never falls under the second's prefix, whatever that prefix is.
    #[test]
    fn a_whole_registry_rule_beside_an_upstream_prefix_is_its_own_mirror() {
        let ecr = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";
        for upstream_prefix in ["team", "ptc-probe-ns", "ptc-probe-ns/x"] {
            let rules = RuleSet::new(vec![
                PtcRule::new("a-team", ecr)
                    .unwrap()
                    .with_upstream_prefix(upstream_prefix),
                PtcRule::new("b-all", ecr).unwrap(),
            ]);
            let (mirrors, shadowed) = mirrors(&rules);
            assert!(shadowed.is_empty(), "{upstream_prefix}: {shadowed:?}");
            assert_eq!(mirrors.len(), 2);
            assert_eq!(mirrors[1].cache_path, "b-all");
            assert_eq!(mirrors[1].upstream_path, None);
        }
    }

    #[test]
    fn a_shadowed_rule_is_named() {
        let rules = RuleSet::new(vec![
            PtcRule::new("quay", "quay.io").unwrap(),
            PtcRule::new("quay-b", "quay.io").unwrap(),
        ]);
        let (mirrors, shadowed) = mirrors(&rules);
        assert_eq!(mirrors.len(), 1);
        assert_eq!(shadowed[0].0.as_str(), "quay-b");
        assert!(shadowed[0].1.contains("never used"), "{shadowed:?}");
    }

    #[test]
    fn registry_hosts_follow_the_partition() {
        assert_eq!(registry_host_of("123456789012", "eu-west-2").unwrap(), HOST);
        assert_eq!(
            registry_host_of("123456789012", "cn-north-1").unwrap(),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
        assert!(registry_host_of("1234", "eu-west-2").is_err());
        assert!(registry_host_of("123456789012", "EU").is_err());
    }
}
