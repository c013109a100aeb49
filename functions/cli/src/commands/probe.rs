//! `ptc probe --consumer-role-arn ARN [--image REF]...`: pull through the cache as a role
//! of another account, the three ways a cluster does, and say which permission is missing
//! and who must grant it when a pull is refused.
//!
//! Why `--consumer-role-arn` and not the global `--role-arn`: the global flag means "make
//! every call as this role"; the probe needs two identities, the cache account's (the
//! global flags: it reads the rules, the repositories and the images to choose what to
//! pull, and finds the registry endpoint) and the consumer's (STS `AssumeRole` with the
//! first one's credentials, session `ptc-probe`; every registry request is made with the
//! consumer's `GetAuthorizationToken` token). So `ptc --role-arn OPS probe
//! --consumer-role-arn CLUSTER` works as well.
//!
//! The three pulls, in this order (a real pull's requests: the manifest, for an index the
//! first platform's manifest, and that image's config blob; layers are not read):
//!
//! | kind | what it needs across accounts (ECR user guide, pull-through-cache-iam.html) |
//! |------|----------------------------------------------------------------------------|
//! | new image: a repository the cache has not created | `ecr:CreateRepository` and `ecr:BatchImportUpstreamImage` in the cache account's registry policy |
//! | new tag: a tag not cached in an existing cached repository | `ecr:BatchImportUpstreamImage` (registry or repository policy) |
//! | cached image | `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer` in the repository policy (the creation template's, for a repository the cache creates) |
//!
//! and on the consumer's side, each of them in its identity policy (`ptc iam
//! consumer-policy`). The candidates are the `--image` references, else the watch list
//! (`PTC_WATCH_LIST`), each classified with the cache account's `DescribeRepositories` /
//! `DescribeImages`; a cached image, when none is given, is one of the cache's own
//! repositories, else the new image once pulled. A second reference in the repository the
//! new image creates is a new tag. Nothing is written in the cache account beyond what the
//! pulls themselves do (a repository and the images imported).
//!
//! Exit codes: 0 when the three pulls pass; 1 when one is refused or fails (the report
//! names the missing action, from the registry's 403 message, and the side that must grant
//! it); 2 when the probe cannot run (the role cannot be assumed, a bad reference) or has no
//! candidate for a kind (pass `--image`), the report printed first.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use ptc_core::aws::{AwsClients, SdkEcr};
use ptc_core::ecr::EcrApi;
use ptc_core::oci::{ManifestKind, RegistryClient, RegistryError};
use ptc_core::reference::ImageReference;
use ptc_core::rules::{CachedImage, RuleSet};
use serde::Serialize;

use crate::context::Context;
use crate::error::CliError;
use crate::output;
use crate::target::{RoleArn, error_chain};

/// The session name of the consumer's session: CloudTrail shows the probe's pulls as
/// `assumed-role/<role>/ptc-probe`.
pub const SESSION_NAME: &str = "ptc-probe";

/// `ptc probe --consumer-role-arn ARN [--image REF]...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The consumer (cluster) role of another account to pull as: assumed with the cache
    /// account's credentials (the global --profile/--role-arn), session ptc-probe.
    #[arg(long, value_name = "ARN")]
    pub consumer_role_arn: RoleArn,
    /// An upstream reference to choose the pulls from (repeatable), e.g.
    /// registry.k8s.io/pause:3.9; default: the watch list, and the cache's own repositories.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
}

/// The kind of a pull through the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A repository the cache has not created yet.
    NewImage,
    /// A tag not cached yet in an existing cached repository.
    NewTag,
    /// An image the cache holds.
    Cached,
}

impl Kind {
    const ALL: [Self; 3] = [Self::NewImage, Self::NewTag, Self::Cached];

    fn label(self) -> &'static str {
        match self {
            Self::NewImage => "new image",
            Self::NewTag => "new tag",
            Self::Cached => "cached image",
        }
    }
}

