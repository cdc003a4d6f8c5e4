"""What every stage shares: the lake and its catalog of datasets, the schema, Spark, the clock."""
