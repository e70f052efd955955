-- Gamification workflow, SQLite flavour of migrations/postgres/0007_gamification_workflow.sql (see there
-- for the reasons): mission awards unique per patient, the local date of the latest activity for
-- streaks, levels brought onto the experience threshold table.

ALTER TABLE health_points ADD COLUMN last_active_local_date TEXT
    CHECK (last_active_local_date IS NULL OR last_active_local_date LIKE '____-__-__');

CREATE UNIQUE INDEX point_transactions_mission_award_key ON point_transactions (organization_id, patient_id, source_mission_id)
    WHERE type = 'EARNED' AND source_type = 'MISSION';

UPDATE health_points SET current_level = (
    WITH RECURSIVE lv(n) AS (
        SELECT CAST(1 AS INTEGER)
        UNION ALL
        SELECT n + 1 FROM lv WHERE (n + 1) * n * 50 <= health_points.experience_points
    )
    SELECT MAX(n) FROM lv
)
WHERE experience_points <= 50000000000;
UPDATE health_points SET next_level_at = (current_level + 1) * current_level * 50
WHERE experience_points <= 50000000000;
