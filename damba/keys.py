"""Access keys and the identifiers Damba hands out.

An access key is a credential: only its hash is stored, in events and in read
models alike. The hash is SHA-256, which is safe here without a salt or a
slow key-derivation function because the key is 192 random bits, not a
password a person chose.
"""

from __future__ import annotations

import hashlib
import re
import secrets

# 24 random bytes: 192 bits, written as 32 URL-safe characters.
_KEY_BYTES = 24
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")
ROUTE_ID_PATTERN = re.compile(r"r[0-9a-f]{12}")
SESSION_ID_PATTERN = re.compile(r"s[0-9a-f]{16}")


def new_access_key() -> str:
    return secrets.token_urlsafe(_KEY_BYTES)


def hash_key(key: str) -> str:
    """Return the stored form of an access key: its SHA-256, hex, cut to 128 bits."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def new_route_id() -> str:
    return "r" + secrets.token_hex(6)


def new_session_id() -> str:
    return "s" + secrets.token_hex(8)


# Anything shaped like an access key: a run of 32 or more URL-safe characters,
# hidden wherever it sits, in a path, a query string or a header.
KEY_LIKE = re.compile(r"[A-Za-z0-9_-]{32,}")


def mask_keys(text: str, limit: int = 64) -> str:
    """Return ``text`` cut to ``limit`` characters, with anything shaped like a
    key as ***, so that a key sent in the wrong place is never stored or shown."""
    return KEY_LIKE.sub("***", text[:limit])
