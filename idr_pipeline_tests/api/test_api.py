"""Every endpoint and every auth path, on SQLite; a subset again on MariaDB."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from idr_pipeline.api import auth
from idr_pipeline.api.auth import revoke_key
from idr_pipeline_tests.api.conftest import EXTRA, Api, _open_api


def _wait_activation(api: Api, activation_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = api.client.get(f"/activations/{activation_id}", headers=api.h("activate")).json()
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@contextmanager
def _api_on_sqlite(tmp_path: Path, **overrides: object) -> Iterator[Api]:
    api = _open_api(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", **overrides)
    try:
        yield next(api)
    finally:
        api.close()


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("method", "path", "scope", "body"),
    [
        ("GET", "/identities/id-001", "read", None),
        ("GET", "/health/details", "read", None),
        ("POST", "/resolve", "read", {"email": "alice.smith@gmail.com"}),
        ("POST", "/similar", "read", {"email": "alice.smith@gmail.com"}),
        ("POST", "/audiences/query", "read", {"expression": {"in_segment": "vip"}, "count_only": True}),
        ("POST", "/audiences/query", "export", {"expression": {"in_segment": "vip"}}),
        ("GET", "/segments", "read", None),
        ("GET", "/changes", "export", None),
        ("GET", "/segments/vip/members", "export", None),
        ("POST", "/segments/vip/lookalike", "export", {"size": {"count": 5}}),
        ("POST", "/segments/vip/activations", "activate", {"destination": "file", "target": "x.csv"}),
        ("GET", "/activations/nope", "activate", None),
        ("DELETE", "/subjects", "admin", {"id_type": "email", "value": "nobody@example.com"}),
        ("POST", "/subjects/erase", "admin", {"id_type": "email", "value": "nobody@example.com"}),
        ("GET", "/identities/id-001/possible-matches", "read", None),
        ("GET", "/decisions", "steward", None),
        (
            "POST",
            "/decisions",
            "steward",
            {"record_id_a": "a", "record_id_b": "b", "decision": "split", "reason": "x"},
        ),
    ],
)
def test_auth_paths(api: Api, method: str, path: str, scope: str, body: dict | None) -> None:
    call = lambda headers: api.client.request(method, path, json=body, headers=headers)  # noqa: E731
    assert call({}).status_code == 401
    assert call({"X-API-Key": "idr_bogus_key"}).status_code == 401
    assert call({"Authorization": "Bearer not-even-prefixed"}).status_code == 401
    weaker = {"read": None, "export": "read", "activate": "read", "steward": "read", "admin": "activate"}[
        scope
    ]
    if weaker:
        assert call(api.h(weaker)).status_code == 403
    ok = call(api.h(scope)).status_code
    assert ok not in (401, 403), ok
    # admin satisfies every scope, and the bearer spelling works too
    assert call({"Authorization": f"Bearer {api.keys['admin']}"}).status_code == ok


def test_revoked_key_gets_401(tmp_path: Path) -> None:
    # IDR_API_KEY_CACHE_SECONDS=0: every request asks the store, so revocation is immediate.
    with _api_on_sqlite(tmp_path, api_key_cache_seconds=0) as api:
        headers = api.h("read")
        assert api.client.get("/identities/id-001", headers=headers).status_code == 200
        key_id = api.keys["read"].split("_")[1]
        assert revoke_key(api.store, key_id)
        assert api.client.get("/identities/id-001", headers=headers).status_code == 401
        assert not revoke_key(api.store, key_id)


def test_revoked_key_gets_401_once_its_cache_entry_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _api_on_sqlite(tmp_path, api_key_cache_seconds=0.5) as api:
        headers = api.h("read")
        looked_up: list[str] = []
        real = auth.authenticate
        monkeypatch.setattr(
            auth, "authenticate", lambda store, key: looked_up.append(key) or real(store, key)
        )
        for _ in range(3):
            assert api.client.get("/identities/id-001", headers=headers).status_code == 200
        assert len(looked_up) == 1  # later requests are answered from the cache
        assert revoke_key(api.store, api.keys["read"].split("_")[1])
        assert api.client.get("/identities/id-001", headers=headers).status_code == 200  # still cached
        time.sleep(0.6)
        assert api.client.get("/identities/id-001", headers=headers).status_code == 401
        assert api.client.get("/identities/id-001", headers=headers).status_code == 401
        # Failures are never cached: a bad key is looked up each time.
        assert api.client.get("/identities/id-001", headers={"X-API-Key": "idr_x_y"}).status_code == 401
        assert looked_up.count("idr_x_y") == 1 and len(looked_up) == 4


def test_keys_are_stored_hashed(api: Api) -> None:
    rows = api.store.select_rows("api_keys")
    stored = " ".join(str(v) for r in rows for v in r.values())
    assert all(key not in stored for key in api.keys.values())
    assert all(len(r["key_sha256"]) == 64 for r in rows)


def test_body_too_large_is_413(api: Api) -> None:
    big = {"expression": {"attribute": {"field": "city", "in": ["x" * 100] * 400}}}
    response = api.client.post("/audiences/query", json=big, headers=api.h("read"))
    assert response.status_code == 413


def test_unknown_fields_are_refused(api: Api) -> None:
    r = api.client.post("/resolve", json={"email": "a@b.com", "sql": "DROP TABLE x"}, headers=api.h("read"))
    assert r.status_code == 422


# ------------------------------------------------------------------ read endpoints


def test_health_reports_store_index_and_model(api: Api) -> None:
    assert api.client.get("/health").json() == {"status": "ok"}  # liveness only, without a key
    body = api.client.get("/health/details", headers=api.h("read")).json()
    assert body["status"] == "ok"
    assert body["store"] == {"ok": True, "backend": "sqlite"}
    assert body["index"]["vectors"] == 8 + EXTRA and body["index"]["supports_removal"]  # every linked record
    assert body["model"]["loaded"] and body["model"]["blocking_index_identities"] == 4 + EXTRA


def test_docs_and_schema(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    schema = api.client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/health", "/resolve", "/similar", "/audiences/query", "/subjects", "/subjects/erase"} <= set(
        paths
    )


def test_get_identity(api: Api) -> None:
    body = api.client.get("/identities/id-001", headers=api.h("pii")).json()
    assert body["profile"]["email"] == "alice.smith@gmail.com"
    assert {"id_type": "email_key", "id_value": "alicesmith@gmail.com"} in body["identifiers"]
    assert [r["record_id"] for r in body["records"]] == ["crm-id-001-0", "web-id-001-1"]
    assert body["segments"][0]["segment_id"] == "vip"
    assert body["merges"][0]["merged_id"] == "id-old"
    assert api.client.get("/identities/missing", headers=api.h("read")).status_code == 404


def test_identity_reads_are_answered_while_every_worker_thread_is_busy(mariadb_api: Api) -> None:
    """The identity route reads on threads of its own (IDR_API_READ_THREADS): it does not wait
    for a free thread of the pool the sync routes and /resolve use when they hold all of it."""
    api = mariadb_api
    portal = api.client.portal
    assert portal is not None
    limiter = portal.call(anyio.to_thread.current_default_thread_limiter)
    assert limiter.total_tokens == api.settings.api_threads
    release = threading.Event()
    safety = threading.Timer(20, release.set)  # a regression fails below instead of hanging
    safety.start()
    holders = [
        portal.start_task_soon(anyio.to_thread.run_sync, release.wait)
        for _ in range(api.settings.api_threads)
    ]
    try:
        deadline = time.monotonic() + 10
        while portal.call(lambda: limiter.borrowed_tokens) < limiter.total_tokens:
            assert time.monotonic() < deadline, "worker threads were not all taken"
            time.sleep(0.01)
        started = time.monotonic()
        body = api.client.get("/identities/id-001", headers=api.h("read")).json()
        assert time.monotonic() - started < 5
        assert not release.is_set()
        assert body["identity_id"] == "id-001" and body["profile"]["email"] == "alice.smith@gmail.com"
        assert [r["record_id"] for r in body["records"]] == ["crm-id-001-0", "web-id-001-1"]
    finally:
        release.set()
        safety.cancel()
        for holder in holders:
            holder.result(timeout=10)


def test_resolve_deterministic_on_normalized_email(api: Api) -> None:
    r = api.client.post(
        "/resolve", json={"email": "  Alice.Smith+promo@GMAIL.com "}, headers=api.h("read")
    ).json()
    assert r["identity_id"] == "id-001" and r["method"] == "deterministic" and r["matched_on"] == "email_key"
    assert r["probability"] == 1.0


def test_resolve_phone_needs_agreeing_first_name(api: Api) -> None:
    same = {"phone": "(415) 555-2671", "first_name": "Alice"}
    r = api.client.post("/resolve", json=same, headers=api.h("read")).json()
    assert (r["identity_id"], r["matched_on"]) == ("id-001", "phone")
    other = {"phone": "(415) 555-2671", "first_name": "Zoe"}
    r = api.client.post("/resolve", json=other, headers=api.h("read")).json()
    assert r["method"] != "deterministic"


def test_resolve_probabilistic_with_explanation(api: Api) -> None:
    query = {
        "first_name": "Bobby",
        "last_name": "Jones",
        "dob": "06/07/1975",
        "street": "2 Oak Ave",
        "postcode": "62702",
    }
    r = api.client.post("/resolve", json=query, headers=api.h("read")).json()
    assert r["method"] == "probabilistic" and r["identity_id"] == "id-002"
    assert r["probability"] >= 0.9 and r["candidates_scored"] >= 1
    by_name = {e["comparison"]: e for e in r["explanation"]}
    assert by_name["dob"]["level_label"] == "exact" and by_name["dob"]["weight"] > 0
    assert by_name["first_name"]["level_label"] == "nickname or same first token"
    assert by_name["email"]["level_label"] == "missing"


def test_resolve_unmatched_and_empty(api: Api) -> None:
    r = api.client.post("/resolve", json={"first_name": "Nobody", "dob": "1911-01-01"}, headers=api.h("read"))
    assert r.json()["matched"] is False and r.json()["identity_id"] is None
    assert r.json()["probability"] is None and r.json()["explanation"] == []
    assert api.client.post("/resolve", json={}, headers=api.h("read")).status_code == 422


def test_resolve_register_needs_activate_and_publishes(api: Api, kafka_bootstrap: str) -> None:
    query = {"first_name": "Newt", "last_name": "Person", "email": "newt@example.net"}
    assert api.client.post("/resolve?register=true", json=query, headers=api.h("read")).status_code == 403
    state = api.client.app.state.idr
    state.publisher.bootstrap = kafka_bootstrap
    state.publisher.topic = f"test-profiles-{time.time_ns()}"
    r = api.client.post("/resolve?register=true", json=query, headers=api.h("activate")).json()
    assert r["matched"] is False and r["registered_record_id"].startswith("api-")
    messages = _read_topic(kafka_bootstrap, state.publisher.topic, 1)
    assert (
        messages[0]["email"] == "newt@example.net" and messages[0]["record_id"] == r["registered_record_id"]
    )


def _neighbors(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return response.json()["neighbors"]


def test_similar_answers_by_identity_email_and_text_with_scores(api: Api) -> None:
    h = api.h("read")
    by_id = _neighbors(api.client.get("/similar?identity_id=id-001&k=3", headers=h))
    assert len(by_id) == 3
    assert all(n["identity_id"] != "id-001" for n in by_id)  # the identity itself is left out
    assert [n["score"] for n in by_id] == sorted((n["score"] for n in by_id), reverse=True)
    assert len({n["identity_id"] for n in by_id}) == 3  # one hit per identity, not per record

    body = api.client.post("/similar", json={"email": "ALICE.SMITH@gmail.com", "k": 3}, headers=h).json()
    assert body["query_identity_id"] == "id-001"
    assert [n["identity_id"] for n in body["neighbors"]] == [n["identity_id"] for n in by_id]

    # A free-text profile with typos finds the person it describes first, by both records.
    text = _neighbors(
        api.client.post("/similar", json={"text": "Carla Dias 2001-11-30 London WC2H 8LG", "k": 2}, headers=h)
    )
    assert text[0]["identity_id"] == "id-003" and text[0]["score"] > text[1]["score"]
    assert text[0]["record_id"] in {"crm-id-003-0", "web-id-003-1"}


def test_similar_refuses_bad_queries(api: Api) -> None:
    h = api.h("read")
    assert api.client.get("/similar?identity_id=id-nobody", headers=h).status_code == 404
    assert api.client.post("/similar", json={"email": "not-an-email"}, headers=h).status_code == 422
    both = {"identity_id": "id-001", "text": "Alice"}
    assert api.client.post("/similar", json=both, headers=h).status_code == 422
    assert api.client.post("/similar", json={"k": 3}, headers=h).status_code == 422


def test_similar_never_returns_an_erased_identity(api: Api) -> None:
    h = api.h("read")
    query = {"text": "Bob Jones 1975-06-07 2 Oak Ave Springfield", "k": 5}
    assert _neighbors(api.client.post("/similar", json=query, headers=h))[0]["identity_id"] == "id-002"
    erased = api.client.post(
        "/subjects/erase", json={"id_type": "email", "value": "bob.jones@example.com"}, headers=api.h("admin")
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["index_vectors_removed"] == 2
    assert all(
        n["identity_id"] != "id-002" for n in _neighbors(api.client.post("/similar", json=query, headers=h))
    )


def test_similar_skips_records_the_store_no_longer_links(api: Api) -> None:
    """Another API process erased the person: this process's index still holds the vectors, the
    store no longer links them, and they are not answered."""
    state = api.client.app.state.idr
    before = len(state.index)
    api.store.erase_identities(["id-004"])
    body = api.client.post(
        "/similar", json={"text": "Dan Brown 1990-01-01 4 Elm St Austin", "k": 5}, headers=api.h("read")
    )
    assert len(state.index) == before
    assert all(n["identity_id"] != "id-004" for n in _neighbors(body))


# ------------------------------------------------------------------ audiences and segments


def test_audience_query_combines_and_paginates(api: Api) -> None:
    expr = {"all": [{"attribute": {"field": "country", "in": ["us"]}}, {"not": {"in_segment": "vip"}}]}
    first = api.client.post(
        "/audiences/query", json={"expression": expr, "limit": 5}, headers=api.h("export")
    ).json()
    # US people: id-004 and the odd fillers (18); Alice and Bob are in vip.
    assert first["count"] == 1 + EXTRA // 2
    seen = list(first["identities"])
    cursor = first["next_cursor"]
    while cursor:
        page = api.client.post(
            "/audiences/query",
            json={"expression": expr, "limit": 5, "cursor": cursor},
            headers=api.h("export"),
        ).json()
        seen += page["identities"]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == first["count"] and seen == sorted(seen)
    age = {"any": [{"age": {"min": 40, "max": 50}}, {"in_segment": "vip"}]}
    body = api.client.post("/audiences/query", json={"expression": age}, headers=api.h("export")).json()
    assert {"id-001", "id-002"} <= set(body["identities"])


@pytest.mark.parametrize(
    "expression",
    [
        {"any": [{"viewed": {"within_days": d}} for d in range(1, 10)]},  # 9 behavioral leaves
        {"all": [{"in_segment": f"s{i}"} for i in range(70)]},  # too many nodes
        {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"in_segment": "vip"}}}}}}}}},
        {"sql": "SELECT 1"},
    ],
)
def test_costly_or_malformed_expressions_are_422(api: Api, expression: dict) -> None:
    for key, count_only in (("read", True), ("export", False)):
        body = {"expression": expression, "count_only": count_only}
        assert api.client.post("/audiences/query", json=body, headers=api.h(key)).status_code == 422


def test_bad_cursor_is_422(api: Api) -> None:
    bad = base64.urlsafe_b64encode(b"[1,2]").decode()
    for cursor in ("%%%", bad):
        r = api.client.get(f"/segments?cursor={cursor}", headers=api.h("read"))
        assert r.status_code == 422


def test_segments_and_members_pagination(api: Api) -> None:
    body = api.client.get("/segments?limit=1", headers=api.h("read")).json()
    assert [s["segment_id"] for s in body["segments"]] == ["big"] and body["next_cursor"]
    body = api.client.get(f"/segments?limit=1&cursor={body['next_cursor']}", headers=api.h("read")).json()
    assert [s["segment_id"] for s in body["segments"]] == ["vip"]
    members, cursor = [], None
    while True:
        url = "/segments/big/members?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = api.client.get(url, headers=api.h("export")).json()
        members += [m["identity_id"] for m in page["members"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(members) == len(set(members)) == EXTRA
    assert api.client.get("/segments/none/members", headers=api.h("export")).status_code == 404


# ------------------------------------------------------------------ activations


def test_activation_to_customer_match_file(api: Api) -> None:
    import csv
    import hashlib
    from pathlib import Path

    r = api.client.post(
        "/segments/vip/activations",
        json={"destination": "file", "target": "vip.csv"},
        headers=api.h("activate"),
    )
    assert r.status_code == 202
    status = _wait_activation(api, r.json()["activation_id"])
    assert status["status"] == "succeeded", status
    assert status["counts"]["members"] == 2 and status["counts"]["exported"] == 2
    rows = list(csv.reader((Path(api.settings.api_export_dir) / "vip.csv").open()))
    assert rows[0] == ["Email", "Phone"]
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    assert [sha("alice.smith@gmail.com"), sha("+14155552671")] in rows[1:]
    meta = api.client.post(
        "/segments/vip/activations",
        json={"destination": "file", "target": "vip-meta.csv", "format": "meta"},
        headers=api.h("activate"),
    ).json()
    assert _wait_activation(api, meta["activation_id"])["status"] == "succeeded"
    rows = list(csv.reader((Path(api.settings.api_export_dir) / "vip-meta.csv").open()))
    assert rows[0] == ["email", "phone"] and [sha("alice.smith@gmail.com"), sha("14155552671")] in rows[1:]


@pytest.mark.parametrize(
    "body",
    [
        {"destination": "file", "target": "../escape.csv"},
        {"destination": "file", "target": "/etc/passwd"},
        {"destination": "kafka", "target": "bad topic!"},
        {"destination": "kafka", "target": "idr.events"},
        {"destination": "webhook", "target": "file:///etc/passwd"},
        {"destination": "ftp", "target": "x"},
    ],
)
def test_activation_targets_are_validated(api: Api, body: dict) -> None:
    r = api.client.post("/segments/vip/activations", json=body, headers=api.h("activate"))
    assert r.status_code == 422


def test_activation_unknown_segment_and_activation(api: Api) -> None:
    r = api.client.post(
        "/segments/nope/activations",
        json={"destination": "file", "target": "x.csv"},
        headers=api.h("activate"),
    )
    assert r.status_code == 404
    assert api.client.get("/activations/nope", headers=api.h("activate")).status_code == 404


def _read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[dict]:
    """Read back without a consumer group (joins are slow on Tansu): assign and seek."""
    import json

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[dict] = []
        while len(out) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out += [json.loads(r.value) for r in records]
        return out
    finally:
        consumer.close()


def test_activation_to_kafka_topic(api: Api, kafka_bootstrap: str) -> None:
    api.settings.kafka_bootstrap_servers = kafka_bootstrap
    topic = f"idr-activation.test-{time.time_ns()}"
    r = api.client.post(
        "/segments/big/activations", json={"destination": "kafka", "target": topic}, headers=api.h("activate")
    )
    status = _wait_activation(api, r.json()["activation_id"])
    # Fillers have no e-mail or phone: counted and skipped, nothing sent.
    assert status["status"] == "succeeded" and status["counts"]["skipped_no_contact"] == EXTRA
    r = api.client.post(
        "/segments/vip/activations", json={"destination": "kafka", "target": topic}, headers=api.h("activate")
    )
    status = _wait_activation(api, r.json()["activation_id"])
    assert status["status"] == "succeeded" and status["counts"]["exported"] == 2
    messages = _read_topic(kafka_bootstrap, topic, 2)
    assert sorted(m["identity_id"] for m in messages) == ["id-001", "id-002"]
    assert all(len(m["email_sha256"]) == 64 for m in messages)
    assert "email" not in messages[0]  # only hashes leave the store


def test_activation_to_webhook(tmp_path: Path) -> None:
    """A signed POST per batch to an allowed host (loopback, so only in dev mode)."""
    import hashlib
    import hmac
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's spelling
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), {"raw": body, "json": json.loads(body)}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    overrides = {"webhook_allowed_hosts": "127.0.0.1", "webhook_dev_mode": True}
    with _api_on_sqlite(tmp_path, **overrides) as api:
        port = server.server_address[1]
        url = f"http://127.0.0.1:{port}/hook"
        r = api.client.post(
            "/segments/vip/activations",
            json={"destination": "webhook", "target": url},
            headers=api.h("activate"),
        )
        status = _wait_activation(api, r.json()["activation_id"])
        assert status["status"] == "succeeded" and status["counts"]["batches"] == 1
        headers, body = received[0]
        assert body["json"]["segment_id"] == "vip" and len(body["json"]["members"]) == 2
        # The receiver's check: HMAC-SHA256 over "<timestamp>.<body>" with the signing key.
        key = Path(api.settings.webhook_signing_key_file).read_text().strip().encode()
        timestamp = headers["X-IDR-Timestamp"]
        expected = hmac.new(key, timestamp.encode() + b"." + body["raw"], hashlib.sha256).hexdigest()
        assert headers["X-IDR-Signature"] == f"v1={expected}"
        assert abs(time.time() - int(timestamp)) < 60
        # A refusing endpoint fails the activation; the error names no address or port.
        dead_url = f"http://127.0.0.1:{port + 1}/x"
        dead = api.client.post(
            "/segments/vip/activations",
            json={"destination": "webhook", "target": dead_url},
            headers=api.h("activate"),
        )
        failed = _wait_activation(api, dead.json()["activation_id"])
        assert failed["status"] == "failed" and failed["error"] == "could not connect to the webhook"
        assert str(port + 1) not in failed["error"] and "127.0.0.1" not in failed["error"]
    server.shutdown()


# ------------------------------------------------------------------ erasure (API side)


def test_erasure_removes_everything_and_writes_tombstones(api: Api) -> None:
    from idr_pipeline.candidates.faiss_index import FaissCandidateIndex

    aggregates = [
        {"event_type": "purchase", "category": "luxury", "days_ago": d, "identity_id": i, "events": 1}
        for i in ("id-001", "id-old", "id-002")
        for d in (1, 2)
    ]
    api.store.publish_event_aggregates(
        aggregates, {"as_of": "2025-03-31T00:00:00", "events": 6, "unresolved": 0, "other_types": 0}
    )
    r = api.client.post(
        "/subjects/erase",
        json={"id_type": "email", "value": "Alice.Smith@GMAIL.com", "include_merged": True},
        headers=api.h("admin"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["identities"] == ["id-001", "id-old"] and body["records"] == 2
    assert body["merged_identities"] == ["id-old"] and body["outcome"] == "erased"
    # 5 identifiers (email, email_key, phone, national_id, device_id) and 2 record ids.
    assert body["index_vectors_removed"] == 2 and body["tombstones_written"] == 7
    store = api.store
    for table, column in [
        ("identities", "identity_id"),
        ("golden_profiles", "identity_id"),
        ("identifiers", "identity_id"),
        ("record_links", "identity_id"),
        ("segment_members", "identity_id"),
        ("segment_membership_history", "identity_id"),
        ("match_links", "identity_id"),
        ("merge_history", "survivor_id"),
        ("event_aggregates", "identity_id"),
    ]:
        assert store.count_rows(table, {column: ["id-001", "id-old"]}) == 0, table
    assert body["rows_deleted"]["event_aggregates"] == 4
    assert store.count_rows("event_aggregates", {"identity_id": "id-002"}) == 2
    assert store.lookup("email_key", "alicesmith@gmail.com") == []
    saved = FaissCandidateIndex.load(api.settings.index_dir)
    assert "crm-id-001-0" not in saved and len(saved) == 6 + EXTRA
    rows = store.select_rows("tombstones")
    assert {r["id_type"] for r in rows} == {
        "email",
        "email_key",
        "phone",
        "national_id",
        "device_id",
        "record_id",
    }
    assert all(len(r["value_sha256"]) == 64 and r["scheme"] == "hmac-sha256" for r in rows)
    assert api.client.get("/identities/id-001", headers=api.h("read")).status_code == 404
    again = api.client.post("/resolve", json={"email": "alice.smith@gmail.com"}, headers=api.h("read")).json()
    assert again["matched"] is False
    purge = store.select_rows("purge_requests")
    assert [(p["request_id"], p["status"]) for p in purge] == [(body["request_id"], "pending")]
    assert sorted(purge[0]["record_ids"]) == ["crm-id-001-0", "web-id-001-1"]


def test_erasure_refuses_shared_and_unusable_identifiers(api: Api) -> None:
    api.store.upsert_identifiers([{"id_type": "phone", "id_value": "+14152000001", "identity_id": "id-003"}])
    r = api.client.request(
        "DELETE", "/subjects", json={"id_type": "phone", "value": "4152000001"}, headers=api.h("admin")
    )
    assert r.status_code == 409
    r = api.client.request(
        "DELETE", "/subjects", json={"id_type": "email", "value": "no-at-sign"}, headers=api.h("admin")
    )
    assert r.status_code == 422
    unknown = api.client.request(
        "DELETE", "/subjects", json={"id_type": "email", "value": "ghost@example.com"}, headers=api.h("admin")
    ).json()
    # A value nobody holds is not tombstoned (before: 2 tombstones, e-mail and match key).
    assert unknown["identities"] == [] and unknown["tombstones_written"] == 0
    assert unknown["outcome"] == "not_found" and api.store.count_rows("tombstones") == 0


# ------------------------------------------------------------------ MariaDB


def test_mariadb_subset(mariadb_api: Api) -> None:
    api = mariadb_api
    assert api.client.get("/health/details", headers=api.h("read")).json()["store"]["backend"] == "mysql"
    assert api.client.get("/identities/id-002", headers=api.h("pii")).json()["profile"]["dob"] == "1975-06-07"
    assert api.client.get("/identities/id-002", headers=api.h("read")).json()["profile"]["dob"] == "1975"
    r = api.client.post("/resolve", json={"email": "alice.smith+x@gmail.com"}, headers=api.h("read")).json()
    assert r["identity_id"] == "id-001"
    query = {
        "first_name": "Bobby",
        "last_name": "Jones",
        "dob": "06/07/1975",
        "street": "2 Oak Ave",
        "postcode": "62702",
    }
    assert api.client.post("/resolve", json=query, headers=api.h("read")).json()["identity_id"] == "id-002"
    expr = {"all": [{"attribute": {"field": "country", "in": ["US"]}}, {"not": {"in_segment": "vip"}}]}
    body = api.client.post(
        "/audiences/query", json={"expression": expr, "limit": 5}, headers=api.h("export")
    ).json()
    assert body["count"] == 1 + EXTRA // 2 and body["next_cursor"]
    assert api.client.get("/segments/big/members?limit=50", headers=api.h("export")).json()["members"]
    r = api.client.post(
        "/segments/vip/activations",
        json={"destination": "file", "target": "vip.csv"},
        headers=api.h("activate"),
    )
    assert _wait_activation(api, r.json()["activation_id"])["status"] == "succeeded"
    erased = api.client.post(
        "/subjects/erase", json={"id_type": "email", "value": "bob.jones@example.com"}, headers=api.h("admin")
    ).json()
    assert erased["identities"] == ["id-002"]
    assert api.store.count_rows("golden_profiles", {"identity_id": "id-002"}) == 0
    assert api.client.get("/identities/id-001", headers={}).status_code == 401
