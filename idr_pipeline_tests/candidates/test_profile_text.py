"""``profile_text`` builds its texts column by column; these tests hold it to the row-by-row
definition below (the field order, the cleaning and the e-mail words its docstring states),
on generated values that include odd whitespace, non-ASCII letters, several ``@`` and ``+``,
blank and missing values, and non-string columns."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from idr_pipeline.candidates.embedding import profile_text

COLUMNS = ["first_name", "last_name", "email", "email_key", "dob", "street", "city", "state", "postcode"]


def _clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _email_words(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local = email.rsplit("@", 1)[0].lower().split("+", 1)[0]
    local = re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", " ", local)
    words = re.sub(r"[^0-9a-z]+", " ", local).strip()
    return words or None


def row_text(row: dict[str, Any]) -> str:
    """The definition: name, e-mail words, date of birth, street, place; missing parts left out."""
    name = " ".join(p for p in (_clean(row.get("first_name")), _clean(row.get("last_name"))) if p)
    email = _email_words(_clean(row.get("email")) or _clean(row.get("email_key")))
    place = " ".join(p for p in (_clean(row.get(c)) for c in ("city", "state", "postcode")) if p)
    parts = [name, email, _clean(row.get("dob")), _clean(row.get("street")), place]
    return ", ".join(p for p in parts if p)


def reference(frame: pd.DataFrame) -> list[str]:
    return [row_text(r) for r in frame[[c for c in COLUMNS if c in frame.columns]].to_dict("records")]


# Letters, digits, the separators e-mails and names carry, and whitespace Arrow's default trim
# would treat differently from str.strip (the information separators, a no-break space).
ALPHABET = st.sampled_from(list("aZk9 0@+._-éİßΣ\t\n\x1c\x1f\u00a0\u2003,'"))
VALUES = st.one_of(st.none(), st.just(""), st.just("   "), st.text(ALPHABET, max_size=12))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({c: VALUES for c in COLUMNS}), min_size=1, max_size=20))
def test_profile_text_matches_the_row_by_row_definition(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    assert profile_text(frame) == reference(frame)


def test_profile_text_of_non_string_columns_uses_their_python_text() -> None:
    frame = pd.DataFrame(
        {
            "first_name": ["Ann", None, None],
            "dob": [dt.date(1990, 1, 2), None, dt.date(1985, 12, 31)],
            "postcode": [12345.0, np.nan, 7.5],
        }
    )
    assert profile_text(frame) == reference(frame) == ["Ann, 1990-01-02, 12345.0", "", "1985-12-31, 7.5"]


def test_profile_text_of_no_rows_and_of_missing_columns() -> None:
    assert profile_text(pd.DataFrame(columns=COLUMNS)) == []
    assert profile_text(
        pd.DataFrame({"record_id": ["x", "y"], "email_key": ["jo.ann+x@ex.com", "nope"]})
    ) == [
        "jo ann",
        "",
    ]


def test_e_mail_words_of_non_ascii_local_parts_follow_python_lower_casing() -> None:
    # str.lower() turns a dotted capital I into "i" and a combining dot, which then splits it
    # from the next letter; a per-character lower-casing would keep "ia" together.
    frame = pd.DataFrame({"email": ["Jİa@x.com", "ÉLodie.B2@x.fr", "STRASSE+ß@x.de", "ĲSSEL@x.nl"]})
    assert profile_text(frame) == reference(frame)
    assert profile_text(frame)[0] == "ji a"
