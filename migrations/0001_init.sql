-- Runs, their steps, their events (log lines, step and run transitions), backups and the audit trail.
-- Times are RFC 3339 UTC text. Every change is written here before anyone is told about it.

CREATE TABLE runs (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('preflight', 'backup', 'migrate')),
    controller       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'rolled_back')),
    options          TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    error            TEXT,
    idempotency_key  TEXT UNIQUE,
    request_digest   TEXT,
    -- 'forward' while steps run; 'rolling_back' while the rollback runs (resumed after a restart)
    phase            TEXT NOT NULL DEFAULT 'forward' CHECK (phase IN ('forward', 'rolling_back')),
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- JSON: what the steps learned (original URL and replicas, plan, snapshot, verification)
    context          TEXT NOT NULL DEFAULT '{}',
    downtime_started_at TEXT,
    downtime_ended_at   TEXT
);

-- One active run per controller, whatever the number of service replicas sharing this file.
CREATE UNIQUE INDEX runs_one_active_per_controller ON runs (controller)
    WHERE state IN ('queued', 'running', 'waiting');
CREATE INDEX runs_created_at ON runs (created_at DESC);

CREATE TABLE steps (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'rolled_back')),
    started_at  TEXT,
    finished_at TEXT,
    message     TEXT,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL REFERENCES runs (id),
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('log', 'step', 'run')),
    step    TEXT,
    -- log lines: info, warn, error, stdout, stderr
    level   TEXT NOT NULL,
    message TEXT NOT NULL,
    data    TEXT
);
CREATE INDEX events_by_run ON events (run_id, seq);

CREATE TABLE backups (
    id              TEXT PRIMARY KEY NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    controller      TEXT NOT NULL,
    file_name       TEXT NOT NULL,
    -- relative to the data directory; never taken from user input
    path            TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    exported_from   TEXT NOT NULL,
    linstor_version TEXT NOT NULL,
    tables          INTEGER NOT NULL,
    rows            INTEGER NOT NULL,
    purpose         TEXT NOT NULL
);
CREATE UNIQUE INDEX backups_run_file ON backups (run_id, file_name);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id),
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_by_run ON audit (run_id, id);
