#!/usr/bin/env bash
# Local infrastructure for development, tests and CI: a real Apache Kafka 4.x
# broker (KRaft, single node) and a real PostgreSQL 15 server, both on loopback,
# without Docker. See deploy/local/README.md.
#
#   deploy/local/infra.sh up      start (or reuse) both; prints two export lines
#   deploy/local/infra.sh down    stop both, leave no process behind
#   deploy/local/infra.sh status  exit 0 when both are up, 1 otherwise
#   deploy/local/infra.sh env     print the two export lines only
#
# Only the two `export ...` lines go to stdout, everything else to stderr, so
# `eval "$(deploy/local/infra.sh up)"` works.
set -euo pipefail
umask 022

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

LOCAL_DIR="${SCROBBLE_LOCAL_DIR:-$REPO_ROOT/.local}"
CACHE_DIR="${SCROBBLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/revenge-scrobble}"
KAFKA_PORT="${SCROBBLE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="$((KAFKA_PORT + 1))"
# The port clients are told to connect to (metadata): a TCP proxy in front of the broker
# (bench/chaos) sets it to the proxy's port, so every connection goes through the proxy.
KAFKA_ADVERTISED_PORT="${SCROBBLE_KAFKA_ADVERTISED_PORT:-$KAFKA_PORT}"
PG_PORT="${SCROBBLE_PG_PORT:-5432}"
KAFKA_VERSION="${SCROBBLE_KAFKA_VERSION:-4.1.2}"
LOG4J_VERSION="2.24.3" # the log4j2 version kafka 4.1 itself depends on
PG_BIN="${SCROBBLE_PG_BIN:-/usr/lib/postgresql/15/bin}"
KAFKA_START_TIMEOUT="${SCROBBLE_KAFKA_START_TIMEOUT:-120}"
PG_START_TIMEOUT="${SCROBBLE_PG_START_TIMEOUT:-60}"

DB_USER=scrobble
DB_PASSWORD=scrobble
DB_NAME=scrobble

LOG_DIR="$LOCAL_DIR/logs"
KAFKA_LOG="$LOG_DIR/kafka.log"
PG_LOG="$LOG_DIR/postgres.log"
KAFKA_DIR="$LOCAL_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_PID="$LOCAL_DIR/kafka.pid"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
# Set by pg_locate: where the cluster lives (may be outside LOCAL_DIR, see there).
PGDATA=""

log() { printf '[infra] %s\n' "$*" >&2; }
die() {
	printf '[infra] ERROR: %s\n' "$*" >&2
	exit 1
}

print_env() {
	printf 'export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:%s\n' "$KAFKA_ADVERTISED_PORT"
	printf 'export DATABASE_URL=postgresql://%s:%s@127.0.0.1:%s/%s\n' \
		"$DB_USER" "$DB_PASSWORD" "$PG_PORT" "$DB_NAME"
}

# --- small helpers -----------------------------------------------------------

