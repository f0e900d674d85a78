#!/usr/bin/env bash
# The demo: a lab of friends behind every kind of NAT, on real Prosody, ejabberd and coturn.
# Installs what it needs, builds chamber, runs the demo and tears the lab down again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --quiet -p chamber-lab --bin chamber-lab -p chamber --bin chamber \
  --example chat --example fileshare
lab="${CARGO_TARGET_DIR:-target}/debug/chamber-lab"
"$lab" clean >/dev/null
exec "$lab" demo "$@"
