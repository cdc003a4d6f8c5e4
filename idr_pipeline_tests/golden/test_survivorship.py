"""Survivorship: most trusted source first, then most recent, then most frequent; groups stay whole."""

from __future__ import annotations

from idr_pipeline.golden.survivorship import build_golden_records, build_identifiers
from idr_pipeline.standardize.job import CLEAN_COLUMNS

BASE = dict.fromkeys(CLEAN_COLUMNS)


def _clean(spark, rows: list[dict]):
    full = [{**BASE, "_duplicate_count": 1, "_line_number": 1, **r} for r in rows]
    schema = ", ".join(
        f"{c} {'int' if c == '_trust' else 'long' if c in ('_duplicate_count', '_line_number') else 'string'}"
        for c in CLEAN_COLUMNS
    )
    return spark.createDataFrame([tuple(r[c] for c in CLEAN_COLUMNS) for r in full], schema)


def test_survivorship_and_identifiers(spark):
    rows = [
        # app (trust 4) is newest, but crm (trust 1) wins the name and address groups.
        {"record_id": "r1", "source": "crm", "_trust": 1, "updated_at": "2020-01-01T00:00:00Z",
         "first_name": "Robert", "last_name": "Smith", "street": "1 Main Street", "postcode": "94105",
         "email": "bob@old.com", "email_key": "bob@old.com"},
        {"record_id": "r2", "source": "app", "_trust": 4, "updated_at": "2024-01-01T00:00:00Z",
         "first_name": "Bob", "last_name": "Smith", "street": "9 Elm Street", "city": "Oakland",
         "email": "bob@new.com", "email_key": "bob@new.com", "phone": "+14155550100", "device_id": "dev-1"},
        # Two web records (same trust): the newer one wins the phone; dob only here.
        {"record_id": "r3", "source": "web", "_trust": 3, "updated_at": "2022-01-01T00:00:00Z",
         "phone": "+14155550111", "dob": "1980-02-03"},
        {"record_id": "r4", "source": "web", "_trust": 3, "updated_at": "2023-01-01T00:00:00Z",
         "phone": "+14155550122"},
        {"record_id": "x1", "source": "web", "_trust": 3, "first_name": "Other"},
    ]  # fmt: skip
    clean = _clean(spark, rows)
    links = spark.createDataFrame(
        [("r1", "idr_a"), ("r2", "idr_a"), ("r3", "idr_a"), ("r4", "idr_a"), ("x1", "idr_b")],
        "record_id string, identity_id string",
    )
    golden = {r.identity_id: r for r in build_golden_records(clean, links).collect()}
    a = golden["idr_a"]
    assert (a.first_name, a.last_name) == ("Robert", "Smith")
    # The address survives as a group: crm's street without app's city.
    assert (a.street, a.postcode, a.city) == ("1 Main Street", "94105", None)
    assert a.email == "bob@old.com"
    assert a.phone == "+14155550122"  # web (trust 3) beats app (trust 4); the newer web record wins
    assert a.dob == "1980-02-03"
    assert a.record_count == 4 and a.sources == ["app", "crm", "web"]
    assert a.identifiers["email_key"] == ["bob@new.com", "bob@old.com"]
    assert a.identifiers["device_id"] == ["dev-1"]
    assert golden["idr_b"].first_name == "Other" and golden["idr_b"].record_count == 1

    held = {(r.identity_id, r.id_type, r.id_value) for r in build_identifiers(clean, links).collect()}
    assert ("idr_a", "phone", "+14155550122") in held
    assert ("idr_a", "device_id", "dev-1") in held
