"""Spark session configuration shared by the Dagster resource and the CLI.

Both entry points build their session from the same dictionary so a job behaves the same
whether it runs under Dagster or from ``idr resolve``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pyspark.sql import SparkSession

from idr_pipeline.settings import PACKAGE_CONFIG_DIR, IdrSettings, get_settings

LOG4J_CONFIG = PACKAGE_CONFIG_DIR / "log4j2.properties"


def spark_conf(settings: IdrSettings | None = None) -> dict[str, Any]:
    s = settings or get_settings()
    # Workers must run the same interpreter as the driver, or pandas UDFs import the wrong packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # A laptop's hostname often resolves to loopback; say so up front instead of warning each run.
    if s.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return {
        "spark.master": s.spark_master,
        "spark.app.name": "idr_pipeline",
        "spark.driver.memory": s.spark_driver_memory,
        "spark.executor.memory": s.spark_executor_memory,
        "spark.sql.shuffle.partitions": str(s.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Larger Arrow batches cut the Python workers' per-batch costs (conversion, the contract
        # check, factorizing each column), paid once per batch whatever its size.
        "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        # Parquet written by pandas/pyarrow carries nanosecond timestamps; read them as timestamps.
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        "spark.local.dir": os.path.join(s.run_dir, "spark-tmp"),
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()} "
        + s.spark_driver_java_options,
    }


def get_spark(settings: IdrSettings | None = None):  # -> SparkSession (import kept local: slow)

    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def release_jvm_memory(spark) -> None:
    """Drop cached data and let the JVM hand its heap back to the operating system.

    After the Spark steps, the JVM holds its whole heap, sized for those steps, while the
    pandas stages run beside it. A full collection after the caches are dropped shrinks the
    committed heap to what is live, so the two peaks do not add up.
    Under Parallel GC that takes -XX:+UseAdaptiveSizePolicyWithSystemGC (in the default
    ``spark_driver_java_options``): without it the heap stays at its peak after this call.
    """
    spark.catalog.clearCache()
    spark.sparkContext._jvm.System.gc()
