#!/usr/bin/env bash
# Stops what tests/cluster/start.sh DIR started, using the pid files in DIR/run.
#
# Usage: tests/cluster/stop.sh DIR [--purge]
#
# Sends SIGTERM in reverse start order, waits up to 10s per process, then SIGKILL.  Each pid file is
# removed once its process is gone.  Idempotent: a missing DIR, missing pid files or already dead
# processes are fine.  --purge also deletes DIR afterwards.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 DIR [--purge]" >&2
  exit 2
fi
DIR=$1
if [[ -d $DIR ]]; then DIR=$(cd "$DIR" && pwd); fi
PURGE=${2:-}
RUN="$DIR/run"

log() { printf '[stop %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# stop_one NAME: terminate the process recorded in run/NAME.pid, if it is still ours and alive.
stop_one() {
  local name=$1 pidfile="$RUN/$1.pid" pid i
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  # A recycled pid would belong to something else: only act if the process's command line still
  # mentions DIR (every component started by start.sh has DIR paths in its arguments).
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

if [[ -d $RUN ]]; then
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop_one "$name"
  done
  # Anything else someone recorded there (e.g. a test's helper process).
  for pidfile in "$RUN"/*.pid; do
    [[ -e $pidfile ]] || continue
    stop_one "$(basename "$pidfile" .pid)"
  done
fi

if [[ $PURGE == --purge && -d $DIR ]]; then
  rm -rf "$DIR"
  log "removed $DIR"
fi
