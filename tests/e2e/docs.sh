#!/usr/bin/env bash
# docs.sh - the documentation stays true to the binaries: every
# configuration key is documented, every exit code is in the operator guide
# and the man page, every command is in the man page, the README shows the
# two commands, and the help texts agree with each other.
# Usage: docs.sh PATH_TO_CHOIR PATH_TO_CHOIRD
set -u
. "$(dirname "$0")/lib.sh"

CHOIR=${1:?usage: docs.sh CHOIR CHOIRD}
CHOIRD=${2:?usage: docs.sh CHOIR CHOIRD}
SRC=$(cd "$(dirname "$0")/../.." && pwd)

e2e_tmpdir
export HOME=$E2E_TMP CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME

e2e_case "configuration keys"
assert_exit 0 "$CHOIR" config --keys
cp "$E2E_STDOUT" "$E2E_TMP/keys"
while read -r key _; do
  assert_contains "$SRC/docs/configuration.md" "\`$key\`"
  assert_contains "$SRC/packaging/choir.conf.example" "$key"
done < "$E2E_TMP/keys"

e2e_case "exit codes"
assert_exit 0 "$CHOIR" --help
cp "$E2E_STDOUT" "$E2E_TMP/help"
sed -n '/^Exit codes:/,$p' "$E2E_TMP/help" | awk 'NR > 1 { print $1 }' > "$E2E_TMP/codes"
assert_true "help lists exit codes" test -s "$E2E_TMP/codes"
while read -r code; do
  assert_contains "$SRC/docs/operator-guide.md" "| $code |"
  assert_contains "$SRC/docs/man/choir.1" ".B $code"
done < "$E2E_TMP/codes"

e2e_case "commands"
sed -n '/Commands:/,/^$/p' "$E2E_TMP/help" | awk 'NR > 1 && NF { print $1 }' > "$E2E_TMP/commands"
assert_true "help lists commands" test -s "$E2E_TMP/commands"
while read -r cmd; do
  assert_contains "$SRC/docs/man/choir.1" ".B choir $cmd"
done < "$E2E_TMP/commands"
assert_exit 0 "$CHOIR" help plan
cp "$E2E_STDOUT" "$E2E_TMP/help-plan"
assert_exit 0 "$CHOIR" plan --help
assert_true "'choir help plan' = 'choir plan --help'" cmp "$E2E_TMP/help-plan" "$E2E_STDOUT"

e2e_case "README"
assert_contains "$SRC/README.md" "scripts/demo"
assert_contains "$SRC/README.md" "scripts/test"
assert_true "the two commands are on the first screen" bash -c \
  "head -n 24 '$SRC/README.md' | grep -q scripts/demo && head -n 24 '$SRC/README.md' | grep -q scripts/test"

e2e_case "README key table"
assert_exit 0 "$CHOIR" keys
while IFS= read -r line; do
  assert_contains "$SRC/README.md" "$line"
done < "$E2E_STDOUT"

e2e_case "choird"
assert_exit 0 "$CHOIRD" --help
assert_contains "$E2E_STDOUT" "usage: choird"
assert_exit 0 "$CHOIRD" --check-config
assert_contains "$E2E_STDOUT" "puppet.certname = "
assert_exit 2 "$CHOIRD" --no-such-option
assert_contains "$E2E_STDERR" "choird --help"

e2e_summary
