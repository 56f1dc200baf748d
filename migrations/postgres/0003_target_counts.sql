-- Managed targets by state, kept by a trigger (../sqlite/0003_target_counts.sql explains
-- why). Removed targets are not counted.
CREATE TABLE target_counts (
    state TEXT    COLLATE "C" PRIMARY KEY,
    n     BIGINT  NOT NULL
);

INSERT INTO target_counts (state, n)
    SELECT state, COUNT(*) FROM targets WHERE removed_at IS NULL GROUP BY state;

CREATE FUNCTION target_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.removed_at IS NULL THEN
        UPDATE target_counts SET n = n - 1 WHERE state = OLD.state;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.removed_at IS NULL THEN
        INSERT INTO target_counts (state, n) VALUES (NEW.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = target_counts.n + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER target_counts_insert AFTER INSERT OR DELETE ON targets
    FOR EACH ROW EXECUTE FUNCTION target_counts_follow();

CREATE TRIGGER target_counts_update AFTER UPDATE OF state, removed_at ON targets
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          OR (OLD.removed_at IS NULL) IS DISTINCT FROM (NEW.removed_at IS NULL))
    EXECUTE FUNCTION target_counts_follow();
