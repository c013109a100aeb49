"""Small, deterministic container images built without Docker and pushed over the
OCI distribution API into the upstream registries of the local stack.

Every image is real: gzip-compressed tar layers, a config blob and a manifest whose
digests are the sha256 of their exact bytes. Formats cover what upstreams serve:
single-platform OCI and Docker v2 manifests, multi-platform OCI indexes and Docker
manifest lists.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(content: bytes, name: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


@dataclass
class Built:
    """An image ready to push: blobs by digest, manifests (children first), the tag."""

    repository: str
    tag: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: list[tuple[str, str, bytes]] = field(default_factory=list)  # (ref, media type, bytes)

    @property
    def digest(self) -> str:
        return sha256(self.manifests[-1][2])

    @property
    def media_type(self) -> str:
        return self.manifests[-1][1]


def _single(repo: str, tag: str, os_: str, arch: str, oci: bool, layers: int, built: Built) -> tuple[str, bytes, int]:
    layer_mt = OCI_LAYER if oci else DOCKER_LAYER
    layer_descs = []
    diff_ids = []
    total = 0
    for i in range(layers):
        # Size grows with i so that image sizes differ and sums are checkable.
        payload = f"{repo}:{tag} {os_}/{arch} layer {i}\n".encode() * (64 * (i + 1))
        blob = _layer(payload, f"layer{i}.txt")
        built.blobs[sha256(blob)] = blob
        layer_descs.append({"mediaType": layer_mt, "digest": sha256(blob), "size": len(blob)})
        diff_ids.append(sha256(gzip.decompress(blob)))
        total += len(blob)
    config = json.dumps(
        {
            "architecture": arch,
            "os": os_,
            "config": {"Labels": {"org.opencontainers.image.title": repo}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        sort_keys=True,
    ).encode()
    built.blobs[sha256(config)] = config
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": layer_descs,
    }
    body = json.dumps(manifest, indent=3).encode()
    return (OCI_MANIFEST if oci else DOCKER_MANIFEST), body, total


def build(repository: str, tag: str, kind: str, platforms: list[str] | None = None, layers: int = 2) -> Built:
    """kind: oci | docker | oci-index | docker-list."""
    built = Built(repository, tag)
    oci = kind.startswith("oci")
    if kind in ("oci", "docker"):
        mt, body, _ = _single(repository, tag, "linux", "amd64", oci, layers, built)
        built.manifests.append((tag, mt, body))
        return built
    entries = []
    for platform in platforms or ["linux/amd64", "linux/arm64"]:
        os_, arch = platform.split("/", 1)
        mt, body, _ = _single(repository, tag, os_, arch, oci, layers, built)
        built.manifests.append((sha256(body), mt, body))
        entries.append({"mediaType": mt, "digest": sha256(body), "size": len(body), "platform": {"architecture": arch, "os": os_}})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX if oci else DOCKER_LIST, "manifests": entries}
    built.manifests.append((tag, OCI_INDEX if oci else DOCKER_LIST, json.dumps(index, indent=2).encode()))
    return built


def build_big(repository: str, tag: str, layer_bytes: int) -> Built:
    """A single-platform OCI image with one layer of `layer_bytes` random bytes (incompressible,
    so a transfer really moves that many bytes; not a gzip stream, which a registry does not
    check: the layer is a valid blob, its digest the sha256 of its bytes) and a config."""
    built = Built(repository, tag)
    layer = os.urandom(layer_bytes)
    layer_digest = sha256(layer)
    built.blobs[layer_digest] = layer
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"org.opencontainers.image.title": repository}},
            # The layer is not a tar stream: its diff id stands for the bytes themselves.
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        },
        sort_keys=True,
    ).encode()
    built.blobs[sha256(config)] = config
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_bytes}],
    }
    built.manifests.append((tag, OCI_MANIFEST, json.dumps(manifest, indent=3).encode()))
    return built


def push(base_url: str, built: Built, auth_header: str | None = None, timeout: float = 30) -> None:
    """Push blobs then manifests with the monolithic upload of the distribution API."""

    def call(method: str, url: str, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(url, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if auth_header:
            req.add_header("Authorization", auth_header)
        return urllib.request.urlopen(req, timeout=timeout)

    name = built.repository
    for digest, blob in built.blobs.items():
        with call("POST", f"{base_url}/v2/{name}/blobs/uploads/", b"") as resp:
            location = resp.headers["Location"]
        if location.startswith("/"):
            location = base_url + location
        sep = "&" if "?" in location else "?"
        with call("PUT", f"{location}{sep}digest={digest}", blob, {"Content-Type": "application/octet-stream"}):
            pass
    for ref, media_type, body in built.manifests:
        with call("PUT", f"{base_url}/v2/{name}/manifests/{ref}", body, {"Content-Type": media_type}):
            pass


def put_manifest(base_url: str, repository: str, ref: str, media_type: str, body: bytes) -> None:
    req = urllib.request.Request(f"{base_url}/v2/{repository}/manifests/{ref}", data=body, method="PUT")
    req.add_header("Content-Type", media_type)
    with urllib.request.urlopen(req, timeout=30):
        pass


# What each upstream of the stack holds. Names mirror the real registries they stand in for.
CATALOG: dict[str, list[tuple[str, str, str]]] = {
    "quay.io": [
        ("prometheus/prometheus", "v2.51.0", "oci-index"),
        ("coreos/etcd", "v3.5.13", "docker"),
        ("jetstack/cert-manager-controller", "v1.14.4", "oci"),
        ("argoproj/argocd", "v2.10.0", "docker"),
    ],
    "registry.k8s.io": [
        ("pause", "3.9", "docker-list"),
        ("coredns/coredns", "v1.11.1", "oci"),
    ],
    "registry-1.docker.io": [
        ("library/nginx", "1.25", "oci-index"),
        ("library/nats", "2.10.12-alpine", "docker"),
        ("library/busybox", "latest", "docker-list"),
        ("grafana/grafana", "10.4.0", "oci"),
    ],
    "ghcr.io": [
        ("fluxcd/source-controller", "v1.2.4", "oci-index"),
        ("external-secrets/external-secrets", "v0.9.13", "docker"),
    ],
}
