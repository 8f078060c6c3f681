# shellcheck shell=bash
# lib.sh - a tmux harness for scripted TUI runs (tests/ui/*.sh, bench/ui,
# scripts/screenshot).  Source it from bash after tests/e2e/lib.sh (for
# $E2E_TMP, the cleanups and the assertion counters):
#
#   . tests/e2e/lib.sh; . tests/ui/lib.sh
#   e2e_tmpdir
#   ui_start [--size WxH] [--ascii] [--env K=V]... [--stderr FILE] CMD [ARGS...]
#                        # a private tmux server (tmux -L, -f /dev/null) with
#                        # one pane of WxH (default 80x24) running CMD with
#                        # TERM=xterm-256color, LANG/LC_ALL=C.UTF-8 (--ascii:
#                        # LANG=LC_ALL=C; --stderr: CMD's stderr goes to
#                        # FILE, not the screen); stopped at exit
#   ui_send KEYS...      # tmux send-keys (tmux key names: Enter Escape Up
#                        # C-c ...); ui_type TEXT sends TEXT literally
#   ui_wait_for TEXT [SECONDS]   # polls the screen (every 50 ms, at most
#                        # SECONDS, default $UI_WAIT or 15) until it holds
#                        # TEXT (fixed string); status 1 if it never does
#   ui_wait_gone TEXT [SECONDS]  # the same until TEXT has left the screen
#   ui_wait_exit [SECONDS]       # until CMD has exited; UI_EXIT = its status
#                        # (the pane then shows what CMD left on the screen)
#   ui_screen [-e]       # the screen as text (-e: with SGR colour codes)
#   ui_resize W H        # resizes the pane (the program gets SIGWINCH)
#   ui_normalise         # filter: masks clock times, dates and elapsed
#                        # times so screens of different runs compare
#   ui_stop              # kills the server (done at exit anyway)
#
# Assertions (counted by tests/e2e/lib.sh, never stop the script):
#   ui_assert_screen WHAT TEXT [SECONDS]   # ui_wait_for TEXT, pass or fail
#   ui_assert_no_screen WHAT TEXT          # TEXT is not on the screen now
#   ui_assert_expected NAME                # the normalised screen equals
#                        # tests/ui/expected/NAME.txt (polled: a capture
#                        # can catch a frame half drawn); UPDATE_EXPECTED=1
#                        # writes the screen, once steady, instead (and passes)
#
# Waiting is bounded polling, never a fixed sleep: an assertion waits for
# what it expects and fails after the bound with the screen it saw.
[ -n "${UI_LIB_LOADED:-}" ] && return 0
UI_LIB_LOADED=1

UI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UI_EXPECTED=${UI_EXPECTED:-$UI_DIR/expected}
UI_SOCKET=""
UI_SERVERS=0
UI_TARGET=ui:0.0
UI_EXIT=""

ui_tmux() {
    tmux -u -L "$UI_SOCKET" -f /dev/null "$@"
}

ui_start() {
    local size=80x24 lang=C.UTF-8 envs=() cmd stderr=""
    while [ $# -gt 0 ]; do
        case $1 in
        --size) size=$2; shift 2 ;;
        --stderr) stderr=$2; shift 2 ;;
        --ascii) lang=C; shift ;;
        --env) envs+=("$2"); shift 2 ;;
        *) break ;;
        esac
    done
    ui_stop
    UI_SERVERS=$((UI_SERVERS + 1))
    UI_SOCKET=choir-ui-$$-$UI_SERVERS
    UI_STATUS=$E2E_TMP/ui.exit.$UI_SERVERS
    UI_EXIT=""
    rm -f "$UI_STATUS"
    # the pane's shell waits for CMD and writes its exit status: tmux's own
    # idea of a dead pane can lag (a child it has not reaped yet)
    printf -v cmd '%q ' env TERM=xterm-256color LANG="$lang" LC_ALL="$lang" "${envs[@]}" "$@"
    [ -n "$stderr" ] && printf -v cmd '%s2>%q' "$cmd" "$stderr"
    printf -v cmd '%s; echo $? >%q' "$cmd" "$UI_STATUS"
    # the server's own locale is UTF-8 whatever the program's, so that the
    # screen is captured as it is drawn
    LANG=C.UTF-8 LC_ALL=C.UTF-8 ui_tmux \
        set-option -g remain-on-exit on \; \
        set-option -g default-shell /bin/bash \; \
        set-option -g default-terminal xterm-256color \; \
        set-option -g status off \; \
        new-session -d -s ui -x "${size%x*}" -y "${size#*x}" "$cmd" ||
        e2e_die "tmux did not start"
    e2e_on_exit tmux -L "$UI_SOCKET" kill-server
}

