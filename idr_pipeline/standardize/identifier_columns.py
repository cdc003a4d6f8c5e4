"""The value of each identifier type as a Spark column over the clean profiles.

Most identifier types are a clean column as it is; ``source_customer_key`` is derived, as
``<source>:<source_customer_id>``, because a customer id means something only within its source.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def identifier_expression(id_type: str) -> Column:
    """Built on call: column expressions need an active Spark session."""
    if id_type == "source_customer_key":
        return F.when(
            F.col("source_customer_id").isNotNull(), F.concat_ws(":", "source", "source_customer_id")
        )
    return F.col(id_type)
