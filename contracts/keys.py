"""Project keys: how they look, how they are stored, what they may do.

A key is the bearer token of ``/v1/*``, the public key of a Sentry DSN and the ping key of a
check URL, so it is letters and digits only (it goes into URLs and hosts' user-info). It is
shown once; PostgreSQL keeps only its SHA-256, and each web process keeps the hashes in memory.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from enum import StrEnum

#: 32 characters of 62: about 190 bits, so a fast hash is enough to store it.
KEY_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(rf"^[A-Za-z0-9]{{{KEY_LENGTH}}}$")
#: How many of a key's first characters are kept in clear, to tell keys apart in listings.
PREFIX_LENGTH = 6
#: Project slugs: SPEC's pattern, also the key of routing tables.
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Scope(StrEnum):
    """What a key may be used for: one scope per family of endpoints."""

    DEPLOYMENTS = "deployments"
    HEARTBEATS = "heartbeats"
    USAGE = "usage"
    ERRORS = "errors"
    BUDGETS = "budgets"


ALL_SCOPES: tuple[Scope, ...] = tuple(Scope)


def new_key() -> str:
    """A fresh random key (``secrets``, never ``random``)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


def looks_like_key(value: str) -> bool:
    """Whether ``value`` has a key's shape; says nothing of whether it exists."""
    return _KEY.match(value) is not None


def key_hash(key: str) -> str:
    """The lowercase hex SHA-256 stored for ``key`` and looked up in memory."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
