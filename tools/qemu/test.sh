#!/usr/bin/env bash
# `make test`: the host unit tests, then every selftest inside L1, with one
# summary line at the end: "N passed, M failed". Fails if any test fails,
# if L1's kernel log shows a problem, or on a timeout.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/env.sh"

pass=0 fail=0 skip=0 status=0

step "host unit tests (cargo test)"
unit_log=$(mktemp)
(cd "$top/tools" && cargo test --workspace 2>&1) | tee "$unit_log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
while read -r p f; do
	pass=$((pass + p)) fail=$((fail + f))
done < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$unit_log")
rm -f "$unit_log"

step "selftests in L1"
tap=$(mktemp)
"$here/run-l1" --smp 2 --timeout "${PACIFICA_L1_TIMEOUT:-1500}" -- /usr/lib/pacifica/run-selftests | tee "$tap"
l1=${PIPESTATUS[0]}
p=$(grep -cE '^ok [0-9]+' "$tap" | tr -d ' ')
s=$(grep -cE '^ok [0-9]+.*# SKIP' "$tap" | tr -d ' ')
f=$(grep -cE '^not ok' "$tap" | tr -d ' ')
rm -f "$tap"
pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
if [ "$l1" != 0 ]; then
	status=1
	if [ "$f" = 0 ]; then
		echo "not ok - the L1 run failed (status $l1)"
		fail=$((fail + 1))
	fi
fi
[ "$fail" = 0 ] || status=1

echo "$pass passed, $fail failed, $skip skipped"
exit $status
