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
    /// matches an index entry whatever its variant (see [`crate::oci::Manifest::platform_entry`]).
    pub variant: Option<String>,
}

impl Platform {
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
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: Some((*variant).to_owned()),
            }),
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
