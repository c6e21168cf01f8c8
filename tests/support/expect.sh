#!/usr/bin/env bash
# expect.sh RC PATTERN [COUNT] -- CMD...   runs CMD; passes iff it exits with RC and its output matches
# the extended regex PATTERN (at least COUNT lines, default 1).
set -u
want_rc=$1; pattern=$2; shift 2
count=1
if [ "${1:-}" != "" ] && [[ "$1" =~ ^[0-9]+$ ]]; then count=$1; shift; fi
[ "${1:-}" = "--" ] && shift
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out"
lines=$(printf '%s\n' "$out" | grep -E -c -- "$pattern")
if [ "$rc" -ne "$want_rc" ]; then echo "expect.sh: exit code $rc, wanted $want_rc" >&2; exit 1; fi
if [ "$lines" -lt "$count" ]; then echo "expect.sh: '$pattern' printed $lines times, wanted >= $count" >&2; exit 1; fi
echo "expect.sh: ok (exit $rc, '$pattern' x$lines)"
