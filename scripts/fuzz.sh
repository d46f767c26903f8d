#!/usr/bin/env bash
# Runs every fuzz target of every package, one after the other, each for
# FUZZTIME (the first argument, else $FUZZTIME, else 20s). New crashers land
# in the package's testdata/fuzz/<Target>/ and from then on run as unit
# tests under `go test`. Prints a summary (package, target, time, execs,
# verdict) at the end and exits non-zero if any target failed or a package
# did not build.
#
#   FUZZPARALLEL      fuzzing workers per target (-parallel; default: all cores)
#   FUZZMINIMIZETIME  minimizing of each new input (-fuzzminimizetime;
#                     default 100x: slow targets with large inputs would
#                     otherwise spend their time minimizing, not fuzzing)
#   FUZZPKGS          packages to fuzz (default ./...)
#   FUZZTIMEOUT       go test -timeout of each target (default 0, none: the
#                     default 10m would end fuzz runs of 10m and more)
#
# Go 1.26's fuzz coordinator may end a run whose -fuzztime expires while a
# worker is mid-input with a bare "context deadline exceeded" and no failing
# input (go.dev/issue/75804, fixed in Go 1.27): that is reported, not failed.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-${FUZZTIME:-20s}}
parallel=${FUZZPARALLEL:-$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
minimize=${FUZZMINIMIZETIME:-100x}
module=$(go list -m)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
rows=()
row() { rows+=("$(printf '%-34s %-32s %8s %12s  %s' "$@")"); }

pkgs=$(go list ${FUZZPKGS:-./...}) || exit 1
for pkg in $pkgs; do
	short=${pkg#"$module"/}
	if ! go test -list '^Fuzz' "$pkg" >"$tmp/list" 2>&1; then
		echo "== $short: the tests do not build"
		cat "$tmp/list"
		row "$short" "-" "-" "-" "BUILD FAILED"
		failed=1
		continue
	fi
	for target in $(grep '^Fuzz' "$tmp/list"); do
		echo "== $short $target ($fuzztime, -parallel $parallel)"
		verdict=ok
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
			-parallel "$parallel" -timeout "${FUZZTIMEOUT:-0}" "$pkg" 2>&1 | tee "$tmp/out"; then
			if ! grep -q 'Failing input written to' "$tmp/out" && grep -qE '^[[:space:]]+context deadline exceeded$' "$tmp/out"; then
				verdict="ok (deadline race at the end, go.dev/issue/75804)"
			else
				verdict="FAILED (see testdata/fuzz/$target in $short)"
				failed=1
			fi
		fi
		# Go's last progress line: "fuzz: elapsed: 1m0s, execs: 12345 (205/sec), ..."
		last=$(grep -o 'elapsed: [^,]*, execs: [0-9]*' "$tmp/out" | tail -n 1)
		elapsed=${last#elapsed: }
		elapsed=${elapsed%%,*}
		execs=${last##*execs: }
		row "$short" "$target" "${elapsed:--}" "${execs:--}" "$verdict"
	done
done

echo
echo "== fuzz summary (-fuzztime $fuzztime, -parallel $parallel, -fuzzminimizetime $minimize)"
printf '%-34s %-32s %8s %12s  %s\n' package target time execs verdict
printf '%s\n' "${rows[@]}"
if [ "$failed" -ne 0 ]; then
	echo "fuzz: FAILED" >&2
fi
exit "$failed"