port_open() { # port
	timeout 2 bash -c ": >/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

pid_alive() { # pid; a zombie (exited, not yet reaped) counts as dead
	[[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z ]]
}

tail_log() { # file
	if [[ -r "$1" ]]; then
		log "last 30 lines of $1:"
		tail -n 30 "$1" >&2 || true
	else
		log "(no log at $1)"
	fi
}

# Serialize concurrent invocations (e.g. parallel test runners calling `up`).
# Fd 9 holds the lock: everything long-lived we start gets `9>&-`, otherwise
# the daemons would inherit the lock and hold it forever.
take_lock() {
	mkdir -p "$LOCAL_DIR"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$LOCAL_DIR/.infra.lock"
		flock -w 300 9 || die "could not get $LOCAL_DIR/.infra.lock within 300 s"
	fi
}

# Run a command as the PostgreSQL OS user: postgres refuses to run as root.
# When not root, the current user runs the cluster itself.
as_pg() {
	if [[ $EUID -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@" 9>&-)
	else
		"$@" 9>&-
	fi
}

# --- Kafka -------------------------------------------------------------------

require_java() {
	command -v java >/dev/null 2>&1 ||
		die "java not found: Kafka 4.x needs Java 17+ (Debian: apt-get install -y openjdk-17-jre-headless)"
	local v major
	v="$(java -version 2>&1 | head -n 1)"
	major="$(sed -E 's/.*version "([0-9]+)(\.[0-9]+)*.*/\1/' <<<"$v")"
	if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 17)); then
		die "Kafka 4.x needs Java 17+, found: $v (Debian: apt-get install -y openjdk-17-jre-headless)"
	fi
}

kafka_fetch_jars() {
	local dir="$CACHE_DIR/kafka-$KAFKA_VERSION"
	if [[ -f "$dir/.complete" ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
		log "kafka $KAFKA_VERSION jars: cached in $KAFKA_LIBS"
		return 0
	fi
	command -v mvn >/dev/null 2>&1 ||
		die "mvn not found: it fetches Kafka from Maven Central (Debian: apt-get install -y maven)"
	log "kafka $KAFKA_VERSION jars: downloading from Maven Central into $KAFKA_LIBS ..."
	mkdir -p "$dir"
	rm -rf "$KAFKA_LIBS"
	cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.revenge-scrobble</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- slf4j 1.7 (what kafka uses) -> log4j2 binding, so logs end up in kafka.log -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
	if ! (cd "$dir" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >"$dir/mvn.log" 2>&1); then
		tail_log "$dir/mvn.log"
		die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable? set SCROBBLE_KAFKA_VERSION to another 4.x)"
	fi
	compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null || die "mvn finished but $KAFKA_LIBS has no kafka jar"
	touch "$dir/.complete"
}

kafka_write_config() {
	mkdir -p "$KAFKA_DIR" "$KAFKA_DATA" "$LOG_DIR"
	cat >"$KAFKA_CONF" <<EOF
# Generated by deploy/local/infra.sh (rewritten on every 'up'). Dev only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_ADVERTISED_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Small internal topics: faster first consumer group / transaction on a 2-core box.
offsets.topic.num.partitions=3
transaction.state.log.num.partitions=3

# Small machine.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
	cat >"$KAFKA_LOG4J" <<'EOF'
# Generated by deploy/local/infra.sh. Everything goes to stdout, which the
# script redirects into logs/kafka.log.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
}

kafka_java_opts() {
	# Like kafka-run-class.sh / kafka-server-start.sh, sized for a small box.
	local heap="${SCROBBLE_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
	# shellcheck disable=SC2086 # heap is a list of options on purpose
	printf '%s\n' $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
		-XX:MaxMetaspaceSize=256m -XX:ReservedCodeCacheSize=128m -XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true "-Dkafka.logs.dir=$LOG_DIR" \
		"-Dlog4j2.configurationFile=$KAFKA_LOG4J"
}

kafka_format_storage() {
	if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
		log "kafka storage: already formatted ($KAFKA_DATA)"
		return 0
	fi
	local cid_file="$KAFKA_DIR/cluster.id" cid
	# A Kafka Uuid: 16 random bytes, base64url without padding (22 chars). One that starts
	# with "-" reads as an option to StorageTool (Kafka's own generator skips those too).
	while [[ ! -s "$cid_file" || "$(head -c 1 "$cid_file")" == "-" ]]; do
		head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$cid_file"
	done
	cid="$(cat "$cid_file")"
	log "kafka storage: formatting $KAFKA_DATA (cluster id $cid)"
	local -a opts
	mapfile -t opts < <(kafka_java_opts)
	if ! java "${opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
		-t "$cid" -c "$KAFKA_CONF" --ignore-formatted >>"$KAFKA_LOG" 2>&1; then
		tail_log "$KAFKA_LOG"
		die "kafka storage format failed"
	fi
}

# Pid of our broker if it is running (pid file and command line match).
kafka_our_pid() {
	local pid
	[[ -f "$KAFKA_PID" ]] || return 1
	pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $KAFKA_CONF" || return 1
	echo "$pid"
}

# Any java process running kafka.Kafka with our config (pid file lost or not).
kafka_all_pids() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
		if [[ "$cmd" == *"kafka.Kafka $KAFKA_CONF"* ]]; then echo "${p#/proc/}"; fi
	done
}

# Sends an ApiVersions request: true only when a Kafka broker answers it.
kafka_answers() {
	if ! command -v python3 >/dev/null 2>&1; then
		port_open "$KAFKA_PORT"
		return
	fi
	python3 - "$KAFKA_PORT" <<'EOF' 2>/dev/null
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
body = struct.pack(">hhih", 18, 0, 4242, -1)  # ApiVersions v0, corr id, null client id
s.sendall(struct.pack(">i", len(body)) + body)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
data = read(struct.unpack(">i", read(4))[0])
corr, err = struct.unpack(">ih", data[:6])
sys.exit(0 if corr == 4242 and err == 0 else 1)
EOF
}

kafka_wait_ready() { # pid
	local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! pid_alive "$pid"; then
			tail_log "$KAFKA_LOG"
			rm -f "$KAFKA_PID"
			die "kafka exited during startup (see $KAFKA_LOG)"
		fi
		if grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null && kafka_answers; then
			return 0
		fi
		sleep 0.5
	done
	tail_log "$KAFKA_LOG"
	die "kafka not ready within ${KAFKA_START_TIMEOUT}s on 127.0.0.1:$KAFKA_PORT (pid $pid still running; '$0 down' stops it)"
}

kafka_up() {
	local pid
	if pid="$(kafka_our_pid)"; then
		if kafka_answers; then
			log "kafka: already running (pid $pid) on 127.0.0.1:$KAFKA_PORT, reusing it"
			return 0
		fi
		log "kafka: pid $pid is running but not answering yet, waiting"
		kafka_wait_ready "$pid"
		return 0
	fi
	if [[ -f "$KAFKA_PID" ]]; then
		log "kafka: removing stale pid file $KAFKA_PID"
		rm -f "$KAFKA_PID"
	fi
	if port_open "$KAFKA_PORT"; then
		if kafka_answers; then
			log "kafka: a broker not started by this script answers on 127.0.0.1:$KAFKA_PORT, reusing it"
			return 0
		fi
		die "port $KAFKA_PORT is taken by something that is not a Kafka broker; set SCROBBLE_KAFKA_PORT"
	fi
	if port_open "$KAFKA_CONTROLLER_PORT"; then
		die "kafka controller port $KAFKA_CONTROLLER_PORT (SCROBBLE_KAFKA_PORT+1) is taken; set SCROBBLE_KAFKA_PORT"
	fi

	require_java
	kafka_fetch_jars
	kafka_write_config
	# One log per run, so the readiness check only sees this run's lines.
	if [[ -f "$KAFKA_LOG" ]]; then mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"; fi
	: >"$KAFKA_LOG"
	kafka_format_storage

	local -a opts
	mapfile -t opts < <(kafka_java_opts)
	log "kafka: starting $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT), log $KAFKA_LOG"
	# New session, stdin closed, output to the log: survives the calling shell.
	# The inner shell writes its own pid, then execs java under that pid.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
		java "${opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" \
		</dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
	local deadline=$((SECONDS + 10))
	until [[ -s "$KAFKA_PID" ]]; do
		((SECONDS < deadline)) || die "kafka: no pid file after start"
		sleep 0.1
	done
	pid="$(cat "$KAFKA_PID")"
	kafka_wait_ready "$pid"
	log "kafka: ready (pid $pid)"
}

kafka_down() {
	local pids pid deadline
	pids="$( (kafka_our_pid || true; kafka_all_pids) | sort -u)"
	if [[ -z "$pids" ]]; then
		log "kafka: not running"
		rm -f "$KAFKA_PID"
		return 0
	fi
	for pid in $pids; do
		log "kafka: stopping pid $pid (SIGTERM)"
		kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$((SECONDS + 30))
	for pid in $pids; do
		while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.5; done
		if pid_alive "$pid"; then
			log "kafka: pid $pid still alive after 30 s, SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
		fi
	done
	rm -f "$KAFKA_PID"
	log "kafka: stopped"
}

# --- PostgreSQL --------------------------------------------------------------

# Decide where the cluster lives. The postgres OS user must be able to reach
# its data dir; when LOCAL_DIR is not traversable for it (e.g. under a 0700
# home), the cluster goes to /var/tmp instead and logs/postgres.log is a
# symlink to its log.
pg_locate() {
	mkdir -p "$LOCAL_DIR" "$LOG_DIR"
	if [[ -f "$LOCAL_DIR/pgdata.location" ]]; then
		PGDATA="$(cat "$LOCAL_DIR/pgdata.location")"
	elif [[ $EUID -ne 0 ]] || as_pg test -x "$LOCAL_DIR" -a -x "$LOG_DIR"; then
		PGDATA="$LOCAL_DIR/pgdata"
	else
		local h
		h="$(printf '%s' "$LOCAL_DIR" | md5sum | cut -c1-8)"
		PGDATA="/var/tmp/revenge-scrobble-$h/pgdata"
	fi
	if [[ "$PGDATA" != "$LOCAL_DIR/pgdata" ]]; then
		printf '%s\n' "$PGDATA" >"$LOCAL_DIR/pgdata.location"
	fi
}

pg_log_file() {
	if [[ "$PGDATA" == "$LOCAL_DIR/pgdata" ]]; then
		echo "$PG_LOG"
	else
		echo "$(dirname "$PGDATA")/postgres.log"
	fi
}

require_postgres() {
	if [[ -x "$PG_BIN/postgres" ]]; then return 0; fi
	[[ $EUID -eq 0 ]] ||
		die "PostgreSQL 15 not found at $PG_BIN; install it as root: apt-get install -y postgresql"
	log "postgres: $PG_BIN/postgres missing, installing Debian package postgresql ..."
	if ! { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }; then
		die "apt-get install -y postgresql failed; install PostgreSQL 15 (Debian package postgresql-15) yourself"
	fi
	[[ -x "$PG_BIN/postgres" ]] ||
		die "postgresql installed but $PG_BIN/postgres is missing (not version 15?); set SCROBBLE_PG_BIN"
	# The package may start its own cluster on 5432; we run our own.
	if command -v pg_ctlcluster >/dev/null 2>&1; then
		pg_ctlcluster 15 main stop 1>&2 || true
	fi
}

pg_ready() {
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 2>/dev/null
}

pg_our_pid() { # pid of our postmaster, if running
	local pid
	[[ -f "$PGDATA/postmaster.pid" ]] || return 1
	pid="$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres* ]] || return 1
	echo "$pid"
}

# A postmaster killed with SIGKILL stays a zombie until its parent (often pid 1) reaps it,
# which some inits do only every second or so. Its socket lock file names its pid, and a
# new postmaster refuses to start while that pid exists ("lock file ... already exists"),
# so wait for it to be gone (a pid taken over by another process: give up after 30 s).
pg_wait_reaped() { # pid from a stale postmaster.pid
	local deadline=$((SECONDS + 30))
	[[ "${1:-}" =~ ^[0-9]+$ ]] || return 0
	while [[ -e "/proc/$1" ]] && ((SECONDS < deadline)); do
		sleep 0.2
	done
}

pg_init() {
	local logfile
	logfile="$(pg_log_file)"
	if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
		log "postgres: initdb into $PGDATA"
		mkdir -p "$PGDATA"
		if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")"; fi
		chmod 0700 "$PGDATA"
		as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --encoding=UTF8 --no-locale \
			--auth-local=peer --auth-host=scram-sha-256 --no-sync >&2 ||
			die "initdb failed for $PGDATA"
		echo "include_if_exists = 'scrobble.conf'" >>"$PGDATA/postgresql.conf"
	fi
	# Socket next to the data (short enough paths) so we need not /run/postgresql.
	local sockdir="$PGDATA"
	if ((${#sockdir} > 90)); then sockdir=/tmp; fi
	cat >"$PGDATA/scrobble.conf" <<EOF
# Generated by deploy/local/infra.sh (rewritten on every 'up').
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 200
# DEV ONLY: no durability (a crash can lose or corrupt data); much faster tests.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
	if [[ $EUID -eq 0 ]]; then
		chown postgres:postgres "$PGDATA/scrobble.conf"
		touch "$logfile"
		chown postgres:postgres "$logfile"
	fi
	if [[ "$logfile" != "$PG_LOG" ]]; then ln -sfn "$logfile" "$PG_LOG"; fi
	echo "$sockdir"
}

pg_setup_role_db() { # sockdir
	local sock="$1"
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PG_PORT" -U postgres -d postgres >&2 <<EOF || die "creating role/database $DB_NAME failed"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN SUPERUSER CREATEDB PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN SUPERUSER CREATEDB PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
}

pg_url_works() {
	local psql="$PG_BIN/psql"
	[[ -x "$psql" ]] || psql="$(command -v psql)" || return 1
	PGCONNECT_TIMEOUT=3 "$psql" -X -q -At "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME" \
		-c 'select 1' >/dev/null 2>&1
}

pg_up() {
	pg_locate
	local pid sockdir logfile
	if pid="$(pg_our_pid)" && pg_ready; then
		log "postgres: already running (pid $pid) on 127.0.0.1:$PG_PORT, reusing it"
		sockdir="$(pg_init)"
		pg_setup_role_db "$sockdir"
		return 0
	fi
	if [[ -z "${pid:-}" ]] && pg_ready; then
		if pg_url_works; then
			log "postgres: a server not started by this script answers on 127.0.0.1:$PG_PORT with $DB_USER/$DB_NAME, reusing it"
			return 0
		fi
		die "port $PG_PORT has a PostgreSQL not started by this script, without a working $DB_USER/$DB_NAME login; set SCROBBLE_PG_PORT"
	fi
	if [[ -z "${pid:-}" ]] && port_open "$PG_PORT"; then
		die "port $PG_PORT is taken by something that is not PostgreSQL; set SCROBBLE_PG_PORT"
	fi

	require_postgres
	sockdir="$(pg_init)"
	logfile="$(pg_log_file)"
	if [[ -z "${pid:-}" && -f "$PGDATA/postmaster.pid" ]]; then
		pg_wait_reaped "$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || true)"
		log "postgres: removing stale $PGDATA/postmaster.pid"
		rm -f "$PGDATA/postmaster.pid"
	fi
	if [[ -z "${pid:-}" ]]; then
		log "postgres: starting on 127.0.0.1:$PG_PORT, data $PGDATA, log $PG_LOG"
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$logfile" -W start >&2 || {
			tail_log "$logfile"
			die "pg_ctl start failed"
		}
	else
		log "postgres: pid $pid running but not ready yet, waiting"
	fi
	local deadline=$((SECONDS + PG_START_TIMEOUT))
	until pg_ready; do
		if ((SECONDS >= deadline)); then
			tail_log "$logfile"
			die "postgres not ready within ${PG_START_TIMEOUT}s on 127.0.0.1:$PG_PORT"
		fi
		sleep 0.3
	done
	pg_setup_role_db "$sockdir"
	log "postgres: ready"
}

pg_down() {
	pg_locate
	local pid
	if ! pid="$(pg_our_pid)"; then
		log "postgres: not running"
		return 0
	fi
	log "postgres: stopping pid $pid (pg_ctl stop -m fast)"
	if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >&2; then
		log "postgres: fast stop failed, trying immediate"
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 30 stop >&2 || true
	fi
	if pid_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	log "postgres: stopped"
}

# --- commands ----------------------------------------------------------------

cmd_up() {
	take_lock
	local t0=$SECONDS
	pg_up
	kafka_up
	log "both up in $((SECONDS - t0)) s (state $LOCAL_DIR, jars $KAFKA_LIBS)"
	print_env
}

cmd_down() {
	take_lock
	kafka_down
	pg_down
}

# Only Postgres, for outage tests; `up` brings it back.
cmd_stop_postgres() {
	take_lock
	pg_down
}

cmd_status() {
	local ok=0 pid
	if pid="$(kafka_our_pid)" && kafka_answers; then
		log "kafka: up (pid $pid) on 127.0.0.1:$KAFKA_PORT"
	elif kafka_answers; then
		log "kafka: a broker (not started by this script) answers on 127.0.0.1:$KAFKA_PORT"
	else
		log "kafka: down (127.0.0.1:$KAFKA_PORT)"
		ok=1
	fi
	pg_locate
	if pid="$(pg_our_pid)" && pg_ready; then
		log "postgres: up (pid $pid) on 127.0.0.1:$PG_PORT, data $PGDATA"
	elif pg_ready; then
		log "postgres: a server (not started by this script) answers on 127.0.0.1:$PG_PORT"
	else
		log "postgres: down (127.0.0.1:$PG_PORT)"
		ok=1
	fi
	return "$ok"
}

usage() {
	echo "usage: $0 up|down|status|env|stop-postgres" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) print_env ;;
stop-postgres) cmd_stop_postgres ;;
*) usage ;;
esac
