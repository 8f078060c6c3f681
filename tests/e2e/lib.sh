# shellcheck shell=bash
# lib.sh - shared helpers for the end-to-end tests.  Source it from bash:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_tmpdir                      # $E2E_TMP, removed on exit with all cleanups
#   e2e_on_exit kill "$pid"         # cleanups run last-registered first
#   port=$(e2e_free_port)
#   e2e_wait_port "$port" 10 "$pid" || e2e_die "server did not start"
#   e2e_case "unknown environment"  # label for the next assertions
#   assert_exit 2 "$CHOIR" plan ... # runs it: stdout -> $E2E_STDOUT, stderr -> $E2E_STDERR
#   assert_contains "$E2E_STDERR" "Could not find environment"
#   e2e_summary                     # "name: N passed, M failed"; status 1 on failures
#
# Assertions never stop the script: each one counts as passed or failed and
# a failure prints what was expected, what came, and the command's stderr.
[ -n "${E2E_LIB_LOADED:-}" ] && return 0
E2E_LIB_LOADED=1

E2E_NAME=$(basename "$0" .sh)
E2E_PASSED=0
E2E_FAILED=0
E2E_CASE=""
E2E_TMP=""
E2E_STDOUT=""
E2E_STDERR=""
E2E_LAST_CMD=""
E2E_CLEANUPS=()

e2e_die() {
    echo "$E2E_NAME: error: $*" >&2
    exit 1
}

e2e_cleanup() {
    local i
    for ((i = ${#E2E_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${E2E_CLEANUPS[$i]}" >/dev/null 2>&1 || true
    done
    E2E_CLEANUPS=()
    if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ] && [ -z "${E2E_KEEP:-}" ]; then
        rm -rf "$E2E_TMP"
    fi
}

# Registers a command (its words, quoted for eval) to run at exit.
e2e_on_exit() {
    local cmd
    printf -v cmd '%q ' "$@"
    E2E_CLEANUPS+=("$cmd")
}

trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private temporary directory ($E2E_TMP), made once; E2E_KEEP=1 keeps it
# for debugging.
e2e_tmpdir() {
    [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ] && return 0
    E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/choir-e2e.XXXXXX") || e2e_die "mktemp failed"
    E2E_STDOUT=$E2E_TMP/stdout
    E2E_STDERR=$E2E_TMP/stderr
}

# Prints a loopback TCP port that was free a moment ago.
e2e_free_port() {
    if [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local port tries
    for ((tries = 0; tries < 100; tries++)); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    e2e_die "no free port found"
}

# Waits until 127.0.0.1:PORT accepts connections: e2e_wait_port PORT SECONDS [PID].
# Fails early when PID (the server) has died.
e2e_wait_port() {
    local port=$1 seconds=$2 pid=${3:-} i
    for ((i = 0; i < seconds * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# A PID and all its descendants (a service whose helpers start sessions of
# their own escapes a process-group kill).
e2e_proc_tree() { # PID
    local p
    [ -n "$1" ] || return 0
    echo "$1"
    for p in $(pgrep -P "$1" 2>/dev/null); do
        e2e_proc_tree "$p"
    done
}

# Prints those of the given pids that are still live (not zombies).
e2e_proc_live() { # PID...
    local p
    for p in "$@"; do
        case "$(ps -o stat= -p "$p" 2>/dev/null)" in
        "" | Z*) ;;
        *) echo "$p" ;;
        esac
    done
}

# Stops PID and its descendants.  MODE: term-root sends SIGTERM to PID
# alone (a start script that stops its children cleanly), term-all to the
# whole tree, kill sends SIGKILL to all.  Whatever is left after SECONDS is
# killed; "WHAT did not stop within Ns; killing it" goes to stderr then
# (except in kill mode).
e2e_stop_tree() { # PID MODE SECONDS WHAT
    local pid=$1 mode=$2 seconds=$3 what=$4 pids i
    pids=$(e2e_proc_tree "$pid")
    [ -n "$pids" ] || return 0
    case $mode in
    kill) kill -KILL $pids 2>/dev/null ;;
    term-all) kill -TERM $pids 2>/dev/null ;;
    *) kill -TERM "$pid" 2>/dev/null ;;
    esac
    for ((i = 0; i < seconds * 10; i++)); do
        [ -n "$(e2e_proc_live $pids)" ] || return 0
        sleep 0.1
    done
    pids=$(e2e_proc_live $pids)
    [ -n "$pids" ] || return 0
    [ "$mode" = kill ] || echo "$what did not stop within ${seconds}s; killing it" >&2
    kill -KILL $pids 2>/dev/null
    return 0
}

# The last 25 lines of each non-empty FILE, indented, on stderr.
# Polls CMD every 0.1 s for at most SECONDS; 0 once it succeeded (not an
# assertion: the caller asserts what it waited for).
e2e_wait_for() { # SECONDS CMD...
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        "${@:2}" && return 0
        sleep 0.1
    done
    return 1
}

e2e_log_tail() { # FILE...
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "  --- last lines of $f:" >&2
        tail -n 25 "$f" | sed 's/^/  | /' >&2
    done
}

e2e_case() {
    E2E_CASE=$1
}

e2e_pass() {
    E2E_PASSED=$((E2E_PASSED + 1))
    echo "ok - ${E2E_CASE:+$E2E_CASE: }$1"
}

e2e_fail() {
    E2E_FAILED=$((E2E_FAILED + 1))
    echo "FAIL - ${E2E_CASE:+$E2E_CASE: }$1"
    shift
    local line
    for line in "$@"; do
        echo "       $line"
    done
}

# Shows the last command and the head of its stderr after a failure.
e2e_show_last() {
    echo "       command: $E2E_LAST_CMD"
    if [ -s "$E2E_STDERR" ]; then
        echo "       stderr:"
        head -n 20 "$E2E_STDERR" | sed 's/^/         | /'
    fi
}

# assert_exit CODE CMD [ARGS...]: runs CMD, keeps its output in $E2E_STDOUT
# and $E2E_STDERR, and checks its exit status.
assert_exit() {
    local want=$1 got=0
    shift
    printf -v E2E_LAST_CMD '%q ' "$@"
    "$@" >"$E2E_STDOUT" 2>"$E2E_STDERR" </dev/null || got=$?
    if [ "$got" = "$want" ]; then
        e2e_pass "exit $want"
        return 0
    fi
    e2e_fail "expected exit $want, got $got"
    e2e_show_last
    return 1
}

# assert_contains FILE TEXT: FILE holds TEXT (fixed string).
assert_contains() {
    local file=$1 text=$2
    if grep -qF -- "$text" "$file" 2>/dev/null; then
        e2e_pass "$(basename "$file") has \"$text\""
        return 0
    fi
    e2e_fail "$(basename "$file") lacks \"$text\""
    echo "       $(basename "$file"):"
    head -n 20 "$file" 2>/dev/null | sed 's/^/         | /'
    return 1
}

# assert_true DESCRIPTION CMD [ARGS...]: CMD exits 0.
assert_true() {
    local what=$1
    shift
    if "$@" >"$E2E_TMP/assert.out" 2>&1; then
        e2e_pass "$what"
        return 0
    fi
    e2e_fail "$what"
    sed 's/^/         | /' "$E2E_TMP/assert.out" | head -n 20
    return 1
}

# Prints the closing line and returns 1 when anything failed.
e2e_summary() {
    echo "$E2E_NAME: $E2E_PASSED passed, $E2E_FAILED failed"
    [ "$E2E_FAILED" -eq 0 ]
}
