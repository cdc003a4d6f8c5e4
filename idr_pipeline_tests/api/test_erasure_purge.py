"""Erasure reaches the whole lake: after the purge job, none of the person's values is left in
any lake dataset (every version) or store table, and running the pipeline again does not bring
them back.

Real parts throughout: the generated sources land and resolve through the Dagster definitions
(local Spark, MiniLM embeddings, the SQLite store), the erasure goes through the API, and the
purge runs as the Dagster job its sensor requests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pyarrow import fs as pafs

from idr_pipeline.api import create_app
from idr_pipeline.api.auth import create_key
from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.devtools.dagster_runs import materialize_everything
from idr_pipeline.devtools.synthetic import generate_dataset
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.privacy.purge import canonical_frame
from idr_pipeline.settings import get_settings
from idr_pipeline.standardize import standardize_frame
from idr_pipeline.store import IdentityStore, open_store
from idr_pipeline.store.tables import TABLES

PEOPLE = 120


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class Needles:
    """The person's values: e-mails (any case), phone and national id (as digits), record ids."""

    def __init__(self, texts: set[str], digit_runs: set[str]) -> None:
        self.texts = {t.lower() for t in texts if t}
        self.digit_runs = {d for d in digit_runs if len(d) >= 7}

    def found_in(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lowered = text.lower()
        for needle in self.texts:
            if needle in lowered:
                return needle
        digits = _digits(text)
        for run in self.digit_runs:
            if run in digits:
                return run
        return None


def _lake_hits(lake_uri: str, needles: Needles) -> list[str]:
    """Every file of the lake (Parquet cells and any other file's text) holding a needle."""
    filesystem, root = pafs.FileSystem.from_uri(lake_uri)
    hits = []
    for info in filesystem.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type != pafs.FileType.File or info.path.endswith(".crc"):
            continue
        rel = info.path[len(root) :]
        if info.path.endswith(".parquet"):
            table = pq.read_table(info.path, filesystem=filesystem)
            for name in table.column_names:
                kind = table.schema.field(name).type
                if not (
                    pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind)
                ):
                    continue
                for value in table.column(name).to_pylist():
                    needle = needles.found_in(value)
                    if needle:
                        hits.append(f"{rel}:{name} holds {needle!r}")
                        break
        else:
            with filesystem.open_input_stream(info.path) as stream:
                needle = needles.found_in(stream.read())
            if needle:
                hits.append(f"{rel} holds {needle!r}")
    return hits


def _store_hits(store: IdentityStore, needles: Needles) -> list[str]:
    hits = []
    for table in TABLES:
        for row in store.select_rows(table):
            for column, value in row.items():
                needle = needles.found_in(value)
                if needle:
                    hits.append(f"{table}.{column} holds {needle!r}")
    return hits


def _pick_person(store: IdentityStore) -> dict[str, Any]:
    """An identity of several records with an e-mail, a phone and a national id, every one of
    its identifiers held by it alone (a shared one is kept, rightly, for its other holders)."""
    for profile in store.select_rows("golden_profiles", order_by=["identity_id"]):
        if (
            not (profile["email"] and profile["phone"] and profile["national_id"])
            or profile["record_count"] < 2
        ):
            continue
        identity = profile["identity_id"]
        identifiers = store.select_rows("identifiers", {"identity_id": identity})
        if all(store.lookup(i["id_type"], i["id_value"]) == [identity] for i in identifiers):
            if not store.select_rows("merge_history", {"survivor_id": identity}):
                return profile
    raise AssertionError("no suitable person in the sample")


def _raw_values(lake_uri: str, record_ids: set[str], mapping_path: str) -> tuple[set[str], set[str]]:
    """The person's e-mails as the sources spelled them, and phone and national id digit runs."""
    mappings = load_mappings(mapping_path)
    filesystem, root = pafs.FileSystem.from_uri(lake_uri)
    texts, digit_runs = set(), set()
    for info in filesystem.get_file_info(pafs.FileSelector(f"{root}/raw/profiles", recursive=True)):
        if not info.path.endswith(".parquet"):
            continue
        source = re.search(r"source=([^/]+)/", info.path).group(1)
        raw = canonical_frame(pq.read_table(info.path, filesystem=filesystem), mappings[source])
        mine = standardize_frame(raw)["record_id"].isin(record_ids).to_numpy()
        for row in raw[mine].to_dict("records"):
            if row.get("email"):
                texts.add(str(row["email"]).strip())
            for column in ("phone", "national_id"):
                if row.get(column):
                    digit_runs.add(_digits(str(row[column]))[-9:])
    return texts, digit_runs


