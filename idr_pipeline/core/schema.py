"""The canonical profile schema every source is mapped into."""

from __future__ import annotations

CANONICAL_COLUMNS: list[str] = [
    "record_id",
    "source",
    "source_customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "postcode",
    "country",
    "dob",
    "national_id",
    "ip_address",
    "device_id",
    "anonymous_id",
    "updated_at",
]
REQUIRED_COLUMNS: list[str] = ["record_id", "source"]

# Columns added by standardization (see idr_pipeline.standardize).
DERIVED_COLUMNS: list[str] = ["email_key"]

# Ingestion metadata added when a file lands in the raw zone.
INGEST_COLUMNS: list[str] = ["_source", "_batch_id", "_ingested_at", "_line_number"]

# Strong identifiers: sharing one of these (after normalization) is evidence of one person.
STRONG_IDENTIFIERS: list[str] = ["email_key", "phone", "national_id", "device_id", "source_customer_key"]

# Column that carries, as JSON, any source columns the mapping does not name.
EXTRAS_COLUMN = "extras"

# The two record ids of a candidate, scored or kept pair, in every pair table.
PAIR_KEYS = ["record_id_l", "record_id_r"]
