#!/bin/bash
# tests/integration/test_compose.sh -- docker-compose.yml is valid and wires
# up the whole system: Kafka in KRaft mode, topic creation, PostgreSQL and the
# three daemons, each with a health check. No Docker engine is needed: this
# only checks the file (docker-compose config).
set -euo pipefail

SRC="${TALLY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
FILE="$SRC/docker-compose.yml"

fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v docker-compose >/dev/null 2>&1; then
        if [ "${CI:-}" = "true" ]; then
                fail "docker-compose is not installed (required in CI)"
        fi
        echo "SKIP: docker-compose is not installed"
        exit 0
fi

[ -f "$FILE" ] || fail "no $FILE"
[ -f "$SRC/Dockerfile" ] || fail "no Dockerfile"
[ -f "$SRC/docker/kafka-init.sh" ] || fail "no docker/kafka-init.sh"

# Validate without reading any .env of the developer's.
docker-compose -f "$FILE" --project-directory "$SRC" config -q \
        || fail "docker-compose config rejects $FILE"

# The resolved configuration, with the demo profile's services too.
cfg=$(docker-compose -f "$FILE" --project-directory "$SRC" --profile demo config) \
        || fail "docker-compose config (profile demo) failed"

has() { grep -Eq -- "$1" <<<"$cfg" || fail "missing: $2"; }

services=$(docker-compose -f "$FILE" --project-directory "$SRC" --profile demo config --services)
for svc in kafka kafka-init postgres ingest aggregate store gen; do
        grep -qx "$svc" <<<"$services" || fail "service $svc missing"
done

has 'image: apache/kafka:' "Apache Kafka image"
has 'KAFKA_PROCESS_ROLES: broker,controller' "KRaft combined roles"
has 'KAFKA_CONTROLLER_QUORUM_VOTERS:' "KRaft quorum voters"
has 'KAFKA_NODE_ID:' "KRaft node id"
has 'kafka-topics.sh --bootstrap-server localhost:9092 --list' "kafka healthcheck"
has 'image: postgres:15' "PostgreSQL 15"
has 'pg_isready' "postgres healthcheck"
has 'service_completed_successfully' "depends_on kafka-init completion"
has 'service_healthy' "depends_on healthy"
has 'TALLY_BROKERS: kafka:9092' "TALLY_BROKERS"
has 'TALLY_PG: .*host=postgres' "TALLY_PG conninfo"
has '- tally-ingest' "ingest command"
has '- tally-aggregate' "aggregate command"
has '- tally-store' "store command"

# Each daemon: its healthcheck is /healthz, it restarts, it runs our image.
for svc in ingest aggregate store; do
        block=$(awk -v s="  $svc:" '
                $0 == s { on = 1; print; next }
                on && /^  [^ ]/ { on = 0 }
                on { print }' <<<"$cfg")
        [ -n "$block" ] || fail "no block for $svc"
        grep -q 'http://localhost:8080/healthz' <<<"$block" || fail "$svc: no /healthz healthcheck"
        grep -q 'restart: unless-stopped' <<<"$block" || fail "$svc: no restart policy"
        grep -q 'TALLY_HTTP_PORT' <<<"$block" || fail "$svc: no TALLY_HTTP_PORT"
        grep -q 'TALLY_THREADS' <<<"$block" || fail "$svc: no TALLY_THREADS"
        grep -q 'context:' <<<"$block" || fail "$svc: not built from the Dockerfile"
done

# Topics the pipeline needs are created by the init script.
for t in tally.raw tally.clean tally.rollups tally.dlq; do
        grep -q "create $t " "$SRC/docker/kafka-init.sh" || fail "topic $t not created"
done
grep -q -- '--if-not-exists' "$SRC/docker/kafka-init.sh" || fail "topic creation not idempotent"

# The runtime image runs as a non-root user.
grep -Eq '^USER [a-z]' "$SRC/Dockerfile" || fail "Dockerfile: no non-root USER"

echo "PASS: docker-compose.yml"
