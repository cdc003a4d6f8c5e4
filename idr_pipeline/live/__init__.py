"""The long-lived stream service: Kafka to the lake and to current audiences in the store.

Above ``api`` in the layers because it re-evaluates rule segments with the audience API's SQL
compiler (:mod:`idr_pipeline.api.audience_sql`); below ``defs``, whose monitor reports it to
Dagster, and ``cli``, which runs it.
"""
