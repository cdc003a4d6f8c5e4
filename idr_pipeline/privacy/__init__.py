"""Privacy machinery shared by the API and the pipeline: secrets, keyed erasure tombstones and
the lake purge that follows an erasure."""
