"""Deterministic edges on Spark: placeholders and household values never become edges."""

from __future__ import annotations

from idr_pipeline.graph.edges import deterministic_edges, link_identifiers, shared_identifiers

BLOCKLIST = {
    "email_key": {"test@test.com"},
    "phone_digits": {"1234567890"},
    "national_id": set(),
    "device_id": set(),
    "any": {"unknown"},
}


def _occurrences(spark, rows):
    return spark.createDataFrame(
        [(*r[:3], r[3], "Smith", r[4], None, None) for r in rows],
        "record_id string, id_type string, id_value string, person_first string, person_last string, "
        "person_dob string, person_national_id string, person_email string",
    )


def test_blocklisted_and_shared_values_are_classified_and_never_link(spark):
    occ = _occurrences(
        spark,
        [
            # a placeholder e-mail on two records of one person: blocklisted, still no edge
            ("r1", "email_key", "test@test.com", "Ann", "1990-01-01"),
            ("r2", "email_key", "test@test.com", "Ann", "1990-01-01"),
            # a placeholder phone, matched on its national digits
            ("r3", "phone", "+11234567890", "Bob", None),
            ("r4", "phone", "+11234567890", "Bob", None),
            # the 'any' list, whatever the type
            ("r5", "device_id", "unknown", "Cyd", None),
            ("r6", "device_id", "unknown", "Cyd", None),
            # a landline two people share: a household value
            ("r7", "phone", "+15550001111", "Dina", None),
            ("r8", "phone", "+15550001111", "Ed", None),
            # one person's own e-mail on three records: two star edges from the smallest id
            ("r9", "email_key", "fay@example.org", "Fay", "1980-02-03"),
            ("r10", "email_key", "fay@example.org", "Fay", "1980-02-03"),
            ("r11", "email_key", "fay@example.org", "Fay", None),
        ],
    )
    linked = link_identifiers(occ, max_people=1, blocklist=BLOCKLIST).cache()
    reasons = {(r.id_type, r.id_value): r.not_identity_reason for r in shared_identifiers(linked).collect()}
    assert reasons == {
        ("email_key", "test@test.com"): "blocklisted",
        ("phone", "+11234567890"): "blocklisted",
        ("device_id", "unknown"): "blocklisted",
        ("phone", "+15550001111"): "shared_by_2_people",
    }
    edges = {(r.src, r.dst, r.id_type) for r in deterministic_edges(linked).collect()}
    assert edges == {("r10", "r11", "email_key"), ("r10", "r9", "email_key")}
