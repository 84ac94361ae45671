#!/usr/bin/env bash
# Installs the system packages the test suite runs for real: PostgreSQL for the aggregator
# store tests, Redis for the API's shared rate limits (ElastiCache on AWS), Chromium for the
# dashboard's browser test, Prometheus (server + promtool, node exporter) for the
# alert-rule tests and the live scrape test, podman + runc + mmdebstrap to build and run the
# container image without Docker or a registry (`make image`, the image test). Java 17+ and
# Maven are checked, not installed here: `adstream kafka install` explains what is missing. Debian/Ubuntu only.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v podman >/dev/null 2>&1 || need+=(podman)
{ [ -x /usr/sbin/runc ] || command -v runc; } >/dev/null 2>&1 || need+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)

[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: please install: ${need[*]} (needed by the test suite)" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "==> installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian package starts a cluster on port 5432; the tests run their own servers.
# The prometheus and prometheus-node-exporter packages enable system services (:9090, :9100
# and the exporter's timers); the tests and `adstream monitor` run their own, so stop and
# disable them where systemd runs.
# Likewise redis-server's service (:6379): the tests start their own servers.
if [[ " ${need[*]} " =~ " "(prometheus|redis-server) ]] && [ -d /run/systemd/system ]; then
    for unit in prometheus prometheus-node-exporter prometheus-node-exporter-{apt,smartmon}.timer \
        redis-server; do
        $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
fi
