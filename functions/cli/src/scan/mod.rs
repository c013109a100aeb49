//! Not written yet (issue 20): the images of rendered Kubernetes YAML, Flux HelmReleases,
//! Dockerfiles and plain lists.
