-- no-transaction
-- The safety core: the state `rollback_failed`, what a rollback needs in columns of its own
-- (written at preflight, frozen once the downtime begins), the first cause of a rollback, who
-- approved the downtime, and whether the switch to `k8s` was asked for.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt (sqlite.org/lang_altertable,
-- "making other kinds of table schema changes"). The other tables refer to runs(id) by name, so
-- foreign keys are off while it is dropped and renamed, which needs a migration without sqlx's
-- own transaction.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE runs_new (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('preflight', 'backup', 'migrate')),
    controller       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'waiting', 'succeeded', 'failed',
                                                    'cancelled', 'rolled_back', 'rollback_failed')),
    options          TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    error            TEXT,
    idempotency_key  TEXT UNIQUE,
    request_digest   TEXT,
    -- 'forward' while steps run; 'rolling_back' from the moment a rollback begins, for good
    phase            TEXT NOT NULL DEFAULT 'forward' CHECK (phase IN ('forward', 'rolling_back')),
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- JSON: what the steps learned (plan, checks, snapshot, verification); never needed to roll back
    context          TEXT NOT NULL DEFAULT '{}',
    downtime_started_at TEXT,
    downtime_ended_at   TEXT,
    -- the first reason a rollback began (set once)
    rollback_cause   TEXT,
    approved_by      TEXT,
    -- the switch to `k8s` was asked for (the controller's URL may say `k8s` from then on)
    switch_requested INTEGER NOT NULL DEFAULT 0,
    -- what a rollback restores, recorded by preflight and frozen once the downtime begins
    orig_recorded_at     TEXT,
    orig_connection_url  TEXT,
    orig_replicas        INTEGER,
    orig_config_toml     TEXT,
    orig_etcd_stateful_set TEXT,
    orig_etcd_replicas   INTEGER,
    -- JSON `Target`: the object patched (CR or Deployment + ConfigMap), its pods and REST service
    orig_target          TEXT
);

INSERT INTO runs_new (id, kind, controller, state, options, created_by, created_at, started_at, finished_at,
                      error, idempotency_key, request_digest, phase, cancel_requested, context,
                      downtime_started_at, downtime_ended_at)
    SELECT id, kind, controller, state, options, created_by, created_at, started_at, finished_at,
           error, idempotency_key, request_digest, phase, cancel_requested, context,
           downtime_started_at, downtime_ended_at
    FROM runs;

DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

-- One run holds a controller at a time: an active one, or one whose rollback has not finished.
CREATE UNIQUE INDEX runs_one_active_per_controller ON runs (controller)
    WHERE state IN ('queued', 'running', 'waiting', 'rollback_failed');
CREATE INDEX runs_created_at ON runs (created_at DESC);

COMMIT;
PRAGMA foreign_keys = ON;
