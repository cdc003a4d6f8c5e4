"""E-mail addresses: one canonical spelling per mailbox, plus a looser key for matching.

Syntax checking is delegated to ``email-validator`` (offline: no DNS look-ups, which would make
the Spark job slow and non-deterministic). The match key exists because Gmail ignores dots and
``+tags`` in the local part, so 'J.Smith+shop@gmail.com' and 'jsmith@gmail.com' reach the same
person; other providers make no such promise, so their addresses are compared as written.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import ATEXT, DOT_ATOM_TEXT, EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH

from idr_pipeline.standardize.base import EMPTY, INVALID_SYNTAX, PLACEHOLDER, Normalized, is_placeholder
from idr_pipeline.standardize.canonical import arrow_strings, true_where

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
    # email-validator NFC-normalizes the local part and IDNA-decodes the domain; lower-case the
    # result again so the output is a fixed point of this function.
    return Normalized(result.normalized.lower(), None)


def _plain_ascii_address(text: str) -> str | None:
    """The address itself when it is plain ASCII dot-atom at a known-good domain, else None.

    email-validator spends most of its time per address on the domain; a batch has few
    distinct domains but as many local parts as people. So the domain is validated by
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
    """The normalized domain if email-validator accepts it (checked with a neutral local part)."""
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
    """``email_match_key`` of an address ``normalize_email`` already returned: normalizing is a
    fixed point, so standardization folds its own output without validating it a second time."""
    local, _, domain = normalized.rpartition("@")
    if domain in GMAIL_DOMAINS:
        base = local.split("+", 1)[0].replace(".", "")
        if base:
            return f"{base}@gmail.com"
    return normalized


# An address ``_normalize_email`` returns as it is, in ASCII: a lower-case dot-atom local part
# (DOT_ATOM_TEXT without the capitals) and a domain of lower-case letters, digits, dots and
# hyphens. No whitespace, so nothing to strip, and no ':' in it, so no 'mailto:'.
_LOWER_ATEXT = ATEXT.replace("a-zA-Z", "a-z")
_CANONICAL_ADDRESS = rf"^[{_LOWER_ATEXT}]+(?:\.[{_LOWER_ATEXT}]+)*@[a-z0-9.\-]+$"


def canonical_emails(values: np.ndarray) -> np.ndarray:
    """Where ``normalize_email(value)`` is ``value`` itself with no reason, decided for a whole batch.

    Most addresses arrive already trimmed and lower-case; for those the per-value path is only
    the checks of ``_plain_ascii_address``, which hold here as Arrow kernels: the shape, the
    length limits, and the domain as email-validator normalizes it (once per distinct domain,
    through the same cache). Whatever is not accepted takes ``normalize_email``.
    """
    text = arrow_strings(values)
    if text is None or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    shaped = pc.and_(pc.string_is_ascii(text), pc.match_substring_regex(text, _CANONICAL_ADDRESS))
    at = pc.find_substring(text, "@")  # the only '@' of a shaped value
    short = pc.and_(
        pc.less_equal(pc.utf8_length(text), EMAIL_MAX_LENGTH), pc.less_equal(at, LOCAL_PART_MAX_LENGTH)
    )
    candidate = pc.fill_null(pc.and_(shaped, short), False)
    if not pc.any(candidate).as_py():
        return np.zeros(len(values), dtype=bool)
    domains = pc.if_else(candidate, pc.replace_substring_regex(text, r"^[^@]*@", ""), "")
    distinct = pc.unique(domains.filter(candidate)).to_pylist()
    good = pa.array([d for d in distinct if _valid_domain(d) == d], type=pa.string())
    accepted = pc.and_(candidate, pc.is_in(domains, value_set=good))
    return true_where(accepted)


def fast_match_keys(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(done, key) of ``match_key_of_normalized`` for a batch of normalized addresses, in Arrow.

    A value ends in '@gmail.com' exactly when the text after its last '@' is 'gmail.com', as
    the domain holds no '@'; then the key is the local part up to its first '+', without dots,
    at gmail.com (the value itself if that leaves nothing). Any other address is its own key.
    """
    text = arrow_strings(values)
    if text is None:
        return np.zeros(len(values), dtype=bool), values
    keys = text
    for domain in sorted(GMAIL_DOMAINS):
        suffix = f"@{domain}"
        at_domain = pc.ends_with(text, suffix)
        local = pc.utf8_slice_codeunits(text, 0, -len(suffix))
        base = pc.replace_substring(pc.list_element(pc.split_pattern(local, "+", max_splits=1), 0), ".", "")
        folded = pc.and_(at_domain, pc.greater(pc.utf8_length(base), 0))
        keys = pc.if_else(folded, pc.binary_join_element_wise(base, "@gmail.com", ""), keys)
    return np.ones(len(values), dtype=bool), np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)
