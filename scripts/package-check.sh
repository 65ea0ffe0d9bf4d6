#!/usr/bin/env bash
# Builds and runs the README's quickstart in a scratch crate OUTSIDE the workspace that depends on the packaged
# `.crate` files (what crates.io would serve), not on the source folders: a file missing from a package, a
# path that only resolves inside the workspace, or a README example that no longer compiles fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"

cargo package --workspace --locked --no-verify --quiet
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/crates" "$scratch/app/src"
for pkg in autonomize-observer autonomize-observer-macros; do
    tar -xzf "$target/package/$pkg-$version.crate" -C "$scratch/crates"
done

cat > "$scratch/app/Cargo.toml" <<TOML
[package]
name = "quickstart-from-packages"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
autonomize-observer = { path = "../crates/autonomize-observer-$version" }

# The macros package is not on crates.io yet: resolve the runtime's dependency on it to its packaged files.
[patch.crates-io]
autonomize-observer-macros = { path = "../crates/autonomize-observer-macros-$version" }

[workspace]
TOML
# The README's first Rust example is the quickstart.
awk '/^```rust/ && !done {on=1; next} on && /^```/ {on=0; done=1} on' README.md > "$scratch/app/src/main.rs"
# The same dependency versions as the workspace.
cp Cargo.lock "$scratch/app/Cargo.lock"

audit="$scratch/audit.jsonl"
(cd "$scratch/app" && OBSERVER_AUDIT_FILE="$audit" CARGO_TARGET_DIR="$target" cargo run --quiet)
lines="$(wc -l < "$audit")"
if [ "$lines" -ne 3 ]; then
    echo "package check: the quickstart wrote $lines audit events, expected 3" >&2
    exit 1
fi
grep -q '"resource_id":"doc-123"' "$audit" || { echo "package check: the quickstart's create event is missing" >&2; exit 1; }
echo "package check: the quickstart built from the packaged crates wrote 3 audit events"
