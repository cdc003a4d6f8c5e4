"""``idr resolve``: the batch pipeline over a handful of files, outside Dagster.

It calls the same pipeline functions the assets call, against a private lake in a work folder,
so a data engineer can resolve an export on a laptop and get exactly what the scheduled job
would have produced for the same input.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
import pyarrow.parquet as pq

from idr_pipeline.candidates.embedding_lake import reusing_embeddings
from idr_pipeline.candidates.profile_encoders import profile_encoder
from idr_pipeline.candidates.steps import run_candidates, run_embeddings, run_faiss_index
from idr_pipeline.core.catalog import LINKS, QUARANTINE
from idr_pipeline.core.forked import map_forked
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import get_spark, release_jvm_memory
from idr_pipeline.graph.blocklist import load_blocklist
from idr_pipeline.graph.steps import GraphStats, run_clustering, run_edges, run_graph
from idr_pipeline.ingest.landing import land_batch, read_batch
from idr_pipeline.ingest.mapping import MappingError, SourceMapping, identity_mapping, load_mappings
from idr_pipeline.ingest.readers import read_cost
from idr_pipeline.scoring.steps import run_match_model, run_scoring
from idr_pipeline.settings import IdrSettings, get_settings
from idr_pipeline.standardize.profiles import reusing_profiles
from idr_pipeline.standardize.steps import CleaningStats, run_cleaning
from idr_pipeline.store.decisions import load_decisions
from idr_pipeline.store.tombstones import load_tombstones

FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
OUTPUT_SUFFIXES = (".csv", ".parquet")


@dataclass
class ResolveOutcome:
    output: Path
    cleaning: CleaningStats
    graph: GraphStats
    quarantine_output: Path | None


def mappings_for_inputs(
    inputs: Sequence[Path], mapping_path: Path | None
) -> dict[str, tuple[SourceMapping, Path]]:
    """Pair every input file with the source mapping that describes it.

    With a mapping file the pairing is by file name, so one YAML can describe a whole drop
    folder; without one each file must already be in the canonical schema and is named after
    its stem. An input nobody describes is an error, never a guess.
    """
    paired: dict[str, tuple[SourceMapping, Path]] = {}
    if mapping_path is not None:
        mappings = load_mappings(mapping_path)
        by_file = {Path(m.file).name: m for m in mappings.values()}
        for path in inputs:
            mapping = by_file.get(path.name)
            if mapping is None:
                raise MappingError(
                    f"{path}: no source in {mapping_path} has file '{path.name}'; "
                    f"known files are {sorted(by_file)}"
                )
            if mapping.name in paired:
                raise MappingError(f"{path}: source '{mapping.name}' was given twice")
            paired[mapping.name] = (mapping, path)
        return paired
    for path in inputs:
        fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
        if fmt is None:
            raise MappingError(
                f"{path}: cannot tell the format from '{path.suffix}'; use one of {sorted(FORMAT_BY_SUFFIX)}"
            )
        name = path.stem
        if name in paired:
            raise MappingError(f"{path}: two inputs share the source name '{name}'")
        paired[name] = (identity_mapping(name, path.name, fmt), path)
    return paired


# A CSV field needs quotes when it holds one of these (pandas' QUOTE_MINIMAL).
_NEEDS_QUOTES = '[,"\r\n]'


def write_table(table: pa.Table, path: Path) -> None:
    """Parquet or CSV by the file's extension.

    A CSV of string columns where nothing needs quoting (the identity table, as a rule) is
    written by Arrow, which quotes every string or nothing and sorts and writes without
    turning the rows into Python objects. Anything else goes through pandas
    (``QUOTE_MINIMAL``), so both paths write the same bytes for the same rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        pq.write_table(table, path)
    elif _plain_strings(table):
        with path.open("wb") as out:
            out.write((",".join(table.column_names) + "\n").encode())
            csv.write_csv(table, out, csv.WriteOptions(include_header=False, quoting_style="none"))
    else:
        table.to_pandas().to_csv(path, index=False)


