"""The position checks shared by the sensors and the stream service (pure)."""

from __future__ import annotations

import json

import pytest

from idr_pipeline.settings import IdrSettings, services_bootstrap
from idr_pipeline.stream.guard import PositionMismatch, check_positions


def test_a_position_that_fits_passes() -> None:
    assert check_positions("t", "id1", "id1", {0: 5, 1: 0}, {0: 0, 1: 0}, {0: 9, 1: 0}) == []


def test_a_new_topic_id_is_a_recreated_topic_even_at_offset_zero() -> None:
    found = check_positions("t", "id1", "id2", {0: 0, 1: 30}, {}, {0: 500, 1: 500})
    assert [(m.partition, m.problem, m.lost_range()) for m in found] == [
        (0, "topic_recreated", (0, None)),
        (1, "topic_recreated", (30, None)),
    ]


def test_log_start_past_the_position_names_the_deleted_range() -> None:
    (m,) = check_positions("t", "id1", "id1", {0: 5}, {0: 20}, {0: 25})
    assert (m.problem, m.lost_range()) == ("log_start_past_cursor", (5, 19))
    with pytest.raises(
        PositionMismatch, match=r"(?s)offsets 5\.\.19 were deleted.*idr stream reset --topic t"
    ):
        raise PositionMismatch([m])


def test_high_watermark_below_the_position_without_ids() -> None:
    (m,) = check_positions("t", None, "", {0: 50}, {0: 0}, {0: 10})
    assert m.problem == "high_watermark_below_cursor"


def test_settings_take_the_broker_idr_services_started(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "services.json").write_text(json.dumps({"endpoints": {"kafka_bootstrap": "127.0.0.1:40001"}}))
    assert services_bootstrap(tmp_path) == "127.0.0.1:40001"
    monkeypatch.setenv("IDR_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("IDR_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert IdrSettings(_env_file=None).kafka_bootstrap_servers == "127.0.0.1:40001"
    monkeypatch.setenv("IDR_KAFKA_BOOTSTRAP_SERVERS", "broker:9092")  # the environment wins
    assert IdrSettings(_env_file=None).kafka_bootstrap_servers == "broker:9092"
    (tmp_path / "services.json").unlink()
    monkeypatch.delenv("IDR_KAFKA_BOOTSTRAP_SERVERS")
    assert IdrSettings(_env_file=None).kafka_bootstrap_servers == "127.0.0.1:9092"
