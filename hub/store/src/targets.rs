//! The `targets` table: the writer's upserts and the API's listings.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row as _, SqliteConnection};

use crate::error::{Result, query_err};
use crate::filter::{Page, TargetFilter, decode_cursor, encode_cursor, like_pattern};
use crate::json::Json;
use crate::rows::{TargetKey, TargetRow};
use crate::store::Store;
use crate::writer::Write;

/// Columns read into a [`TargetRow`], in `target_from_row` order.
const COLUMNS: &str = "namespace, kind, name, uid, state, spec, error, current_replicas, \
     desired_replicas, first_seen, last_seen, removed_at, updated_at";

/// Inserts or updates a target; `first_seen` is kept from the first insert.
pub(crate) async fn upsert(conn: &mut SqliteConnection, row: &TargetRow) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO targets (namespace, kind, name, uid, state, spec, error, current_replicas, \
             desired_replicas, first_seen, last_seen, removed_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT (namespace, kind, name) DO UPDATE SET \
             uid = excluded.uid, state = excluded.state, spec = excluded.spec, \
             error = excluded.error, current_replicas = excluded.current_replicas, \
             desired_replicas = excluded.desired_replicas, last_seen = excluded.last_seen, \
             removed_at = excluded.removed_at, updated_at = excluded.updated_at \
         RETURNING id",
    )
    .bind(&row.key.namespace)
    .bind(row.key.kind.as_str())
    .bind(&row.key.name)
    .bind(&row.uid)
    .bind(&row.state)
    .bind(row.spec.text())
    .bind(&row.error)
    .bind(row.current_replicas)
    .bind(row.desired_replicas)
    .bind(row.first_seen)
    .bind(row.last_seen)
    .bind(row.removed_at)
    .bind(row.updated_at)
    .fetch_one(conn)
    .await
    .map_err(query_err("upsert target"))
}

