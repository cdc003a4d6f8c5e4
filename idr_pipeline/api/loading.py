"""Loading the trained match model and the Faiss index without starting Spark.

The batch writes the model into the lake as a one-row Parquet dataset; the API reads the
same files through Arrow, because a JVM per API process would cost seconds at start and
hundreds of MB for one JSON string.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
from pyarrow import fs as pafs

from idr_pipeline.candidates.faiss_index import FaissCandidateIndex
from idr_pipeline.core.catalog import MODEL
from idr_pipeline.core.lake import LATEST_POINTER
from idr_pipeline.scoring.fellegi_sunter import MatchModel
from idr_pipeline.settings import IdrSettings


def load_model(settings: IdrSettings) -> MatchModel:
    """The model in ``api_model_path`` (JSON), else the latest version in the lake.

    FileNotFoundError when neither exists: the API then resolves deterministically only.
    """
    if settings.api_model_path:
        return MatchModel.from_json(Path(settings.api_model_path).read_text(encoding="utf-8"))

    base = "/".join([settings.lake_uri.rstrip("/"), *MODEL])
    filesystem, root = pafs.FileSystem.from_uri(base)
    pointer = f"{root}/{LATEST_POINTER}"
    if filesystem.get_file_info(pointer).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no trained match model in the lake ({base}); run the pipeline first")
    with filesystem.open_input_stream(pointer) as stream:
        version = stream.read().decode("utf-8").strip()
    table = ds.dataset(f"{root}/v={version}", format="parquet", filesystem=filesystem).to_table()
    return MatchModel.from_json(table.column("model_json")[0].as_py())


def load_index(index_dir: str) -> FaissCandidateIndex:
    """The persisted index, or an empty one when the pipeline has not written one yet."""
    if not (Path(index_dir) / "meta.json").exists():
        return FaissCandidateIndex()
    return FaissCandidateIndex.load(index_dir)
