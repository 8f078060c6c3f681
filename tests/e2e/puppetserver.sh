#!/usr/bin/env bash
# puppetserver.sh - a private PuppetServer (Debian's `puppetserver`) for the
# end-to-end tests: CA and compiler on a free loopback port.
#
# Source it from a test (after lib.sh) and start a server in a directory of
# its own; nothing outside that directory is written, and nothing listens
# anywhere but on one free 127.0.0.1 port:
#
#   . "$HERE/lib.sh"; . "$HERE/puppetserver.sh"
#   e2e_tmpdir
#   ps_start "$E2E_TMP/ps" || e2e_die "puppetserver did not start"
#   ... use PS_HOST PS_PORT (HTTPS: CA and compiler)
#       PS_CA_PEM                      (the server's CA certificate)
#       PS_CONFDIR PS_CODEDIR          (Puppet's confdir; environments live in
#                                       $PS_CODEDIR/environments)
#   ps_ca sign --certname NAME         # `puppetserver ca` against this server
#   ps_stop                            # SIGTERM, then SIGKILL after a grace period
#
# ps_start DIR [AUTOSIGN...]: AUTOSIGN are the lines of autosign.conf
# (Puppet's glob allow-list, e.g. "*.mcollective"); none means nothing is
# autosigned.  The server's certname is "localhost" with the alt names
# localhost and 127.0.0.1, so clients can check the host name.
#
# Also set: PS_DIR, PS_LOG (the server's log), PS_START_SECONDS (how long the
# last start took).  Start-up takes about 35-60 s on 2 vCPUs (PuppetServer
# 7.9 on OpenJDK 17, one JRuby instance, first start also makes the CA);
# PS_START_TIMEOUT (default 240 s) bounds the wait.  The JVM gets
# -Xms512m -Xmx1g (PS_JAVA_ARGS overrides).
#
# All functions are quiet on success.  On failure they print one line
# saying what failed, then the tail of the server's log, and return 1.
# Cleanup: ps_start registers ps_cleanup with lib.sh's e2e_on_exit, so the
# server's whole process tree is killed when the test exits, pass or fail.
#
# Isolation, and why: Debian's launcher (/usr/bin/puppetserver foreground)
# sources /etc/default/puppetserver, runuser's to the `puppet` user and uses
# /etc/puppet/puppetserver, /var/lib/puppetserver and /run/puppetserver.  We
# run the java command line of its systemd unit directly, as whoever we are
# (root works), with our own --config (conf.d: webserver.conf with ssl-host
# 127.0.0.1 and our port, puppetserver.conf pointing JRuby's confdir, codedir,
# vardir, logdir and rundir into DIR, global.conf with our logback.xml) and
# our own --bootstrap-config (the package's services, CA included), and
# --restart-file DIR/restart, which Trapperkeeper sets to 1 once every
# service has started (the unit's own readiness check).  puppet.conf in
# DIR/puppet sets ssldir, cadir, certname, dns_alt_names and autosign.
#
# Run directly for manual debugging:
#   tests/e2e/puppetserver.sh run DIR [AUTOSIGN...]   start, print PS_*, wait for ^C

PS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! declare -F e2e_free_port >/dev/null; then
    . "$PS_LIB_DIR/lib.sh"
fi

PS_JAR=${PS_JAR:-/usr/share/puppetserver/puppetserver.jar}
PS_PKG_CONF=${PS_PKG_CONF:-/etc/puppet/puppetserver}
PS_JAVA=${PS_JAVA:-/usr/bin/java}
PS_JAVA_ARGS=${PS_JAVA_ARGS:--Xms512m -Xmx1g}
PS_START_TIMEOUT=${PS_START_TIMEOUT:-240}
PS_STOP_TIMEOUT=${PS_STOP_TIMEOUT:-30}
PS_CLEANUP_REGISTERED=""

_ps_err() {
    echo "puppetserver.sh: $*" >&2
}

_ps_fail() {
    _ps_err "$*"
    e2e_log_tail "$PS_LOG" "$PS_DIR/console.out"
    return 1
}

