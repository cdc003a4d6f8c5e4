-- Mounted at /init.sql in the singlestore/cluster-in-a-box container: the image's startup script
-- pipes it into the `memsql` client once, right after it initializes a new cluster (empty
-- /var/lib/memsql volume), as root.
-- The `singlestore-init` compose service (apply_init_sql.py) runs the same file on every `up`,
-- so a volume that was initialized before a statement was added still gets it: keep every
-- statement idempotent, and free of `;` inside literals (that script splits on `;`).
-- Tables are not created here: the pipeline's store runs its own DDL (ensure_schema) on connect.
CREATE DATABASE IF NOT EXISTS idr;