/// How one probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The pull went through.
    Pulled,
    /// The registry refused it (HTTP 403), or the consumer could get no token.
    Refused,
    /// It failed for another reason (upstream, network).
    Failed,
    /// Nothing to pull for this kind.
    NotProbed,
}

/// One of the three pulls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// new-image, new-tag or cached.
    pub kind: Kind,
    /// The image pulled, `<registry host>/<repository>:<tag>`.
    pub image: Option<String>,
    /// Where it was chosen from: `--image REF`, `watch list REF`, `cache`, `the new image`.
    pub chosen_from: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The action the registry said is not allowed, e.g. `ecr:CreateRepository`.
    pub missing_permission: Option<String>,
    /// Who must grant it.
    pub grant_side: Option<String>,
    /// The registry's message, or why nothing was probed.
    pub message: Option<String>,
}

/// `ptc probe`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The role pulled as.
    pub consumer_role_arn: String,
    /// Its account.
    pub consumer_account: String,
    /// The registry pulled from (the cache account's).
    pub registry: String,
    /// The three probes, in the order they ran.
    pub probes: Vec<Probe>,
    /// `3 of 3 pulls passed`, ...
    pub summary: String,
}

/// A candidate pull, classified as the cache account sees it before any probe.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    /// `--image REF` or `watch list REF`.
    source: String,
    cached: CachedImage,
    kind: Kind,
}

