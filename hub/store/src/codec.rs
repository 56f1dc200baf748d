//! Conversions between row fields and column values.

use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::rows::{Kind, OverrideKind, PauseDirection};

/// Free text as it is stored. A NUL character, which PostgreSQL's `text` cannot hold and a
/// hook's output or an API caller may send, becomes U+FFFD on both backends alike, so that a
/// decision is never refused for its error message.
pub(crate) fn text(value: &str) -> std::borrow::Cow<'_, str> {
    match value.contains('\0') {
        true => std::borrow::Cow::Owned(value.replace('\0', "\u{fffd}")),
        false => std::borrow::Cow::Borrowed(value),
    }
}

/// Serialises a JSON column.
pub(crate) fn json_text(column: &'static str, value: &Value) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Json { column, source })
}

/// Parses a JSON column.
pub(crate) fn json_value(column: &'static str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { column, source })
}

/// Column text of an override kind.
pub(crate) fn kind_text(kind: OverrideKind) -> &'static str {
    match kind {
        OverrideKind::Pin => "pin",
        OverrideKind::Bounds => "bounds",
        OverrideKind::Pause => "pause",
    }
}

/// Parses an override kind column.
pub(crate) fn kind_from(text: String) -> Result<OverrideKind> {
    match text.as_str() {
        "pin" => Ok(OverrideKind::Pin),
        "bounds" => Ok(OverrideKind::Bounds),
        "pause" => Ok(OverrideKind::Pause),
        _ => Err(StoreError::UnknownValue { column: "overrides.kind", value: text }),
    }
}

/// Column text of a pause direction.
pub(crate) fn direction_text(direction: PauseDirection) -> &'static str {
    match direction {
        PauseDirection::Up => "up",
        PauseDirection::Down => "down",
        PauseDirection::Both => "both",
    }
}

/// Parses a pause direction column.
pub(crate) fn direction_from(text: String) -> Result<PauseDirection> {
    match text.as_str() {
        "up" => Ok(PauseDirection::Up),
        "down" => Ok(PauseDirection::Down),
        "both" => Ok(PauseDirection::Both),
        _ => Err(StoreError::UnknownValue { column: "overrides.pause_direction", value: text }),
    }
}

/// Parses a workload kind column. Kinds are stored as Kubernetes spells them; a kind that
/// the config no longer lists under `extraKinds` still names its targets' history (as a
/// kind that is not served), so one dropped kind never makes the store unreadable.
pub(crate) fn workload_kind(text: String) -> Result<Kind> {
    if text.is_empty() {
        return Err(StoreError::UnknownValue { column: "targets.kind", value: text });
    }
    Ok(Kind::named(&text))
}