def _plain_strings(table: pa.Table) -> bool:
    if any(re.search(_NEEDS_QUOTES, name) for name in table.column_names):
        return False
    return all(
        pa.types.is_string(column.type)
        and not pc.any(pc.match_substring_regex(column, _NEEDS_QUOTES)).as_py()
        for column in table.columns
    )


def resolve_files(
    inputs: Sequence[Path],
    output: Path,
    mapping_path: Path | None = None,
    work_dir: Path | None = None,
    settings: IdrSettings | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ResolveOutcome:
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output must end in one of {OUTPUT_SUFFIXES}, got '{output.name}'")
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise FileNotFoundError(f"input file(s) not found: {missing}")
    settings = settings or get_settings()
    step = on_step or (lambda _msg: None)
    paired = mappings_for_inputs(inputs, mapping_path)
    own_work_dir = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="idr-resolve-")) if own_work_dir else Path(work_dir)
    try:
        spark = get_spark(settings)
        lake = Lake((work / "lake").resolve().as_uri(), spark)
        step(f"reading {len(paired)} source file(s)")
        # Reading is pure Python on one core; the files are read side by side in forked children.
        batches = map_forked(
            lambda pair: read_batch(*pair),
            list(paired.values()),
            settings.driver_workers,
            cost=lambda pair: read_cost(pair[1], pair[0].format),
        )
        for batch in batches:
            step(f"landing {batch.source} ({batch.table.num_rows:,} rows)")
            land_batch(lake, batch)
        step("standardizing")
        mappings = {name: mapping for name, (mapping, _path) in paired.items()}
        cleaning = run_cleaning(
            spark, lake, mappings, settings.default_phone_region, load_tombstones(settings.store_url)
        )
        step("linking shared identifiers")
        run_edges(spark, lake, load_blocklist(settings.blocklist_path), settings.max_people_per_identifier)
        config = settings.match_config()
        release_jvm_memory(spark)
        with reusing_profiles():  # candidates, training and scoring share one read of the profiles
            encoder = profile_encoder(
                settings.embed_encoder,
                settings.embedding_model_path,
                settings.embed_quantize,
                settings.driver_workers,
            )
            index_dir = str(work / "faiss")
            # Indexing takes the vectors as written; the candidates step reads the few it
            # searches with, late, and holding all of them meanwhile would raise its peak.
            with reusing_embeddings():
                step(f"embedding profiles ({settings.embed_encoder})")
                run_embeddings(spark, lake, settings.embed_policy, settings.embed_max_records, encoder)
                step("indexing the embeddings")
                run_faiss_index(lake, index_dir)
            step("generating candidate pairs")
            run_candidates(spark, lake, index_dir, config, neighbor_floor=encoder.neighbor_floor)
            step("training the match model")
            run_match_model(spark, lake, config)
            step("scoring candidate pairs")
            run_scoring(spark, lake, config)
        # Outside the block: clustering is the driver's largest step, and the kept profiles,
        # masked copy and comparison cache would sit beside it.
        step("clustering into identities")
        clusters = run_clustering(spark, lake, config, load_decisions(settings.store_url))
        step("assigning stable identity ids")
        graph = run_graph(spark, lake, components=clusters.components)
        step(f"writing {output.name}")
        write_table(
            lake.read_latest_arrow(*LINKS, columns=["record_id", "identity_id"]).sort_by("record_id"), output
        )
        quarantine_output = None
        if cleaning.quarantined_rows:
            quarantine_output = output.with_name(f"{output.stem}.quarantine{output.suffix}")
            write_table(lake.read_latest_arrow(*QUARANTINE), quarantine_output)
        return ResolveOutcome(output, cleaning, graph, quarantine_output)
    finally:
        if own_work_dir:
            shutil.rmtree(work, ignore_errors=True)
