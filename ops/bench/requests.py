"""Signed requests for the load generators, each with a unique delivery id.

Sizes follow the issue that set the targets: small is a Slack message event (~1 KB), medium a
GitHub ``star`` delivery (~6 KB), large a GitHub ``issues.opened`` delivery (~13 KB).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from ops import samples

SIZES = ("small", "medium", "large")

#: Secrets the bench fleet runs with (never used outside the bench's own database and vhost).
GITHUB_SECRET = "bench-github-secret"  # noqa: S105 - the bench's own throwaway fleet
SLACK_SECRET = "bench-slack-secret"  # noqa: S105 - likewise
#: The operator token of ``/v1/*`` (HOOKYARD_INGEST_TOKEN) of the bench fleet.
INGEST_TOKEN = "bench-operator-token-0123456789ab"  # noqa: S105 - likewise


def raw_request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
        + body
    )


def generate(size: str, count: int, tag: str | None = None) -> Iterator[bytes]:
    """``count`` raw HTTP/1.1 requests of ``size``, every one with its own delivery id."""
    tag = tag or uuid.uuid4().hex[:8]
    if size == "small":
        for index in range(count):
            body = samples.slack_message(f"Ev{tag}{index:09d}")
            # Stamped when generated: Slack's 300 s window holds for runs that generate as they go.
            yield raw_request(
                "/webhooks/slack", samples.slack_headers(SLACK_SECRET, body, int(time.time())), body
            )
        return
    build = samples.github_star if size == "medium" else samples.github_issue_opened
    event, body, _ = build("template")
    # A GitHub signature covers the body only: one body, a new X-GitHub-Delivery per request.
    headers = samples.github_headers(GITHUB_SECRET, body, event, "template")
    for index in range(count):
        headers["X-GitHub-Delivery"] = f"{tag}-{index:09d}"
        yield raw_request("/webhooks/github", headers, body)


def body_bytes(size: str) -> int:
    return len(next(generate(size, 1)).split(b"\r\n\r\n", 1)[1])