def _write_events(lake_uri: str, email: str, other_email: str) -> None:
    """An event partition holding one of the person's events and one of someone else's."""
    filesystem, root = pafs.FileSystem.from_uri(lake_uri)
    folder = f"{root}/raw/events/p0-000000000000-000000000001"
    filesystem.create_dir(folder, recursive=True)
    table = pa.table(
        {
            "event_id": ["e1", "e2"],
            "type": ["identify", "identify"],
            "anonymous_id": ["cookie-1", "cookie-2"],
            "user_id": [None, None],
            "email": [email.upper(), other_email],
        }
    )
    pq.write_table(table, f"{folder}/part-0.parquet", filesystem=filesystem)


@pytest.fixture
def purge_env(idr_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IDR_INDEX_DIR", str(idr_env / "faiss"))
    monkeypatch.setenv("IDR_EMBED_POLICY", "all")
    monkeypatch.setenv("IDR_TOMBSTONE_KEY_FILE", str(idr_env / "secrets" / "tombstone.key"))
    monkeypatch.setenv("IDR_WEBHOOK_SIGNING_KEY_FILE", str(idr_env / "secrets" / "webhook.key"))
    monkeypatch.setenv("IDR_API_EXPORT_DIR", str(idr_env / "exports"))
    get_settings.cache_clear()
    yield idr_env
    get_settings.cache_clear()


def test_erased_person_is_gone_from_every_lake_dataset_and_store_table(purge_env: Path, spark) -> None:
    settings = get_settings()
    generate_dataset(people=PEOPLE, out_dir=purge_env / "landing", seed=11)
    instance = dg.DagsterInstance.ephemeral()
    materialize_everything(instance=instance, log_level="WARNING")

    with open_store(settings.store_url) as store:
        person = _pick_person(store)
        identity = person["identity_id"]
        record_ids = {r["record_id"] for r in store.select_rows("record_links", {"identity_id": identity})}
        identifiers = store.select_rows("identifiers", {"identity_id": identity})
        other = next(
            p["email"]
            for p in store.select_rows("golden_profiles", order_by=["identity_id"])
            if p["email"] and p["identity_id"] != identity
        )
        admin = create_key(store, "privacy officer", ["admin"])[1]
    raw_texts, raw_digits = _raw_values(settings.lake_uri, record_ids, settings.source_mapping_path)
    _write_events(settings.lake_uri, person["email"], other)
    needles = Needles(
        {person["email"], *record_ids, *raw_texts}
        | {
            i["id_value"]
            for i in identifiers
            if i["id_type"] in ("email", "email_key", "device_id", "anonymous_id")
        },
        {_digits(person["phone"])[-9:], _digits(person["national_id"]), *raw_digits},
    )
    before = _lake_hits(settings.lake_uri, needles)
    datasets = {h.split("/v=")[0].split(":")[0] for h in before}
    # The person is everywhere to begin with: raw, clean, matching, resolution, serving, events.
    for expected in ("/raw/profiles", "/clean/profiles", "/serving/golden_profiles", "/raw/events"):
        assert any(d.startswith(expected) for d in datasets), (expected, sorted(datasets))
    assert any("/resolution/" in d for d in datasets) and any("/matching/" in d for d in datasets)

    with TestClient(create_app(settings)) as client:
        answer = client.post(
            "/subjects/erase",
            json={"id_type": "email", "value": person["email"]},
            headers={"X-API-Key": admin},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["identities"] == [identity] and answer.json()["purge_requested"]

    defs = load_idr_definitions()
    sensor = defs.resolve_sensor_def("erasure_purge_sensor")
    requested = sensor(dg.build_sensor_context(instance=instance))
    assert len(requested.run_requests) == 1
    result = defs.resolve_job_def("erasure_purge_job").execute_in_process(instance=instance)
    counts = result.output_for_node("purge_erased_subjects")
    assert counts["rows_removed_total"] > 0 and counts["requests"] == 1
    assert _lake_hits(settings.lake_uri, needles) == []
    with open_store(settings.store_url) as store:
        assert _store_hits(store, needles) == []
        assert [r["status"] for r in store.select_rows("purge_requests")] == ["done"]
        audit = store.select_rows("erasure_audit", order_by=["recorded_at"])
        assert [(a["action"], a["outcome"]) for a in audit] == [("erase", "erased"), ("purge", "purged")]
    # The sensor has nothing more to ask for, and a second purge finds nothing.
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)

    # Running the pipeline again (landing included) does not bring the person back.
    materialize_everything(instance=instance, log_level="WARNING")
    assert _lake_hits(settings.lake_uri, needles) == []
    with open_store(settings.store_url) as store:
        assert _store_hits(store, needles) == []
        assert store.count_rows("identities", {"identity_id": identity}) == 0
