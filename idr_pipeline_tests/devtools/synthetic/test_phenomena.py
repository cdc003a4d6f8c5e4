"""The generator's hard cases: each switch puts its phenomenon in the files, and 0 takes it out.

Every check reads the written files back through the tolerant readers and the truth, the way
the pipeline and the benchmarks see them, and counts the phenomenon there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from idr_pipeline.cli.app import app
from idr_pipeline.devtools.synthetic import GenerationResult, generate_dataset
from idr_pipeline.devtools.synthetic.people import make_people
from idr_pipeline.devtools.synthetic.phenomena import DEFAULT_PHENOMENA, Phenomena
from idr_pipeline.devtools.synthetic.pools import build_pools
from idr_pipeline.devtools.synthetic.records import generational_suffixes
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.ingest.readers import META_ERROR, read_source_file

PEOPLE = 4000
SEED = 17


def _generate(tmp_path_factory: pytest.TempPathFactory, phenomena: Phenomena) -> GenerationResult:
    return generate_dataset(PEOPLE, tmp_path_factory.mktemp("gen"), seed=SEED, phenomena=phenomena)


@pytest.fixture(scope="module")
def on(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    return _generate(tmp_path_factory, DEFAULT_PHENOMENA)


@pytest.fixture(scope="module")
def off(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    return _generate(tmp_path_factory, Phenomena.none())


def _records(result: GenerationResult, source: str) -> pd.DataFrame:
    """One source's parsed rows in canonical column names, joined to their true person."""
    mapping = load_mappings(result.sources_path)[source]
    df = read_source_file(result.paths[source], mapping.format)
    df = df[df[META_ERROR].isna()].rename(columns={v: k for k, v in mapping.columns.items()})
    truth = pd.read_csv(result.truth_path, dtype=str)
    return df.merge(truth, on="record_id")


def _clean(s: pd.Series) -> pd.Series:
    return s.fillna("").str.strip().str.lower()


def _namesakes_at_one_address(result: GenerationResult) -> int:
    """Pairs of different people whose CRM records agree exactly on first name, surname and
    street (the surname without a Jr/Sr suffix)."""
    crm = _records(result, "crm")
    key = pd.DataFrame(
        {
            "person_id": crm.person_id,
            "first": _clean(crm.first_name),
            "last": _clean(crm.last_name).str.replace(r",?\s+[js]r\.?$", "", regex=True),
            "street": _clean(crm.street),
        }
    )
    key = key[(key["first"] != "") & (key["last"] != "") & (key.street != "")].drop_duplicates()
    pairs = key.merge(key, on=["first", "last", "street"])
    return int((pairs.person_id_x < pairs.person_id_y).sum())


def test_juniors_share_first_name_surname_and_address_but_not_birthday() -> None:
    pools = build_pools(3)
    people = make_people(6000, pools, np.random.default_rng(4), Phenomena(junior_rate=1.0))
    junior = np.flatnonzero(people.junior_of >= 0)
    father = people.junior_of[junior]
    assert len(junior) > 20
    assert (people.household[junior] == people.household[father]).all()
    assert (people.first[junior] == people.first[father]).all()
    assert (people.last[junior] == people.last[father]).all()
    assert (people.street[junior] == people.street[father]).all()
    assert (people.dob[junior] != people.dob[father]).all()
    suffix = generational_suffixes(people, np.random.default_rng(5))
    assert (suffix[junior] == "Jr").all() and (suffix[father] == "Sr").all()

    none = make_people(6000, pools, np.random.default_rng(4), Phenomena(junior_rate=0.0))
    assert (none.junior_of == -1).all()
    assert not pd.DataFrame({"h": none.household, "f": none.first}).duplicated().any()


def test_juniors_switch_puts_namesakes_at_one_address_in_the_files(
    on: GenerationResult, off: GenerationResult
) -> None:
    assert _namesakes_at_one_address(on) > 0
    assert _namesakes_at_one_address(off) == 0


