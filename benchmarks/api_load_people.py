"""The synthetic people of ``api_load.py``: deterministic, so the seeder, the load generator and
the publisher (``publish_worker.py``, which runs with another commit's code on its path) agree.

No project imports here: the publisher imports the project from the code under test.
"""

from __future__ import annotations

import random

FIRST = ["james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "david", "elizabeth",
         "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "chris", "karen"]  # fmt: skip
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez",
        "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore", "jackson", "martin"]  # fmt: skip
CITIES = [
    ("Springfield", "IL", "627"),
    ("Austin", "TX", "733"),
    ("Portland", "OR", "972"),
    ("Denver", "CO", "802"),
]


def person(i: int) -> dict:
    """Identity i's golden profile; deterministic so reruns and the load generator agree."""
    rng = random.Random(i)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, zip3 = rng.choice(CITIES)
    return {
        "identity_id": f"bench-{i:07d}",
        "first_name": first.title(),
        "last_name": last.title(),
        "email": f"{first}.{last}{i}@example.com",
        "phone": f"+1415{2000000 + i:07d}"[:12],
        "dob": f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "street": f"{1 + i % 999} {rng.choice(['Oak', 'Elm', 'Main', 'Pine'])} St",
        "city": city,
        "state": state,
        "postcode": f"{zip3}{i % 100:02d}",
        "country": "US",
    }


def identity_id(i: int) -> str:
    return f"bench-{i:07d}"


def publish_tables(n: int, generation: int, email_key) -> dict[str, object]:
    """The tables a publish of ``n`` changed identities hands the store, as ``load_store`` reads
    them from the lake, each ordered by identity: every identity's row and golden profile
    change (record count, street), its record link and identifiers are unchanged (the publish
    still reads them to find that out)."""

    def changed(i: int) -> dict:
        p = person(i)
        return {**p, "street": f"{p['street']} Apt {generation}", "record_count": generation}

    return {
        "identities": (
            {"identity_id": identity_id(i), "status": "active", "record_count": generation} for i in range(n)
        ),
        "record_links": (
            {"record_id": f"crm-{identity_id(i)}", "identity_id": identity_id(i), "source": "crm"}
            for i in range(n)
        ),
        "golden_profiles": (
            {
                **changed(i),
                "identifiers": {"email_key": [person(i)["email"]], "phone": [person(i)["phone"]]},
                "sources": ["crm"],
            }
            for i in range(n)
        ),
        "identifiers": (
            row
            for i in range(n)
            for p in (person(i),)
            for row in (
                {"id_type": "email", "id_value": p["email"], "identity_id": p["identity_id"]},
                {"id_type": "email_key", "id_value": email_key(p["email"]), "identity_id": p["identity_id"]},
                {"id_type": "phone", "id_value": p["phone"], "identity_id": p["identity_id"]},
            )
        ),
        "merge_history": iter(()),
    }
