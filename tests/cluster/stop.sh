#!/usr/bin/env bash
# Stops what tests/cluster/start.sh DIR started, using the pid files in DIR/run.
#
# Usage: tests/cluster/stop.sh DIR [--purge]
#
# Sends SIGTERM to every recorded process, waits up to 10s, then SIGKILLs what is left, and
# removes the pid files.  Idempotent: a missing DIR, missing pid files or already dead
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

# ours PIDFILE: prints the pid recorded in PIDFILE if that process is alive and still ours.  A
# recycled pid would belong to something else, so the process's command line must mention DIR
# (every component started by start.sh has DIR paths in its arguments).
ours() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR" && echo "$pid"
}

if [[ -d $RUN ]]; then
  # SIGTERM to everything at once (components shut down gracefully in ~2s each; sequentially that
  # would add up), kwok and the controllers first, etcd last.
  declare -A pids=()
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if pid=$(ours "$RUN/$name.pid"); then pids[$name]=$pid; fi
  done
  # Anything else someone recorded there (e.g. a test's helper process).
  for pidfile in "$RUN"/*.pid; do
    [[ -e $pidfile ]] || continue
    name=$(basename "$pidfile" .pid)
    if [[ -z ${pids[$name]:-} ]] && pid=$(ours "$pidfile"); then pids[$name]=$pid; fi
  done
  for name in "${!pids[@]}"; do
    kill -TERM "${pids[$name]}" 2>/dev/null || true
  done
  # Wait up to 10s for all of them, then SIGKILL what is left.
  for ((i = 0; i < 100; i++)); do
    left=0
    for name in "${!pids[@]}"; do
      if kill -0 "${pids[$name]}" 2>/dev/null; then left=1; fi
    done
    ((left)) || break
    sleep 0.1
  done
  for name in "${!pids[@]}"; do
    if kill -0 "${pids[$name]}" 2>/dev/null; then
      log "$name (pid ${pids[$name]}) ignored SIGTERM; sending SIGKILL"
      kill -KILL "${pids[$name]}" 2>/dev/null || true
    fi
    log "stopped $name (pid ${pids[$name]})"
  done
  rm -f "$RUN"/*.pid
fi

if [[ $PURGE == --purge && -d $DIR ]]; then
  rm -rf "$DIR"
  log "removed $DIR"
fi
