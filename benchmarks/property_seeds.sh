#!/usr/bin/env bash
# Run every property-test file (tests/*.py with @given) under N fresh Hypothesis seeds, one
# line per run with its seed, so a failure can be replayed with --hypothesis-seed=SEED.
# Usage: bash benchmarks/property_seeds.sh [N]   (default 20)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
files=$(grep -l "@given" tests/*.py | tr '\n' ' ')
failed=0
for i in $(seq 1 "$runs"); do
    seed=$(python -c "import secrets; print(secrets.randbelow(2**32))")
    # shellcheck disable=SC2086
    out=$(HYPOTHESIS_PROFILE=dev python -m pytest -q -p no:cacheprovider $files \
        --hypothesis-seed="$seed" 2>&1 | tail -1)
    echo "$i seed=$seed $out"
    case "$out" in *failed*|*error*) failed=$((failed + 1)) ;; esac
done
echo "runs: $runs, failed: $failed"
[ "$failed" -eq 0 ]
