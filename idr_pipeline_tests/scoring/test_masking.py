"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import pandas as pd
import pytest

from idr_pipeline.scoring.masking import mask_shared_identifiers
from idr_pipeline.scoring.score import HOUSEHOLD_COLUMN, household_dependency

HOUSEHOLD = pd.DataFrame(
    [
        # Ann's two records and Bob's two records; they share landline, address and a family e-mail.
        ("a1", "Ann", "Lee", "1980-02-03", "+14155550100", "lees@example.com", "lees@example.com"),
        ("a2", "Ann", "Lee", "1980-02-03", "+14155550100", "ann.lee@example.com", "annlee@example.com"),
        ("b1", "Bob", "Lee", "1975-07-09", "+14155550100", "lees@example.com", "lees@example.com"),
        ("b2", "Bob", "Lee", "1975-07-09", None, "bob@example.com", "bob@example.com"),
    ],
    columns=["record_id", "first_name", "last_name", "dob", "phone", "email", "email_key"],
).assign(national_id=None, ip_address=None)


def test_identifiers_shared_by_several_people_are_masked():
    masked, report = mask_shared_identifiers(HOUSEHOLD, max_people=1)
    assert masked.phone.isna().all()  # Ann and Bob both carry the landline
    assert masked.set_index("record_id").loc[["a1", "b1"], "email_key"].isna().all()
    assert masked.set_index("record_id").loc["b2", "email_key"] == "bob@example.com"
    assert set(report.identifier) == {"email_key", "phone"}


def test_a_tablet_two_nameless_sign_ups_share_is_masked_when_their_handles_name_two_people():
    # No given name on either sign-up; their handles spell James and Claudia Vasquez.
    signups = pd.DataFrame(
        [
            ("s1", None, "Vasquez", "james.vasquez@aol.com", "tablet-1"),
            ("s2", None, "Vasquez", "claudia.vasquez@charter.net", "tablet-1"),
            ("s3", None, "Vasquez", "james.vasquez84@gmail.com", "tablet-2"),
            ("s4", None, "Vasquez", "jvasquez@gmail.com", "tablet-2"),
        ],
        columns=["record_id", "first_name", "last_name", "email", "device_id"],
    ).assign(dob=None, national_id=None, phone=None, ip_address=None, email_key=None)
    masked, report = mask_shared_identifiers(signups, max_people=1)
    # James's own two sign-ups ('j' is his initial) keep their tablet; the household's is masked
    assert masked.set_index("record_id")["device_id"].to_dict() == {
        "s1": None,
        "s2": None,
        "s3": "tablet-2",
        "s4": "tablet-2",
    }
    assert report.set_index("identifier").loc["device_id", "shared_values"] == 1


def test_household_evidence_counts_once():
    weights = pd.DataFrame(
        {"address": [12.0, 12.0], "phone": [13.0, -2.0], "ip_address": [11.0, 0.0], "first_name": [-4.0, 6.0]}
    )
    correction = household_dependency(weights)
    assert correction.tolist() == [pytest.approx(-23.0), pytest.approx(0.0)]
    assert HOUSEHOLD_COLUMN == "household_dependency"
