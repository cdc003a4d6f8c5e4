"""Apply docker/singlestore/init.sql to the SingleStore container; run by `singlestore-init`.

The cluster-in-a-box image runs /init.sql only when it initializes an empty data volume. This
job runs the same file on every `docker compose up`, so a volume created before a statement was
added still gets it (every statement in init.sql must therefore be idempotent).

It waits until root can log in with SINGLESTORE_ROOT_PASSWORD: the image sets that password as
the last step of its first-start initialization (after adding the leaf), so a successful login
means the cluster is ready for DDL. Uses the project's own client, ``singlestoredb``.
"""

from __future__ import annotations

import os
import sys
import time

import singlestoredb as s2


def statements(sql: str) -> list[str]:
    """Split a plain DDL script on ``;`` after dropping ``--`` comment lines.

    Deliberately simple: init.sql holds short DDL statements, no procedures or literal ``;``.
    """
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def connect_when_ready(host: str, port: int, password: str, wait_seconds: float):
    deadline = time.monotonic() + wait_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return s2.connect(host=host, port=port, user="root", password=password)
        except Exception as exc:  # not up yet, still initializing, or password not set yet
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"SingleStore at {host}:{port} not ready after {wait_seconds:.0f}s: {exc}"
                ) from exc
            print(f"waiting for SingleStore at {host}:{port} (attempt {attempt}): {exc}", flush=True)
            time.sleep(5)


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        todo = statements(fh.read())
    conn = connect_when_ready(
        host=os.environ.get("SINGLESTORE_HOST", "singlestore"),
        port=int(os.environ.get("SINGLESTORE_PORT", "3306")),
        password=os.environ["SINGLESTORE_ROOT_PASSWORD"],
        wait_seconds=float(os.environ.get("SINGLESTORE_WAIT_SECONDS", "900")),
    )
    try:
        cursor = conn.cursor()
        for statement in todo:
            print(f"> {statement}", flush=True)
            cursor.execute(statement)
        cursor.execute("SHOW DATABASES")
        print("databases:", ", ".join(sorted(str(row[0]) for row in cursor.fetchall())), flush=True)
        cursor.close()
    finally:
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/opt/idr-init/singlestore/init.sql")