impl Candidate {
    /// The tag or digest a pull asks for: the digest when given, as a real pull does.
    fn reference(&self) -> String {
        match (&self.cached.digest, &self.cached.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

/// Run the probe. Errors: [`CliError::ConsumerRole`], [`CliError::BadImage`],
/// [`CliError::RegistryRules`], [`CliError::RegistryToken`], [`CliError::HttpClient`]
/// (before any pull); [`CliError::Findings`] when a pull is refused or fails;
/// [`CliError::ProbeIncomplete`] when a kind had nothing to pull.
pub async fn run(ctx: &Context, args: Args) -> Result<(), CliError> {
    let settings = ctx.settings();
    let aws = ctx.aws().await?;
    let rules = rules(ctx).await?;
    let (sources, from_flag) = if args.images.is_empty() {
        (settings.watch_list.clone(), false)
    } else {
        (args.images.clone(), true)
    };
    let mut routed = Vec::new();
    for input in &sources {
        let cached = ImageReference::parse(input)
            .map_err(|e| e.to_string())
            .and_then(|r| rules.route(&r).map_err(|e| e.to_string()));
        let source = if from_flag {
            format!("--image {input}")
        } else {
            format!("watch list {input}")
        };
        match cached {
            Ok(cached) => routed.push((source, cached)),
            Err(reason) if from_flag => {
                return Err(CliError::BadImage {
                    image: input.clone(),
                    reason,
                });
            }
            Err(reason) => tracing::info!(entry = %input, %reason, "watch-list entry skipped"),
        }
    }
    let candidates = classify(aws.ecr.as_ref(), routed).await?;
    let fallback_cached = if candidates.iter().any(|c| c.kind == Kind::Cached) {
        None
    } else {
        cached_in_registry(aws.ecr.as_ref(), &rules).await
    };

    // The cache account's registry: its token's endpoint, or the settings' (the local stack).
    let token = aws
        .ecr
        .authorization_token()
        .await
        .map_err(|e| CliError::RegistryToken(RegistryError::Credentials(e.to_string())))?;
    let registry_host = token.registry_host().to_owned();
    let base = match &settings.registry_endpoint {
        Some(endpoint) => endpoint.as_str().trim_end_matches('/').to_owned(),
        None => token.proxy_endpoint.trim_end_matches('/').to_owned(),
    };

    let consumer_sdk = assume_consumer(&aws.sdk, &args.consumer_role_arn).await?;
    let consumer_ecr: Arc<dyn EcrApi> = Arc::new(SdkEcr::new(AwsClients::new(&consumer_sdk).ecr()));
    let http = ptc_core::oci::http_client(settings.http_timeout).map_err(CliError::HttpClient)?;
    let client = RegistryClient::for_ecr(http, consumer_ecr, Some(&base))
        .await
        .map(|(client, _)| client);

    let mut probes = Vec::new();
    let mut pulled_new: Option<Candidate> = None;
    for kind in Kind::ALL {
        let chosen = candidates.iter().find(|c| c.kind == kind).cloned();
        let chosen = match (kind, chosen) {
            (_, Some(c)) => Some(c),
            (Kind::Cached, None) => fallback_cached.clone().or_else(|| {
                pulled_new.clone().map(|mut c| {
                    c.source = format!("the new image ({}), now cached", c.source);
                    c
                })
            }),
            _ => None,
        };
        let Some(candidate) = chosen else {
            probes.push(not_probed(kind, from_flag));
            continue;
        };
        let image = candidate.cached.uri(&registry_host);
        let result = match &client {
            Ok(client) => pull(client, &candidate).await,
            Err(err) => Err(err.clone_text()),
        };
        let probe = judge(kind, image, candidate.source.clone(), result);
        if kind == Kind::NewImage && probe.outcome == Outcome::Pulled {
            pulled_new = Some(candidate);
        }
        probes.push(probe);
    }

    let passed = probes
        .iter()
        .filter(|p| p.outcome == Outcome::Pulled)
        .count();
    let report = ProbeReport {
        consumer_role_arn: args.consumer_role_arn.to_string(),
        consumer_account: args.consumer_role_arn.account().to_owned(),
        registry: registry_host,
        summary: format!("{passed} of 3 pulls passed"),
        probes,
    };
    ctx.print(&report, |out| print(out, &report))?;
    let bad = report
        .probes
        .iter()
        .filter(|p| matches!(p.outcome, Outcome::Refused | Outcome::Failed))
        .count();
    let missing: Vec<&str> = report
        .probes
        .iter()
        .filter(|p| p.outcome == Outcome::NotProbed)
        .map(|p| p.kind.label())
        .collect();
    if bad > 0 {
        Err(CliError::Findings(crate::error::Findings::RefusedPulls(
            bad,
        )))
    } else if !missing.is_empty() {
        Err(CliError::ProbeIncomplete(missing.join(", ")))
    } else {
        Ok(())
    }
}

/// The settings' expected rules, else the registry's.
async fn rules(ctx: &Context) -> Result<RuleSet, CliError> {
    ctx.rules_or_registry(ctx.settings().expected_rule_set())
        .await
}

/// Each reference's kind as the cache account sees it now; a later reference in a
/// repository an earlier one creates is a new tag (or a cached image when it is the same
/// tag). A repository or image that cannot be read counts as absent.
async fn classify(
    ecr: &dyn EcrApi,
    routed: Vec<(String, CachedImage)>,
) -> Result<Vec<Candidate>, CliError> {
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (source, cached) in routed {
        let exists = match ecr.describe_repository(&cached.repository).await {
            Ok(found) => found.is_some(),
            Err(err) => {
                tracing::warn!(repository = %cached.repository, error = %err, "DescribeRepositories");
                false
            }
        };
        let kind = if exists {
            let images = ecr
                .describe_images(&cached.repository)
                .await
                .unwrap_or_default();
            let held = images
                .iter()
                .any(|image| match (&cached.digest, &cached.tag) {
                    (Some(digest), _) => image.digest == digest.as_str(),
                    (None, Some(tag)) => image.tags.contains(tag),
                    (None, None) => image.tags.iter().any(|t| t == "latest"),
                });
            if held { Kind::Cached } else { Kind::NewTag }
        } else if created.insert(cached.repository.clone()) {
            Kind::NewImage
        } else {
            Kind::NewTag
        };
        out.push(Candidate {
            source,
            cached,
            kind,
        });
    }
    Ok(out)
}

/// A tagged image of one of the cache's own repositories under a rule prefix, as the
/// cached-image candidate when no reference gave one.
async fn cached_in_registry(ecr: &dyn EcrApi, rules: &RuleSet) -> Option<Candidate> {
    let repositories = match ecr.describe_repositories().await {
        Ok(repositories) => repositories,
        Err(err) => {
            // The only sign when this fails (AccessDenied...): the adapters' own ERROR lines
            // are not written without -v.
            tracing::warn!(error = %err, "no cached image to probe: the repositories could not be listed");
            return None;
        }
    };
    for repository in repositories {
        let Some(rule) = rules.rule_for_repository(&repository.name) else {
            continue;
        };
        let images = ecr.describe_images(&repository.name).await.ok()?;
        if let Some(tag) = images.iter().flat_map(|i| i.tags.first()).next() {
            return Some(Candidate {
                source: "cache".to_owned(),
                cached: CachedImage {
                    prefix: rule.prefix.clone(),
                    repository: repository.name.clone(),
                    tag: Some(tag.clone()),
                    digest: None,
                },
                kind: Kind::Cached,
            });
        }
    }
    None
}

/// The consumer role's credentials, assumed with `base`'s (session [`SESSION_NAME`]);
/// fetched once here so that a role that cannot be assumed stops the probe before any pull.
async fn assume_consumer(base: &SdkConfig, role: &RoleArn) -> Result<SdkConfig, CliError> {
    let provider = AssumeRoleProvider::builder(role.as_str())
        .session_name(SESSION_NAME)
        .configure(base)
        .build()
        .await;
    provider
        .provide_credentials()
        .await
        .map_err(|err| CliError::ConsumerRole {
            role_arn: role.to_string(),
            reason: error_chain(&err),
        })?;
    tracing::info!(role_arn = %role, session = SESSION_NAME, "assumed the consumer role");
    Ok(base
        .clone()
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build())
}

/// A pull's requests: the manifest; for an index, the first platform's manifest; the
/// image's config blob.
async fn pull(client: &RegistryClient, candidate: &Candidate) -> Result<(), RegistryError> {
    let repository = &candidate.cached.repository;
    let mut manifest = client
        .get_manifest(repository, &candidate.reference())
        .await?;
    if let ManifestKind::Index(children) = &manifest.kind {
        let Some(first) = children.first() else {
            return Ok(());
        };
        let digest = first.digest.to_string();
        manifest = client.get_manifest(repository, &digest).await?;
    }
    if let ManifestKind::Image { config, .. } = &manifest.kind {
        client.get_blob(repository, config).await?;
    }
    Ok(())
}

trait CloneText {
    fn clone_text(&self) -> RegistryError;
}

impl CloneText for RegistryError {
    /// The token error again for each probe (RegistryError is not Clone).
    fn clone_text(&self) -> RegistryError {
        match self {
            RegistryError::Credentials(text) => RegistryError::Credentials(text.clone()),
            other => RegistryError::Credentials(other.to_string()),
        }
    }
}

fn not_probed(kind: Kind, from_flag: bool) -> Probe {
    let source = if from_flag {
        "the --image references name"
    } else {
        "the watch list names"
    };
    let hint = match kind {
        Kind::NewImage => format!("{source} no repository the cache has not created"),
        Kind::NewTag => format!("{source} no uncached tag of a cached repository"),
        Kind::Cached => format!("{source} no cached image, and the cache holds none"),
    };
    Probe {
        kind,
        image: None,
        chosen_from: None,
        outcome: Outcome::NotProbed,
        missing_permission: None,
        grant_side: None,
        message: Some(format!("{hint}: pass --image REF for one")),
    }
}

/// A probe's outcome from its pull's result.
fn judge(kind: Kind, image: String, source: String, result: Result<(), RegistryError>) -> Probe {
    let mut probe = Probe {
        kind,
        image: Some(image),
        chosen_from: Some(source),
        outcome: Outcome::Pulled,
        missing_permission: None,
        grant_side: None,
        message: None,
    };
    match result {
        Ok(()) => {}
        Err(RegistryError::Status {
            status: 403,
            message,
            ..
        }) => {
            probe.outcome = Outcome::Refused;
            let denial = Denial::read(&message);
            probe.missing_permission = denial.action.clone();
            probe.grant_side = Some(denial.grant_side(kind));
            probe.message = Some(message);
        }
        Err(RegistryError::Credentials(text)) => {
            // GetAuthorizationToken as the consumer: only its own identity policy grants it.
            probe.outcome = Outcome::Refused;
            probe.missing_permission = Some("ecr:GetAuthorizationToken".to_owned());
            probe.grant_side = Some(CONSUMER_SIDE.to_owned());
            probe.message = Some(text);
        }
        Err(other) => {
            probe.outcome = Outcome::Failed;
            probe.message = Some(other.to_string());
        }
    }
    probe
}

const CONSUMER_SIDE: &str = "the consumer role's identity policy (see `ptc iam consumer-policy`)";

/// What an ECR (or IAM-style) denial message says: `User: ARN is not authorized to perform:
/// ACTION on resource: ARN because no resource-based policy allows the ACTION action` /
/// `with an explicit deny in an identity-based policy`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Denial {
    action: Option<String>,
    /// `resource-based`, `identity-based`, `session`, `permissions boundary`, when said.
    policy: Option<&'static str>,
    explicit_deny: bool,
}

impl Denial {
    fn read(message: &str) -> Self {
        let action = message
            .split("perform: ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|a| a.trim_end_matches([',', '.', ';']).to_owned())
            .or_else(|| {
                // Any `ecr:Action` in the text.
                message
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
                    .find(|w| w.starts_with("ecr:") && w.len() > 4)
                    .map(str::to_owned)
            });
        let policy = [
            ("resource-based policy", "resource-based"),
            ("identity-based policy", "identity-based"),
            ("session policy", "session"),
            ("permissions boundary", "permissions boundary"),
        ]
        .into_iter()
        .find(|(text, _)| message.contains(text))
        .map(|(_, name)| name);
        Self {
            action,
            policy,
            explicit_deny: message.contains("explicit deny"),
        }
    }

    /// Who must grant the action (or lift the Deny).
    fn grant_side(&self, kind: Kind) -> String {
        let action = self.action.as_deref().unwrap_or_default();
        let registry_action = matches!(
            action,
            "ecr:CreateRepository" | "ecr:BatchImportUpstreamImage" | "ecr:ReplicateImage"
        );
        let cache = if registry_action {
            if action == "ecr:BatchImportUpstreamImage" && kind == Kind::NewTag {
                "the cache account's registry permissions policy (or the repository policy)"
            } else {
                "the cache account's registry permissions policy"
            }
        } else {
            "the cache account's repository policy (for new repositories: the creation template's)"
        };
        let fix = if registry_action || !action.is_empty() {
            "; `ptc fix` with PTC_PULL_PRINCIPALS naming the consumer account writes it"
        } else {
            ""
        };
        match (self.policy, self.explicit_deny) {
            (Some("resource-based"), true) => format!("{cache}: remove the Deny that names it"),
            (Some("resource-based"), false) => format!("{cache}{fix}"),
            (Some(_), true) => "the consumer role's policies: remove the Deny that names it".into(),
            (Some(_), false) => CONSUMER_SIDE.to_owned(),
            (None, _) => format!("{cache}, and {CONSUMER_SIDE}: both must allow it"),
        }
    }
}

/// One line per probe, then the summary.
pub fn print(out: &mut impl Write, report: &ProbeReport) -> std::io::Result<()> {
    writeln!(
        out,
        "probe of {} as {} (account {})",
        report.registry, report.consumer_role_arn, report.consumer_account
    )?;
    let rows: Vec<Vec<String>> = report
        .probes
        .iter()
        .map(|p| {
            let outcome = match p.outcome {
                Outcome::Pulled => "pulled".to_owned(),
                Outcome::Refused => format!(
                    "REFUSED: {} missing; grant it in {}",
                    p.missing_permission.as_deref().unwrap_or("a permission"),
                    p.grant_side.as_deref().unwrap_or("?")
                ),
                Outcome::Failed => format!("FAILED: {}", p.message.as_deref().unwrap_or("")),
                Outcome::NotProbed => format!("not probed: {}", p.message.as_deref().unwrap_or("")),
            };
            vec![
                p.kind.label().to_owned(),
                p.image.clone().unwrap_or_else(|| "-".into()),
                p.chosen_from.clone().unwrap_or_else(|| "-".into()),
                outcome,
            ]
        })
        .collect();
    output::table(out, &["PULL", "IMAGE", "CHOSEN FROM", "OUTCOME"], &rows)?;
    for p in &report.probes {
        if p.outcome == Outcome::Refused
            && let Some(message) = &p.message
        {
            writeln!(out, "{}: {message}", p.kind.label())?;
        }
    }
    writeln!(out, "{}", report.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_RESOURCE: &str = "User: arn:aws:sts::222233334444:assumed-role/c/ptc-probe is not authorized to perform: ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:123456789012:repository/k8s/pause because no resource-based policy allows the ecr:CreateRepository action";

    #[test]
    fn a_denial_names_the_action_and_the_side() {
        let d = Denial::read(NO_RESOURCE);
        assert_eq!(d.action.as_deref(), Some("ecr:CreateRepository"));
        assert_eq!(d.policy, Some("resource-based"));
        let side = d.grant_side(Kind::NewImage);
        assert!(
            side.starts_with("the cache account's registry permissions policy"),
            "{side}"
        );

        let pull = Denial::read(
            "User: x is not authorized to perform: ecr:BatchGetImage on resource: y because no resource-based policy allows the ecr:BatchGetImage action",
        );
        assert!(pull.grant_side(Kind::Cached).contains("repository policy"));

        let identity = Denial::read(
            "User: x is not authorized to perform: ecr:BatchImportUpstreamImage on resource: y because no identity-based policy allows the ecr:BatchImportUpstreamImage action",
        );
        assert_eq!(identity.grant_side(Kind::NewTag), CONSUMER_SIDE);

        let deny = Denial::read(
            "User: x is not authorized to perform: ecr:BatchImportUpstreamImage on resource: y with an explicit deny in a resource-based policy",
        );
        assert!(deny.grant_side(Kind::NewTag).contains("remove the Deny"));

        // ECR's terse form: no reason, so both sides are named.
        let terse = Denial::read(
            "denied: User: x is not authorized to perform: ecr:BatchImportUpstreamImage on resource: y",
        );
        assert_eq!(
            terse.action.as_deref(),
            Some("ecr:BatchImportUpstreamImage")
        );
        assert!(
            terse
                .grant_side(Kind::NewImage)
                .contains("both must allow it")
        );
    }

    #[test]
    fn a_403_is_refused_and_other_errors_fail() {
        let refused = judge(
            Kind::NewImage,
            "h/k8s/pause:3.9".into(),
            "--image registry.k8s.io/pause:3.9".into(),
            Err(RegistryError::Status {
                url: "u".into(),
                status: 403,
                message: NO_RESOURCE.into(),
            }),
        );
        assert_eq!(refused.outcome, Outcome::Refused);
        assert_eq!(
            refused.missing_permission.as_deref(),
            Some("ecr:CreateRepository")
        );
        let token = judge(
            Kind::Cached,
            "i".into(),
            "s".into(),
            Err(RegistryError::Credentials("AccessDenied".into())),
        );
        assert_eq!(
            token.missing_permission.as_deref(),
            Some("ecr:GetAuthorizationToken")
        );
        let failed = judge(
            Kind::NewTag,
            "i".into(),
            "s".into(),
            Err(RegistryError::NotFound {
                url: "u".into(),
                code: None,
            }),
        );
        assert_eq!(failed.outcome, Outcome::Failed);
        assert!(judge(Kind::Cached, "i".into(), "s".into(), Ok(())).outcome == Outcome::Pulled);
    }
}