_ps_write_puppet_conf() { # AUTOSIGN...
    local line
    mkdir -p "$PS_CONFDIR" "$PS_CODEDIR/environments/production/manifests" \
        "$PS_DIR/var" "$PS_DIR/log" "$PS_DIR/run" "$PS_DIR/gems"
    cat >"$PS_CONFDIR/puppet.conf" <<EOF
# Written by tests/e2e/puppetserver.sh for a throwaway test server.
[main]
certname = localhost
dns_alt_names = localhost,IP:127.0.0.1
server = localhost
masterport = $PS_PORT
ssldir = $PS_DIR/ssl
vardir = $PS_DIR/var
logdir = $PS_DIR/log
rundir = $PS_DIR/run
codedir = $PS_CODEDIR
[server]
cadir = $PS_DIR/ca
autosign = $PS_CONFDIR/autosign.conf
ca_ttl = 1y
EOF
    : >"$PS_CONFDIR/autosign.conf"
    for line in "$@"; do
        echo "$line" >>"$PS_CONFDIR/autosign.conf"
    done
    chmod 0644 "$PS_CONFDIR/autosign.conf"   # not executable: a glob list
}

_ps_write_tk_conf() {
    local conf=$PS_DIR/conf.d
    mkdir -p "$conf" "$PS_DIR/services.d"
    cp "$PS_PKG_CONF/conf.d/auth.conf" "$PS_PKG_CONF/conf.d/web-routes.conf" \
        "$PS_PKG_CONF/conf.d/metrics.conf" "$conf/" || return 1
    cp "$PS_PKG_CONF/services.d/"*.cfg "$PS_DIR/services.d/" || return 1
    cat >"$conf/webserver.conf" <<EOF
webserver: {
    access-log-config: $PS_DIR/request-logging.xml
    client-auth: want
    ssl-host: 127.0.0.1
    ssl-port: $PS_PORT
}
EOF
    cat >"$conf/puppetserver.conf" <<EOF
jruby-puppet: {
    ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]
    gem-home: $PS_DIR/gems
    gem-path: [\${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]
    server-conf-dir: $PS_CONFDIR
    server-code-dir: $PS_CODEDIR
    server-var-dir: $PS_DIR/var
    server-run-dir: $PS_DIR/run
    server-log-dir: $PS_DIR/log
    max-active-instances: 1
}
http-client: {
}
profiler: {
}
EOF
    cat >"$conf/ca.conf" <<EOF
certificate-authority: {
    allow-subject-alt-names: true
}
EOF
    cat >"$conf/global.conf" <<EOF
global: {
    logging-config: $PS_DIR/logback.xml
}
EOF
    cat >"$PS_DIR/logback.xml" <<EOF
<configuration>
    <appender name="F1" class="ch.qos.logback.core.FileAppender">
        <file>$PS_LOG</file>
        <append>true</append>
        <encoder>
            <pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%t] [%c{2}] %m%n</pattern>
        </encoder>
    </appender>
    <logger name="org.eclipse.jetty" level="INFO"/>
    <logger name="jruby" level="info"/>
    <root level="info">
        <appender-ref ref="F1"/>
    </root>
</configuration>
EOF
    cat >"$PS_DIR/request-logging.xml" <<EOF
<configuration debug="false">
    <appender name="FILE" class="ch.qos.logback.core.FileAppender">
        <file>$PS_DIR/log/access.log</file>
        <append>true</append>
        <encoder>
            <pattern>%h %l %u [%t] "%r" %s %b "%i{User-Agent}" %D</pattern>
        </encoder>
    </appender>
    <appender-ref ref="FILE" />
</configuration>
EOF
}

# Starts the JVM in a new session, pid in DIR/server.pid.
_ps_launch() {
    local i
    echo -n 0 >"$PS_DIR/restart"
    rm -f "$PS_DIR/server.pid"
    PS_LAUNCHED_AT=$(date +%s.%N)
    # shellcheck disable=SC2086  # PS_JAVA_ARGS is a word list
    setsid bash -c 'echo $$ >"$0" && cd "$1" && shift && exec "$@"' \
        "$PS_DIR/server.pid" "$PS_DIR" \
        "$PS_JAVA" $PS_JAVA_ARGS \
        -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger \
        -Djruby.lib=/usr/share/jruby/lib \
        -XX:+CrashOnOutOfMemoryError \
        -XX:ErrorFile="$PS_DIR/log/puppetserver_err_pid%p.log" \
        -jar "$PS_JAR" \
        --config "$PS_DIR/conf.d" \
        --bootstrap-config "$PS_DIR/services.d" \
        --restart-file "$PS_DIR/restart" \
        >"$PS_DIR/console.out" 2>&1 </dev/null &
    for ((i = 0; i < 100; i++)); do
        [ -s "$PS_DIR/server.pid" ] && return 0
        sleep 0.02
    done
    return 1
}

