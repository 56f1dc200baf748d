//! The `targets` table: the writer's upserts and the API's listings.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::backend::{Backend, Cells, Conn, on_db};
use crate::codec::text;
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
pub(crate) async fn upsert(conn: &mut Conn, row: &TargetRow) -> Result<i64> {
    on_db!(conn, c => sqlx::query_scalar(
        "INSERT INTO targets (namespace, kind, name, uid, state, spec, error, current_replicas, \
             desired_replicas, first_seen, last_seen, removed_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
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
    .bind(row.error.as_deref().map(text))
    .bind(row.current_replicas)
    .bind(row.desired_replicas)
    .bind(row.first_seen)
    .bind(row.last_seen)
    .bind(row.removed_at)
    .bind(row.updated_at)
    .fetch_one(c)
    .await)
    .map_err(query_err("upsert target"))
}

/// Marks a target removed (state `removed`), keeping its row and history.
pub(crate) async fn mark_removed(conn: &mut Conn, key: &TargetKey, at: i64) -> Result<i64> {
    let affected = on_db!(conn, c => sqlx::query(
        "UPDATE targets SET removed_at = $4, state = 'removed', updated_at = $4 \
         WHERE namespace = $1 AND kind = $2 AND name = $3 AND removed_at IS NULL",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(at)
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("mark target removed"))?;
    Ok(affected as i64)
}

/// Puts a managed target in state `error` with `error`.
pub(crate) async fn set_error(conn: &mut Conn, key: &TargetKey, error: &str, at: i64) -> Result<i64> {
    let affected = on_db!(conn, c => sqlx::query(
        "UPDATE targets SET state = 'error', error = $4, updated_at = $5 \
         WHERE namespace = $1 AND kind = $2 AND name = $3 AND removed_at IS NULL",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(text(error))
    .bind(at)
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("set target error"))?;
    Ok(affected as i64)
}

/// The id of a target, inserting a placeholder (state `unknown`) if the hub
/// writes about a target it never upserted, so that no decision is lost.
pub(crate) async fn resolve_id(
    conn: &mut Conn,
    ids: &mut HashMap<TargetKey, i64>,
    key: &TargetKey,
    at: i64,
) -> Result<i64> {
    if let Some(id) = ids.get(key) {
        return Ok(*id);
    }
    on_db!(&mut *conn, c => sqlx::query(
        "INSERT INTO targets (namespace, kind, name, state, first_seen, last_seen, updated_at) \
         VALUES ($1, $2, $3, 'unknown', $4, $4, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .bind(at)
    .execute(c)
    .await
    .map(|_| ()))
    .map_err(query_err("insert placeholder target"))?;
    let id: i64 = on_db!(conn, c => sqlx::query_scalar(
        "SELECT id FROM targets WHERE namespace = $1 AND kind = $2 AND name = $3",
    )
    .bind(&key.namespace)
    .bind(key.kind.as_str())
    .bind(&key.name)
    .fetch_one(c)
    .await)
    .map_err(query_err("look up target id"))?;
    ids.insert(key.clone(), id);
    Ok(id)
}

/// The id of every target, by key.
pub(crate) async fn all_ids(conn: &mut Conn) -> Result<HashMap<TargetKey, i64>> {
    let rows: Vec<(i64, String, String, String)> =
        on_db!(conn, c => sqlx::query_as("SELECT id, namespace, kind, name FROM targets").fetch_all(c).await)
            .map_err(query_err("read target ids"))?;
    rows.into_iter()
        .map(|(id, namespace, kind, name)| {
            Ok((TargetKey { namespace, kind: crate::codec::workload_kind(kind)?, name }, id))
        })
        .collect()
}

/// Reads a [`TargetRow`] from a row selected with [`COLUMNS`].
fn target_from_row(row: &impl Cells) -> Result<TargetRow> {
    let get = query_err("decode target");
    let spec: String = row.cell(5).map_err(get)?;
    Ok(TargetRow {
        key: TargetKey {
            namespace: row.cell(0).map_err(get)?,
            kind: crate::codec::workload_kind(row.cell(1).map_err(get)?)?,
            name: row.cell(2).map_err(get)?,
        },
        uid: row.cell(3).map_err(get)?,
        state: row.cell(4).map_err(get)?,
        spec: Json::from_column("targets.spec", spec)?,
        error: row.cell(6).map_err(get)?,
        current_replicas: row.cell(7).map_err(get)?,
        desired_replicas: row.cell(8).map_err(get)?,
        first_seen: row.cell(9).map_err(get)?,
        last_seen: row.cell(10).map_err(get)?,
        removed_at: row.cell(11).map_err(get)?,
        updated_at: row.cell(12).map_err(get)?,
    })
}

/// A value bound into a dynamically built query.
enum Arg {
    Text(String),
    Int(i64),
}

/// The SQL and arguments of one `list_targets` page (one row more than the
/// limit, which tells whether another page exists).
fn list_query(backend: Backend, filter: &TargetFilter) -> Result<(String, Vec<Arg>)> {
    let sort = filter.sort;
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(namespace) = &filter.namespace {
        args.push(Arg::Text(namespace.clone()));
        conditions.push(format!("namespace = ${}", args.len()));
    }
    if let Some(state) = &filter.state {
        args.push(Arg::Text(state.clone()));
        conditions.push(format!("state = ${}", args.len()));
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        args.push(Arg::Text(like_pattern(search)));
        let n = args.len();
        let like = backend.ilike();
        conditions.push(format!("(name {like} ${n} ESCAPE '\\' OR namespace {like} ${n} ESCAPE '\\')"));
    }
    if !filter.include_removed {
        conditions.push("removed_at IS NULL".to_owned());
    }
    let columns = sort.columns().join(", ");
    let (cmp, direction) = if sort.descending() { ("<", "DESC") } else { (">", "ASC") };
    if let Some(cursor) = &filter.cursor {
        // A row-value comparison is a range on the sort's index.
        let values = decode_cursor(sort, cursor)?;
        let marks = (1..=values.len()).map(|i| format!("${}", args.len() + i)).collect::<Vec<_>>().join(", ");
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
        let sql = format!("SELECT {COLUMNS} FROM targets WHERE namespace = $1 AND kind = $2 AND name = $3");
        on_db!(self.pool(), pool => {
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(&key.namespace)
                .bind(key.kind.as_str())
                .bind(&key.name)
                .fetch_optional(pool)
                .await
                .map_err(query_err("get target"))?;
            row.as_ref().map(target_from_row).transpose()
        })
    }

    /// One page of targets matching `filter`, in its sort order.
    ///
    /// Keyset pagination: pass `next_cursor` back as `filter.cursor` with the
    /// same sort; each target appears exactly once across the pages.
    pub async fn list_targets(&self, filter: &TargetFilter) -> Result<Page<TargetRow>> {
        let limit = filter.effective_limit() as usize;
        let (sql, args) = list_query(self.backend(), filter)?;
        let mut items = on_db!(self.pool(), pool => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for arg in args {
                query = match arg {
                    Arg::Text(text) => query.bind(text),
                    Arg::Int(int) => query.bind(int),
                };
            }
            let rows = query.fetch_all(pool).await.map_err(query_err("list targets"))?;
            rows.iter().map(target_from_row).collect::<Result<Vec<_>>>()?
        });
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
            on_db!(self.pool(), pool => sqlx::query_as("SELECT state, n FROM target_counts WHERE n > 0")
                .fetch_all(pool)
                .await)
                .map_err(query_err("count targets by state"))?;
        Ok(rows.into_iter().map(|(state, n)| (state, n.max(0) as u64)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::TargetSort;
    use sqlx::Row as _;

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
        let (sql, args) = list_query(Backend::Sqlite, &filter).unwrap();
        let mut query = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        let rows = query.fetch_all(store.sqlite_pool()).await.unwrap();
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
}
