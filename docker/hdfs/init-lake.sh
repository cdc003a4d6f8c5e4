#!/usr/bin/env bash
# Run by the `hdfs-init` compose service (apache/hadoop image, user `hadoop` = HDFS superuser)
# after the image's starter.sh has written hadoop.env into the Hadoop config. Idempotent.
#
# Creates the lake root of IDR_LAKE_URI (hdfs://namenode:8020/idr/lake) and gives it to the
# user the pipeline writes as: the code server and Spark run as the OS user `idr`, and Hadoop's
# client identifies itself by that name (no Kerberos, simple auth), executors included.
set -euo pipefail

lake_dir="${IDR_HDFS_LAKE_DIR:-/idr/lake}"
owner="${IDR_HDFS_OWNER:-idr}"
top_dir="/$(echo "${lake_dir#/}" | cut -d/ -f1)"

# The namenode may still be starting (or formatting a fresh volume): retry until it answers,
# then until it has left safe mode.
for attempt in $(seq 1 60); do
  if hdfs dfsadmin -safemode wait; then
    break
  fi
  if [ "$attempt" -eq 60 ]; then
    echo "namenode did not become available" >&2
    exit 1
  fi
  echo "waiting for the namenode (attempt $attempt)..."
  sleep 5
done

hdfs dfs -mkdir -p "$lake_dir"
hdfs dfs -chown -R "$owner:$owner" "$top_dir"
hdfs dfs -chmod 755 "$top_dir"
hdfs dfs -ls -d "$top_dir" "$lake_dir"