# ps_wait [SECONDS]: waits until Trapperkeeper reports every service started
# (restart file = 1) and the port accepts connections.
ps_wait() {
    local seconds=${1:-$PS_START_TIMEOUT} pid i
    pid=$(cat "$PS_DIR/server.pid" 2>/dev/null)
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { _ps_fail "puppetserver exited while starting"; return 1; }
        [ "$(head -c1 "$PS_DIR/restart" 2>/dev/null)" = 1 ] && break
        sleep 0.1
    done
    ((i < seconds * 10)) || { _ps_fail "puppetserver did not finish starting within ${seconds}s"; return 1; }
    e2e_wait_port "$PS_PORT" 10 "$pid" ||
        { _ps_fail "puppetserver does not listen on 127.0.0.1:$PS_PORT"; return 1; }
    PS_START_SECONDS=$(awk -v a="$PS_LAUNCHED_AT" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    export PS_START_SECONDS
}

# ps_stop: stops the server and waits until its port is closed.
ps_stop() {
    local i
    [ -n "${PS_DIR:-}" ] || return 0
    e2e_stop_tree "$(cat "$PS_DIR/server.pid" 2>/dev/null)" term-all "$PS_STOP_TIMEOUT" "puppetserver.sh: puppetserver"
    rm -f "$PS_DIR/server.pid"
    for ((i = 0; i < 50; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PS_PORT") 2>/dev/null || return 0
        sleep 0.1
    done
    _ps_err "port $PS_PORT still open after puppetserver stopped"
    return 1
}

ps_cleanup() {
    [ -n "${PS_DIR:-}" ] || return 0
    e2e_stop_tree "$(cat "$PS_DIR/server.pid" 2>/dev/null)" term-all 5 "puppetserver.sh: puppetserver"
    rm -f "$PS_DIR/server.pid"
    return 0
}

# ps_ca ARGS...: `puppetserver ca` (the puppetserver-ca CLI) against this
# server, authenticating with the server's own certificate.
ps_ca() {
    local cmd=$1
    shift
    /usr/share/puppetserver/cli/apps/ca "$cmd" --config "$PS_CONFDIR/puppet.conf" "$@"
}

# ps_start DIR [AUTOSIGN...]
ps_start() {
    local dir=${1:?usage: ps_start DIR [AUTOSIGN...]} attempt
    shift
    [ -r "$PS_JAR" ] || { _ps_err "$PS_JAR not found (apt-get install puppetserver)"; return 1; }
    [ -x "$PS_JAVA" ] || { _ps_err "$PS_JAVA not found (apt-get install default-jre-headless)"; return 1; }
    mkdir -p "$dir" || { _ps_err "cannot create $dir"; return 1; }
    PS_DIR=$(cd "$dir" && pwd)
    PS_CONFDIR=$PS_DIR/puppet
    PS_CODEDIR=$PS_DIR/code
    PS_LOG=$PS_DIR/log/puppetserver.log
    PS_HOST=127.0.0.1
    PS_CA_PEM=$PS_DIR/ca/ca_crt.pem
    export PS_DIR PS_CONFDIR PS_CODEDIR PS_LOG PS_HOST PS_CA_PEM
    if [ -z "$PS_CLEANUP_REGISTERED" ]; then
        e2e_on_exit ps_cleanup
        PS_CLEANUP_REGISTERED=1
    fi
    # A port can be taken between choosing and binding it: try again.
    for attempt in 1 2 3; do
        [ "$attempt" = 1 ] || _ps_err "port clash; trying another port (attempt $attempt)"
        PS_PORT=$(e2e_free_port)
        export PS_PORT
        _ps_write_puppet_conf "$@" && _ps_write_tk_conf ||
            { _ps_err "cannot write the configuration in $PS_DIR"; return 1; }
        _ps_launch || { _ps_fail "the puppetserver process did not start"; return 1; }
        ps_wait && return 0
        grep -qi "address already in use" "$PS_LOG" "$PS_DIR/console.out" 2>/dev/null || break
        ps_cleanup
    done
    ps_cleanup
    return 1
}

_ps_main() {
    local cmd=${1:-} dir=${2:-}
    [ "$cmd" = run ] && [ -n "$dir" ] || {
        echo "usage: $0 run DIR [AUTOSIGN...]" >&2
        exit 2
    }
    shift 2
    ps_start "$dir" "$@" || exit 1
    echo "# puppetserver up in ${PS_START_SECONDS}s; ^C stops it"
    for v in PS_DIR PS_HOST PS_PORT PS_CA_PEM PS_CONFDIR PS_CODEDIR PS_LOG; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
    while kill -0 "$(cat "$PS_DIR/server.pid" 2>/dev/null)" 2>/dev/null; do sleep 1; done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _ps_main "$@"
fi
