"""One raw partition per configured source."""

import dagster as dg

from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.settings import get_settings

source_partitions = dg.StaticPartitionsDefinition(sorted(load_mappings(get_settings().source_mapping_path)))
