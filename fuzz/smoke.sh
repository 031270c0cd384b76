#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target and runs each one for a few
# seconds from the committed seed corpus, failing on any crash.
#
#   fuzz/smoke.sh [SECONDS]        # default 20 per target (or $FUZZ_SECONDS)
#
# Uses the nightly toolchain when rustup has one, otherwise stable with
# RUSTC_BOOTSTRAP=1, and installs cargo-fuzz when it is missing (about 70 s).
# Set FUZZ_SANITIZER=none to build without AddressSanitizer (about 4x faster
# for the `open` target; mqseal itself forbids unsafe code).
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-${FUZZ_SECONDS:-20}}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi

echo "== ${fuzz[*]} build (sanitizer: $sanitizer)"
if ! "${fuzz[@]}" build -s "$sanitizer"; then
    # A stale or interrupted build (say, from another toolchain) can leave
    # target/ unusable: clean once and retry.
    echo "== build failed: cleaning fuzz/target and retrying"
    rm -rf target
    "${fuzz[@]}" build -s "$sanitizer"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for target in $("${fuzz[@]}" list); do
    echo "== $target: ${secs}s"
    mkdir -p "$work/$target" "corpus/$target"
    # New inputs go to the temporary first directory; the seeds are read only.
    if "${fuzz[@]}" run -s "$sanitizer" "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$work/$target.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$' || true)
        rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$' || true)
        echo "   ok: ${runs:-?} runs, ${rate:-?} exec/s"
    else
        status=1
        echo "   FAILED: $target crashed or could not run; its log:"
        tail -n 60 "$work/$target.log"
        echo "   (reproducer, if any, in fuzz/artifacts/$target/)"
    fi
done
exit "$status"
