"""Domain: API keys Switchyard issues to customers, and the pure rules about them.

A key is ``sy-`` followed by 43 URL-safe characters (256 random bits). It is shown once, when created; only its
SHA-256 is stored. A fast hash is enough here, and is what lets a key be looked up by its hash: password KDFs
(bcrypt, scrypt, Argon2) slow down guessing of *low-entropy* secrets, but 2**256 equally likely keys cannot be
guessed at any speed, so a KDF would only add ~100 ms to every authenticated request. The first characters after
``sy-`` (``prefix``) are kept in clear so a person can tell keys apart in listings and revoke one by them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from attrs import field, frozen

from domain.quotas import Limits
from domain.types import CustomerId

__all__ = [
    "KEY_PREFIX",
    "PREFIX_LENGTH",
    "ApiKey",
    "IssuedKey",
    "display_prefix",
    "hash_key",
    "looks_like_key",
    "model_allowed",
]

KEY_PREFIX: Final = "sy-"
"""What every Switchyard key starts with (and what tells a key from a JWT, whose first segment starts ``eyJ``)."""
PREFIX_LENGTH: Final = 8
"""Characters after ``sy-`` kept in clear: 48 bits, so prefixes of a few thousand keys rarely collide."""
_SHAPE: Final = re.compile(r"^sy-[A-Za-z0-9_-]{32,128}$")


def looks_like_key(token: str) -> bool:
    """Whether ``token`` has the shape of a Switchyard key (checked before any lookup)."""
    return bool(_SHAPE.match(token))


def hash_key(token: str) -> str:
    """The stored form of a key: hex SHA-256 of the whole key (see the module docstring for why not a KDF)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def display_prefix(token: str) -> str:
    """``sy-`` and the first characters of the secret: what listings show and what ``revoke`` accepts."""
    return token[: len(KEY_PREFIX) + PREFIX_LENGTH]


def model_allowed(allowed: Iterable[str], names: Iterable[str], provider: str) -> bool:
    """Whether a model known by ``names`` (qualified id, bare id, aliases) of ``provider`` is on an allow-list;
    ``<provider>/*`` allows every model of that provider."""
    listed = set(allowed)
    return f"{provider}/*" in listed or any(name in listed for name in names)


@frozen
class ApiKey:
    """An issued key as stored: never the key itself. ``models`` ``None`` allows every model. ``limits`` are the key's
    own, enforced with (never instead of) its customer's: unset ones leave only the customer's."""

    id: str
    prefix: str
    customer_id: CustomerId
    name: str
    created_at: datetime
    scopes: frozenset[str] = frozenset()
    models: frozenset[str] | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    limits: Limits = field(factory=Limits)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime) -> bool:
        """Whether the key's lifetime is over at ``now``."""
        return self.expires_at is not None and now >= self.expires_at


@frozen
class IssuedKey:
    """A key just created: the stored record and the key itself, which is never available again."""

    key: ApiKey
    secret: str = field(repr=False)
