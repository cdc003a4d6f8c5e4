"""Secrets the product keys things with: from a variable when set, else from a key file.

A laptop needs no setup: the first use creates the file with 256 random bits (mode 0600,
created exclusively, so two processes starting together end up with the same key). Production
sets the variable (``IDR_TOMBSTONE_KEY``, ``IDR_WEBHOOK_SIGNING_KEY``) or mounts the file. The
key must outlive the store it keys: a lost tombstone key means tombstones no longer match, and
the pipeline refuses to run cleaning rather than let erased people back (see tombstones.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from idr_pipeline.settings import IdrSettings

#: Random bytes in a generated key file (hex-encoded in the file).
KEY_BYTES = 32


def secret_bytes(value: SecretStr | None, key_file: str) -> bytes:
    """The secret: ``value`` when set and not empty, else the key file (created when absent)."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value().encode("utf-8")
    path = Path(key_file).expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = _create_key_file(path)
    if not text:
        raise ValueError(f"key file {path} is empty; delete it to have a new key made, or set the variable")
    return text.encode("utf-8")


def _create_key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def key_fingerprint(key: bytes) -> str:
    """A short id of a key that reveals nothing about it: which key wrote a tombstone."""
    return hmac.new(key, b"idr key fingerprint", hashlib.sha256).hexdigest()[:16]


def tombstone_key(settings: IdrSettings) -> bytes:
    return secret_bytes(settings.tombstone_key, settings.tombstone_key_file)


def webhook_signing_key(settings: IdrSettings) -> bytes:
    return secret_bytes(settings.webhook_signing_key, settings.webhook_signing_key_file)
