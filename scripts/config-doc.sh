#!/usr/bin/env bash
# Writes docs/config.md from the programs' own option tables (their
# --help), so the document cannot drift from the code. tests/unit checks
# it is current: after changing an option, run
#   bash scripts/config-doc.sh build/bin > docs/config.md
set -euo pipefail
bin=${1:-build/bin}
cat <<'EOF2'
# Configuration

Every option of every program, generated from the option tables by
`scripts/config-doc.sh` (do not edit by hand). Each option is a flag
(`--name value` or `--name=value`) and an environment variable; the flag
wins over the variable, the variable over the default. librdkafka
properties pass through as `-X key=value` or `TALLY_KAFKA_<KEY>` (upper
case, `_` for `.`), for SASL/SSL and tuning. A wrong value is a one-line
error naming the option, and exit status 2. Secrets are never printed.
EOF2
for p in ingest aggregate store gen devbroker decode; do
        echo
        echo "## tally-$p"
        echo
        "$bin/tally-$p" --help | sed -n '2,/^$/p' | sed '/^$/d'
        echo
        echo '| flag | environment | default | meaning |'
        echo '| --- | --- | --- | --- |'
        "$bin/tally-$p" --help | awk '
                /^  --/ && $1 != "--help" { flag = $1; env = $2; def = $0;
                        sub(/.*default: /, "", def); getline; help = $0;
                        sub(/^ +/, "", help);
                        printf("| `%s` | `%s` | `%s` | %s |\n", flag, env, def, help) }'
done