ui_stop() {
    [ -n "$UI_SOCKET" ] && ui_tmux kill-server 2>/dev/null
    return 0
}

ui_send() {
    ui_tmux send-keys -t "$UI_TARGET" "$@"
}

ui_type() {
    ui_tmux send-keys -t "$UI_TARGET" -l -- "$1"
}

ui_screen() {
    ui_tmux capture-pane -t "$UI_TARGET" -p "$@"
}

ui_resize() {
    ui_tmux resize-window -t ui -x "$1" -y "$2"
}

# Polls until the screen holds TEXT (WANT=1) or does not (WANT=0).
_ui_poll() { # WANT TEXT SECONDS
    local want=$1 text=$2 seconds=${3:-${UI_WAIT:-15}} i has
    for ((i = 0; i < seconds * 20; i++)); do
        has=0
        ui_screen >"$E2E_TMP/ui.screen" 2>/dev/null && grep -qF -- "$text" "$E2E_TMP/ui.screen" && has=1
        [ "$has" = "$want" ] && return 0
        sleep 0.05
    done
    return 1
}

ui_wait_for() { _ui_poll 1 "$1" "${2:-}"; }
ui_wait_gone() { _ui_poll 0 "$1" "${2:-}"; }

ui_wait_exit() {
    local seconds=${1:-${UI_WAIT:-15}} i
    for ((i = 0; i < seconds * 20; i++)); do
        if [ -s "$UI_STATUS" ]; then
            UI_EXIT=$(cat "$UI_STATUS")
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# Clock times (12:34:56, 12:34), dates, and elapsed times (5s, 1m05s,
# 1h02m, 00:01:05, 350ms, 4.11 s) become fixed masks.
ui_normalise() {
    sed -E \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}/YYYY-MM-DD/g' \
        -e 's/\b[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?\b/hh:mm:ss/g' \
        -e 's/\b[0-9]{1,2}:[0-9]{2}\b/hh:mm/g' \
        -e 's/\b([0-9]+h)?([0-9]+m)?[0-9]+(\.[0-9]+)? ?(ms|s)\b/Ns/g' \
        -e 's/\b[0-9]+h[0-9]+m\b/Ns/g' \
        -e 's/\b[0-9]+m\b/Ns/g'
}

_ui_show_screen() {
    echo "       screen:"
    ui_screen 2>/dev/null | sed 's/^/         |/'
}

ui_assert_screen() { # WHAT TEXT [SECONDS]
    if ui_wait_for "$2" "${3:-}"; then
        e2e_pass "$1"
        return 0
    fi
    e2e_fail "$1: the screen never showed \"$2\""
    _ui_show_screen
    return 1
}

ui_assert_no_screen() { # WHAT TEXT
    if ! ui_screen | grep -qF -- "$2"; then
        e2e_pass "$1"
        return 0
    fi
    e2e_fail "$1: the screen shows \"$2\""
    _ui_show_screen
    return 1
}

# The normalised screen once two captures 0.2 s apart agree (a capture
# can catch a frame half drawn), into FILE.
ui_stable_screen() { # FILE [SECONDS]
    local i
    ui_screen | ui_normalise >"$1"
    for ((i = 0; i < ${2:-${UI_WAIT:-15}} * 5; i++)); do
        sleep 0.2
        ui_screen | ui_normalise >"$1.next"
        if cmp -s "$1" "$1.next"; then
            rm -f "$1.next"
            return 0
        fi
        mv "$1.next" "$1"
    done
    return 1
}

ui_assert_expected() { # NAME
    local want=$UI_EXPECTED/$1.txt got=$E2E_TMP/ui.$1.txt i
    if [ -n "${UPDATE_EXPECTED:-}" ]; then
        ui_stable_screen "$got"
        mkdir -p "$UI_EXPECTED"
        cp "$got" "$want"
        e2e_pass "screen $1 written to ${want#"$UI_DIR"/}"
        return 0
    fi
    # polls until the screen is the expected one or has stayed otherwise
    for ((i = 0; i < ${UI_WAIT:-15} * 20; i++)); do
        ui_screen | ui_normalise >"$got"
        if cmp -s "$want" "$got"; then
            e2e_pass "screen $1 is as expected"
            return 0
        fi
        sleep 0.05
    done
    ui_stable_screen "$got" 2
    diff -u "$want" "$got" >"$E2E_TMP/ui.diff" 2>&1
    e2e_fail "screen $1 differs from ${want#"$UI_DIR"/} (UPDATE_EXPECTED=1 rewrites it)"
    sed 's/^/         /' "$E2E_TMP/ui.diff"
    return 1
}
