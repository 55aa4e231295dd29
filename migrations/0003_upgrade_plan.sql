-- no-transaction
-- The run kind `upgrade-plan` (read-only: the plan for the rest of the Piraeus Operator v1 -> v2
-- upgrade). SQLite cannot change the CHECK on `kind` in place: the table is rebuilt as in
-- 0002_safety_core.sql (sqlite.org/lang_altertable, "making other kinds of table schema changes"),
-- with foreign keys off while `runs` is dropped and renamed, so without sqlx's own transaction.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE runs_new (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('preflight', 'backup', 'migrate', 'upgrade-plan')),
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
    -- JSON: what the steps learned (plan, checks, snapshot, verification, the upgrade plan);
    -- never needed to roll back
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
                      downtime_started_at, downtime_ended_at, rollback_cause, approved_by, switch_requested,
                      orig_recorded_at, orig_connection_url, orig_replicas, orig_config_toml,
                      orig_etcd_stateful_set, orig_etcd_replicas, orig_target)
    SELECT id, kind, controller, state, options, created_by, created_at, started_at, finished_at,
           error, idempotency_key, request_digest, phase, cancel_requested, context,
           downtime_started_at, downtime_ended_at, rollback_cause, approved_by, switch_requested,
           orig_recorded_at, orig_connection_url, orig_replicas, orig_config_toml,
           orig_etcd_stateful_set, orig_etcd_replicas, orig_target
    FROM runs;

DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

-- One run holds a controller at a time: an active one, or one whose rollback has not finished.
CREATE UNIQUE INDEX runs_one_active_per_controller ON runs (controller)
    WHERE state IN ('queued', 'running', 'waiting', 'rollback_failed');
CREATE INDEX runs_created_at ON runs (created_at DESC);

COMMIT;
PRAGMA foreign_keys = ON;
