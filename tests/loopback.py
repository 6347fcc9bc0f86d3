"""Addresses on this machine for download tests that must never reach the network."""

from __future__ import annotations

import socket


def dead_url(path: str = "gone.zip") -> str:
    """An http URL on a loopback port that nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/{path}"