def _shared_devices(result: GenerationResult) -> pd.DataFrame:
    """App rows whose device id also appears on another person's rows."""
    app = _records(result, "app")
    app = app.assign(device=_clean(app.device_id))
    app = app[app.device != ""]
    people = app.groupby("device").person_id.nunique()
    return app[app.device.isin(people[people >= 2].index)]


def test_family_tablet_is_on_several_members_records_with_the_home_ip(
    on: GenerationResult, off: GenerationResult
) -> None:
    shared = _shared_devices(on)
    assert shared.device.nunique() > 10
    # Made at home: one device, one IP, whichever member signed in.
    ips = shared[shared.ip_address.notna()].groupby("device").ip_address.nunique()
    assert (ips == 1).mean() > 0.9
    assert _shared_devices(off).empty


def _initial_only(result: GenerationResult) -> pd.Series:
    pos = _records(result, "pos")
    return pos.first_name.fillna("").str.strip().str.fullmatch(r"[A-Z]\.?")


def test_point_of_sale_records_with_only_a_first_initial(on: GenerationResult, off: GenerationResult) -> None:
    share = _initial_only(on).mean()
    # The rate applies before the POS leaves a tenth of first names blank.
    assert 0.5 * DEFAULT_PHENOMENA.initial_only_rate < share < 1.5 * DEFAULT_PHENOMENA.initial_only_rate
    assert not _initial_only(off).any()


def _no_dob_share(result: GenerationResult) -> float:
    """Of the people with a CRM record, the share whose CRM records carry no date of birth."""
    crm = _records(result, "crm")
    return float((~_has_dob(crm.dob).groupby(crm.person_id).any()).mean())


def _has_dob(dob: pd.Series) -> pd.Series:
    """Not blank and not one of the missing markers CSV exports write."""
    return ~_clean(dob).isin(["", "n/a", "null", "-", "none"])


def test_people_who_withhold_their_birth_date_have_none_on_any_record(
    on: GenerationResult, off: GenerationResult
) -> None:
    people = make_people(PEOPLE, build_pools(SEED), np.random.default_rng([SEED, 10]), DEFAULT_PHENOMENA)
    withheld = set(people.person_id[people.dob_withheld])
    assert abs(len(withheld) / PEOPLE - DEFAULT_PHENOMENA.dob_withheld_rate) < 0.02
    for source in ("crm", "web", "app"):
        rows = _records(on, source)
        rows = rows[rows.person_id.isin(withheld)]
        assert len(rows) > 50, source
        assert not _has_dob(rows.dob).any(), source
    # Off, only the sources' own gaps remain: fewer people lack a birth date everywhere.
    assert _no_dob_share(on) > _no_dob_share(off) + 0.04
    none = make_people(PEOPLE, build_pools(SEED), np.random.default_rng([SEED, 10]), Phenomena.none())
    assert not none.dob_withheld.any()


def test_rates_outside_zero_to_one_are_refused() -> None:
    with pytest.raises(ValueError, match="junior_rate"):
        Phenomena(junior_rate=1.5)


def test_generate_command_passes_the_switches(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    args = ["generate", "--people", "300", "--out", str(out), "--seed", "5"]
    off_args = ["--junior-rate", "0", "--shared-device-rate", "0", "--initial-only-rate", "0"]
    result = CliRunner().invoke(app, [*args, *off_args, "--dob-withheld-rate", "0"])
    assert result.exit_code == 0, result.output
    expected = generate_dataset(300, tmp_path / "api", seed=5, phenomena=Phenomena.none())
    for name in ("crm_customers.csv", "pos_customers.csv", "web_signups.jsonl", "truth.csv"):
        assert (out / name).read_bytes() == (expected.out_dir / name).read_bytes(), name
    defaults = CliRunner().invoke(app, [*args[:4], str(tmp_path / "d"), "--seed", "5"])
    assert defaults.exit_code == 0, defaults.output
    assert (tmp_path / "d" / "pos_customers.csv").read_bytes() != (out / "pos_customers.csv").read_bytes()
