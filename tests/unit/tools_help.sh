#!/bin/bash
# Every tool given as an argument answers -h and --help alike: its usage on
# stdout, starting "usage: <tool>", nothing on stderr, status 0, and nothing
# run (each returns at once; a tool that started its work would take seconds
# or fail without its inputs). Prints one line per tool and option.
failed=0
for tool in "$@"; do
  name=$(basename "$tool")
  for opt in -h --help; do
    err=$(mktemp)
    out=$("$tool" "$opt" 2>"$err")
    rc=$?
    why=""
    [ "$rc" -eq 0 ] || why+=" status $rc;"
    [[ "$out" == "usage: $name"* ]] || why+=" stdout does not start with 'usage: $name';"
    [ ! -s "$err" ] || why+=" stderr: $(head -c 200 "$err");"
    rm -f "$err"
    if [ -z "$why" ]; then
      echo "ok   $name $opt"
    else
      echo "FAIL $name $opt:$why"
      failed=$((failed + 1))
    fi
  done
done
[ "$#" -gt 0 ] || { echo "FAIL no tools given"; exit 1; }
exit $((failed > 0))
