//! The manifest media types of the OCI image spec and Docker's v2 schema 2, and the
//! `Accept` list a container runtime sends (what containerd sends).

/// OCI image index: a multi-platform image, one manifest per platform
/// (<https://github.com/opencontainers/image-spec/blob/main/media-types.md>).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// OCI image manifest: one platform's config and layers.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Docker manifest list (image manifest v2, schema 2): Docker's multi-platform index.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Docker image manifest v2, schema 2: one platform's config and layers.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What containerd sends: every manifest kind this project understands. The four types
/// above, `, `-separated (also `BatchGetImage`'s `acceptedMediaTypes`, split).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
