#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in the three fuzz crates (docs/fuzzing.md):
# builds them (RUSTC_BOOTSTRAP=1 on stable; FUZZ_TOOLCHAIN=nightly for nightly), runs each for
# FUZZ_SECONDS (default 10) from its committed seeds, and prints one markdown row per target.
# Exits non-zero if any target crashed, leaked or hung; its input is in <crate>/artifacts/.
#
#   scripts/fuzz.sh                      # every crate, 10 s per target
#   FUZZ_SECONDS=600 scripts/fuzz.sh fuzz    # one crate, longer
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
secs=${FUZZ_SECONDS:-10}
crates=("$@")
[ ${#crates[@]} -eq 0 ] && crates=(xmpp-ext/fuzz brunet-compat/fuzz fuzz)

# Stable with RUSTC_BOOTSTRAP=1 by default, as the fuzz READMEs run it: one toolchain for every
# build in a shared target folder (mixing toolchains rebuilds everything each time).
if [ "${FUZZ_TOOLCHAIN:-stable}" = nightly ]; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is not installed: run \`cargo install cargo-fuzz\`" >&2
    exit 2
}

scratch=$(mktemp -d /tmp/chamber-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failed=0
echo "| crate | target | seconds | executions | exec/s | findings |"
echo "|---|---|---|---|---|---|"
for crate in "${crates[@]}"; do
    cd "$root/$crate"
    "${fuzz[@]}" build >"$scratch/build.log" 2>&1 || {
        echo "building $crate failed:" >&2
        tail -20 "$scratch/build.log" >&2
        exit 1
    }
    dict=()
    [ -f xml.dict ] && dict=(-dict=xml.dict)
    [ "$crate" = fuzz ] && dict=(-dict="$root/xmpp-ext/fuzz/xml.dict")
    for t in $("${fuzz[@]}" list); do
        mkdir -p "$scratch/$crate/$t" "corpus/$t"
        log="$scratch/$t.log"
        status=none
        # The built binary directly: `cargo fuzz run` would rebuild first.
        if ! target/x86_64-unknown-linux-gnu/release/"$t" "$scratch/$crate/$t" "corpus/$t" \
            -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
            status="**FOUND** (see $crate/artifacts/$t/)"
            failed=1
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        echo "| \`$crate\` | \`$t\` | $secs | ${runs:-?} | ${rate:-?} | $status |"
    done
done
exit $failed
