-- A page of one namespace in any sort is one index range scan too: without these, a
-- namespace filter with a sort other than by key sorted the whole namespace per page
-- (100,000 rows in a large "prod" namespace).
CREATE INDEX targets_in_namespace_by_name    ON targets (namespace, name, kind);
CREATE INDEX targets_in_namespace_by_state   ON targets (namespace, state, kind, name);
CREATE INDEX targets_in_namespace_by_updated ON targets (namespace, updated_at, kind, name);
