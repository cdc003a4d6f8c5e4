"""Placeholder identifier values that must never link records."""

from __future__ import annotations

from pathlib import Path

import yaml

BLOCKLIST_KEYS = ("email_key", "phone_digits", "national_id", "device_id", "any")


def load_blocklist(path: str | Path) -> dict[str, set[str]]:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(raw) - set(BLOCKLIST_KEYS)
    if unknown:
        raise ValueError(f"blocklist {path}: unknown section(s) {sorted(unknown)}; expected {BLOCKLIST_KEYS}")
    return {k: {str(v).strip().lower() for v in (raw.get(k) or [])} for k in BLOCKLIST_KEYS}


def phone_digits(e164: str) -> str:
    """National significant digits for NANP numbers (what people type as placeholders)."""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    return digits[1:] if digits.startswith("1") and len(digits) == 11 else digits


def is_blocked(id_type: str, value: str, blocklist: dict[str, set[str]]) -> bool:
    v = value.strip().lower()
    if v in blocklist.get("any", set()):
        return True
    if id_type == "phone":
        return phone_digits(v) in blocklist.get("phone_digits", set())
    return v in blocklist.get(id_type, set())
