"""The findings of the serving side's security review (issue 25), one test each, on SQLite.

Each of these failed against the API before the fixes: a read key exporting whole profiles and
every identity id, /resolve explaining a non-match, reversible tombstones, erasure without dry
run, audit or care for merged identities, server-side request forgery and unsigned webhooks,
activations on any topic with any source, shared threads, no limits, and 500s on bounded input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio.to_thread
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from idr_pipeline.api.activation import TargetRefused, public_address, validate_target
from idr_pipeline.api.auth import create_key
from idr_pipeline.api.models import ActivationRequest
from idr_pipeline.api.publish import profile_message
from idr_pipeline.core.secrets import tombstone_key
from idr_pipeline.core.tombstones import Tombstones, legacy_digest, tombstone_digest
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.privacy.purge_requests import run_pending_purges
from idr_pipeline.standardize.batches import erased_mask
from idr_pipeline.store import open_store
from idr_pipeline_tests.api.conftest import EXTRA, Api, _open_api, make_settings


@contextmanager
def _api(tmp_path: Path, **overrides: object) -> Iterator[Api]:
    api = _open_api(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", **overrides)
    try:
        yield next(api)
    finally:
        api.close()


# ------------------------------------------------------------------ least privilege


def test_read_key_sees_national_id_and_birth_date_masked(api: Api) -> None:
    masked = api.client.get("/identities/id-001", headers=api.h("read")).json()
    assert masked["profile"]["national_id"] == "*****7788" and masked["profile"]["dob"] == "1980"
    assert masked["profile"]["identifiers"]["national_id"] == ["*****7788"]
    assert {"id_type": "national_id", "id_value": "*****7788"} in masked["identifiers"]
    assert "512347788" not in str(masked) and "1980-02-03" not in str(masked)
    assert masked["masked_fields"] == ["national_id", "dob"]
    whole = api.client.get("/identities/id-001", headers=api.h("pii")).json()
    assert whole["profile"]["national_id"] == "512347788" and whole["profile"]["dob"] == "1980-02-03"
    assert whole["masked_fields"] == []


def test_listing_everyone_needs_the_export_scope(api: Api) -> None:
    everyone = {"expression": {"not": {"in_segment": "x"}}, "limit": 1000}
    assert api.client.post("/audiences/query", json=everyone, headers=api.h("read")).status_code == 403
    counted = api.client.post(
        "/audiences/query", json={**everyone, "count_only": True}, headers=api.h("read")
    )
    assert counted.status_code == 200
    assert counted.json()["count"] == 4 + EXTRA and counted.json()["identities"] == []
    listed = api.client.post("/audiences/query", json=everyone, headers=api.h("export")).json()
    assert len(listed["identities"]) == 4 + EXTRA
    assert api.client.get("/segments/big/members", headers=api.h("read")).status_code == 403
    assert api.client.get("/segments/big/members", headers=api.h("export")).status_code == 200


def test_resolve_explains_nothing_when_nothing_matched(api: Api) -> None:
    near = {"first_name": "Zed", "last_name": "Jones", "postcode": "62702"}  # Bob Jones scores ~0.73
    body = api.client.post("/resolve", json=near, headers=api.h("read")).json()
    assert body["matched"] is False
    assert body["probability"] is None and body["explanation"] == [] and body["candidates_scored"] is None


def test_personal_reads_are_logged_with_the_key_id_and_no_values(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="idr_pipeline.api.access"):
        api.client.get("/identities/id-001", headers=api.h("read"))
    lines = [r.getMessage() for r in caplog.records if r.name == "idr_pipeline.api.access"]
    key_id = api.keys["read"].split("_")[1]
    assert len(lines) == 1 and f"key_id={key_id}" in lines[0] and "identity_id=id-001" in lines[0]
    assert "national_id" in lines[0] and "masked=national_id,dob" in lines[0]
    for value in ("Alice", "alice.smith", "4155552671", "512347788", "7788", "1980", "Main St"):
        assert value not in lines[0]


# ------------------------------------------------------------------ tombstones


def test_a_tombstone_cannot_be_matched_without_the_key(api: Api) -> None:
    """The phone's tombstone is not found by trying every number with plain SHA-256, nor with
    the HMAC under a wrong key; the configured key finds it."""
    r = api.client.post(
        "/subjects/erase", json={"id_type": "phone", "value": "+1 415 200 0001"}, headers=api.h("admin")
    )
    assert r.status_code == 200 and r.json()["identities"] == ["id-002"]
    stored = {t["value_sha256"] for t in api.store.select_rows("tombstones", {"id_type": "phone"})}
    assert len(stored) == 1
    candidates = [f"+1415200{n:04d}" for n in range(10_000)]  # the number is among them
    assert not {legacy_digest(c) for c in candidates} & stored
    assert not {tombstone_digest(b"guessed key", "phone", c) for c in candidates} & stored
    key = tombstone_key(api.settings)
    found = [c for c in candidates if tombstone_digest(key, "phone", c) in stored]
    assert found == ["+14152000001"]


def test_cleaning_checks_keyed_and_legacy_tombstones() -> None:
    import pandas as pd

    key = b"k" * 32
    tombstones = Tombstones(
        key=key,
        keyed={"email": frozenset({tombstone_digest(key, "email", "a@x.com")})},
        legacy={"phone": frozenset({legacy_digest("+14155550100")})},
    )
    frame = pd.DataFrame(
        {
            "record_id": ["r1", "r2", "r3"],
            "email": ["a@x.com", "b@x.com", None],
            "phone": [None, None, "+14155550100"],
            "source": ["crm"] * 3,
            "source_customer_id": [None] * 3,
        }
    )
    for column in ("email_key", "national_id", "device_id", "anonymous_id"):
        frame[column] = None
    assert erased_mask(frame, tombstones).tolist() == [True, False, True]
    # Without the key the keyed tombstone matches nothing; the legacy one still does.
    assert erased_mask(
        frame, Tombstones(key=b"other", keyed=tombstones.keyed, legacy=tombstones.legacy)
    ).tolist() == [
        False,
        False,
        True,
    ]


def test_purge_rekeys_legacy_tombstones_whose_values_it_finds(tmp_path: Path) -> None:
    """A store's plain SHA-256 tombstone is rewritten as a keyed one once the purge finds its
    value in the lake (and the row holding it is purged); one it never finds stays plain."""
    lake = tmp_path / "lake"
    folder = lake / "clean" / "profiles" / "v=1"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {"record_id": ["r1", "r2"], "email": ["gone@x.com", "kept@x.com"], "source": ["crm", "crm"]}
        ),
        folder / "part-0.parquet",
    )
    (lake / "clean" / "profiles" / "_LATEST").write_text("1")
    key = b"k" * 32
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        store.ensure_schema()
        store.upsert(
            "tombstones",
            [
                {"id_type": "email", "value_sha256": legacy_digest("gone@x.com"), "request_id": "old"},
                {"id_type": "email", "value_sha256": legacy_digest("never@x.com"), "request_id": "old"},
            ],
        )
        store.upsert("purge_requests", [{"request_id": "p1", "identity_ids": [], "record_ids": []}])
        counts = run_pending_purges(store, lake.as_uri(), {}, "US", key)
        assert counts["legacy_tombstones_rekeyed"] == 1 and counts["rows_removed_total"] == 1
        rows = {(r["scheme"], r["value_sha256"]) for r in store.select_rows("tombstones")}
        assert rows == {
            ("hmac-sha256", tombstone_digest(key, "email", "gone@x.com")),
            (None, legacy_digest("never@x.com")),
        }
    assert pq.read_table(folder / "part-0.parquet").column("email").to_pylist() == ["kept@x.com"]


# ------------------------------------------------------------------ erasure


def test_erasure_by_post_with_dry_run_changes_nothing(api: Api) -> None:
    before = api.store.table_counts()
    body = {"id_type": "email", "value": "alice.smith@gmail.com", "dry_run": True}
    r = api.client.post("/subjects/erase", json=body, headers=api.h("admin"))
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["outcome"] == "would_erase" and plan["dry_run"] is True
    assert plan["identities"] == ["id-001"] and plan["merged_identities"] == ["id-old"]
    assert plan["record_ids"] == ["crm-id-001-0", "web-id-001-1"] and plan["records"] == 2
    assert {"id_type": "national_id", "id_value": "512347788"} in plan["identifiers"]
    after = api.store.table_counts()
    assert after.pop("erasure_audit") == before.pop("erasure_audit") + 1
    assert after == before  # nothing else changed: no tombstone, no deletion, no purge request


@pytest.mark.parametrize("store_fixture", ["api", "mariadb_api"])
def test_erasure_removes_the_stream_rows_under_the_subjects_cookies(
    store_fixture: str, request: pytest.FixtureRequest
) -> None:
    """Rows the stream service keeps under a cookie name no identity: a contested identify link
    and events held back until an identify event. Under the erased person's own cookie they go;
    under a cookie someone else also holds, or nobody's, they stay."""
    api: Api = request.getfixturevalue(store_fixture)
    api.store.upsert(
        "identifiers",
        [
            {"id_type": "anonymous_id", "id_value": "cookie-bob", "identity_id": "id-002"},
            {"id_type": "anonymous_id", "id_value": "cookie-shared", "identity_id": "id-002"},
            {"id_type": "anonymous_id", "id_value": "cookie-shared", "identity_id": "id-004"},
        ],
    )
    cookies = ["cookie-bob", "cookie-shared", "cookie-stranger"]
    api.store.upsert("stream_identify_links", [{"anonymous_id": c, "identity_id": None} for c in cookies])
    api.store.upsert(
        "stream_held_aggregates",
        [
            {"holder": f"anonymous_id:{c}", "event_type": "page_view", "day": 20000, "events": 3}
            for c in cookies
        ],
    )
    erased = api.client.post(
        "/subjects/erase", json={"id_type": "email", "value": "bob.jones@example.com"}, headers=api.h("admin")
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["identities"] == ["id-002"]
    assert erased.json()["rows_deleted"]["stream_held_aggregates"] == 1
    kept = ["cookie-shared", "cookie-stranger"]
    links = api.store.select_rows("stream_identify_links", order_by=["anonymous_id"])
    assert [r["anonymous_id"] for r in links] == kept
    held = api.store.select_rows("stream_held_aggregates", order_by=["holder"])
    assert [r["holder"] for r in held] == [f"anonymous_id:{c}" for c in kept]


def test_merged_in_identities_are_erased_only_when_asked(api: Api) -> None:
    body = {"id_type": "email", "value": "alice.smith@gmail.com"}
    refused = api.client.post("/subjects/erase", json=body, headers=api.h("admin"))
    assert refused.status_code == 409 and "id-old" in refused.json()["detail"]
    assert api.store.count_rows("identities", {"identity_id": ["id-001", "id-old"]}) == 2
    erased = api.client.post("/subjects/erase", json={**body, "include_merged": True}, headers=api.h("admin"))
    assert erased.json()["identities"] == ["id-001", "id-old"]


def test_every_erasure_request_is_audited_without_values(api: Api) -> None:
    admin_id = api.keys["admin"].split("_")[1]
    value = "bob.jones@example.com"
    erased = api.client.post(
        "/subjects/erase", json={"id_type": "email", "value": value}, headers=api.h("admin")
    )
    api.client.post(
        "/subjects/erase", json={"id_type": "email", "value": "nobody@x.org"}, headers=api.h("admin")
    )
    audit = api.store.select_rows("erasure_audit", order_by=["recorded_at"])
    assert [(a["action"], a["outcome"]) for a in audit] == [("erase", "erased"), ("erase", "not_found")]
    first = audit[0]
    assert first["key_id"] == admin_id and first["request_id"] == erased.json()["request_id"]
    assert (
        first["id_type"] == "email" and first["counts"]["identities"] == 1 and first["counts"]["records"] == 2
    )
    assert first["value_digest"] == tombstone_digest(tombstone_key(api.settings), "email", value)
    assert value not in str(audit) and "bob" not in str(audit).lower()
    with pytest.raises(Exception, match="append-only"):
        api.store.delete_rows("erasure_audit", {"audit_id": first["audit_id"]})


# ------------------------------------------------------------------ activations


@pytest.mark.parametrize(
    ("destination", "target", "overrides"),
    [
        ("webhook", "https://127.0.0.1/hook", {}),  # no allow-list: no webhooks at all
        ("webhook", "https://127.0.0.1/hook", {"webhook_allowed_hosts": "127.0.0.1"}),  # loopback
        ("webhook", "https://169.254.169.254/latest/meta-data", {"webhook_allowed_hosts": "169.254.169.254"}),
        ("webhook", "https://10.0.0.5/hook", {"webhook_allowed_hosts": "10.0.0.5"}),  # private
        ("webhook", "https://localhost/hook", {"webhook_allowed_hosts": "localhost"}),  # resolves to loopback
        ("webhook", "http://93.184.216.34/hook", {"webhook_allowed_hosts": "93.184.216.34"}),  # plain http
        (
            "webhook",
            "https://93.184.216.34/hook",
            {"webhook_allowed_hosts": "hooks.example.com"},
        ),  # not listed
        ("webhook", "https://user:pw@93.184.216.34/", {"webhook_allowed_hosts": "93.184.216.34"}),
        ("kafka", "idr.events", {}),
        ("kafka", "idr.profiles", {"kafka_activation_topic_prefix": "idr."}),
        ("kafka", "customer-topic", {}),  # without the configured prefix
        ("kafka", "idr-activation.x", {"kafka_activation_topic_prefix": ""}),  # Kafka activations off
        ("file", "x.csv\n", {}),  # '$' matched before a trailing newline
    ],
)
def test_activation_targets_are_refused(
    tmp_path: Path, destination: str, target: str, overrides: dict
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 's.db'}", **overrides)
    with pytest.raises(TargetRefused):
        validate_target(ActivationRequest(destination=destination, target=target), settings)


def test_public_webhook_targets_and_dev_mode_are_accepted(tmp_path: Path) -> None:
    public = make_settings(tmp_path, "sqlite:///x.db", webhook_allowed_hosts="*.example.com, 93.184.216.34")
    validate_target(ActivationRequest(destination="webhook", target="https://93.184.216.34/h"), public)
    dev = make_settings(tmp_path, "sqlite:///x.db", webhook_allowed_hosts="127.0.0.1", webhook_dev_mode=True)
    validate_target(ActivationRequest(destination="webhook", target="http://127.0.0.1:9/h"), dev)
    assert not public_address("::ffff:127.0.0.1") and not public_address("100.64.0.1")


def test_register_publishes_with_source_api_whatever_the_client_says() -> None:
    assert profile_message({"email": "x@y.com", "source": "crm"})["source"] == "api"


def test_activations_belong_to_their_key(api: Api) -> None:
    created = api.client.post(
        "/segments/vip/activations",
        json={"destination": "file", "target": "v.csv"},
        headers=api.h("activate"),
    ).json()
    url = f"/activations/{created['activation_id']}"
    assert api.client.get(url, headers=api.h("activate2")).status_code == 404
    assert api.client.get(url, headers=api.h("activate")).status_code == 200
    assert api.client.get(url, headers=api.h("admin")).status_code == 200


def test_activations_never_take_the_routes_threads(tmp_path: Path) -> None:
    """Kafka activations against a broker that does not answer block their producers for
    seconds; they wait on the activation pool, the routes' thread pool stays free, and past the
    pool's queue a new activation is refused with 429."""
    overrides = {
        "kafka_bootstrap_servers": "127.0.0.1:9",
        "api_activation_workers": 1,
        "api_activation_queue": 1,
    }
    with _api(tmp_path, **overrides) as api:
        body = {"destination": "kafka", "target": "idr-activation.unreachable"}
        codes = [
            api.client.post("/segments/vip/activations", json=body, headers=api.h("activate")).status_code
            for _ in range(3)
        ]
        assert codes == [202, 202, 429]
        limiter = api.client.portal.call(anyio.to_thread.current_default_thread_limiter)
        assert api.client.portal.call(lambda: limiter.borrowed_tokens) == 0
        assert api.client.get("/segments", headers=api.h("read")).status_code == 200
        statuses = {r["status"] for r in api.store.select_rows("activations")}
        assert statuses & {"pending", "running"}


# ------------------------------------------------------------------ limits


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    with _api(tmp_path, api_rate_limit_resolve="2/minute", api_rate_limit="5/minute") as api:
        resolve = [
            api.client.post("/resolve", json={"email": "a@b.com"}, headers=api.h("read")) for _ in range(3)
        ]
        assert [r.status_code for r in resolve] == [200, 200, 429]
        assert 1 <= int(resolve[2].headers["Retry-After"]) <= 60
        # Another key has its own budget; the default budget is apart from resolve's.
        assert api.client.post("/resolve", json={"email": "a@b.com"}, headers=api.h("pii")).status_code == 200
        reads = [api.client.get("/segments", headers=api.h("read")).status_code for _ in range(6)]
        assert reads == [200] * 5 + [429]


def test_audience_queries_run_under_a_time_limit(tmp_path: Path) -> None:
    with _api(tmp_path, api_query_timeout_seconds=1e-9) as api:
        r = api.client.post(
            "/audiences/query",
            json={"expression": {"in_segment": "vip"}, "count_only": True},
            headers=api.h("read"),
        )
        assert r.status_code == 422 and "narrow the expression" in r.json()["detail"]


@pytest.mark.parametrize(
    "content",
    [
        b'{"expression": {"purchased": {"min_count": 100000000000000000000000}}, "count_only": true}',
        b'{"expression": {"purchased": {"min_count": 1e23}}, "count_only": true}',
        b'{"expression": {"purchased": {"min_total": NaN}}, "count_only": true}',
        b'{"expression": {"purchased": {"min_total": Infinity}}, "count_only": true}',
        b'{"expression": {"in_segment": "vip"}, "count_only": true, "\\ud800": 1}',
        b'{"expression": {"in_segment": "\\ud800"}, "count_only": true, "secret-value@example.com": 1}',
    ],
)
def test_bounded_input_gets_422_that_echoes_nothing(api: Api, content: bytes) -> None:
    r = api.client.post(
        "/audiences/query", content=content, headers={**api.h("read"), "content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert "secret-value" not in r.text and "ud800" not in r.text and "1e23" not in r.text.lower()
    assert '"input"' not in r.text


# ------------------------------------------------------------------ small points


def test_similar_takes_the_email_in_the_body(api: Api) -> None:
    # GET takes an identity id only: an e-mail in the query string is refused, not answered.
    refused = api.client.get("/similar?email=alice.smith@gmail.com", headers=api.h("read"))
    assert refused.status_code == 422 and "alice" not in refused.text
    assert (
        api.client.post(
            "/similar", json={"email": "alice.smith@gmail.com"}, headers=api.h("read")
        ).status_code
        == 200
    )


def test_health_is_bare_without_a_key(api: Api) -> None:
    assert api.client.get("/health").json() == {"status": "ok"}
    assert api.client.get("/health/details").status_code == 401


def test_docs_can_be_turned_off(tmp_path: Path) -> None:
    with _api(tmp_path, api_docs=False) as api:
        assert api.client.get("/docs").status_code == 404
        assert api.client.get("/openapi.json").status_code == 404
        assert api.client.get("/health").status_code == 200


def test_openapi_declares_the_key(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key (idr_...)."
    }  # fmt: skip
    assert schemes["Bearer"]["scheme"] == "bearer"
    assert {"ApiKeyHeader": []} in schema["paths"]["/identities/{identity_id}"]["get"]["security"]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_keys_expire_and_record_their_last_use(api: Api) -> None:
    _, short = create_key(api.store, "short-lived", ["read"], expires_in_days=1e-9)
    time.sleep(0.01)
    assert api.client.get("/segments", headers={"X-API-Key": short}).status_code == 401
    key_id = api.keys["read"].split("_")[1]
    assert api.store.select_rows("api_keys", {"key_id": key_id})[0]["last_used_at"] is None
    assert api.client.get("/segments", headers=api.h("read")).status_code == 200
    api.client.app.state.idr.key_use.flush()
    assert api.store.select_rows("api_keys", {"key_id": key_id})[0]["last_used_at"] is not None


def test_demo_suggests_a_read_key() -> None:
    source = Path(__file__).resolve().parents[2] / "idr_pipeline" / "cli" / "app.py"
    assert "--scopes read`" in source.read_text() and "read,activate,admin" not in source.read_text()


def test_secret_key_file_is_private_and_stable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///x.db")
    first = tombstone_key(settings)
    assert tombstone_key(settings) == first and len(first) == 64
    assert (Path(settings.tombstone_key_file).stat().st_mode & 0o777) == 0o600
    (tmp_path / "b").mkdir()
    assert tombstone_key(make_settings(tmp_path / "b", "sqlite:///y.db")) != first  # one per installation


def test_mappings_for_the_purge_come_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///x.db")
    assert set(load_mappings(settings.source_mapping_path)) == {"app", "crm", "pos", "web"}
