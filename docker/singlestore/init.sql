-- Mounted at /init.sql in the singlestore/cluster-in-a-box container: the image's startup script
-- runs it once, right after it initialises a new cluster (empty /var/lib/memsql volume).
-- The `singlestore-init` compose service runs the same statement on every `up`, so a volume
-- that was initialised before this file existed still gets the database.
CREATE DATABASE IF NOT EXISTS idr;
