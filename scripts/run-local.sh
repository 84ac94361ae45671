#!/usr/bin/env bash
# `make run`, after the broker is up: the aggregator in the background and the API in the
# foreground, both over mutual TLS as their own principals. Ctrl-C stops both; the broker
# keeps running (`.venv/bin/adstream kafka down` stops it).
#
# With ADSTREAM_SCHEMA_FORMAT=avro or jsonschema (`make run ADSTREAM_SCHEMA_FORMAT=avro`), the
# local schema registry is started first (Apicurio on 127.0.0.1:8081, in memory) unless
# ADSTREAM_SCHEMA_REGISTRY_URL or ADSTREAM_SCHEMA_REGISTRY=glue names another; it keeps
# running too (`.venv/bin/adstream registry down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
db="sqlite:///.adstream/aggregate.db"
port="${ADSTREAM_PORT:-8080}"

format="${ADSTREAM_SCHEMA_FORMAT:-json}"
registry_line="json (no schema registry; ADSTREAM_SCHEMA_FORMAT=avro|jsonschema for one)"
if [ "$format" != json ]; then
  if [ -z "${ADSTREAM_SCHEMA_REGISTRY_URL:-}" ] && [ "${ADSTREAM_SCHEMA_REGISTRY:-confluent}" != glue ]; then
    "$bin/adstream" registry up
    ADSTREAM_SCHEMA_REGISTRY_URL="$("$bin/python" -c 'import json
print("http://127.0.0.1:%d/apis/ccompat/v7" % json.load(open(".adstream/registry/registry.json"))["port"])')"
    export ADSTREAM_SCHEMA_REGISTRY_URL
  fi
  registry_line="$format via ${ADSTREAM_SCHEMA_REGISTRY_URL:-AWS Glue Schema Registry}"
fi

"$bin/adstream" aggregate --db "$db" --metrics-port 9400 >>.adstream/aggregate.log 2>&1 &
aggregator=$!
trap 'kill -TERM "$aggregator" 2>/dev/null; wait "$aggregator" 2>/dev/null || true' EXIT

cat <<INFO

adstream is running:
  API         http://127.0.0.1:$port/docs   (POST /ads/{adId}/impression, /ads/{adId}/click, /events)
  Dashboard   http://127.0.0.1:$port/dashboard
  Metrics     http://127.0.0.1:$port/metrics (API), http://127.0.0.1:9400/metrics (aggregator)
  Prometheus  \`make monitor\` in another terminal, then http://127.0.0.1:9090/alerts
  Aggregator  log in .adstream/aggregate.log, counts in .adstream/aggregate.db
  Format      $registry_line

Send impressions from another terminal, then watch the dashboard:
  for i in \$(seq 500); do curl -s -X POST localhost:$port/ads/AD\$((RANDOM % 8))/impression >/dev/null; done

INFO
"$bin/adstream" serve --db "$db" --port "$port"
