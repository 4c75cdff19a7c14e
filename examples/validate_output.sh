#!/usr/bin/env bash
# An ETL step: check the records extracted by `invoices_to_jsonl.py` (or `extractor run`) against the
# bundled `invoice` schema before loading them, and act on the exit code of `extractor validate`:
#   0  every record is valid             -> load OUT as it is
#   1  some records are invalid          -> they are in BAD (unchanged); load the others from CLEAN
#   2  bad usage (no such file, schema)  -> stop: nothing was checked
#
#   examples/validate_output.sh invoices.jsonl            # BAD=invoices.bad.jsonl, CLEAN=invoices.clean.jsonl
#   examples/validate_output.sh invoices.jsonl bad.jsonl clean.jsonl
#
# `extractor validate` prints one line per problem on stdout (`FILE:LINE: $.path: message`) and the
# summary on stderr; `--json` gives the same report as JSON lines.
set -uo pipefail

OUT=${1:?usage: validate_output.sh OUT.jsonl [BAD.jsonl] [CLEAN.jsonl]}
BAD=${2:-${OUT%.jsonl}.bad.jsonl}
CLEAN=${3:-${OUT%.jsonl}.clean.jsonl}

rm -f "$BAD"  # --quarantine appends: start this run's quarantine afresh
extractor validate invoice "$OUT" --field data --quarantine "$BAD" >"$BAD.report"
status=$?

case $status in
  0)
    echo "all records valid: loading $OUT"
    cp "$OUT" "$CLEAN"
    ;;
  1)
    echo "invalid records quarantined in $BAD ($(wc -l <"$BAD") lines); problems:"
    sed 's/^/  /' "$BAD.report"
    # the valid lines are the ones not quarantined (lines are compared whole)
    grep -vxF -f "$BAD" "$OUT" >"$CLEAN" || true
    echo "loading the $(wc -l <"$CLEAN") valid records from $CLEAN"
    ;;
  *)
    echo "validation could not run (exit $status): nothing loaded" >&2
    rm -f "$BAD.report"
    exit "$status"
    ;;
esac
rm -f "$BAD.report"
# load "$CLEAN" into the warehouse here
exit "$status"  # 1 after a partial load: the scheduler should notice the quarantine
