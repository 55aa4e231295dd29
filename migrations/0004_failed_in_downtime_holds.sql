-- A run that failed inside the downtime (automatic rollback off: the controller stays stopped
-- until the run is resumed or rolled back) holds its controller like an active run: a second
-- run would otherwise record the stopped controller's 0 replicas as what a rollback restores.
--
-- An older database may hold such a run next to a newer run of the same controller (allowed
-- until now). The newer run means someone dealt with the controller since (as the downtime
-- gauge reads it, db/downtime.rs): the older run's downtime is taken to have ended when the next
-- run of its controller was created, so that the index below can be built.
UPDATE runs
SET downtime_ended_at = (
    SELECT MIN(n.created_at) FROM runs AS n
    WHERE n.controller = runs.controller AND n.created_at > runs.created_at
)
WHERE state = 'failed' AND downtime_started_at IS NOT NULL AND downtime_ended_at IS NULL
  AND EXISTS (SELECT 1 FROM runs AS n WHERE n.controller = runs.controller AND n.created_at > runs.created_at);

DROP INDEX runs_one_active_per_controller;
-- The same condition as `holding!()` in src/db/runs.rs.
CREATE UNIQUE INDEX runs_one_active_per_controller ON runs (controller)
    WHERE state IN ('queued', 'running', 'waiting', 'rollback_failed')
       OR (state = 'failed' AND downtime_started_at IS NOT NULL AND downtime_ended_at IS NULL);
