//! `ptc map --format FORMAT`: the routing of the rules in the formats teams point clusters
//! with. Every format is rendered from [`Input`], which holds what [`RuleSet::route`] says
//! and nothing else: each rule as a [`Mirror`] ([`ptc_core::adoption::mirrors`], found by
//! routing a probe) and each reference [`Classified`] ([`ptc_core::adoption::classify`]).
//! No format re-implements the rules; what a format cannot express, and every reference
//! that is not routable, is left out of the effective output and written as a comment with
//! its reason.
//!
//! | format | what | per |
//! |--------|------|-----|
//! | `terraform-locals` | one `registry_<prefix>` local per rule, switched by `var.pull_through_cache_enabled` between the cache and the upstream host | rule (and an `images` map for the references) |
//! | `helm-values` | `registry` / `repository` / `tag` / `digest` for each reference | reference |
//! | `kustomize-images` | the `images:` transformer entries (`name`, `newName`) | reference |
//! | `containerd-hosts` | `certs.d/<upstream>/hosts.toml` per upstream, and the kubelet `CredentialProviderConfig` | rule |
//! | `registries-conf` | containers-registries.conf(5) `[[registry]]` mirrors (CRI-O, podman, skopeo) | rule |
//! | `kyverno` | a `ClusterPolicy` that rewrites pods' images the same way | rule |
//!
//! [`RuleSet::route`]: ptc_core::rules::RuleSet::route

use ptc_core::adoption::{Classified, Mirror};
use ptc_core::rules::Prefix;

pub mod containerd;
pub mod helm;
pub mod kustomize;
pub mod kyverno;
pub mod registries_conf;
pub mod terraform;

/// `--format`: the output format of `ptc map`.
// No doc comments on the variants: clap would list them in `--help` as value descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    TerraformLocals,
    HelmValues,
    KustomizeImages,
    ContainerdHosts,
    RegistriesConf,
    Kyverno,
}

impl Format {
    /// Whether the format is one entry per reference (so references are required).
    pub fn per_reference(self) -> bool {
        matches!(self, Self::HelmValues | Self::KustomizeImages)
    }
}

/// What every format renders from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The cache's registry host, e.g. `123456789012.dkr.ecr.eu-west-2.amazonaws.com`.
    pub registry_host: &'a str,
    /// Every rule that routes something, in prefix order.
    pub mirrors: &'a [Mirror],
    /// Rules that route nothing (shadowed by another), with why: each format comments them.
    pub unused_rules: &'a [(Prefix, String)],
    /// The references of the command line (or of a scan), classified, in the order given.
    pub images: &'a [Classified],
}

/// One file of a format's output: a path relative to `--out-dir` (e.g.
/// `certs.d/quay.io/hosts.toml`) and its text. Single-file formats have one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Relative path: `/`-separated components, no `..`, no leading `/`.
    pub path: String,
    /// The file's text, ending with a newline.
    pub text: String,
}

/// Render `input` in `format`. Errors: what the format cannot render at all (e.g.
/// `helm-values` without a reference), as one line.
pub fn render(format: Format, input: &Input) -> Result<Vec<OutputFile>, String> {
    match format {
        Format::TerraformLocals => terraform::render(input),
        Format::HelmValues => helm::render(input),
        Format::KustomizeImages => kustomize::render(input),
        Format::ContainerdHosts => containerd::render(input),
        Format::RegistriesConf => registries_conf::render(input),
        Format::Kyverno => kyverno::render(input),
    }
}

/// The hosts people write Docker Hub references with that node runtimes do not read as
/// `docker.io`: containerd and containers/image normalise `index.docker.io` to `docker.io`
/// (distribution/reference `normalize.go`), not `registry-1.docker.io` nor
/// `registry.hub.docker.com`, which `ptc map` routes as Docker Hub
/// ([`ptc_core::reference::DOCKER_HUB_ALIASES`]). A node mirror for `docker.io` also needs one
/// for each of these.
pub fn docker_hub_hosts_runtimes_keep() -> impl Iterator<Item = &'static str> {
    ptc_core::reference::DOCKER_HUB_ALIASES
        .into_iter()
        .filter(|h| !matches!(*h, "docker.io" | "index.docker.io"))
}

/// `# ` before every line of `text`. A reference or a reason is untrusted text (a manifest's,
/// an upstream's answer): no character of it may end a comment early in any of the formats.
/// Lines break at `\n` only; every other character YAML 1.1, TOML or HCL could read as a line
/// break (`\r`, NEL U+0085, LS U+2028, PS U+2029: PyYAML, libyaml and go-yaml break lines
/// at them, <https://yaml.org/spec/1.1/#id871136>) and every other control character is
/// written escaped (`\r`, `\u{85}`), as are a byte-order mark and the bidirectional
/// formatting characters ([`crate::output::escape_controls`]).
pub fn comment(text: &str) -> String {
    text.split('\n')
        .map(|l| format!("# {}", crate::output::escape_controls(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A YAML document of the per-reference formats (`helm-values`, `kustomize-images`): the
/// `header` comment, then `images:` with `entries` (already indented two spaces), or `empty`
/// (`{}`, `[]`) when there is none, then the references `left` upstream, each a comment line.
pub fn images_document(
    path: &str,
    header: String,
    entries: &str,
    empty: &str,
    left: &[String],
) -> OutputFile {
    let mut text = header;
    text.push('\n');
    if entries.is_empty() {
        text.push_str(&format!("images: {empty}\n"));
    } else {
        text.push_str("images:\n");
        text.push_str(entries);
    }
    if !left.is_empty() {
        text.push_str(&comment(
            "Left as they are (not routable through the cache):",
        ));
        text.push('\n');
        for line in left {
            text.push_str(&comment(line));
            text.push('\n');
        }
    }
    OutputFile {
        path: path.to_owned(),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hostile reference tried (a review): a NEL, LS, PS or CR to start a YAML line of
    /// its own after the `#`. Each is escaped; PyYAML-style line breaks are gone.
    #[test]
    fn a_comment_cannot_be_left_early() {
        for brk in [
            '\r', '\u{85}', '\u{2028}', '\u{2029}', '\u{b}', '\u{c}', '\u{202e}',
        ] {
            let text = comment(&format!("x{brk}images: {{pwned: 1}} #"));
            assert_eq!(text.lines().count(), 1, "{text:?}");
            assert!(
                !text.chars().any(|c| c.is_control()
                    || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{202e}')),
                "{text:?}"
            );
            assert!(text.starts_with("# x\\"), "{text:?}");
        }
        assert_eq!(comment("a\nb"), "# a\n# b");
    }
}
