//! `kustomize-images`: the `images:` entries of a kustomization that send each reference's
//! image to the cache: `name` is the image as the manifests write it, without tag or digest,
//! `newName` the cached repository's URI; `newTag` and `digest` are never set, so the
//! manifests' own tag and digest are kept.
//!
//! How kustomize matches, from its source
//! (<https://github.com/kubernetes-sigs/kustomize/blob/master/api/internal/image/image.go>,
//! `IsImageMatched`, and
//! <https://github.com/kubernetes-sigs/kustomize/blob/master/api/filters/imagetag/updater.go>,
//! `SetImageValue`): an image value matches an entry when it is the regular expression
//! `^<name>(:[a-zA-Z0-9_.{}-]*)?(@<algorithm>:[a-zA-Z0-9_.{}-]*)?$`, the name interpolated as
//! it is; the match is then `Split` into name, tag and digest, the name replaced by `newName`
//! and the tag and digest written back unless `newTag` / `digest` replace them.
//! Nothing is normalised: `nginx`, `docker.io/nginx`, `docker.io/library/nginx` and
//! `index.docker.io/library/nginx` are four different names, although they are one image. So
//! each entry's name is the reference's spelling, and for Docker Hub, where manifests spell
//! one image several ways, an entry is added for each other usual spelling (`nginx`,
//! `docker.io/nginx`, `docker.io/library/nginx`; `grafana/grafana`,
//! `docker.io/grafana/grafana`): each matches only that same image, so an entry no manifest
//! uses does nothing. (In the pattern `.` matches any character; image names have no other
//! regular-expression character, and an entry `quay.io/x` also matching `quayXio/x` is
//! harmless.) A reference written without tag or digest stays without one (`nginx` becomes
//! `<registry>/docker-hub/library/nginx`, which pulls `latest` as `nginx` did).

use std::collections::HashMap;
use std::fmt::Write as _;

use ptc_core::reference::DOCKER_HUB;
use serde::Serialize;

use super::helm::{quote_yaml11, routed};
use super::{Input, OutputFile, comment};

/// The file `kustomize-images` writes.
pub const FILE: &str = "ptc-images.kustomization.yaml";

/// One `images:` entry (kustomize's `types.Image`:
/// <https://github.com/kubernetes-sigs/kustomize/blob/master/api/types/image.go>).
#[derive(Debug, Serialize)]
struct ImageEntry<'a> {
    name: &'a str,
    #[serde(rename = "newName")]
    new_name: &'a str,
}

/// The image name of a reference as written: without `@digest`, then without a `:tag` after
/// the last `/` (a `:` before it is a host's port), as kustomize's `image.Split` reads it.
pub fn written_name(reference: &str) -> &str {
    let name = reference.split_once('@').map_or(reference, |(n, _)| n);
    match name.rfind(':') {
        Some(colon) if name.rfind('/').is_none_or(|slash| colon > slash) => &name[..colon],
        _ => name,
    }
}

/// The spellings manifests use for the Docker Hub repository `path` (`library/nginx`,
/// `grafana/grafana`): short, `docker.io/` short, and for official images
/// `docker.io/library/...`.
fn docker_hub_spellings(path: &str) -> Vec<String> {
    let short = path.strip_prefix("library/").unwrap_or(path);
    let mut out = vec![short.to_owned(), format!("{DOCKER_HUB}/{short}")];
    if short != path {
        out.push(format!("{DOCKER_HUB}/{path}"));
    }
    out
}

/// Render `kustomize-images`: an `images:` list, one entry per distinct name as written (then
/// the other Docker Hub spellings of the same image), the references that are not routable
/// as comments. Errors: none but a YAML serialiser failure.
pub fn render(input: &Input) -> Result<Vec<OutputFile>, String> {
    let mut entries = String::new();
    let mut left = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for image in input.images {
        let r = match routed(input, image) {
            Ok(r) => r,
            Err(reason) => {
                left.push(format!("{}: {reason}", image.reference));
                continue;
            }
        };
        let new_name = format!("{}/{}", r.registry, r.repository);
        let written = written_name(&image.reference);
        let mut spellings = vec![written.to_owned()];
        if r.mirror.official_images_need_library
            && let Some(up) = image.upstream_reference()
        {
            spellings.extend(docker_hub_spellings(&up.repository));
        }
        let mut block = Vec::new();
        for (i, name) in spellings.iter().enumerate() {
            match names.get(name) {
                Some(existing) if *existing == new_name => continue,
                Some(existing) => {
                    // One name, one upstream repository, one cached repository: this
                    // cannot differ, but if it did the first entry would win silently.
                    left.push(format!(
                        "{}: name {name} already goes to {existing}, not {new_name}",
                        image.reference
                    ));
                    continue;
                }
                None => {}
            }
            names.insert(name.clone(), new_name.clone());
            let entry = ImageEntry {
                name,
                new_name: &new_name,
            };
            let yaml = serde_norway::to_string(&[entry]).map_err(|e| e.to_string())?;
            block.push((i > 0, quote_yaml11(&yaml)));
        }
        let mut noted = false;
        for (extra, yaml) in block {
            if extra && !noted {
                let _ = writeln!(
                    entries,
                    "  {}",
                    comment(&format!(
                        "{}: the same image as other manifests may spell it",
                        image.reference
                    ))
                );
                noted = true;
            }
            for line in yaml.lines() {
                let _ = writeln!(entries, "  {line}");
            }
        }
    }
    let text = comment(&format!(
        "kustomize images: entries for the Amazon ECR pull-through cache at {host}.\n\
         name: the image as the manifests write it, without tag or digest; newName: the cached\n\
         repository. No newTag or digest: the manifests' own are kept.\n\
         kustomize matches names exactly, with no normalisation (nginx, docker.io/nginx and\n\
         docker.io/library/nginx are different names): IsImageMatched in\n\
         https://github.com/kubernetes-sigs/kustomize/blob/master/api/internal/image/image.go,\n\
         so Docker Hub images get an entry for each usual spelling.\n\
         Add these entries to your kustomization.yaml's images: list.\n\
         Generated by ptc map --format kustomize-images.",
        host = input.registry_host
    ));
    Ok(vec![super::images_document(
        FILE, text, &entries, "[]", &left,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_name_drops_tag_and_digest_but_not_a_port() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(written_name("nginx:1.25"), "nginx");
        assert_eq!(
            written_name("localhost:5000/team/app"),
            "localhost:5000/team/app"
        );
        assert_eq!(
            written_name(&format!(
                "registry.k8s.io/ingress-nginx/controller:v1.10.0@{digest}"
            )),
            "registry.k8s.io/ingress-nginx/controller"
        );
        assert_eq!(
            written_name(&format!("quay.io/a/b@{digest}")),
            "quay.io/a/b"
        );
    }

    #[test]
    fn docker_hub_spellings_cover_short_and_library_forms() {
        assert_eq!(
            docker_hub_spellings("library/nginx"),
            ["nginx", "docker.io/nginx", "docker.io/library/nginx"]
        );
        assert_eq!(
            docker_hub_spellings("grafana/grafana"),
            ["grafana/grafana", "docker.io/grafana/grafana"]
        );
    }
}
