# Ordo's front door. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List recipes.
default:
    @just --list

# Installs redis-server first if it is missing (see `bootstrap`).
# Serve Ordo and its web console on http://127.0.0.1:8080 (data in ./data; a private Redis unless REDIS_URL is set).
run *ARGS: (bootstrap "run")
    cargo run --release -p ordo-api --bin ordo -- serve {{ARGS}}

# Everything CI checks: formatting, lints, every test. Installs what the tests need first.
test: bootstrap fmt-check lint doc
    cargo test --workspace --all-targets --locked
    cargo test --workspace --doc --locked

# Clippy over every target, warnings are errors.
lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings

# API docs for every crate; a broken intra-doc link is an error.
doc:
    RUSTDOCFLAGS="-D rustdoc::broken_intra_doc_links -D rustdoc::private_intra_doc_links" cargo doc --workspace --no-deps --locked

# Check formatting without changing files.
fmt-check:
    cargo fmt --all -- --check

# Format the code.
fmt:
    cargo fmt --all

# `just run` and `just test` run this first; on a machine that has everything it only checks.
# Install what `just run` (redis-server) or the tests (also PostgreSQL, Chromium, chromedriver) need.
bootstrap WHAT="test":
    @scripts/bootstrap.sh {{WHAT}}

# The event-store contract against a real KurrentDB server (ORDO_KURRENTDB_URL must be set).
test-kurrentdb:
    @test -n "${ORDO_KURRENTDB_URL:-}" || { echo "set ORDO_KURRENTDB_URL, e.g. kurrentdb://localhost:2113?tls=false" >&2; exit 1; }
    cargo test -p ordo-eventstore --test kurrent_contract --test keyed_retry -- --ignored

# Benchmarks on this machine (JSON figures).
bench:
    cargo run --release -p ordo-api --bin ordo -- bench store --json
    cargo run --release -p ordo-api --bin ordo -- bench projections --json
    cargo run --release -p ordo-api --bin ordo -- bench http --json

# Fuzz the HTTP API with schemathesis (from PyPI) against its own /openapi.json.
fuzz-api *ARGS:
    scripts/fuzz-api.sh {{ARGS}}
