"""The generated sample as a whole: determinism, shape, truth, and readability by ingestion."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.devtools.synthetic import GENERATION_STEPS, GenerationResult, generate_dataset
from idr_pipeline.devtools.synthetic.people import make_people
from idr_pipeline.devtools.synthetic.pools import build_pools
from idr_pipeline.devtools.synthetic.records import PROFILES, SOURCES, plan_records, render_source
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.ingest.readers import META_ERROR, read_source_file

PEOPLE = 1500
FILES = ("crm_customers.csv", "pos_customers.csv", "web_signups.jsonl", "app_users.parquet", "truth.csv")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    return generate_dataset(PEOPLE, tmp_path_factory.mktemp("gen"), seed=11)


@pytest.fixture(scope="module")
def frames(generated: GenerationResult) -> dict[str, pd.DataFrame]:
    """Each source file as the tolerant readers see it, columns renamed to canonical names."""
    mappings = load_mappings(generated.sources_path)
    out = {}
    for source, mapping in mappings.items():
        df = read_source_file(generated.paths[source], mapping.format)
        mapping.check_columns(list(df.columns))
        out[source] = df.rename(columns={v: k for k, v in mapping.columns.items()})
    return out


@pytest.fixture(scope="module")
def truth(generated: GenerationResult) -> pd.DataFrame:
    return pd.read_csv(generated.truth_path, dtype=str, keep_default_na=False)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = generate_dataset(300, tmp_path / "a", seed=5)
    b = generate_dataset(300, tmp_path / "b", seed=5)
    c = generate_dataset(300, tmp_path / "c", seed=6)
    for name in (*FILES, "sources.yaml"):
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    assert (a.out_dir / "crm_customers.csv").read_bytes() != (c.out_dir / "crm_customers.csv").read_bytes()
    assert a.record_counts == b.record_counts


def test_folder_is_self_describing(generated: GenerationResult) -> None:
    for name in (*FILES, "sources.yaml"):
        assert (generated.out_dir / name).stat().st_size > 0, name
    assert set(generated.paths) == set(SOURCES)
    assert set(load_mappings(generated.sources_path)) == set(SOURCES)


def test_records_per_person_between_one_and_a_half_and_three(
    generated: GenerationResult, truth: pd.DataFrame
) -> None:
    assert generated.n_people == PEOPLE
    assert 1.5 <= generated.records_per_person <= 3.0
    assert 1.5 <= len(truth) / PEOPLE <= 3.0
    assert truth.person_id.nunique() == PEOPLE  # every person appears somewhere


def test_files_read_with_garbage_reported_not_dropped(
    generated: GenerationResult, frames: dict[str, pd.DataFrame]
) -> None:
    for source, df in frames.items():
        errors = df[META_ERROR].notna()
        assert len(df) == generated.record_counts[source], source
        assert int(errors.sum()) == generated.broken_lines[source], source
        assert len(df) - int(errors.sum()) == generated.records_by_source[source]
    for source in ("crm", "pos", "web"):
        kinds = set(frames[source].loc[frames[source][META_ERROR].notna(), META_ERROR].str.split(":").str[0])
        assert "blank_line" in kinds and len(kinds) >= 2, (source, kinds)
    assert generated.total_rows == sum(generated.records_by_source.values()) + generated.unreadable_rows
    assert generated.garbage_rows >= generated.unreadable_rows > 0
    assert 0.005 <= generated.garbage_rows / generated.total_rows <= 0.02
    assert generated.duplicate_rows > 0


def test_every_truth_record_is_in_the_files_and_garbage_is_not_in_truth(
    frames: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    parsed = pd.concat([df[df[META_ERROR].isna()] for df in frames.values()])
    assert truth.record_id.is_unique
    assert set(truth.record_id) <= set(parsed.record_id)
    placeholders = parsed[parsed.email.fillna("").str.lower().isin(["test@test.com"])]
    na_rows = parsed[(parsed.first_name == "N/A") & (parsed.last_name == "N/A")]
    assert len(placeholders) + len(na_rows) > 0
    assert not set(placeholders.record_id) & set(truth.record_id)
    assert not set(na_rows.record_id) & set(truth.record_id)
    # Record ids are unique across sources: the prefix names the source.
    assert all(rid.split("-")[0] == src for rid, src in zip(parsed.record_id, _sources(frames), strict=True))


def _sources(frames: dict[str, pd.DataFrame]) -> list[str]:
    return [s for s, df in frames.items() for _ in range(int(df[META_ERROR].isna().sum()))]


def test_old_versions_share_record_id_and_are_older(frames: dict[str, pd.DataFrame]) -> None:
    crm = frames["crm"][frames["crm"][META_ERROR].isna()]
    repeated = crm[crm.record_id.duplicated(keep=False)]
    content = [c for c in crm.columns if not c.startswith("_")]
    versions = repeated.drop_duplicates(subset=content)
    multi = versions.groupby("record_id").updated_at.nunique()
    assert (multi >= 2).sum() > 0  # some record ids come with an older version
    exact = crm.duplicated(subset=content).sum()
    assert exact > 0  # and some rows are exact duplicates


def test_gmail_dots_and_tags_appear(frames: dict[str, pd.DataFrame], truth: pd.DataFrame) -> None:
    parsed = pd.concat([df[df[META_ERROR].isna()][["record_id", "email"]] for df in frames.values()])
    parsed = parsed.merge(truth, on="record_id")
    email = parsed.email.fillna("").str.strip().str.lower()
    gmail = parsed[email.str.endswith("@gmail.com")].assign(email=email)
    assert gmail.email.str.contains(r"\+", regex=True).any()
    local = gmail.email.str.split("@").str[0]
    gmail = gmail.assign(key=local.str.split("+").str[0].str.replace(".", "", regex=False), local=local)
    spellings = gmail.groupby(["person_id", "key"]).local.nunique()
    assert (spellings >= 2).sum() > 10  # one mailbox, several spellings


def test_damage_is_varied(frames: dict[str, pd.DataFrame]) -> None:
    crm = frames["crm"][frames["crm"][META_ERROR].isna()]
    phones = pd.concat([df.phone for df in frames.values() if "phone" in df]).dropna()
    for pattern in (
        r"^\(\d{3}\) \d{3}-\d{4}$",
        r"^\d{3}\.\d{3}\.\d{4}$",
        r"^\+1 \d{3} \d{3} \d{4}$",
        r"^1-\d{3}-",
    ):
        assert phones.str.match(pattern).any(), pattern
    dobs = pd.concat([df.dob for df in frames.values() if "dob" in df]).dropna()
    for pattern in (
        r"^\d{4}-\d{2}-\d{2}$",
        r"^\d{2}/\d{2}/\d{4}$",
        r"^\d{1,2} [A-Z][a-z]{2} \d{4}$",
        r"^\d{8}$",
    ):
        assert dobs.str.match(pattern).any(), pattern
    streets = crm.street.dropna()
    assert streets.str.contains(r"\bSt\.?$").any() and streets.str.contains(r"\bStreet$").any()
    names = crm.first_name.dropna()
    assert names.str.contains(r"^(?:Mr|Mrs|Ms|Dr)\.? ", regex=True).any()
    assert names.map(lambda s: any(ord(ch) > 127 for ch in s)).any()
    assert names.isin(["Bob", "Bill", "Liz", "Kate", "Mike"]).any()
    assert crm.last_name.dropna().str.contains(r"\b[JS]r\b", regex=True).any()
    assert crm.email.dropna().map(lambda s: s != s.strip()).any()


def test_progress_reports_every_step_in_order(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    generate_dataset(40, tmp_path, seed=1, on_progress=lambda step, n: seen.append((step, n)))
    assert [step for step, _ in seen] == list(GENERATION_STEPS)
    assert seen[0] == ("people", 40)
    assert all(n >= 0 for _, n in seen)


def test_household_members_share_their_address() -> None:
    """Different people of one household show the same house number (and so do movers' old
    addresses), while random pairs of people almost never do."""
    pools = build_pools(3)
    people = make_people(3000, pools, np.random.default_rng(4))
    slots: dict[str, int] = {}
    plan = plan_records(people, np.random.default_rng(5), slots)["crm"]
    rows = render_source(
        plan, people, pools, np.full(len(people), "", dtype=object), np.random.default_rng(6), 6
    )
    df = pd.DataFrame(
        {
            "person": plan.person,
            "household": people.household[plan.person],
            "number": [s.strip().split(" ")[0] if s.strip() else "" for s in rows.columns["street"]],
        }
    )
    df = df[df.number.str.fullmatch(r"\d+")].drop_duplicates("person")
    pairs = df.merge(df, on="household")
    pairs = pairs[pairs.person_x < pairs.person_y]
    assert len(pairs) > 50
    assert (pairs.number_x == pairs.number_y).mean() > 0.75
    shuffled = df.number.to_numpy()[np.random.default_rng(0).permutation(len(df))]
    assert (df.number.to_numpy() == shuffled).mean() < 0.05
    assert "national_id" in PROFILES["crm"].present


def test_zero_people_writes_empty_but_valid_files(tmp_path: Path) -> None:
    result = generate_dataset(0, tmp_path, seed=1)
    assert result.total_rows == 0 and result.truth_records == 0
    assert re.match(r"^record_id,person_id\n$", (tmp_path / "truth.csv").read_text())
