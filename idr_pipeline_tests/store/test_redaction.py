"""The store URL's password never shows: not in errors, reprs, metadata helpers or the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from idr_pipeline.cli.app import app
from idr_pipeline.store import open_store, parse_store_url, redact_store_url

PASSWORD = "Pa55-w0rd"


@pytest.mark.parametrize(
    "url",
    [
        f"singlestoredb://idr:{PASSWORD}@db.internal:xx/idr",  # a port that is no number
        f"singlestoredb://idr:{PASSWORD}@db.internal:3306/",  # no database
        f"postgres://idr:{PASSWORD}@db.internal/idr",  # no supported scheme
    ],
)
def test_a_bad_url_is_reported_without_its_password(url: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_store_url(url)
    assert PASSWORD not in str(error.value) and "idr:***@db.internal" in str(error.value)


def test_redacted_urls_keep_everything_but_the_password() -> None:
    assert redact_store_url(f"mysql://u:{PASSWORD}@h:3307/d") == "mysql://u:***@h:3307/d"
    assert redact_store_url(SecretStr(f"mariadb://u:{PASSWORD}@h/d")) == "mariadb://u:***@h:3306/d"
    assert redact_store_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_store_url(f"odd://u:{PASSWORD}@h") == "odd://u:***@h"
    assert PASSWORD not in repr(parse_store_url(f"mysql://u:{PASSWORD}@h/d"))


def test_the_store_opens_from_a_secret(tmp_path: Path) -> None:
    with open_store(SecretStr(f"sqlite:///{tmp_path / 'store.db'}")) as store:
        store.ensure_schema()
        assert "identities" in store.table_counts()


def test_idr_services_status_masks_the_store_password(tmp_path: Path) -> None:
    url = f"singlestoredb://idr:{PASSWORD}@127.0.0.1:3399/idr"
    # A state file as `idr services up` leaves it; the pid names no live process.
    (tmp_path / "services.json").write_text(
        json.dumps({"mariadb": {"pid": 2**22 + 7, "port": 3399, "url": url}})
    )
    result = CliRunner().invoke(app, ["services", "status", "--run-dir", str(tmp_path)], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "idr:***@127.0.0.1:3399/idr" in result.output
