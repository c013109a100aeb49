//! A platform of a multi-platform image, as the OCI image index names it (`os`,
//! `architecture`, optional `variant`): what prewarm pulls for each watched image.
//! Domain type: no SDK, no settings.

use serde::{Deserialize, Serialize};

/// Platform wanted from multi-platform images, e.g. `linux/arm64` or `linux/arm/v7`: the
/// `platform` object of an image index entry
/// (<https://github.com/opencontainers/image-spec/blob/main/image-index.md>). Serialised as the
/// `OS/ARCH[/VARIANT]` text, and read from it with [`Platform::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    /// `os`, e.g. `linux` or `windows` (Go's `GOOS` values).
    pub os: String,
    /// `architecture`, e.g. `amd64`, `arm64`, `arm` (Go's `GOARCH` values).
    pub architecture: String,
    /// `variant` of the CPU, e.g. `v7` of `linux/arm/v7` or `v8` of `linux/arm64/v8`; `None`
    /// matches an index entry whatever its variant (see [`Platform::takes`]).
    pub variant: Option<String>,
}

impl Platform {
    /// The platform as containerd normalises it before matching, so that spellings of one
    /// platform compare equal: the OS and the architecture in lowercase (`macos` is
    /// `darwin`), `x86_64`/`x86-64` are `amd64` whose `v1` is no variant, `aarch64` is
    /// `arm64` whose `8`/`v8` is no variant, `i386` is `386`, `armhf` is `arm/v7`, `armel`
    /// is `arm/v6`, and `arm` without a variant is `arm/v7` (`5`, `6`, `7`, `8` as `v5`...).
    /// (containerd/platforms, `database.go`: `normalizeOS`, `normalizeArch`.)
    pub fn normalized(&self) -> (String, String, String) {
        let mut os = self.os.to_ascii_lowercase();
        if os == "macos" {
            os = "darwin".into();
        }
        let mut arch = self.architecture.to_ascii_lowercase();
        let mut variant = self
            .variant
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match arch.as_str() {
            "i386" => {
                arch = "386".into();
                variant.clear();
            }
            "x86_64" | "x86-64" | "amd64" => {
                arch = "amd64".into();
                if variant == "v1" {
                    variant.clear();
                }
            }
            "aarch64" | "arm64" => {
                arch = "arm64".into();
                if variant == "8" || variant == "v8" {
                    variant.clear();
                }
            }
            "armhf" => {
                arch = "arm".into();
                variant = "v7".into();
            }
            "armel" => {
                arch = "arm".into();
                variant = "v6".into();
            }
            "arm" => match variant.as_str() {
                "" | "7" => variant = "v7".into(),
                "5" | "6" | "8" => variant = format!("v{variant}"),
                _ => {}
            },
            _ => {}
        }
        (os, arch, variant)
    }

    /// What a node that wants `self` takes, best first, as containerd's `platforms.Only`
    /// orders it (`compare.go`, `platformVector`), each normalised: `amd64/vN` then the
    /// older `amd64` levels and `386`; `arm/vN` then the older `arm` variants down to `v5`;
    /// `arm64` (`v8`, or `v9.x` then the `v9` and `v8.x` levels it is compatible with) then
    /// `arm/v8`, `v7`, `v6`, `v5`; any other architecture itself only.
    pub fn preference(&self) -> Vec<(String, String, String)> {
        let (os, arch, variant) = self.normalized();
        let mut out = vec![(os.clone(), arch.clone(), variant.clone())];
        let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
        let at = |a: &str, v: String| (os.clone(), a.to_owned(), v);
        match arch.as_str() {
            "amd64" => {
                if let Some(n) = level(&variant)
                    && n > 1
                {
                    for k in (1..n).rev() {
                        // amd64/v1 is amd64 without a variant.
                        out.push(at(
                            "amd64",
                            if k == 1 {
                                String::new()
                            } else {
                                format!("v{k}")
                            },
                        ));
                    }
                }
                out.push(at("386", String::new()));
            }
            "arm" => {
                if let Some(n) = level(&variant)
                    && n > 5
                {
                    for k in (5..n).rev() {
                        out.push(at("arm", format!("v{k}")));
                    }
                }
            }
            "arm64" => {
                let wanted = if variant.is_empty() {
                    "v8".to_owned()
                } else {
                    variant.clone()
                };
                let (major, minor) = match wanted.split_once('.') {
                    Some((major, minor)) => (level(major), minor.parse::<u32>().ok()),
                    None => (level(&wanted), Some(0)),
                };
                // arm64/v8 is arm64 without a variant.
                let arm64 = |major: u32, minor: u32| match (major, minor) {
                    (8, 0) => String::new(),
                    (m, 0) => format!("v{m}"),
                    (m, n) => format!("v{m}.{n}"),
                };
                if let (Some(mut major), Some(mut minor)) = (major, minor)
                    && major >= 8
                {
                    if major == 9 {
                        for m in (0..minor).rev() {
                            out.push(at("arm64", arm64(9, m)));
                        }
                        // v9.0 diverged from v8.5: v9.x runs what v8.(x+5) runs.
                        minor += 5;
                        major = 8;
                        out.push(at("arm64", arm64(8, minor)));
                    }
                    for m in (0..minor).rev() {
                        out.push(at("arm64", arm64(major, m)));
                    }
                }
                let arm = if wanted.starts_with("v8.") || wanted.starts_with("v9.") {
                    "v8".to_owned()
                } else {
                    wanted
                };
                let arm = Platform {
                    os: os.clone(),
                    architecture: "arm".into(),
                    variant: Some(arm),
                };
                out.extend(arm.preference());
            }
            _ => {}
        }
        out.dedup();
        out
    }

