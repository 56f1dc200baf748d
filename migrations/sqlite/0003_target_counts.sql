-- Managed targets by state, kept by triggers so that every page of the API can say how
-- many targets are in each state without counting the whole table (tens of milliseconds
-- at 100,000 targets). Removed targets are not counted.
CREATE TABLE target_counts (
    state TEXT    PRIMARY KEY,
    n     INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO target_counts (state, n)
    SELECT state, COUNT(*) FROM targets WHERE removed_at IS NULL GROUP BY state;

CREATE TRIGGER target_counts_insert AFTER INSERT ON targets
WHEN new.removed_at IS NULL
BEGIN
    INSERT INTO target_counts (state, n) VALUES (new.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER target_counts_delete AFTER DELETE ON targets
WHEN old.removed_at IS NULL
BEGIN
    UPDATE target_counts SET n = n - 1 WHERE state = old.state;
END;

CREATE TRIGGER target_counts_update AFTER UPDATE OF state, removed_at ON targets
WHEN old.state IS NOT new.state OR (old.removed_at IS NULL) IS NOT (new.removed_at IS NULL)
BEGIN
    UPDATE target_counts SET n = n - 1 WHERE state = old.state AND old.removed_at IS NULL;
    INSERT INTO target_counts (state, n) SELECT new.state, 1 WHERE new.removed_at IS NULL
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