/// Marks a target removed (state `removed`), keeping its row and history.
pub(crate) async fn mark_removed(conn: &mut SqliteConnection, key: &TargetKey, at: i64) -> Result<i64> {
    let done = sqlx::query(
        "UPDATE targets SET removed_at = ?4, state = 'removed', updated_at = ?4 \
         WHERE namespace = ?1 AND kind = ?2 AND name = ?3 AND removed_at IS NULL",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(at)
    .execute(conn)
    .await
    .map_err(query_err("mark target removed"))?;
    Ok(done.rows_affected() as i64)
}

/// Puts a managed target in state `error` with `error`.
pub(crate) async fn set_error(conn: &mut SqliteConnection, key: &TargetKey, error: &str, at: i64) -> Result<i64> {
    let done = sqlx::query(
        "UPDATE targets SET state = 'error', error = ?4, updated_at = ?5 \
         WHERE namespace = ?1 AND kind = ?2 AND name = ?3 AND removed_at IS NULL",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(error)
    .bind(at)
    .execute(conn)
    .await
    .map_err(query_err("set target error"))?;
    Ok(done.rows_affected() as i64)
}

/// The id of a target, inserting a placeholder (state `unknown`) if the hub
/// writes about a target it never upserted, so that no decision is lost.
pub(crate) async fn resolve_id(
    conn: &mut SqliteConnection,
    ids: &mut HashMap<TargetKey, i64>,
    key: &TargetKey,
    at: i64,
) -> Result<i64> {
    if let Some(id) = ids.get(key) {
        return Ok(*id);
    }
    sqlx::query(
        "INSERT INTO targets (namespace, kind, name, state, first_seen, last_seen, updated_at) \
         VALUES (?1, ?2, ?3, 'unknown', ?4, ?4, ?4) ON CONFLICT DO NOTHING",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(query_err("insert placeholder target"))?;
    let id: i64 = sqlx::query_scalar("SELECT id FROM targets WHERE namespace = ?1 AND kind = ?2 AND name = ?3")
        .bind(&key.namespace)
        .bind(key.kind.as_str())
        .bind(&key.name)
        .fetch_one(conn)
        .await
        .map_err(query_err("look up target id"))?;
    ids.insert(key.clone(), id);
    Ok(id)
}

/// The id of every target, by key.
pub(crate) async fn all_ids(conn: &mut SqliteConnection) -> Result<HashMap<TargetKey, i64>> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as("SELECT id, namespace, kind, name FROM targets")
        .fetch_all(conn)
        .await
        .map_err(query_err("read target ids"))?;
    rows.into_iter()
        .map(|(id, namespace, kind, name)| {
            Ok((TargetKey { namespace, kind: crate::codec::workload_kind(kind)?, name }, id))
        })
        .collect()
}

/// Reads a [`TargetRow`] from a row selected with [`COLUMNS`].
fn target_from_row(row: &SqliteRow) -> Result<TargetRow> {
    let get = query_err("decode target");
    let spec: String = row.try_get(5).map_err(get)?;
    Ok(TargetRow {
        key: TargetKey {
            namespace: row.try_get(0).map_err(get)?,
            kind: crate::codec::workload_kind(row.try_get(1).map_err(get)?)?,
            name: row.try_get(2).map_err(get)?,
        },
        uid: row.try_get(3).map_err(get)?,
        state: row.try_get(4).map_err(get)?,
        spec: Json::from_column("targets.spec", spec)?,
        error: row.try_get(6).map_err(get)?,
        current_replicas: row.try_get(7).map_err(get)?,
        desired_replicas: row.try_get(8).map_err(get)?,
        first_seen: row.try_get(9).map_err(get)?,
        last_seen: row.try_get(10).map_err(get)?,
        removed_at: row.try_get(11).map_err(get)?,
        updated_at: row.try_get(12).map_err(get)?,
    })
}

/// A value bound into a dynamically built query.
enum Arg {
    Text(String),
    Int(i64),
}

/// The SQL and arguments of one `list_targets` page (one row more than the
/// limit, which tells whether another page exists).
fn list_query(filter: &TargetFilter) -> Result<(String, Vec<Arg>)> {
    let sort = filter.sort;
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(namespace) = &filter.namespace {
        conditions.push("namespace = ?".to_owned());
        args.push(Arg::Text(namespace.clone()));
    }
    if let Some(state) = &filter.state {
        conditions.push("state = ?".to_owned());
        args.push(Arg::Text(state.clone()));
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        conditions.push("(name LIKE ? ESCAPE '\\' OR namespace LIKE ? ESCAPE '\\')".to_owned());
        args.push(Arg::Text(like_pattern(search)));
        args.push(Arg::Text(like_pattern(search)));
    }
    if !filter.include_removed {
        conditions.push("removed_at IS NULL".to_owned());
    }
    let columns = sort.columns().join(", ");
    let (cmp, direction) = if sort.descending() { ("<", "DESC") } else { (">", "ASC") };
    if let Some(cursor) = &filter.cursor {
        // A row-value comparison is a range on the sort's index.
        let values = decode_cursor(sort, cursor)?;
        let marks = vec!["?"; values.len()].join(", ");
        conditions.push(format!("({columns}) {cmp} ({marks})"));
        args.extend(values.into_iter().map(|value| match value {
            Value::String(text) => Arg::Text(text),
            other => Arg::Int(other.as_i64().unwrap_or_default()),
        }));
    }
    let filter_sql = match conditions.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conditions.join(" AND ")),
    };
    let order = sort.columns().iter().map(|c| format!("{c} {direction}")).collect::<Vec<_>>().join(", ");
    let limit = filter.effective_limit() + 1;
    Ok((format!("SELECT {COLUMNS} FROM targets {filter_sql} ORDER BY {order} LIMIT {limit}"), args))
}

impl Store {
    /// Inserts or updates a target and waits for the commit.
    ///
    /// `first_seen` is only used when the target is new; set `removed_at` to
    /// `None` to bring a removed target back.
    pub async fn upsert_target(&self, row: TargetRow) -> Result<()> {
        self.write(Write::UpsertTarget(Box::new(row))).await.map(|_| ())
    }

    /// Upserts many targets (e.g. the watch's initial list) in few
    /// transactions and waits for all; the first error is returned.
    pub async fn upsert_targets(&self, rows: Vec<TargetRow>) -> Result<()> {
        let ops = rows.into_iter().map(|row| Write::UpsertTarget(Box::new(row)));
        self.write_all(ops).await.map(|_| ())
    }

    /// Marks a target removed (opted out or deleted) at `at`; its history stays.
    ///
    /// Returns whether a managed target was found.
    pub async fn mark_target_removed(&self, key: &TargetKey, at: i64) -> Result<bool> {
        let changed = self.write(Write::MarkRemoved { key: key.clone(), at }).await?;
        Ok(changed > 0)
    }

    /// Puts a managed target in state `error` with `error` (its next tick says what it is
    /// then); returns whether a managed target was found.
    pub async fn set_target_error(&self, key: &TargetKey, error: &str, at: i64) -> Result<bool> {
        let changed = self.write(Write::TargetError { key: key.clone(), error: error.to_owned(), at }).await?;
        Ok(changed > 0)
    }