    /// How well a node that wants `self` takes the index entry for `offered`: its place in
    /// [`Platform::preference`] (0 is the platform itself), `None` when it does not take it
    /// (`linux/arm64/v8` takes an `arm64` entry without a variant first; `linux/arm` is
    /// `arm/v7`, which also takes `v6` and `v5`, not `v8`).
    pub fn rank(&self, offered: &Platform) -> Option<usize> {
        let offered = offered.normalized();
        self.preference().iter().position(|p| *p == offered)
    }

    /// Of an index's entries, the one a node that wants `self` pulls: the one earliest in its
    /// [`Platform::preference`], as containerd chooses; entries without a platform are never
    /// chosen. `entries` yields each entry's platform with the value to return for it (a
    /// descriptor, or a digest remembered from an earlier pull).
    pub fn choose<'a, T>(
        &self,
        entries: impl IntoIterator<Item = (Option<&'a Platform>, T)>,
    ) -> Option<T> {
        let preference = self.preference();
        entries
            .into_iter()
            .filter_map(|(offered, value)| {
                let offered = offered?.normalized();
                Some((preference.iter().position(|p| *p == offered)?, value))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, value)| value)
    }

    /// Would a node that wants `self` take the index entry for `offered` at all?
    pub fn takes(&self, offered: &Platform) -> bool {
        self.rank(offered).is_some()
    }

    /// `OS/ARCH` or `OS/ARCH/VARIANT` (surrounding whitespace ignored), each part one or more ASCII
    /// letters, digits or `_`. The error is `"<value>" is not OS/ARCH[/VARIANT]`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value.trim().split('/').collect();
        let ok =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant]
                if ok(os)
                    && ok(arch)
                    && ok(&variant.replace('.', ""))
                    && !variant.starts_with('.') =>
            {
                Ok(Self {
                    os: (*os).to_owned(),
                    architecture: (*arch).to_owned(),
                    variant: Some((*variant).to_owned()),
                })
            }
            _ => Err(format!("{value:?} is not OS/ARCH[/VARIANT]")),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Platform {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Platform> for String {
    fn from(value: Platform) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn spellings_of_one_platform_match_as_containerd_matches_them() {
        // A node wanting linux/arm64/v8 pulls an index whose arm64 entry has no variant.
        assert!(p("linux/arm64/v8").takes(&p("linux/arm64")));
        assert!(p("linux/arm64").takes(&p("linux/arm64/v8")));
        assert!(p("linux/aarch64").takes(&p("linux/arm64")));
        assert!(p("linux/amd64/v1").takes(&p("linux/amd64")));
        assert!(p("linux/x86_64").takes(&p("linux/amd64")));
        assert!(p("linux/arm/v7").takes(&p("linux/arm")));
        assert!(p("linux/arm/7").takes(&p("linux/arm/v7")));
        assert!(p("linux/armhf").takes(&p("linux/arm/v7")));
        assert!(p("Linux/ARM64").takes(&p("linux/arm64")));
        // What differs still differs.
        assert!(!p("linux/arm/v6").takes(&p("linux/arm/v7")));
        assert!(!p("linux/arm64").takes(&p("linux/amd64")));
        // amd64/v3 falls back to the older levels, then 386 (containerd's Only).
        assert!(p("linux/amd64/v3").takes(&p("linux/amd64")));
        assert!(p("linux/amd64").takes(&p("linux/386")));
        assert!(!p("linux/amd64").takes(&p("linux/amd64/v3")));
        assert!(!p("windows/amd64").takes(&p("linux/amd64")));
        // linux/arm is arm/v7: it takes v6 and v5, not v8.
        assert!(p("linux/arm").takes(&p("linux/arm/v6")));
        assert!(!p("linux/arm").takes(&p("linux/arm/v8")));
        // arm64 runs 32-bit arm images when no arm64 one is published.
        assert!(p("linux/arm64").takes(&p("linux/arm/v7")));
        assert!(
            p("linux/arm64").rank(&p("linux/arm64")) < p("linux/arm64").rank(&p("linux/arm/v7"))
        );
        // v9.2 takes v9.1, v9, then v8.7 ... v8.
        let v92 = p("linux/arm64/v9.2");
        assert!(v92.rank(&p("linux/arm64/v9")) < v92.rank(&p("linux/arm64/v8.7")));
        assert!(v92.takes(&p("linux/arm64")));
        assert!(!v92.takes(&p("linux/arm64/v9.3")));
    }
}
