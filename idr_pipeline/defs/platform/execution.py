"""How a run executes its steps: one after another, in the run's own process.

Every Spark asset reads and writes the lake through one driver's JVM. The multiprocess
executor gives each step a process of its own, which imports the project and starts a Spark
driver before doing any work, so a run launched from the UI, a schedule or a sensor paid that
start once per step. The in-process executor starts the driver once per run and hands the
same session to every step, exactly as ``execute_in_process`` (``idr demo``, the tests) does.
Nothing is lost in parallelism: the steps are a chain, and inside a step Spark already uses
every core (on a laptop) or the cluster's executors (``IDR_SPARK_MASTER``).

Set at the code location, not per job, so the UI's own materializations (the implicit asset
job), the schedules and the sensors all use it. A long-lived Spark Connect server shared by
per-step processes would not serve: the lake and the memory release call the driver's JVM
(``spark._jvm``, ``sparkContext``), which a Connect client does not have.
"""

import dagster as dg


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)


#: The pool of every asset and check that runs Spark: each run that uses it starts a Spark
#: driver of its own, and dagster.yaml limits how many such runs are in progress at once.
SPARK_POOL = "spark"
