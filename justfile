# Ordo's front door. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List recipes.
default:
    @just --list

# Serve Ordo on http://127.0.0.1:8080 (data in ./data; a private Redis unless REDIS_URL is set).
run *ARGS:
    cargo run --release -p ordo-api --bin ordo -- serve {{ARGS}}

# Everything CI checks: formatting, lints, every test.
test: fmt-check lint
    cargo test --workspace --all-targets --locked
    cargo test --workspace --doc --locked

# Clippy over every target, warnings are errors.
lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Check formatting without changing files.
fmt-check:
    cargo fmt --all -- --check

# Format the code.
fmt:
    cargo fmt --all

# Install what the tests and `just run` need on this machine (redis-server).
bootstrap:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v redis-server >/dev/null; then
        echo "redis-server: $(redis-server --version | cut -d' ' -f3) already installed"
        exit 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "bootstrap: no apt-get here; install redis-server (7.x) with your package manager" >&2
        exit 1
    fi
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
    # Debian starts a system-wide server on install; Ordo runs private ones, so stop it.
    $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
    echo "redis-server: $(redis-server --version | cut -d' ' -f3) installed"

# The event-store contract against a real KurrentDB server (ORDO_KURRENTDB_URL must be set).
test-kurrentdb:
    @test -n "${ORDO_KURRENTDB_URL:-}" || { echo "set ORDO_KURRENTDB_URL, e.g. kurrentdb://localhost:2113?tls=false" >&2; exit 1; }
    cargo test -p ordo-eventstore --test kurrent_contract -- --ignored

# Benchmarks on this machine (JSON figures).
bench:
    cargo run --release -p ordo-api --bin ordo -- bench store --json
    cargo run --release -p ordo-api --bin ordo -- bench projections --json
    cargo run --release -p ordo-api --bin ordo -- bench http --json

# Fuzz the HTTP API with schemathesis (from PyPI) against its own /openapi.json.
fuzz-api *ARGS:
    scripts/fuzz-api.sh {{ARGS}}
