//! The manifest media types of the OCI image spec and Docker's v2 schema 2, and the
//! `Accept` list a container runtime sends (what containerd sends).

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What containerd sends: every manifest kind this project understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
