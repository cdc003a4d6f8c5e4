"""What a key may see of a person, and the log of who read personal fields.

A ``read`` key gets golden profiles with the national id cut to its last four digits and the
date of birth to its year, wherever they appear (the profile, its identifier map, the
identifier list); a ``pii`` key gets them whole. Every identity read is logged on the
``idr_pipeline.api.access`` logger with the key id, the identity id, the personal fields the
answer carried and whether they were masked; never a value.
"""

from __future__ import annotations

import logging
from typing import Any

access_log = logging.getLogger("idr_pipeline.api.access")

#: Profile fields a key without the ``pii`` scope sees masked.
MASKED_FIELDS = ("national_id", "dob")
#: Profile fields that are personal data: named (never their values) in the access log.
PERSONAL_FIELDS = (
    "first_name", "last_name", "email", "phone", "street", "city", "state", "postcode", "dob", "national_id",
)  # fmt: skip


def mask_national_id(value: Any) -> str | None:
    """``*****7788``: the last four characters, the rest starred (all starred when shorter)."""
    if value is None:
        return None
    text = str(value)
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def mask_dob(value: Any) -> str | None:
    """The year alone (``1980``) of an ISO date."""
    if value is None:
        return None
    text = str(value)
    return text[:4] if len(text) >= 4 and text[:4].isdigit() else "****"


def mask_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """A copy of a ``get_identity`` answer with MASKED_FIELDS masked everywhere they appear."""
    out = dict(identity)
    profile = identity.get("profile")
    if profile is not None:
        profile = dict(profile)
        profile["national_id"] = mask_national_id(profile.get("national_id"))
        profile["dob"] = mask_dob(profile.get("dob"))
        identifiers = profile.get("identifiers")
        if isinstance(identifiers, dict) and identifiers.get("national_id"):
            profile["identifiers"] = {
                **identifiers,
                "national_id": [mask_national_id(v) for v in identifiers["national_id"]],
            }
        out["profile"] = profile
    out["identifiers"] = [
        {**i, "id_value": mask_national_id(i["id_value"])} if i.get("id_type") == "national_id" else i
        for i in identity.get("identifiers") or []
    ]
    return out


def log_identity_read(key_id: str, identity_id: str, profile: dict[str, Any] | None, masked: bool) -> None:
    fields = sorted(f for f in PERSONAL_FIELDS if profile and profile.get(f) is not None)
    access_log.info(
        "personal read: key_id=%s route=identity identity_id=%s fields=%s masked=%s",
        key_id,
        identity_id,
        ",".join(fields) or "-",
        ",".join(f for f in MASKED_FIELDS if f in fields) if masked else "-",
    )
