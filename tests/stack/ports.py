"""Ports for the stack's servers, without races.

Picking a free port and binding it later is racy: between the two, any outgoing connection of
this process (the stack pushes hundreds of blobs while it starts) may be given that very port
by the kernel, and werkzeug then exits the whole process. So:

* servers this process runs are bound at once and keep their socket (`listen`), on a port
  outside the kernel's ephemeral range, so that an upstream taken "down" can bind the same
  port again when it comes back;
* ports handed to another program (docker-registry) are outside the ephemeral range too, and
  the caller retries with another port if that program cannot bind it.
"""

from __future__ import annotations

import errno
import random
import socket

# Linux gives outgoing connections ports from 32768-60999 by default; stay below that.
LOW, HIGH = 20000, 32000
ATTEMPTS = 200


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(x) for x in fh.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _candidates():
    eph_low, eph_high = _ephemeral_range()
    rng = random.Random()
    for _ in range(ATTEMPTS):
        port = rng.randrange(LOW, HIGH)
        if not eph_low <= port <= eph_high:
            yield port


def listen(port: int | None = None) -> socket.socket:
    """A listening socket on 127.0.0.1: on `port`, or on a free port outside the ephemeral range."""
    ports = [port] if port is not None else _candidates()
    last: OSError | None = None
    for candidate in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", candidate))
            sock.listen(128)
            return sock
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRINUSE:
                raise
            last = e
    raise OSError(errno.EADDRINUSE, f"no free port for the stack ({last})")


def pick() -> int:
    """A port free right now, outside the ephemeral range, for another program to bind."""
    with listen() as sock:
        return sock.getsockname()[1]
