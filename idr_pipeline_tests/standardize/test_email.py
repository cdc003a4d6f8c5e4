"""E-mail golden cases, and the match-key invariances that identity linking relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idr_pipeline.standardize import email_match_key, normalize_email
from idr_pipeline.standardize.base import INVALID_SYNTAX, PLACEHOLDER, Normalized


@pytest.mark.parametrize(
    ("raw", "value", "key"),
    [
        (" John.Doe+promo@GoogleMail.com ", "john.doe+promo@googlemail.com", "johndoe@gmail.com"),
        ("JOHNDOE@gmail.com", "johndoe@gmail.com", "johndoe@gmail.com"),
        ("j.o.h.n.d.o.e+a+b@gmail.com", "j.o.h.n.d.o.e+a+b@gmail.com", "johndoe@gmail.com"),
        ("mailto:Jane.Roe@Example.org", "jane.roe@example.org", "jane.roe@example.org"),
        # Only Gmail ignores dots and +tags; elsewhere they may be different mailboxes.
        ("jane.roe+news@example.org", "jane.roe+news@example.org", "jane.roe+news@example.org"),
        ("JÖRG@Bücher.DE", "jörg@bücher.de", "jörg@bücher.de"),
    ],
)
def test_valid_addresses(raw: str, value: str, key: str) -> None:
    assert normalize_email(raw) == Normalized(value, None)
    assert email_match_key(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "a@b",
        "test@@x.com",
        "a..b@x.com",
        ".a@x.com",
        "a b@x.com",
        "x@localhost",
        "@x.com",
        "x@",
        "plainaddress",
    ],
)
def test_invalid_syntax(raw: str) -> None:
    assert normalize_email(raw) == Normalized(None, INVALID_SYNTAX)
    assert email_match_key(raw) is None


@pytest.mark.parametrize("raw", ["n/a", "NULL", " unknown "])
def test_placeholders(raw: str) -> None:
    assert normalize_email(raw) == Normalized(None, PLACEHOLDER)


@pytest.mark.parametrize("raw", [None, "", "   ", "mailto:"])
def test_empty_is_not_a_reason(raw: str | None) -> None:
    assert normalize_email(raw) == Normalized(None, None)


_local = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@given(
    parts=st.lists(_local, min_size=1, max_size=4),
    tag=st.none() | _local,
    domain=st.sampled_from(["gmail.com", "googlemail.com", "GMail.Com"]),
    upper=st.booleans(),
    pad=st.sampled_from(["", " ", "\t", "  \n"]),
)
def test_gmail_key_ignores_case_space_dots_and_tags(
    parts: list[str], tag: str | None, domain: str, upper: bool, pad: str
) -> None:
    written = ".".join(parts) + (f"+{tag}" if tag else "") + "@" + domain
    written = pad + (written.upper() if upper else written) + pad
    assert email_match_key(written) == "".join(parts) + "@gmail.com"


@given(
    local=_local,
    domain=st.sampled_from(["example.org", "yahoo.com", "outlook.com"]),
    pad=st.text(" \t", max_size=2),
)
def test_key_of_other_domains_ignores_case_and_space_only(local: str, domain: str, pad: str) -> None:
    address = f"{local}@{domain}"
    assert email_match_key(pad + address.upper() + pad) == address


_atext = st.text("abcxyz019.+_-!#$%&'*/=?^`{|}~", min_size=1, max_size=20)


@given(
    local=_atext,
    domain=st.sampled_from(["gmail.com", "x.test", "localhost", "a-.com", "bücher.de", "ex.co.uk"]),
)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    """The per-domain shortcut must accept and reject exactly what the full library does."""
    from email_validator import EmailNotValidError, validate_email

    address = f"{local}@{domain}"
    try:
        expected = Normalized(validate_email(address, check_deliverability=False).normalized.lower(), None)
    except EmailNotValidError:
        expected = Normalized(None, INVALID_SYNTAX)
    assert normalize_email(address) == expected


@given(
    local=_atext,
    domain=st.sampled_from(["gmail.com", "GoogleMail.com", "x.test", "bücher.de", "ex.co.uk"]),
    pad=st.sampled_from(["", " ", "mailto:"]),
)
def test_normalizing_is_a_fixed_point_so_its_output_folds_directly(local: str, domain: str, pad: str) -> None:
    """Standardization folds its own normalized addresses with match_key_of_normalized."""
    from idr_pipeline.standardize.email import match_key_of_normalized

    normalized = normalize_email(f"{pad}{local}@{domain}").value
    if normalized is not None:
        assert normalize_email(normalized).value == normalized
        assert match_key_of_normalized(normalized) == email_match_key(f"{pad}{local}@{domain}")
