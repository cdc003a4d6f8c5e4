"""Sample-data generator: ground-truth people rendered into four dirty source files.

``generate_dataset(people, out_dir, seed)`` writes crm/pos CSV, web JSON-lines and app Parquet
files (column names as in ``idr_pipeline/config/sources.yaml``), ``truth.csv`` and a copy of
the mapping. See ``writer.py`` for the folder layout, ``damage.py`` for what is dirty and
``phenomena.py`` for the hard cases (Jr/Sr, family tablets, initial-only names, withheld dates of
birth) that ``generate_dataset(..., phenomena=Phenomena(...))`` switches.
"""

from idr_pipeline.devtools.synthetic.phenomena import Phenomena
from idr_pipeline.devtools.synthetic.writer import GENERATION_STEPS, GenerationResult, generate_dataset

__all__ = ["GENERATION_STEPS", "GenerationResult", "Phenomena", "generate_dataset"]
