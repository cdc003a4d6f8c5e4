"""Rows that depict nobody, and lines that are not rows at all.

Real feeds carry QA test accounts, all-'N/A' placeholder rows and half-written lines; a
pipeline that has never met them either crashes or, worse, merges every 'test@test.com' row
into one giant identity. Two kinds are made here:

* value garbage: well-formed rows (with a record id, so they flow through ingestion) whose
  content is placeholders. They belong to no person and are left out of truth.csv.
* structural garbage: blank lines, CSV lines with the wrong number of fields or an unclosed
  quote, JSON lines that are not JSON or not an object. The tolerant readers must report each
  as a parse error rather than skip it, so the counts add up.

Parquet has no lines to break, so the app source only gets value garbage.
"""

from __future__ import annotations

import json

import numpy as np

from idr_pipeline.devtools.synthetic.records import SourceRows

# Of each source's records.
VALUE_GARBAGE_RATE = 0.004
STRUCTURAL_GARBAGE_RATE = 0.006  # CSV and JSON-lines sources only
DUPLICATE_ROW_RATE = 0.003

_TEST_VALUES: dict[str, tuple[str, ...]] = {
    "first_name": ("Test", "TEST", "asdf", "John", "x"),
    "last_name": ("Test", "User", "Doe", "qwerty", "Testing"),
    "email": ("test@test.com", "TEST@TEST.COM", "noemail@noemail.com", "a@a.com", "test@example.com"),
    "phone": ("1234567890", "555-555-5555", "(000) 000-0000", "9999999999", "0"),
    "street": ("123 Test St", "123 Main St", "N/A", "asdf", "1 Fake Street"),
    "city": ("Test", "Anytown", "N/A", "asdf", "Springfield"),
    "state": ("XX", "ZZ", "N/A", "CA", "--"),
    "postcode": ("00000", "12345", "99999", "N/A", "0"),
    "country": ("XX", "Test", "N/A", "US", "?"),
    "dob": ("00/00/0000", "not a date", "1900-01-01", "31/31/1999", "tomorrow"),
    "national_id": ("000-00-0000", "123-45-6789", "999999999", "N/A", "111111111"),
    "ip_address": ("0.0.0.0", "127.0.0.1", "999.1.1.1", "N/A", "localhost"),
    "device_id": ("00000000-0000-0000-0000-000000000000", "unknown", "N/A", "test-device", "null"),
    "anonymous_id": ("undefined", "null", "N/A", "00000000-0000-0000-0000-000000000000", "anon"),
    "source_customer_id": ("0", "TEST", "N/A", "-1", "999999"),
    "updated_at": ("0000-00-00 00:00:00", "N/A", "yesterday", "2024-13-45T99:99:99Z", "never"),
}


def _kinds(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n garbage kinds in shuffled round-robin: every kind shows up once n >= k."""
    return rng.permutation(np.arange(n) % k)


def value_garbage(template: SourceRows, record_ids: np.ndarray, rng: np.random.Generator) -> SourceRows:
    """Placeholder rows shaped like `template` (same columns), one per given record id.

    Half are 'N/A everywhere'; the rest are QA test accounts mixing test values with blanks.
    """
    n = len(record_ids)
    na_everywhere = rng.random(n) < 0.5
    cols: dict[str, np.ndarray] = {}
    for name in template.columns:
        options = np.array(_TEST_VALUES.get(name, ("N/A",)), dtype=object)
        values = rng.choice(options, size=n)
        values[rng.random(n) < 0.2] = ""
        values[na_everywhere] = "N/A"
        cols[name] = values
    extras = {name: np.full(n, "", dtype=object) for name in template.extras}
    return SourceRows(template.source, record_ids, np.full(n, "", dtype=object), cols, extras)


def csv_garbage_lines(
    good_lines: list[str], width: int, n: int, rng: np.random.Generator, prefix: str
) -> list[str]:
    """Broken CSV lines: blank, too few or too many fields, or an unclosed quote.

    Built from real lines of the file so they look like the rows around them. The unclosed
    quote opens the *last* field and no quote follows on the line, so even the reader's
    "join with the next line" repair cannot turn it into a well-formed row.
    """
    out: list[str] = []
    kinds = _kinds(4, n, rng)
    picks = rng.integers(0, max(1, len(good_lines)), size=n)
    cuts = rng.random(n)
    for kind, pick, cut in zip(kinds, picks, cuts, strict=True):
        base = good_lines[pick] if good_lines else f"{prefix}-garbage"
        fields = base.replace('"', "").split(",")
        if kind == 0:
            out.append("")
        elif kind == 1:  # truncated export: a line cut short
            keep = 1 + int(cut * (min(len(fields), width) - 2))
            out.append(",".join(fields[:keep]))
        elif kind == 2:  # a stray delimiter in an unquoted field
            out.append(",".join([*fields[: width - 1], "oops", *fields[width - 1 :], "extra"]))
        else:
            out.append(",".join(fields[: width - 1]) + ',"unterminated value')
    return out


def jsonl_garbage_lines(good_lines: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """Broken JSON lines: blank, truncated objects, Python reprs, bare values and arrays."""
    out: list[str] = []
    kinds = _kinds(5, n, rng)
    picks = rng.integers(0, max(1, len(good_lines)), size=n)
    cuts = rng.random(n)
    for kind, pick, cut in zip(kinds, picks, cuts, strict=True):
        base = good_lines[pick] if good_lines else "{}"
        if kind == 0:
            out.append("")
        elif kind == 1:  # a write cut off mid-object
            out.append(base[: max(2, int(cut * (len(base) - 1)))])
        elif kind == 2:  # a Python dict printed instead of serialized
            out.append(repr(json.loads(base)))
        elif kind == 3:
            out.append("null")
        else:
            out.append(json.dumps(list(json.loads(base).values())[:3]))
    return out
