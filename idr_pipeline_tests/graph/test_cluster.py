"""Household guards: shared identifiers are masked, household evidence counts once, and a family
e-mail cannot chain two people's identities together."""

from __future__ import annotations

import pandas as pd

from idr_pipeline.graph.cluster import cluster
from idr_pipeline.scoring.person import CONFLICTING_DOB
from idr_pipeline.settings import MatchConfig

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


def test_a_family_email_link_does_not_chain_two_people():
    scored = pd.DataFrame(
        [("a1", "a2", 0.999), ("b1", "b2", 0.999), ("a1", "b1", 0.97)],
        columns=["record_id_l", "record_id_r", "probability"],
    )
    result = cluster(HOUSEHOLD, scored, MatchConfig())
    assert result.labels["a1"] == result.labels["a2"] != result.labels["b1"] == result.labels["b2"]
    # Ann and Bob are two people by their birth dates (and given names), whatever they share.
    assert result.refused_counts() == {CONFLICTING_DOB: 1}
