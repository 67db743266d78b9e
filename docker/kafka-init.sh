#!/bin/sh
# docker/kafka-init.sh -- one-shot topic creation for docker-compose.
# Runs in the apache/kafka image (kafka-init service) once the broker is
# healthy; creating a topic that exists is a no-op, so it is safe to rerun.
# Partition counts are fixed once the pipeline has run (ingest refuses a
# changed tally.clean count): change them only on an empty deployment.
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
TOPICS_SH="${KAFKA_TOPICS_SH:-/opt/kafka/bin/kafka-topics.sh}"
RAW_PARTITIONS="${TALLY_RAW_PARTITIONS:-16}"
CLEAN_PARTITIONS="${TALLY_CLEAN_PARTITIONS:-16}"
ROLLUP_PARTITIONS="${TALLY_ROLLUP_PARTITIONS:-8}"
DLQ_PARTITIONS="${TALLY_DLQ_PARTITIONS:-4}"

create() {
        topic=$1
        partitions=$2
        shift 2
        echo "kafka-init: topic=$topic partitions=$partitions"
        "$TOPICS_SH" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
                --topic "$topic" --partitions "$partitions" \
                --replication-factor 1 "$@"
}

create tally.raw "$RAW_PARTITIONS" --config retention.ms=604800000
create tally.clean "$CLEAN_PARTITIONS" --config retention.ms=604800000
create tally.rollups "$ROLLUP_PARTITIONS" --config retention.ms=604800000
# Rejected input is kept longer, for inspection and replay.
create tally.dlq "$DLQ_PARTITIONS" --config retention.ms=2592000000

"$TOPICS_SH" --bootstrap-server "$BOOTSTRAP" --describe \
        --topic 'tally\..*' | grep '^Topic:' || true
echo "kafka-init: done"
