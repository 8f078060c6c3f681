#!/usr/bin/env bash
# replay.sh - the console (TUI) driven by a recorded job: `choir replay` of
# tests/ui/streams/sample_contain.ndjson (a real run of the 2016 example
# site where the database node dev1 failed and --contain skipped the three
# web nodes; record.sh beside it made it) inside a private tmux server,
# with scripted keys and screen captures (tests/ui/lib.sh).
# Usage: replay.sh PATH_TO_CHOIR
#
# What is checked: the tree shows the applications, groups, steps and
# node states (expected screen); the filter (/failed) keeps only the
# failed node; the report view of dev1 shows its failed resource (the
# stream holds the report event the recording asked for); resize to
# 120x40 re-lays out and back to 80x24 lays out the tree as before; a
# 60x15 terminal gets the "too small" message, and growing it brings the
# tree back; the help overlay lists the keys from the keymap; the mono
# theme and NO_COLOR draw no colour (capture-pane -e) while the default
# theme does; LANG=C draws ASCII glyphs and nothing undrawable; at
# recorded pace (--speed 2) dev1 is first seen running, then failed; a
# replayed command is not sent; q leaves with status 0.
# Expected screens are in tests/ui/expected/replay_*.txt (clock times and
# durations masked); UPDATE_EXPECTED=1 rewrites them.  About 10 s.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
. "$HERE/lib.sh"

CHOIR=${1:?usage: replay.sh CHOIR}
STREAM=$HERE/streams/sample_contain.ndjson
PY=/usr/bin/python3

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG="" TZ=UTC
unset CHOIR_CONFIG XDG_CONFIG_HOME NO_COLOR
mkdir -p "$HOME"

replay() { # [ui_start options...] -- [replay options...]
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    ui_start "${opts[@]}" "$CHOIR" replay "$STREAM" "$@"
}

# Whether a captured screen (capture-pane -e) sets any colour: SGR 30-38,
# 40-48, 90-97 or 100-107 (39 and 49, back to the default, do not count).
sets_colour() { # FILE
    "$PY" - "$1" <<'EOF'
import re, sys
for params in re.findall(r"\x1b\[([0-9;]*)m", open(sys.argv[1], encoding="utf-8").read()):
    p = [int(x) if x else 0 for x in params.split(";")]
    i = 0
    while i < len(p):
        c = p[i]
        if 30 <= c <= 37 or 40 <= c <= 47 or 90 <= c <= 97 or 100 <= c <= 107:
            sys.exit(0)
        if c in (38, 48):
            sys.exit(0)
        i += 1
sys.exit(1)
EOF
}

# ---- the tree, at the end of the job ----
e2e_case "tree"
replay -- --fast
ui_assert_screen "the job ends failed" "job failed (exit 1)"
ui_assert_expected replay_tree
ui_assert_screen "dev1 failed" "✗ dev1.devco.net failed"
ui_assert_screen "dev4 skipped because of dev1" "⊘ dev4.devco.net skipped"
ui_assert_screen "the pane shows dev1's failed resource" "failed: Exec[mysql schema migration app1]"

e2e_case "filter"
ui_send /
ui_assert_screen "/ asks for a filter" "filter (a name, or failed"
ui_type failed
ui_send Enter
ui_assert_screen "the filter keeps one node" 'filter "failed": 1 of 4 nodes'
ui_assert_no_screen "skipped nodes are filtered out" "dev2.devco.net"
ui_assert_expected replay_filter
ui_send Escape
ui_assert_screen "esc clears the filter" "dev2.devco.net"

e2e_case "report"
ui_send g
# dev1 is the fourth row once the filter keeps only it
ui_send /
ui_type dev1
ui_send Enter
ui_wait_for 'filter "dev1"'
ui_send g j j j Enter
ui_assert_screen "enter opens dev1's report" "Report of dev1.devco.net"
ui_assert_screen "the report lists the failed resources first" "Failed resources (1)"
ui_assert_screen "the failed resource is named" "Exec[mysql schema migration app1]"
ui_assert_screen "with its message" "returns failure: change from 'notrun' to ['0'] failed"
ui_assert_expected replay_report
ui_send /
ui_type Logs
ui_send Enter
ui_assert_screen "search in the report finds the logs" "Logs (13)"
ui_send Escape
ui_assert_screen "esc goes back to the tree" 'filter "dev1"'
ui_send Escape
ui_assert_screen "and esc clears the filter" "dev4.devco.net"

