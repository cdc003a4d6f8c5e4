"""Person names: titles, accents, case and suffix spellings fold away; fillers are refused."""

from __future__ import annotations

import pytest

from idr_pipeline.standardize import name_match_key, normalize_name
from idr_pipeline.standardize.base import INVALID_NAME, PLACEHOLDER, Normalized


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Dr. José  O'NEIL Jr.", "Jose O'Neil Jr"),
        ("jose o'neil, junior", "Jose O'Neil Jr"),
        ("MARY-JANE o'neil", "Mary-Jane O'Neil"),
        ("d'angelo", "D'Angelo"),
        ("Mrs Smith III", "Smith III"),
        ("smith 3rd", "Smith III"),
        ("  anne\tmarie  ", "Anne Marie"),
        ("Zoë", "Zoe"),
    ],
)
def test_display_form(raw: str, expected: str) -> None:
    assert normalize_name(raw) == Normalized(expected, None)


@pytest.mark.parametrize("raw", ["test", "TEST", "First Name", "asdf", "aaaa", "Unknown", "x"])
def test_placeholders(raw: str) -> None:
    assert normalize_name(raw) == Normalized(None, PLACEHOLDER)


@pytest.mark.parametrize("raw", ["Mr.", "Dr", "12345", "!!!"])
def test_no_name_left(raw: str) -> None:
    assert normalize_name(raw) == Normalized(None, INVALID_NAME)


def test_match_key_ignores_punctuation_and_case() -> None:
    assert name_match_key("Mary-Jane O'Neil") == name_match_key("MARYJANE ONEIL") == "maryjaneoneil"
    assert name_match_key("test") is None
