"""Erasure tombstones: keyed digests of the identifiers an erased person held.

A tombstone is HMAC-SHA256 under the tombstone key (``IDR_TOMBSTONE_KEY`` or its key file) of
``<id_type> 0x1f <normalized value>``. Without the key a tombstone cannot be matched to a value,
however small the value space (a 9-digit national id, a phone number): a plain SHA-256 of such
a value is reversed by trying every value, which is why tombstones are keyed.

Stores written before keyed tombstones hold plain SHA-256 digests (``scheme`` NULL). Those
cannot be re-keyed without the values, which erasure removed, so they are *checked as they
are*, beside the keyed ones, by cleaning and the purge; the lake purge rewrites each one it
can (one whose value it still finds in the lake, where it learns the value) as a keyed
tombstone and deletes the plain one. Plain tombstones of values the lake no longer holds stay
plain and stay reversible by brute force until an operator drops them; ``legacy`` counts them.

Cleaning refuses to run when keyed tombstones were written under another key (the fingerprint
in ``key_id`` differs): with the wrong key nothing would match, and erased people would return.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from idr_pipeline.core.secrets import key_fingerprint

SCHEME = "hmac-sha256"
_SEPARATOR = "\x1f"


class TombstoneKeyMismatch(RuntimeError):
    """Tombstones in the store were written under a key other than the configured one."""


def tombstone_digest(key: bytes, id_type: str, value: str) -> str:
    """The keyed tombstone of one normalized identifier value."""
    return hmac.new(key, f"{id_type}{_SEPARATOR}{value}".encode(), hashlib.sha256).hexdigest()


def legacy_digest(value: str) -> str:
    """The plain SHA-256 that tombstones held before they were keyed."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Tombstones:
    """The tombstones cleaning and the purge check, by id type; picklable for Spark workers."""

    key: bytes = field(default=b"", repr=False)
    keyed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    legacy: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str | None, str | None]], key: bytes) -> Tombstones:
        """From ``IdentityStore.tombstone_rows()``; TombstoneKeyMismatch for another key's rows."""
        fingerprint = key_fingerprint(key)
        keyed: dict[str, set[str]] = defaultdict(set)
        legacy: dict[str, set[str]] = defaultdict(set)
        foreign: set[str] = set()
        for id_type, digest, scheme, key_id in rows:
            if scheme is None:
                legacy[id_type].add(digest)
            elif scheme == SCHEME:
                if key_id != fingerprint:
                    foreign.add(str(key_id))
                keyed[id_type].add(digest)
            else:
                raise ValueError(f"unknown tombstone scheme {scheme!r}")
        if foreign:
            raise TombstoneKeyMismatch(
                f"tombstones were written under key id(s) {sorted(foreign)}, the configured key is "
                f"{fingerprint}: set IDR_TOMBSTONE_KEY (or IDR_TOMBSTONE_KEY_FILE) to the key they were "
                "written with, or erased people would come back"
            )
        return cls(
            key=key,
            keyed={t: frozenset(v) for t, v in keyed.items()},
            legacy={t: frozenset(v) for t, v in legacy.items()},
        )

    @classmethod
    def coerce(cls, value: Tombstones | Mapping[str, set[str]] | None) -> Tombstones:
        """A Tombstones as is; a plain mapping id_type -> SHA-256 set as legacy tombstones."""
        if isinstance(value, Tombstones):
            return value
        return cls(legacy={t: frozenset(v) for t, v in (value or {}).items()})

    def __bool__(self) -> bool:
        return any(self.keyed.values()) or any(self.legacy.values())

    @property
    def legacy_count(self) -> int:
        return sum(len(v) for v in self.legacy.values())

    def digest(self, id_type: str, value: str) -> str:
        if not self.key:
            raise ValueError("no tombstone key")
        return tombstone_digest(self.key, id_type, value)

    def types(self) -> set[str]:
        return {t for t, v in self.keyed.items() if v} | {t for t, v in self.legacy.items() if v}

    def matches(self, id_type: str, values: Sequence[str]) -> np.ndarray:
        """One bool per value: is it tombstoned (keyed or legacy) for ``id_type``?"""
        keyed = self.keyed.get(id_type) or frozenset()
        legacy = self.legacy.get(id_type) or frozenset()
        out = np.zeros(len(values), dtype=bool)
        if keyed and self.key:
            out |= np.fromiter(
                (tombstone_digest(self.key, id_type, v) in keyed for v in values),
                dtype=bool,
                count=len(values),
            )
        if legacy:
            out |= self.legacy_matches(id_type, values)
        return out

    def legacy_matches(self, id_type: str, values: Sequence[str]) -> np.ndarray:
        legacy = self.legacy.get(id_type) or frozenset()
        if not legacy:
            return np.zeros(len(values), dtype=bool)
        return np.fromiter((legacy_digest(v) in legacy for v in values), dtype=bool, count=len(values))

    def tombstone_rows(self, identifiers: Iterable[tuple[str, str]], request_id: str) -> list[dict]:
        """Keyed tombstone rows for (id_type, normalized value) pairs."""
        fingerprint = key_fingerprint(self.key)
        return [
            {
                "id_type": t,
                "value_sha256": self.digest(t, v),
                "request_id": request_id,
                "scheme": SCHEME,
                "key_id": fingerprint,
            }
            for t, v in sorted(set(identifiers))
        ]