e2e_case "resize"
ui_send g
ui_resize 120 40
ui_assert_screen "120 columns show the whole reason" "exit 6 (changes and failures); matched as"
ui_assert_expected replay_wide
ui_resize 80 24
# 80 columns cut the skipped nodes' reason "... which failed" short again
if ui_wait_gone "which failed"; then e2e_pass "back to 80x24"; else e2e_fail "back to 80x24"; fi
ui_assert_expected replay_narrow_again

e2e_case "too small"
ui_resize 60 15
ui_assert_screen "a 60x15 terminal is told so" "This terminal is 60x15: choir needs at least 80x24."
ui_assert_no_screen "no tree is drawn" "dev1.devco.net"
ui_resize 80 24
ui_assert_screen "the tree comes back" "✗ dev1.devco.net failed"

e2e_case "help"
ui_send '?'
ui_assert_screen "? opens the help" "Keys (tui.keys rebinds them"
ui_assert_screen "it lists pause" "pause: runs in flight finish"
ui_assert_screen "it lists abort with its key" "A            abort"
ui_assert_screen "and the filter" "filter nodes by name or state"
ui_send Escape
if ui_wait_gone "Keys (tui.keys"; then e2e_pass "esc closes it"; else e2e_fail "esc closes it"; fi
ui_assert_screen "the tree is back" "▾ Group 2  (3)"

e2e_case "replayed commands"
ui_send p
ui_assert_screen "p in a replay is not sent" "(replay: not sent)"

e2e_case "quit"
ui_send q
if ui_wait_exit 10 && [ "$UI_EXIT" = 0 ]; then
    e2e_pass "q leaves a finished replay with status 0"
else
    e2e_fail "q leaves a finished replay with status 0 (status: ${UI_EXIT:-still running})"
    _ui_show_screen
fi

# ---- themes ----
e2e_case "default theme"
replay -- --fast
ui_assert_screen "drawn" "job failed (exit 1)"
ui_screen -e >"$E2E_TMP/colour.ans"
assert_true "the default theme draws colour" sets_colour "$E2E_TMP/colour.ans"

e2e_case "mono theme"
replay -- --fast --theme mono
ui_assert_screen "drawn" "job failed (exit 1)"
ui_screen -e >"$E2E_TMP/mono.ans"
assert_true "--theme mono draws no colour" bash -c '! "$0" "$1"' sets_colour "$E2E_TMP/mono.ans"
assert_true "but the cursor row is still marked (reverse)" grep -qF $'\e[7m' "$E2E_TMP/mono.ans"

e2e_case "NO_COLOR"
replay --env NO_COLOR=1 -- --fast
ui_assert_screen "drawn" "job failed (exit 1)"
ui_screen -e >"$E2E_TMP/nocolor.ans"
assert_true "NO_COLOR=1 draws no colour" bash -c '! "$0" "$1"' sets_colour "$E2E_TMP/nocolor.ans"

# ---- ASCII ----
e2e_case "LANG=C"
replay --ascii -- --fast
ui_assert_screen "the failed node gets an ASCII glyph" "X dev1.devco.net failed"
ui_assert_screen "a skipped node too" "- dev2.devco.net skipped"
ui_screen >"$E2E_TMP/ascii.txt"
assert_true "nothing but ASCII is drawn" bash -c '! LC_ALL=C grep -q "[^ -~]" "$0"' "$E2E_TMP/ascii.txt"
assert_true "and nothing undrawable (no ??)" bash -c '! grep -qF "??" "$0"' "$E2E_TMP/ascii.txt"
ui_assert_expected replay_ascii

# ---- at the recorded pace ----
e2e_case "recorded pace"
replay -- --speed 2
ui_assert_screen "dev1 is seen running first" "dev1.devco.net running"
ui_assert_screen "the pause shows in the title" "paused"
ui_assert_screen "then dev1 fails" "✗ dev1.devco.net failed"
ui_assert_screen "and the job ends" "job failed (exit 1)"

e2e_summary
