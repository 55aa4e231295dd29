-- What this service does with LINSTOR's `k8s` backend (cluster-wide), newest last: a run that is
-- about to write it says so (`writing`), and when it ends it records the backend's inventory then:
-- `left` (failed, cancelled, rolled back: a later run may replace exactly that) or `in_use` (the
-- migrated controller runs on it). A later run may delete objects it finds only when the newest
-- record is `left` and the backend is still exactly as it says: anything else may belong to
-- another LINSTOR, or to a run in progress.
CREATE TABLE backend_writes (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('writing', 'left', 'in_use')),
    -- `spec.version` of the `LinstorVersion` object, when there was one
    schema_version INTEGER,
    -- export rows in all
    objects        INTEGER NOT NULL,
    -- JSON object: CRD plural -> export rows, for the CRDs that held any
    counts         TEXT NOT NULL
);
