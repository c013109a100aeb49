"""Upstream registries of the local stack: one CNCF distribution process each, behind a
small HTTP proxy that the tests can steer (down, 429 with Docker-style rate-limit
headers, latency, bursts of 5xx) and that counts requests per path."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import bcrypt
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import ports

DOCKER_WINDOW = 21600  # Docker Hub's rate-limit window, seconds


@dataclass
class Faults:
    latency_ms: int = 0
    fail_next: int = 0
    fail_status: int = 503
    # Docker-style rate limit: None = no ratelimit headers at all.
    ratelimit_limit: int | None = None
    ratelimit_remaining: int | None = None
    retry_after: int = 60
    # Rate-limit every request once the budget is spent (quay.io, ghcr.io style), not only
    # manifest GETs (Docker Hub style, where a HEAD stays free).
    limit_all: bool = False
    # Break manifest GETs: "truncate" (half the body) or "not-json" (an HTML error page).
    corrupt_manifests: str | None = None

    def update(self, body: dict) -> None:
        for key, value in body.items():
            if key in ("down", "reset_counts"):
                continue
            if not hasattr(self, key):
                raise ValueError(f"unknown fault setting {key!r}")
            setattr(self, key, value)


@dataclass
class Upstream:
    host: str  # the real registry this one stands in for, e.g. "quay.io"
    state_dir: str
    username: str | None = None
    password: str | None = None
    # Bearer token auth in front of the registry, as Docker Hub and ghcr.io do it: a 401 with
    # `WWW-Authenticate: Bearer realm=<proxy>/token,...`, a token endpoint that checks Basic
    # credentials, then `Authorization: Bearer <token>` on registry requests.
    bearer: bool = False
    tokens: dict[str, float] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    process: subprocess.Popen | None = None
    server: object | None = None
    thread: threading.Thread | None = None
    registry_port: int = 0
    binary: str = ""
    starts: int = 0

    def __post_init__(self) -> None:
        # The proxy's port is bound now and kept for the stack's life (the rules point at it);
        # taking the upstream "down" closes it, bringing it back binds the same port again.
        self.listener = ports.listen()
        self.proxy_port = self.listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def is_up(self) -> bool:
        return self.server is not None

    # -- distribution process -------------------------------------------------
    def start_registry(self, binary: str) -> None:
        self.binary = binary
        self.starts += 1
        # docker-registry binds the port itself: one free now, outside the ephemeral range;
        # `wait_ready` starts it again on another port if it lost the race for this one.
        self.registry_port = ports.pick()
        root = os.path.join(self.state_dir, "upstreams", self.host)
        os.makedirs(os.path.join(root, "data"), exist_ok=True)
        auth = ""
        if self.username:
            htpasswd = os.path.join(root, "htpasswd")
            hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
            with open(htpasswd, "w") as fh:
                fh.write(f"{self.username}:{hashed}\n")
            auth = f"auth:\n  htpasswd:\n    realm: {self.host}\n    path: {htpasswd}\n"
        config = os.path.join(root, "config.yml")
        with open(config, "w") as fh:
            fh.write(
                "version: 0.1\n"
                "log:\n  level: warn\n"
                f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: false\n"
                f"http:\n  addr: 127.0.0.1:{self.registry_port}\n"
                f"{auth}"
            )
        log = open(os.path.join(self.state_dir, "logs", f"upstream-{self.host}.log"), "ab")
        self.process = subprocess.Popen([binary, "serve", config], stdout=log, stderr=log, preexec_fn=_die_with_parent)

    # -- proxy ----------------------------------------------------------------
    def start_proxy(self) -> None:
        if self.server is not None:
            return
        listener, self.listener = self.listener, None
        if listener is None:
            listener = ports.listen(self.proxy_port)
        server = make_server("127.0.0.1", self.proxy_port, self.wsgi, threaded=True, fd=listener.fileno())
        listener.close()  # the server holds its own descriptor of the same socket
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def stop_proxy(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def wsgi(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.counts[f"{request.method} {request.path}"] = self.counts.get(f"{request.method} {request.path}", 0) + 1
            faults = Faults(**self.faults.__dict__)
            failing = self.faults.fail_next > 0
            if failing:
                self.faults.fail_next -= 1
            is_pull = request.method == "GET" and "/manifests/" in request.path
            limited = faults.ratelimit_remaining is not None and faults.ratelimit_remaining <= 0
            if is_pull and faults.ratelimit_remaining is not None and not limited:
                # Docker Hub counts a manifest GET as a pull; a HEAD is free.
                self.faults.ratelimit_remaining -= 1
                faults.ratelimit_remaining = self.faults.ratelimit_remaining
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        headers = []
        if faults.ratelimit_limit is not None:
            remaining = max(faults.ratelimit_remaining or 0, 0)
            headers += [
                ("ratelimit-limit", f"{faults.ratelimit_limit};w={DOCKER_WINDOW}"),
                ("ratelimit-remaining", f"{remaining};w={DOCKER_WINDOW}"),
                ("docker-ratelimit-source", "127.0.0.1"),
            ]
        if failing:
            return Response(f"injected failure {faults.fail_status}\n", faults.fail_status, headers)(environ, start_response)
        if self.bearer:
            denied = self.check_bearer(request, headers)
            if denied is not None:
                return denied(environ, start_response)
        if limited and (is_pull or faults.limit_all):
            body = '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}'
            headers.append(("Retry-After", str(faults.retry_after)))
            return Response(body, 429, headers, content_type="application/json")(environ, start_response)
        response = self.forward(request, headers)
        if faults.corrupt_manifests and is_pull and response.status_code == 200:
            body = response.get_data()
            body = body[: len(body) // 2] if faults.corrupt_manifests == "truncate" else b"<html><body>502 Bad Gateway</body></html>"
            response.set_data(body)
            response.headers["Content-Length"] = str(len(body))
        return response(environ, start_response)

    def check_bearer(self, request: Request, headers: list) -> Response | None:
        """None when the request may go on to the registry."""
        if request.path == "/token":
            if self.username and request.headers.get("Authorization") != self.basic_auth():
                return Response('{"details":"incorrect username or password"}', 401, headers, content_type="application/json")
            token = secrets.token_urlsafe(32)
            with self.lock:
                self.tokens[token] = time.time() + 300
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300})
            return Response(body, 200, headers, content_type="application/json")
        auth = request.headers.get("Authorization", "")
        with self.lock:
            ok = auth.startswith("Bearer ") and self.tokens.get(auth[7:], 0) > time.time()
        if ok:
            return None
        match = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/", request.path)
        scope = f',scope="repository:{match.group(1)}:pull"' if match else ""
        challenge = f'Bearer realm="{self.url}/token",service="{self.host}"{scope}'
        body = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return Response(body, 401, headers + [("WWW-Authenticate", challenge)], content_type="application/json")

    def forward(self, request: Request, extra_headers: list) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.registry_port, timeout=30)
        path = request.full_path if request.query_string else request.path
        hop = {"host", "connection", "content-length", "transfer-encoding"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        if self.bearer and self.username:
            # Behind the token service, the registry itself takes the upstream's own credentials.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = self.basic_auth()
        body = request.get_data()
        conn.request(request.method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        # Keep the upstream's Content-Length: on a HEAD it is the manifest's size.
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("connection", "transfer-encoding")]
        if request.method == "GET" and "/blobs/" in request.path and resp.status == 200 and resp.getheader("Content-Length"):
            # A layer (possibly hundreds of MB): streamed through, never held here.
            def stream():
                try:
                    while True:
                        chunk = resp.read(1 << 20)
                        if not chunk:
                            break
                        yield chunk
                finally:
                    conn.close()

            out = Response(stream(), resp.status, out_headers + extra_headers, direct_passthrough=True)
            out.automatically_set_content_length = False
            return out
        data = resp.read()
        conn.close()
        out = Response(data, resp.status, out_headers + extra_headers)
        out.automatically_set_content_length = False
        return out

    def basic_auth(self) -> str | None:
        if not self.username:
            return None
        return basic(self.username, self.password)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.registry_port, timeout=1)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if self.process and self.process.poll() is not None:
                    if self.starts < 5:
                        # Most likely its port was taken in the meantime: another port.
                        self.start_registry(self.binary)
                        continue
                    raise RuntimeError(f"upstream {self.host}: docker-registry exited with {self.process.returncode}")
                time.sleep(0.1)
        raise RuntimeError(f"upstream {self.host}: docker-registry not ready after {timeout}s")


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the stack process dies, however it dies
    (Linux PR_SET_PDEATHSIG), so no registry outlives the stack."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def open_upstream(base_url: str, path: str, creds: tuple[str, str] | None, accept: str | None, timeout: float):
    """A registry request the way ECR makes it upstream: Basic credentials, and the Bearer
    token dance when the registry asks for it. Returns (status, headers, body); raises
    OSError when the upstream cannot be reached."""
    import urllib.error
    import urllib.parse
    import urllib.request

    def call(url: str, auth: str | None, with_accept: bool):
        req = urllib.request.Request(url)
        if with_accept and accept:
            req.add_header("Accept", accept)
        if auth:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    auth = basic(*creds) if creds else None
    status, headers, body = call(base_url + path, auth, True)
    challenge = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
    if status == 401 and challenge.startswith("Bearer "):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = {k: fields[k] for k in ("service", "scope") if k in fields}
        token_status, _, token_body = call(fields["realm"] + "?" + urllib.parse.urlencode(query), auth, False)
        if token_status != 200:
            return token_status, {}, token_body
        token = json.loads(token_body).get("token")
        status, headers, body = call(base_url + path, f"Bearer {token}", True)
    return status, headers, body
