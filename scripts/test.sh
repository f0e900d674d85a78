#!/usr/bin/env bash
# Every test: formatting, lints, unit tests, and the lab tests against real Prosody, ejabberd,
# coturn and NATs built from network namespaces. Needs root (for the namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A one-shot build gains nothing from incremental state (gigabytes on disk).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo build --workspace --tests --quiet
"${CARGO_TARGET_DIR:-target}/debug/chamber-lab" clean >/dev/null
log=$(mktemp)
set +e
# One test binary at a time (cargo's way): the lab tests start real servers and must not starve.
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^passed;?$/) s += $(i-1) } END { print s + 0 }' "$log")
failed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^failed;?$/) s += $(i-1) } END { print s + 0 }' "$log")
rm -f "$log"
echo
echo "summary: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
