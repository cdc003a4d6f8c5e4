"""A seeded store, a hand-set match model, a Faiss index and API keys for the API tests.

The store is filled through its own upserts (what the serving load does), the model is a
Fellegi-Sunter model with m rising and u falling by agreement level (enough to score pairs
meaningfully without a Spark training run), and the index holds the real default encoder's
(character 3-gram) vectors of every linked record's profile, so nothing here needs Spark or
MiniLM except the tests that ask for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from idr_pipeline.api import create_app
from idr_pipeline.api.auth import create_key
from idr_pipeline.candidates import chargram_embedding
from idr_pipeline.candidates.embedding import profile_text
from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.scoring.comparisons import COMPARISONS
from idr_pipeline.scoring.fellegi_sunter import MatchModel
from idr_pipeline.settings import IdrSettings
from idr_pipeline.store import IdentityStore, open_store
from idr_pipeline_tests.services_fixtures import throwaway_database

PEOPLE = [
    # identity, first, last, email, phone, dob, street, city, state, postcode, country, national_id
    ("id-001", "Alice", "Smith", "alice.smith@gmail.com", "+14155552671", "1980-02-03", "1 Main St", "Springfield", "IL", "62701", "US", "512-34-7788"),
    ("id-002", "Bob", "Jones", "bob.jones@example.com", "+14152000001", "1975-06-07", "2 Oak Ave", "Springfield", "IL", "62702", "US", None),
    ("id-003", "Carla", "Diaz", "carla.diaz@example.org", "+442071838750", "2001-11-30", "3 High St", "London", None, "WC2H 8LG", "GB", None),
    ("id-004", "Dan", "Brown", None, None, "1990-01-01", "4 Elm St", "Austin", "TX", "73301", "US", None),
]  # fmt: skip
EXTRA = 36  # filler identities, so pagination has pages to turn


def seed(store: IdentityStore) -> None:
    """Four named people, filler identities, two segments, a merge and a kept link."""
    identities, golden, links, identifiers, members = [], [], [], [], []
    for iid, first, last, email, phone, dob, street, city, state, postcode, country, nid in PEOPLE:
        identities.append({"identity_id": iid, "status": "active", "record_count": 2})
        ids: dict[str, list[str]] = {}
        if email:
            ids["email"] = [email]
            local, domain = email.split("@")
            ids["email_key"] = [(local.replace(".", "") if domain == "gmail.com" else local) + "@" + domain]
        if phone:
            ids["phone"] = [phone]
        if nid:
            ids["national_id"] = [nid.replace("-", "")]
        ids["device_id"] = [f"dev-{iid}"]
        golden.append(
            {
                "identity_id": iid, "first_name": first, "last_name": last, "email": email, "phone": phone,
                "street": street, "city": city, "state": state, "postcode": postcode, "country": country,
                "dob": dob, "national_id": ids.get("national_id", [None])[0], "identifiers": ids,
                "sources": ["crm", "web"], "record_count": 2,
            }
        )  # fmt: skip
        for n, source in enumerate(("crm", "web")):
            links.append({"record_id": f"{source}-{iid}-{n}", "identity_id": iid, "source": source})
        identifiers += [
            {"id_type": t, "id_value": v, "identity_id": iid} for t, vs in ids.items() for v in vs
        ]
    for n in range(EXTRA):
        iid = f"id-1{n:02d}"
        identities.append({"identity_id": iid, "status": "active", "record_count": 1})
        golden.append(
            {"identity_id": iid, "first_name": f"Filler{n}", "last_name": "Person", "country": "US" if n % 2 else "CA",
             "dob": f"19{50 + n}-05-05", "identifiers": {}, "sources": ["crm"], "record_count": 1}
        )  # fmt: skip
        links.append({"record_id": f"crm-{iid}", "identity_id": iid, "source": "crm"})
        members.append({"segment_id": "big", "identity_id": iid})
    identities.append(
        {"identity_id": "id-old", "status": "merged", "merged_into": "id-001", "record_count": 0}
    )
    store.upsert_identities(identities)
    store.upsert_golden_profiles(golden)
    store.upsert_record_links(links)
    store.upsert_identifiers(identifiers)
    store.record_merges([{"merged_id": "id-old", "survivor_id": "id-001", "reason": "shared email_key"}])
    store.upsert_match_links(
        [{"record_id_l": "crm-id-001-0", "record_id_r": "web-id-001-1", "identity_id": "id-001",
          "probability": 0.99, "weights": {"email": 9.1}}]
    )  # fmt: skip
    store.upsert(
        "segments",
        [
            {"segment_id": "vip", "name": "VIP", "kind": "rule", "definition": {"attribute": {"field": "country", "in": ["US"]}}, "member_count": 2},
            {"segment_id": "big", "name": "Big", "kind": "rule", "definition": None, "member_count": EXTRA},
        ],
    )  # fmt: skip
    members += [
        {"segment_id": "vip", "identity_id": "id-001"},
        {"segment_id": "vip", "identity_id": "id-002"},
    ]
    store.upsert("segment_members", members)
    store.upsert(
        "segment_membership_history",
        [{"segment_id": "vip", "identity_id": "id-001", "change_type": "joined", "score": 1.0}],
    )


def hand_set_model() -> MatchModel:
    """m ∝ 2^level, u ∝ 2^-level: agreement is evidence for a match, disagreement against."""
    m = {c.name: (w := 2.0 ** np.arange(c.n_levels)) / w.sum() for c in COMPARISONS}
    u = {c.name: (w := 2.0 ** -np.arange(c.n_levels, dtype=float) * 4) / w.sum() for c in COMPARISONS}
    return MatchModel(comparisons=list(COMPARISONS), m=m, u=u, prior=1e-4)


def index_profiles() -> pd.DataFrame:
    """One profile row per linked record of ``seed``: each person's CRM record as the golden
    profile, the web record with a typo in the surname and no street, each filler's one record."""
    rows = []
    for iid, first, last, email, _phone, dob, street, city, state, postcode, _country, _nid in PEOPLE:
        person = {"first_name": first, "last_name": last, "email": email, "dob": dob, "city": city,
                  "state": state, "postcode": postcode}  # fmt: skip
        rows.append({"record_id": f"crm-{iid}-0", **person, "street": street})
        rows.append({"record_id": f"web-{iid}-1", **person, "last_name": last[:-1] + "e"})
    for n in range(EXTRA):
        rows.append({"record_id": f"crm-id-1{n:02d}", "first_name": f"Filler{n}", "last_name": "Person",
                     "dob": f"19{50 + n}-05-05"})  # fmt: skip
    return pd.DataFrame(rows)


