"""E-mail addresses: one canonical spelling per mailbox, plus a looser key for matching.

Syntax checking is delegated to ``email-validator`` (offline: no DNS look-ups, which would make
the Spark job slow and non-deterministic). The match key exists because Gmail ignores dots and
``+tags`` in the local part, so 'J.Smith+shop@gmail.com' and 'jsmith@gmail.com' reach the same
person; other providers make no such promise, so their addresses are compared as written.
"""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH

from idr_pipeline.standardize.base import (
    EMPTY,
    INVALID_SYNTAX,
    PLACEHOLDER,
    Normalized,
    is_placeholder,
)

GMAIL_DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})
_MAILTO = "mailto:"


def normalize_email(value: str | None) -> Normalized:
    """Trimmed, lower-cased, syntax-checked address; invalid ones come back as a reason."""
    if value is None:
        return EMPTY
    return _normalize_email(value)


@lru_cache(maxsize=65536)
def _normalize_email(value: str) -> Normalized:
    text = value.strip()
    if text.lower().startswith(_MAILTO):
        text = text[len(_MAILTO) :].strip()
    if not text:
        return EMPTY
    if is_placeholder(text):
        return Normalized(None, PLACEHOLDER)
    text = text.lower()
    fast = _plain_ascii_address(text)
    if fast is not None:
        return Normalized(fast, None)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return Normalized(None, INVALID_SYNTAX)
    # email-validator NFC-normalises the local part and IDNA-decodes the domain; lower-case the
    # result again so the output is a fixed point of this function.
    return Normalized(result.normalized.lower(), None)


def _plain_ascii_address(text: str) -> str | None:
    """The address itself when it is plain ASCII dot-atom at a known-good domain, else None.

    email-validator costs ~50 microseconds an address, mostly on the domain; a batch has a few
    hundred distinct domains but as many local parts as people. So the domain is validated by
    the library once per domain, and the local part against the library's own dot-atom rule
    (anything unusual, such as quoting or non-ASCII, falls through to the full validation).
    """
    local, at, domain = text.rpartition("@")
    if not at or len(text) > EMAIL_MAX_LENGTH or len(local) > LOCAL_PART_MAX_LENGTH:
        return None
    if not local.isascii() or not DOT_ATOM_TEXT.match(local) or _valid_domain(domain) != domain:
        return None
    return text


@lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> str | None:
    """The normalised domain if email-validator accepts it (checked with a neutral local part)."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain.lower()
    except EmailNotValidError:
        return None


def email_match_key(email: str | None) -> str | None:
    """Key under which two addresses count as the same mailbox (Gmail dot/+tag folding)."""
    if email is None:
        return None
    return _email_match_key(email)


@lru_cache(maxsize=65536)
def _email_match_key(email: str) -> str | None:
    normalized = normalize_email(email).value
    return None if normalized is None else match_key_of_normalized(normalized)


def match_key_of_normalized(normalized: str) -> str:
    """``email_match_key`` of an address ``normalize_email`` already returned: normalising is a
    fixed point, so standardisation folds its own output without validating it a second time."""
    local, _, domain = normalized.rpartition("@")
    if domain in GMAIL_DOMAINS:
        base = local.split("+", 1)[0].replace(".", "")
        if base:
            return f"{base}@gmail.com"
    return normalized
