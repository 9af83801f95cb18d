#!/usr/bin/env bash
# Start the services the test suite talks to, when they are not already answering:
# MariaDB (127.0.0.1:3306), Redis (127.0.0.1:6379) and the MongoDB wire-protocol server
# (scripts/mongo-server.sh, 127.0.0.1:27018). Idempotent. Used by .ci/run and `nox -s services`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

answers() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

wait_for() {  # name host port seconds
  for _ in $(seq 1 "$4"); do
    answers "$2" "$3" && { echo "$1 is up on $2:$3"; return 0; }
    sleep 1
  done
  echo "$1 did not come up on $2:$3" >&2
  return 1
}

start_mariadb() {
  answers 127.0.0.1 3306 && { echo "MariaDB already running"; return 0; }
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || {
    echo "MariaDB is not installed (apt-get install mariadb-server)" >&2; return 1; }
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB 127.0.0.1 3306 60
}

start_redis() {
  answers 127.0.0.1 6379 && { echo "Redis already running"; return 0; }
  command -v redis-server >/dev/null || {
    echo "Redis is not installed (apt-get install redis-server)" >&2; return 1; }
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 127.0.0.1 6379 30
}

case "${1:-start}" in
  start)
    start_mariadb
    start_redis
    bash "$here/mongo-server.sh" start
    ;;
  *)
    echo "usage: $0 start" >&2; exit 2 ;;
esac
