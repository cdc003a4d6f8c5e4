"""The services manager against the real binaries: Tansu and a private MariaDB."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from idr_pipeline.devtools.services import ENV_KAFKA, ENV_STORE, service_endpoints, status, up
from idr_pipeline.devtools.services._proc import free_port, pid_alive, port_open, spawn_detached, stop_pid
from idr_pipeline.devtools.services.mariadb import socket_path


def test_broker_round_trips_a_message(kafka_bootstrap: str) -> None:
    """Produce, then read back with assign + seek (a group join is slow on Tansu)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"idr-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10000)
    try:
        for i in range(3):
            producer.send(topic, key=b"k%d" % i, value=b"message-%d" % i).get(timeout=10)
        producer.flush(timeout=10)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
        request_timeout_ms=10000,
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        values = []
        for message in consumer:
            values.append(message.value)
            if len(values) == 3:
                break
    finally:
        consumer.close()
    assert values == [b"message-0", b"message-1", b"message-2"]


def test_mariadb_answers_through_singlestoredb(mariadb_url: str) -> None:
    import singlestoredb as s2

    conn = s2.connect(mariadb_url)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION()")
        (version,) = cursor.fetchall()[0]
        cursor.execute("SELECT DATABASE()")
        (database,) = cursor.fetchall()[0]
    finally:
        conn.close()
    assert "MariaDB" in version
    assert database == "idr"


def test_status_reports_running_and_healthy() -> None:
    # up() first: the fixtures may point at services elsewhere (IDR_TEST_*), this is about
    # the ones managed under the configured run dir.
    started = up()
    report = status()
    for name in ("kafka", "mariadb"):
        assert report[name]["running"], report
        assert report[name]["healthy"], report
    assert report["endpoints"] == started["endpoints"]
    assert report["endpoints"]["kafka_bootstrap"].startswith("127.0.0.1:")
    assert report["endpoints"]["store_url"].startswith("singlestoredb://idr:idr@127.0.0.1:")


def test_up_twice_reuses_the_running_services() -> None:
    up()
    before = status()
    again = up()
    assert again["kafka"]["reused"] and again["mariadb"]["reused"]
    assert again["kafka"]["pid"] == before["kafka"]["pid"]
    assert again["mariadb"]["pid"] == before["mariadb"]["pid"]
    assert again["endpoints"] == before["endpoints"]


def test_up_can_start_the_broker_alone(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    try:
        report = up(run_dir, only=["kafka"])
        assert report["kafka"]["healthy"] and not report["mariadb"]["running"]
        assert report["endpoints"]["store_url"] == ""
    finally:
        from idr_pipeline.devtools.services import down

        down(run_dir)
    with pytest.raises(ValueError, match="unknown services"):
        up(run_dir, only=["zookeeper"])


def test_endpoints_prefer_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_KAFKA, "127.0.0.1:1")
    monkeypatch.setenv(ENV_STORE, "singlestoredb://u:p@127.0.0.1:2/db")
    # An empty run dir: the values can only have come from the environment.
    assert service_endpoints(tmp_path) == {
        "kafka_bootstrap": "127.0.0.1:1",
        "store_url": "singlestoredb://u:p@127.0.0.1:2/db",
    }


def test_endpoints_without_services_explain_how_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_KAFKA, raising=False)
    monkeypatch.delenv(ENV_STORE, raising=False)
    with pytest.raises(RuntimeError, match="services up"):
        service_endpoints(tmp_path)
    report = status(tmp_path)
    assert not report["kafka"]["running"] and not report["mariadb"]["healthy"]


def test_stop_pid_terminates_a_detached_process(tmp_path: Path) -> None:
    pid = spawn_detached(["sleep", "300"], tmp_path / "sleep.log")
    assert pid_alive(pid)
    assert stop_pid(pid, grace=5)
    assert not pid_alive(pid)
    assert not stop_pid(pid)


def test_free_port_prefers_the_previous_port_when_free() -> None:
    port = free_port()
    assert free_port(port) == port
    assert not port_open(port)


def test_long_run_dirs_get_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    path = socket_path(deep)
    assert len(str(path)) <= 100
    assert socket_path(deep) == path  # stable, so a restart finds the same socket


def test_missing_mariadb_is_installed_with_apt_and_sudo_when_not_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The install branch (this machine already has MariaDB, a fresh CI box may not)."""
    import subprocess

    from idr_pipeline.devtools.services import mariadb

    calls: list[list[str]] = []
    installed = iter([None, "/usr/sbin/mariadbd"])
    monkeypatch.setattr(mariadb, "find_mariadbd", lambda: next(installed))
    monkeypatch.setattr(mariadb.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(mariadb.shutil, "which", lambda name: f"/usr/bin/{name}")

    def fake_run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(mariadb.subprocess, "run", fake_run)
    assert mariadb.ensure_mariadb_installed() == "/usr/sbin/mariadbd"
    assert calls[0] == ["sudo", "-n", "apt-get", "update"]
    assert calls[1][:2] == ["sudo", "-n"] and calls[1][-3:] == ["install", "-y", "mariadb-server"]
    assert "DEBIAN_FRONTEND=noninteractive" in calls[1]
