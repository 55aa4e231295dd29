# linstor-migrator's tool guard: at most one linstor-database runs in the migration pod.
#
#   bash -c "$SCRIPT" tool-guard PIDFILE [COMMAND ARGS...]
#
# The guard takes an exclusive flock on PIDFILE.lock (descriptor 9), writes its pid to PIDFILE
# and execs COMMAND, which inherits the descriptor: the lock is held exactly as long as COMMAND
# lives. A COMMAND whose exec connection was dropped (cancel, timeout, a killed service) keeps
# running in the container and keeps the lock; the next guard finds it by the pid in PIDFILE
# (checked against the process's descriptor 9, so a recycled pid is never signalled), sends it
# SIGTERM at once and every second, after 20 s SIGKILL, and waits until the lock is free before it
# runs anything. Without COMMAND it only does that. Exit 125: the old process could not be stopped.
# Needs bash, coreutils and util-linux (flock), all in the LINSTOR controller image.
set -u
pidfile=$1
shift
exec 9>>"$pidfile.lock" || exit 125
lock=$(readlink -f "$pidfile.lock")
holder() {
  local p
  p=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(readlink "/proc/$p/fd/9" 2>/dev/null)" = "$lock" ] && echo "$p"
}
if ! flock -n 9; then
  sig=TERM
  waited=0
  told=""
  while :; do
    if p=$(holder); then
      if [ -z "$told" ]; then
        echo "tool-guard: stopping linstor-database (pid $p) left running by an interrupted exec" >&2
        told=$p
      fi
      kill "-$sig" "$p" 2>/dev/null || true
    fi
    if flock -w 1 9; then break; fi
    waited=$((waited + 1))
    if [ "$waited" -eq 20 ]; then sig=KILL; fi
    if [ "$waited" -ge 40 ]; then
      echo "tool-guard: pid ${told:-unknown} does not stop; giving up" >&2
      exit 125
    fi
  done
  echo "tool-guard: pid ${told:-unknown} is gone" >&2
fi
if [ "$#" -eq 0 ]; then exit 0; fi
echo "$$" >"$pidfile"
exec "$@"
