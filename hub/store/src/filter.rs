//! Target listing: filters, sort orders, pages and their opaque keyset cursors.
//!
//! A cursor holds the sort-key values of the last row of a page; the next page
//! starts strictly after them. Unlike OFFSET this costs the same on page 1 and
//! page 100, and rows inserted meanwhile never shift a page.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::rows::TargetRow;

/// Page size when the filter asks for none.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page served; bigger requests are cut to this.
pub const MAX_LIMIT: u32 = 1000;

/// Orders in which targets can be listed; each has a matching index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetSort {
    /// By namespace, kind, name.
    #[default]
    Key,
    /// By name, then namespace, kind.
    Name,
    /// By state, then namespace, kind, name.
    State,
    /// Most recently updated first.
    Updated,
}

impl TargetSort {
    /// Columns of the ORDER BY, most significant first; always ends unique.
    pub(crate) fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Key => &["namespace", "kind", "name"],
            Self::Name => &["name", "namespace", "kind"],
            Self::State => &["state", "namespace", "kind", "name"],
            Self::Updated => &["updated_at", "namespace", "kind", "name"],
        }
    }

    /// Whether every column sorts descending.
    pub(crate) fn descending(self) -> bool {
        matches!(self, Self::Updated)
    }

    /// The name used in query strings and cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Name => "name",
            Self::State => "state",
            Self::Updated => "updated",
        }
    }

    /// The sort-key values of a row, in `columns()` order.
    pub(crate) fn values(self, row: &TargetRow) -> Vec<Value> {
        let key = &row.key;
        let text = |s: &str| Value::String(s.to_owned());
        match self {
            Self::Key => vec![text(&key.namespace), text(key.kind.as_str()), text(&key.name)],
            Self::Name => vec![text(&key.name), text(&key.namespace), text(key.kind.as_str())],
            Self::State => {
                vec![text(&row.state), text(&key.namespace), text(key.kind.as_str()), text(&key.name)]
            }
            Self::Updated => {
                vec![Value::from(row.updated_at), text(&key.namespace), text(key.kind.as_str()), text(&key.name)]
            }
        }
    }
}

impl FromStr for TargetSort {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "key" => Ok(Self::Key),
            "name" => Ok(Self::Name),
            "state" => Ok(Self::State),
            "updated" => Ok(Self::Updated),
            _ => Err(StoreError::UnknownValue { column: "sort", value: s.to_owned() }),
        }
    }
}

/// What `list_targets` returns and in which order. Deserialises from a query
/// string (`?namespace=&state=&search=&includeRemoved=&sort=&cursor=&limit=`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TargetFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Case-insensitive substring of the name or namespace.
    pub search: Option<String>,
    /// Also list targets that opted out or were deleted.
    pub include_removed: bool,
    /// Sort order.
    pub sort: TargetSort,
    /// `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
    /// Page size; 0 means [`DEFAULT_LIMIT`], capped at [`MAX_LIMIT`].
    pub limit: u32,
}

impl TargetFilter {
    /// The page size actually served.
    pub(crate) fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The rows, in sort order.
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What a cursor carries: the sort it belongs to and the last row's key.
#[derive(Serialize, Deserialize)]
struct CursorBody {
    s: String,
    v: Vec<Value>,
}

/// Encodes the position after `row` for `sort`.
pub(crate) fn encode_cursor(sort: TargetSort, row: &TargetRow) -> String {
    let body = CursorBody { s: sort.as_str().to_owned(), v: sort.values(row) };
    // Serialising strings and integers cannot fail; an empty cursor would only
    // restart the listing, never skip rows.
    let json = serde_json::to_vec(&body).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor, checking it belongs to `sort` and has the right shape.
pub(crate) fn decode_cursor(sort: TargetSort, cursor: &str) -> Result<Vec<Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let columns = sort.columns();
    if body.s != sort.as_str() || body.v.len() != columns.len() {
        return Err(StoreError::BadCursor);
    }
    let well_typed = columns.iter().zip(&body.v).all(|(column, value)| match *column {
        "updated_at" => value.is_i64(),
        _ => value.is_string(),
    });
    if !well_typed {
        return Err(StoreError::BadCursor);
    }
    Ok(body.v)
}

/// Escapes LIKE wildcards so a search for `a_b` matches only `a_b`.
pub(crate) fn like_pattern(search: &str) -> String {
    let mut out = String::with_capacity(search.len() + 2);
    out.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::TargetKey;

    fn row() -> TargetRow {
        TargetRow {
            key: TargetKey::new("ns", crate::Kind::Deployment, "web"),
            uid: None,
            state: "active".into(),
            spec: crate::Json::null(),
            error: None,
            current_replicas: None,
            desired_replicas: None,
            first_seen: 1,
            last_seen: 1,
            removed_at: None,
            updated_at: 42,
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_sort() {
        let cursor = encode_cursor(TargetSort::Updated, &row());
        let values = decode_cursor(TargetSort::Updated, &cursor).unwrap();
        assert_eq!(values[0], Value::from(42));
        assert_eq!(values[3], Value::from("web"));
    }

    #[test]
    fn a_cursor_from_another_sort_is_rejected() {
        let cursor = encode_cursor(TargetSort::Key, &row());
        assert!(matches!(decode_cursor(TargetSort::Name, &cursor), Err(StoreError::BadCursor)));
        assert!(matches!(decode_cursor(TargetSort::Key, "not a cursor"), Err(StoreError::BadCursor)));
    }

    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        assert_eq!(like_pattern("a_b%"), "%a\\_b\\%%");
    }

    #[test]
    fn a_filter_reads_camel_case_fields_and_defaults_the_rest() {
        let filter: TargetFilter =
            serde_json::from_value(serde_json::json!({"includeRemoved": true, "sort": "name"})).unwrap();
        assert!(filter.include_removed);
        assert_eq!(filter.sort, TargetSort::Name);
        assert_eq!(filter.limit, 0);
        assert_eq!(filter.namespace, None);
    }

    #[test]
    fn limit_defaults_and_is_capped() {
        let mut filter = TargetFilter::default();
        assert_eq!(filter.effective_limit(), DEFAULT_LIMIT);
        filter.limit = 50_000;
        assert_eq!(filter.effective_limit(), MAX_LIMIT);
    }
}
