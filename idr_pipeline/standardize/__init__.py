"""Field-level standardization of profile records, and the contract the clean rows must meet.

The field normalizers are pure functions of one value (plus the row's region where reading a
value depends on it); :func:`standardize_frame` applies them to a pandas batch, which is how
the Spark job runs them (``mapInPandas``), so the same code is unit-tested without Spark.
"""

from idr_pipeline.standardize.base import EMPTY, Normalized
from idr_pipeline.standardize.contract import CLEAN_PROFILE_SCHEMA, validate_clean
from idr_pipeline.standardize.country import normalize_country
from idr_pipeline.standardize.dates import normalize_dob, parse_timestamp
from idr_pipeline.standardize.email import email_match_key, normalize_email
from idr_pipeline.standardize.frame import quarantine_reasons, standardize_frame
from idr_pipeline.standardize.identifiers import normalize_identifier, normalize_national_id
from idr_pipeline.standardize.ip import normalize_ip
from idr_pipeline.standardize.locality import normalize_city, normalize_state
from idr_pipeline.standardize.names import name_match_key, normalize_name
from idr_pipeline.standardize.phone import normalize_phone
from idr_pipeline.standardize.postcode import normalize_postcode
from idr_pipeline.standardize.street import normalize_street

__all__ = [
    "CLEAN_PROFILE_SCHEMA",
    "EMPTY",
    "Normalized",
    "email_match_key",
    "name_match_key",
    "normalize_city",
    "normalize_country",
    "normalize_dob",
    "normalize_email",
    "normalize_identifier",
    "normalize_ip",
    "normalize_name",
    "normalize_national_id",
    "normalize_phone",
    "normalize_postcode",
    "normalize_state",
    "normalize_street",
    "parse_timestamp",
    "quarantine_reasons",
    "standardize_frame",
    "validate_clean",
]
