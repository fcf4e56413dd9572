"""The one base of every coded error: a stable snake_case ``code`` and a ``message`` for people.

The edge server's HTTP errors (`edge_server.errors.ApiError`, which adds the status), the stream
protocol's, the policy's and the relay's all derive from it, so any of them can become the
contract's error document (HTTP) or an ``error`` frame (WebSocket) the same way.
"""

from __future__ import annotations


class CodedError(Exception):
    """A failure the client is told about: ``code`` (snake_case, stable) and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