def seed_index(index_dir: Path) -> FaissCandidateIndex:
    """The chargram vectors of ``index_profiles``, saved where the API loads its index."""
    profiles = index_profiles()
    index = FaissCandidateIndex(dim=chargram_embedding.DEFAULT_DIM)
    index.add(profiles["record_id"].tolist(), chargram_embedding.encode(profile_text(profiles)))
    index.save(index_dir)
    return index


@dataclass
class Api:
    client: TestClient
    settings: IdrSettings
    keys: dict[str, str]
    store: IdentityStore

    def h(self, scope: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[scope]}


def make_settings(tmp_path: Path, store_url: str, **overrides: object) -> IdrSettings:
    model_path = tmp_path / "model.json"
    model_path.write_text(hand_set_model().to_json())
    values: dict[str, object] = {
        "store_url": store_url,
        "lake_uri": (tmp_path / "lake").as_uri(),
        "index_dir": str(tmp_path / "faiss"),
        "api_export_dir": str(tmp_path / "exports"),
        "api_model_path": str(model_path),
        "embedding_model_path": "",  # the chargram encoder: no MiniLM in these tests
        "api_max_body_bytes": 16 * 1024,
        "api_activation_batch_size": 10,
        # Key files in the test's folder: generated on first use, as on a laptop.
        "tombstone_key_file": str(tmp_path / "secrets" / "tombstone.key"),
        "webhook_signing_key_file": str(tmp_path / "secrets" / "webhook.key"),
    }
    values.update(overrides)
    return IdrSettings(**values)


def _open_api(tmp_path: Path, store_url: str, **overrides: object) -> Iterator[Api]:
    settings = make_settings(tmp_path, store_url, **overrides)
    store = open_store(store_url)
    store.ensure_schema()
    seed(store)
    seed_index(Path(settings.index_dir))
    keys = {
        "read": create_key(store, "reader", ["read"])[1],
        "pii": create_key(store, "pii reader", ["read", "pii"])[1],
        "export": create_key(store, "exporter", ["read", "export"])[1],
        "activate": create_key(store, "activator", ["read", "activate"])[1],
        "activate2": create_key(store, "other activator", ["read", "activate"])[1],
        "steward": create_key(store, "steward", ["read", "steward"])[1],
        "admin": create_key(store, "admin", ["admin"])[1],
    }
    try:
        with TestClient(create_app(settings)) as client:
            yield Api(client=client, settings=settings, keys=keys, store=store)
    finally:
        store.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The app on a fresh SQLite store."""
    yield from _open_api(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def mariadb_api(tmp_path: Path, mariadb_url: str) -> Iterator[Api]:
    """The app on a fresh MariaDB database (dropped afterwards)."""
    with throwaway_database(mariadb_url, "idr_api") as url:
        yield from _open_api(tmp_path, url)
