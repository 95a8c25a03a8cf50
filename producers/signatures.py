"""Signature and token checks over the exact bytes received, in constant time.

Pure functions of their inputs: each takes every accepted secret (rotation lists) and says
whether any one of them matches.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _any_matches(expected: Iterable[str], given: str) -> bool:
    # Compare against every secret, matched or not, so timing says nothing about which one was.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate.encode(), given.encode())
    return matched


def github_signature_valid(secrets: Iterable[str], body: bytes, header: str) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``."""
    scheme, _, digest = header.partition("=")
    if scheme != "sha256" or not digest:
        return False
    return _any_matches((_hex_hmac(s, body) for s in secrets), digest.lower())


def slack_signature_valid(secrets: Iterable[str], body: bytes, timestamp: str, header: str) -> bool:
    """``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">``."""
    version, _, digest = header.partition("=")
    if version != "v0" or not digest:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    return _any_matches((_hex_hmac(s, base) for s in secrets), digest.lower())


def linear_signature_valid(secrets: Iterable[str], body: bytes, header: str) -> bool:
    """``Linear-Signature: <hex HMAC-SHA256 of the body>``."""
    if not header:
        return False
    return _any_matches((_hex_hmac(s, body) for s in secrets), header.strip().lower())


def bearer_token_valid(tokens: Iterable[str], header: str) -> bool:
    """``Authorization: Bearer <token>``, the scheme case-insensitive as RFC 6750 allows."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return _any_matches(tokens, token.strip())


def within_window(sent_at_seconds: float, now_seconds: float, window_seconds: float) -> bool:
    """True when a sender's timestamp is at most ``window_seconds`` away from now, either way."""
    try:
        return abs(now_seconds - sent_at_seconds) <= window_seconds
    except OverflowError:  # an integer too large for a float (a 400-digit timestamp) is far from now
        return False