    /// One target, removed or not.
    pub async fn get_target(&self, key: &TargetKey) -> Result<Option<TargetRow>> {
        let sql = format!("SELECT {COLUMNS} FROM targets WHERE namespace = ?1 AND kind = ?2 AND name = ?3");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&key.namespace)
            .bind(key.kind.as_str())
            .bind(&key.name)
            .fetch_optional(self.pool())
            .await
            .map_err(query_err("get target"))?;
        row.as_ref().map(target_from_row).transpose()
    }

    /// One page of targets matching `filter`, in its sort order.
    ///
    /// Keyset pagination: pass `next_cursor` back as `filter.cursor` with the
    /// same sort; each target appears exactly once across the pages.
    pub async fn list_targets(&self, filter: &TargetFilter) -> Result<Page<TargetRow>> {
        let limit = filter.effective_limit() as usize;
        let (sql, args) = list_query(filter)?;
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(self.pool()).await.map_err(query_err("list targets"))?;
        let mut items = rows.iter().map(target_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|row| encode_cursor(filter.sort, row))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// How many managed (not removed) targets are in each state.
    pub async fn counts_by_state(&self) -> Result<BTreeMap<String, u64>> {
        let rows: Vec<(String, i64)> =
            // Kept by triggers on `targets` (migration 0003): one small read, not a count.
            sqlx::query_as("SELECT state, n FROM target_counts WHERE n > 0")
                .fetch_all(self.pool())
                .await
                .map_err(query_err("count targets by state"))?;
        Ok(rows.into_iter().map(|(state, n)| (state, n.max(0) as u64)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::TargetSort;

    fn row(state: &str) -> TargetRow {
        TargetRow {
            key: TargetKey::new("ns", crate::Kind::Deployment, "web"),
            uid: None,
            state: state.into(),
            spec: crate::Json::null(),
            error: None,
            current_replicas: None,
            desired_replicas: None,
            first_seen: 0,
            last_seen: 0,
            removed_at: None,
            updated_at: 7,
        }
    }

    /// The query plan of a page that continues after `row` in `sort`.
    async fn plan(store: &Store, sort: TargetSort, state: Option<&str>, namespace: Option<&str>) -> String {
        let filter = TargetFilter {
            sort,
            state: state.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            cursor: Some(encode_cursor(sort, &row("active"))),
            ..TargetFilter::default()
        };
        let (sql, args) = list_query(&filter).unwrap();
        let mut query = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(store.pool()).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>(3)).collect::<Vec<_>>().join("; ")
    }

    #[tokio::test]
    async fn every_sort_pages_by_an_index_range_without_sorting() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for (sort, state, namespace) in [
            (TargetSort::Key, None, None),
            (TargetSort::Name, None, None),
            (TargetSort::State, None, None),
            (TargetSort::Updated, None, None),
            (TargetSort::Key, Some("active"), None),
            (TargetSort::Key, None, Some("shop")),
            (TargetSort::Name, None, Some("shop")),
            (TargetSort::State, None, Some("shop")),
            (TargetSort::Updated, None, Some("shop")),
        ] {
            let plan = plan(&store, sort, state, namespace).await;
            assert!(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"), "{sort:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sort:?} sorts in memory: {plan}");
        }
    }

    /// What a full count of the table says, to check the trigger-kept counts against.
    async fn recount(store: &Store) -> BTreeMap<String, u64> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM targets WHERE removed_at IS NULL GROUP BY state")
                .fetch_all(store.pool())
                .await
                .unwrap();
        rows.into_iter().map(|(state, n)| (state, n as u64)).collect()
    }

    #[tokio::test]
    async fn counts_follow_every_insert_state_change_removal_and_return() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let named = |name: &str, state: &str| TargetRow {
            key: TargetKey::new("ns", crate::Kind::Deployment, name),
            ..row(state)
        };
        for (i, state) in ["pending", "active", "active", "invalid"].iter().enumerate() {
            store.upsert_target(named(&format!("w{i}"), state)).await.unwrap();
        }
        let expect = |pairs: &[(&str, u64)]| pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 2), ("invalid", 1), ("pending", 1)]));
        // A state change moves one count; rewriting the same state moves none.
        store.upsert_target(named("w0", "active")).await.unwrap();
        store.upsert_target(named("w0", "active")).await.unwrap();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 3), ("invalid", 1)]));
        // Removal uncounts; removing twice changes nothing; coming back counts again.
        let w3 = TargetKey::new("ns", crate::Kind::Deployment, "w3");
        store.mark_target_removed(&w3, 9).await.unwrap();
        store.mark_target_removed(&w3, 10).await.unwrap();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 3)]));
        store.upsert_target(named("w3", "error")).await.unwrap();
        assert_eq!(store.counts_by_state().await.unwrap(), expect(&[("active", 3), ("error", 1)]));
        assert_eq!(store.counts_by_state().await.unwrap(), recount(&store).await);
    }
}
