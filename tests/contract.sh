#!/usr/bin/env bash
# The API contract: schemathesis generates requests from the OpenAPI document that
# `linstor-migrator serve --demo` serves, sends them with a token, and checks every answer
# against the same document (`--checks all`: no server error, only documented status codes,
# media types, headers and bodies, schema-valid requests accepted and invalid ones refused, the
# token required). All phases run: the document's examples, coverage (boundary values of every
# bound), fuzzing, and stateful sequences along the document's links (POST /runs -> the run's
# actions, logs and events; GET /backups -> a download). Runs in several states are made first
# and their ids offered to the fuzzer next to random ones. Settings: tests/schemathesis.toml.
#
# Usage: tests/contract.sh [BINARY]
#   BINARY defaults to the debug build, built here (`cargo build --bin linstor-migrator`).
# Env:   SCHEMATHESIS_VERSION  the PyPI version installed into a venv under
#                              ~/.cache/linstor-migrator/tools/ (default 4.32.5)
#        ST_SEED               overrides the seed of tests/schemathesis.toml
#        CARGO_TARGET_DIR      where the binary is built (default target/)
# The last line is "N passed, M failed" (N: generated test cases, M: failures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
TOKEN=contract-token-2f8e0c

log() { printf '[contract %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lm-contract.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- schemathesis, in a venv of its own (Debian's python3 refuses `pip install` outside one)
VENV=$HOME/.cache/linstor-migrator/tools/schemathesis-$SCHEMATHESIS_VERSION
if [[ ! -x $VENV/bin/st ]]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi
ST=$VENV/bin/st

# --- the server
if [[ $# -ge 1 ]]; then
  BIN=$1
else
  cargo build --locked --quiet --bin linstor-migrator >&2
  BIN=${CARGO_TARGET_DIR:-target}/debug/linstor-migrator
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
# --demo-pace 0.2: the simulated cluster five times faster than its realistic pace, so that runs
# reach every state while the fuzzer works, and the backup below takes seconds
LINSTOR_MIGRATOR_TOKEN=$TOKEN "$BIN" serve --demo --demo-pace 0.2 --listen "127.0.0.1:$port" \
  --data-dir "$WORK/data" --auth token >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!

# wait_for DEADLINE_SECONDS WHAT COMMAND...: polls COMMAND until it succeeds
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; fail "the server exited"; }
    ((SECONDS < deadline)) || fail "no $what within the deadline"
    sleep 0.2
  done
}
api() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
wait_for 60 "/livez answer" curl -fsS -o /dev/null "$base/livez"

log "runs to fuzz: a backup waiting for approval, one that succeeded (with backups), one that failed, an upgrade plan"
python3 - "$base" "$TOKEN" >"$WORK/seeded.toml" <<'PY' || fail "the runs to fuzz did not come about"
"""Starts runs on the demo and prints a schemathesis config section with their ids.

Fuzzed ids are random strings that only ever find nothing (404); an action needs a run in the
state it acts on. With these ids the fuzzer can approve a waiting run, resume a failed one, roll
back a succeeded one and download a backup, besides what the links from POST /runs lead to."""
import json
import sys
import time
import urllib.request

base, token = sys.argv[1], sys.argv[2]


def call(path, body=None):
    req = urllib.request.Request(base + path, method="POST" if body else "GET",
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def start(controller, want, kind="migrate", **options):
    run = call("/api/v1/runs", {"kind": kind, "controller": controller, "options": options})
    deadline = time.monotonic() + 120
    while (state := call(f"/api/v1/runs/{run['id']}")["state"]) in ("queued", "running"):
        assert time.monotonic() < deadline, f"run {run['id']} still {state} after 120 s"
        time.sleep(0.2)
    assert state == want, f"run {run['id']} of {controller} ended {state}, not {want}"
    print(f"  {controller}: {state} {run['id']}", file=sys.stderr)
    return run["id"]


# The waiting run is a backup: a migration waiting at the gate has written the cluster's one k8s
# backend already (schema, pre-copy), which keeps every other migration off it until it ends. The
# second migration of the same controller fails at preflight, as its backend is k8s now.
waiting = start("storage/linstor-controller", "waiting", kind="backup", approve_before_downtime=True)
succeeded = start("piraeus-datastore/piraeus-op-cs", "succeeded")
failed = start("piraeus-datastore/piraeus-op-cs", "failed")
# a plan of the rest of the v1 -> v2 upgrade: the only kind of run that has one
plan = start("piraeus-datastore/piraeus-op-cs", "succeeded", kind="upgrade-plan")
backups = [b["id"] for b in call("/api/v1/backups")]
assert backups, "the migration made no backup"
print(f"""
[dictionaries.runs]
values = {json.dumps([waiting, succeeded, failed, plan])}

[dictionaries.backups]
values = {json.dumps(backups)}

[dictionaries.plans]
values = {json.dumps([plan])}

[[operations]]
include-path-regex = '^/api/v1/runs/[{{]id[}}]/upgrade-plan'
parameters = {{ "path.id" = {{ dictionary = "plans", probability = 0.9 }} }}

[[operations]]
include-path-regex = '^/api/v1/runs/[{{]id[}}]'
parameters = {{ "path.id" = {{ dictionary = "runs", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/api/v1/backups/[{{]id[}}]$'
parameters = {{ "path.id" = {{ dictionary = "backups", probability = 0.5 }} }}""")
PY
cat tests/schemathesis.toml "$WORK/seeded.toml" >"$WORK/schemathesis.toml"

log "schemathesis $("$ST" --version | awk '{print $NF}') against $base (serve --demo)"
seed=()
if [[ -n ${ST_SEED:-} ]]; then seed=(--seed "$ST_SEED"); fi
status=0
start=$SECONDS
"$ST" --config-file "$WORK/schemathesis.toml" run "$base/api/v1/openapi.json" \
  --checks all -H "Authorization: Bearer $TOKEN" --no-color "${seed[@]}" \
  --report junit --report-junit-path "$WORK/junit.xml" | tee "$WORK/st.out" >&2 || status=$?
log "schemathesis took $((SECONDS - start)) s and exited $status"

# The counts from the summary: "675 generated, 675 passed, 22 skipped", or with failures
# "516 generated, 6 found 6 unique failures, 18 skipped" (6 cases failed, 6 distinct failures).
summary=$(grep -E '^ *[0-9]+ generated' "$WORK/st.out" | tail -1)
generated=$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' <<<"$summary")
failing=$(sed -n 's/.* \([0-9][0-9]*\) found .*/\1/p' <<<"$summary")
failures=$(sed -n 's/.* \([0-9][0-9]*\) unique failures.*/\1/p' <<<"$summary")
failures=${failures:-0}
if [[ $status -ne 0 && $failures -eq 0 ]]; then failures=1; fi
echo "$((${generated:-0} - ${failing:-0})) passed, $failures failed"
if [[ $status -ne 0 ]]; then exit "$status"; fi
