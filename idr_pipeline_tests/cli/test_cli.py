"""The `idr` CLI end to end: resolve real files with garbage in them, and fail clearly on bad mappings.

Bad input must become quarantine rows with reasons or a clear error message: never a
traceback and never a silently dropped row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from idr_pipeline.cli.app import app

runner = CliRunner()

CANONICAL_CSV = """\
record_id,source,first_name,last_name,email,phone,dob,postcode,country,loyalty_tier
c1,crm,John,Smith,John.Smith+promo@gmail.com,(415) 555-2671,1980-02-03,94105,US,gold
c2,crm,Jon,Smith, johnsmith@googlemail.com ,,02/03/1980,,,
c3,crm,Mary,Jones,mary@example.com,,,,,
c4,crm,N/A,N/A,test@test,0000000000,32/13/2020,,,
c4b,crm,"broken,quote
c5,crm,Ann,Lee,,415.555.0100,,,,silver
c5,crm,Ann,Lee,,415.555.0100,,,,silver
c6,crm,Bob,Stone,,+1 415 555 2671,,,,

"""


def _jsonl_lines() -> list[str]:
    return [
        json.dumps(
            {"record_id": "j1", "first_name": "MARY", "last_name": "JONES", "email": "MARY@EXAMPLE.COM"}
        ),
        json.dumps(
            {"record_id": "j2", "first_name": 42, "last_name": ["x"], "email": {"a": 1}, "dob": 19800203}
        ),
        "this is not json",
        json.dumps(["an", "array"]),
        json.dumps({"record_id": "j3", "phone": 4155550100, "first_name": "Ann", "updated_at": True}),
    ]


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    csv_path = tmp_path / "crm.csv"
    csv_path.write_text(CANONICAL_CSV)
    jsonl_path = tmp_path / "web.jsonl"
    jsonl_path.write_text("\n".join(_jsonl_lines()) + "\n")
    return csv_path, jsonl_path


def test_resolve_canonical_files_links_people_and_accounts_for_every_row(tmp_path, spark):
    csv_path, jsonl_path = _write_inputs(tmp_path)
    out = tmp_path / "out" / "identities.csv"
    result = runner.invoke(app, ["resolve", "-i", str(csv_path), "-i", str(jsonl_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    links = pd.read_csv(out, dtype=str)
    assert list(links.columns) == ["record_id", "identity_id"]
    ident = links.set_index("record_id").identity_id
    assert ident["c1"] == ident["c2"]  # gmail dots, +tag and googlemail fold to one key
    assert ident["c3"] == ident["j1"]  # email case across files
    assert ident["c5"] == ident["j3"]  # the same phone in two formats, one given as a JSON number
    assert ident["c1"] != ident["c3"]
    assert ident["c1"] != ident["c6"]  # one phone, two different first names: shared, not identity

    quarantine = pd.read_csv(tmp_path / "out" / "identities.quarantine.csv", dtype=str)
    reasons = quarantine._reason.tolist()
    assert any(r.startswith("parse_error: malformed_csv") for r in reasons)
    assert any(r.startswith("parse_error: blank_line") for r in reasons)
    assert any(r.startswith("parse_error: invalid_json") for r in reasons)
    assert any(r.startswith("parse_error: not_an_object") for r in reasons)
    assert "c4" in quarantine.record_id.tolist()
    # Rows in = clean + quarantined + collapsed exact duplicates (c5 appears twice).
    rows_in = len(CANONICAL_CSV.splitlines()) - 1 + len(_jsonl_lines())
    assert rows_in == len(links) + len(quarantine) + 1
    assert "1 duplicates collapsed" in " ".join(result.output.split())


def test_resolve_with_mapping_writes_parquet(tmp_path, spark):
    src = tmp_path / "shop.csv"
    src.write_text(
        "id,mail,tel,given,family\ns1,a.b@gmail.com,+44 20 7946 0958,Al,Bee\ns2,AB@gmail.com,,Al,Bee\n"
    )
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(
        "sources:\n  shop:\n    file: shop.csv\n    format: csv\n    trust: 1\n    columns:\n"
        "      record_id: id\n      email: mail\n      phone: tel\n      first_name: given\n      last_name: family\n"
    )
    out = tmp_path / "ids.parquet"
    result = runner.invoke(app, ["resolve", "-i", str(src), "--mapping", str(mapping), "-o", str(out)])
    assert result.exit_code == 0, result.output
    links = pd.read_parquet(out)
    assert links.identity_id.nunique() == 1 and len(links) == 2


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("      record_id: id\n      e_mail: mail\n", "unknown canonical column(s) ['e_mail']"),
        (
            "      record_id: id\n      email: no_such_column\n",
            "mapped column(s) ['no_such_column'] not found",
        ),
    ],
)
def test_bad_mapping_is_a_clear_error_not_a_traceback(tmp_path, spark, columns, message):
    src = tmp_path / "shop.csv"
    src.write_text("id,mail\ns1,a@b.com\n")
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(f"sources:\n  shop:\n    file: shop.csv\n    format: csv\n    columns:\n{columns}")
    result = runner.invoke(
        app, ["resolve", "-i", str(src), "--mapping", str(mapping), "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_input_not_in_mapping_is_a_clear_error(tmp_path):
    src = tmp_path / "other.csv"
    src.write_text("id\n1\n")
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(
        "sources:\n  shop:\n    file: shop.csv\n    format: csv\n    columns: {record_id: id}\n"
    )
    result = runner.invoke(
        app, ["resolve", "-i", str(src), "--mapping", str(mapping), "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "no source in" in text and "other.csv" in text


def test_generate_command_writes_every_source_and_truth(tmp_path):
    out = tmp_path / "gen"
    result = runner.invoke(app, ["generate", "--people", "50", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    for name in (
        "crm_customers.csv",
        "pos_customers.csv",
        "web_signups.jsonl",
        "app_users.parquet",
        "truth.csv",
    ):
        assert (out / name).stat().st_size > 0
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    assert truth.person_id.nunique() <= 50


def test_stewards_decisions_hold_through_every_resolve(tmp_path, spark, monkeypatch):
    """`idr decide split` keeps two records apart and `idr decide link` puts two together, on
    the next run and the ones after; `idr decide remove` hands the pair back to the model."""
    from idr_pipeline.settings import get_settings

    monkeypatch.setenv("IDR_STORE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    get_settings.cache_clear()
    csv_path, jsonl_path = _write_inputs(tmp_path)
    out = tmp_path / "out" / "identities.csv"

    def resolved() -> pd.Series:
        result = runner.invoke(app, ["resolve", "-i", str(csv_path), "-i", str(jsonl_path), "-o", str(out)])
        assert result.exit_code == 0, result.output
        return pd.read_csv(out, dtype=str).set_index("record_id").identity_id

    try:
        before = resolved()
        assert before["c1"] == before["c2"] and before["c1"] != before["c3"]
        for args in (["split", "c1", "c2"], ["link", "c3", "c1"]):
            done = runner.invoke(app, ["decide", *args, "--reason", "checked with the customer"])
            assert done.exit_code == 0, done.output
        listed = runner.invoke(app, ["decide", "list"])
        assert "split" in listed.output and "link" in listed.output
        for _ in range(2):
            after = resolved()
            assert after["c1"] != after["c2"]
            assert after["c1"] == after["c3"]
            # A forced link vouches for its own pair only: j1 (Mary) still faces the guards against
            # every member, and John conflicts with it, so it stays out for a steward to look at.
            assert after["j1"] != after["c1"]
        for pair in (["c1", "c2"], ["c3", "c1"]):
            assert runner.invoke(app, ["decide", "remove", *pair]).exit_code == 0
        assert runner.invoke(app, ["decide", "remove", "c1", "c2"]).exit_code == 2
        again = resolved()
        assert again["c1"] == again["c2"] and again["c3"] == again["j1"] and again["c1"] != again["c3"]
    finally:
        get_settings.cache_clear()
