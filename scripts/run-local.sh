#!/usr/bin/env bash
# `make run`, after the broker is up: the aggregator in the background and the API in the
# foreground, both over mutual TLS as their own principals. Ctrl-C stops both; the broker
# keeps running (`.venv/bin/adstream kafka down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
db="sqlite:///.adstream/aggregate.db"
port="${ADSTREAM_PORT:-8080}"

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

Send impressions from another terminal, then watch the dashboard:
  for i in \$(seq 500); do curl -s -X POST localhost:$port/ads/AD\$((RANDOM % 8))/impression >/dev/null; done

INFO
"$bin/adstream" serve --db "$db" --port "$port"
