#!/usr/bin/env bash
# The project's test command (README "Run all tests"): starts the test Kafka broker (installing it when
# missing), runs every test of the workspace with all features — unit, integration (Kafka included), trybuild
# UI and doc tests — and stops the broker again.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One shared target dir; no incremental cache in CI (it only costs disk there).
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

echo "== test broker"
broker_env="$(bash scripts/kafka-broker.sh start)"
eval "$broker_env"
export KAFKA_BOOTSTRAP_SERVERS KAFKA_BROKER_PID
trap 'bash scripts/kafka-broker.sh stop >/dev/null 2>&1 || true' EXIT
echo "broker at $KAFKA_BOOTSTRAP_SERVERS (pid $KAFKA_BROKER_PID)"

echo "== Python checkers (independent implementations some tests compare against)"
py_env="$(bash scripts/python-env.sh)"
eval "$py_env"
export OBSERVER_PYTHON
echo "python at $OBSERVER_PYTHON"

echo "== unit, integration and UI tests"
cargo test --workspace --all-targets --all-features --locked
echo "== doc tests"
cargo test --workspace --doc --all-features --locked
