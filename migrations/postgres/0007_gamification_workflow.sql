-- Gamification workflow (issue 6, part 4): mission awards paid exactly once, streaks in the patient's
-- time zone, levels from the experience threshold table.
--
-- * A mission's EARNED award is unique per patient: at most one EARNED point transaction with source
--   MISSION per (organization, patient, mission). `onboarding_progress().complete` also locks the
--   progress row and checks its status, so a retried or racing completion finds the mission completed;
--   this index is the database's own guarantee behind that check (and covers manual `record` calls).
--   An existing database that already holds duplicate mission awards fails this migration: resolve them
--   (e.g. keep the first, record a PENALTY for the others in a new transaction) before upgrading.
-- * `health_points.last_active_local_date`: the patient's local calendar date (YYYY-MM-DD, in their
--   time zone at the time) of their latest recorded activity; NULL before the first. Daily streaks count
--   consecutive such dates, weekly streaks consecutive ISO weeks. Stored as text on both backends (the
--   same shape everywhere; the library writes and parses it).
-- * Levels: level n needs 50 * n * (n - 1) experience points (1: 0, 2: 100, 3: 300, 4: 600, ...);
--   `next_level_at` is the threshold of the next level. The library applies the table whenever
--   experience changes; existing accounts are brought onto it here (accounts beyond 5e10 experience,
--   level 31,623, are left to the library's next write).
--
-- No new table: health_points and point_transactions are already under row-level security (0003), and
-- austa_app's table grants cover the new column.

ALTER TABLE health_points ADD COLUMN last_active_local_date TEXT
    CHECK (last_active_local_date IS NULL OR last_active_local_date LIKE '____-__-__');

CREATE UNIQUE INDEX point_transactions_mission_award_key ON point_transactions (organization_id, patient_id, source_mission_id)
    WHERE type = 'EARNED' AND source_type = 'MISSION';

-- Row-level security is forced on health_points, so the owner running this migration would see no row:
-- lift the force for these two statements, inside this migration's transaction.
ALTER TABLE health_points NO FORCE ROW LEVEL SECURITY;
UPDATE health_points SET current_level = (
    WITH RECURSIVE lv(n) AS (
        SELECT CAST(1 AS BIGINT)
        UNION ALL
        SELECT n + 1 FROM lv WHERE (n + 1) * n * 50 <= health_points.experience_points
    )
    SELECT MAX(n) FROM lv
)
WHERE experience_points <= 50000000000;
UPDATE health_points SET next_level_at = (current_level + 1) * current_level * 50
WHERE experience_points <= 50000000000;
ALTER TABLE health_points FORCE ROW LEVEL SECURITY;
