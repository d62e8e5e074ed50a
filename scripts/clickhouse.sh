#!/usr/bin/env bash
# clickhouse.sh starts and stops a private ClickHouse server for Parley's
# tests and development.
#
#   scripts/clickhouse.sh start DIR   # prints PARLEY_TEST_CLICKHOUSE=127.0.0.1:TCPPORT
#   scripts/clickhouse.sh stop DIR
#   scripts/clickhouse.sh env DIR     # prints the variable of a started server
#
# start writes DIR/config.xml and DIR/users.xml on first use (listening on
# 127.0.0.1 only, on free tcp and http ports, every path under DIR, a
# default profile with allow_experimental_low_cardinality_type=1 and the
# default user restricted to loopback). A later start on the same DIR
# reuses that config, ports and data, so a test can stop and restart "the
# same" server. The server runs in the background; its pid is in DIR/pid.
# start returns once HTTP "SELECT 1" answers, or fails after a deadline.
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

free_port() {
	# Ask the kernel for a free port by binding port 0.
	python3 - <<'PY' 2>/dev/null || shuf -i 20000-60000 -n 1
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

write_config() {
	local tcp http inter
	tcp=$(free_port)
	http=$(free_port)
	while [ "$http" = "$tcp" ]; do http=$(free_port); done
	inter=$(free_port)
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <interserver_http_port>$inter</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
    <mark_cache_size>536870912</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
XML
	cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML
}

port_of() { sed -n "s:.*<$1>\([0-9]*\)</$1>.*:\1:p" "$dir/config.xml" | head -n1; }

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

print_env() { echo "PARLEY_TEST_CLICKHOUSE=127.0.0.1:$(port_of tcp_port)"; }

case $cmd in
start)
	command -v clickhouse-server >/dev/null || { echo "clickhouse-server is not installed (apt-get install -y clickhouse-server clickhouse-client)" >&2; exit 1; }
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if running; then
		print_env
		exit 0
	fi
	[ -f "$dir/config.xml" ] || write_config
	http=$(port_of http_port)
	# Run from DIR so that nothing (e.g. preprocessed configs) lands elsewhere.
	(cd "$dir" && exec clickhouse-server --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1) &
	echo $! >"$dir/pid"
	deadline=$((SECONDS + 30))
	until [ "$(curl -fsS --max-time 1 "http://127.0.0.1:$http/?query=SELECT%201" 2>/dev/null)" = "1" ]; do
		if ! running; then
			echo "clickhouse-server exited; see $dir/log/server.err.log and $dir/log/stdout.log" >&2
			tail -n 20 "$dir/log/server.err.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
			exit 1
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "clickhouse-server did not answer SELECT 1 on 127.0.0.1:$http within 30 s" >&2
			exit 1
		fi
		sleep 0.1
	done
	print_env
	;;
stop)
	[ -f "$dir/pid" ] || exit 0
	pid=$(cat "$dir/pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		deadline=$((SECONDS + 20))
		while kill -0 "$pid" 2>/dev/null; do
			if [ $SECONDS -ge $deadline ]; then
				kill -9 "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.1
		done
	fi
	rm -f "$dir/pid"
	;;
env)
	[ -f "$dir/config.xml" ] || { echo "no server configured in $dir" >&2; exit 1; }
	print_env
	;;
*)
	usage
	;;
esac
