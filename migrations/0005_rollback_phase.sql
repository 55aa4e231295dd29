-- A rollback as a phase of its own: when it began, and when it stopped and started the controller.
-- A rollback that begins after the migration's downtime ended (a manual rollback after success, or
-- after a failure past the start) has a downtime of its own; the migration's figures stay as they were.
ALTER TABLE runs ADD COLUMN rollback_started_at TEXT;
ALTER TABLE runs ADD COLUMN rollback_downtime_started_at TEXT;
ALTER TABLE runs ADD COLUMN rollback_downtime_ended_at TEXT;
