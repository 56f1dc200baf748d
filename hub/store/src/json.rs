//! A JSON column as its text.
//!
//! A decision's metrics, evaluation, reasons and hooks and a target's spec are written once
//! and read many times, by API pages that only pass them on. Holding them as text means a
//! column is serialised once when it is recorded, stored as it is, read back with one
//! validating scan instead of being built into a tree of `serde_json::Value`s, and embedded
//! in a response as it is.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Result, StoreError};

/// A JSON document held as its (compact) text.
#[derive(Clone)]
pub struct Json(Box<RawValue>);

impl Json {
    /// The document `null`.
    pub fn null() -> Json {
        Json(RawValue::NULL.to_owned())
    }

    /// `value` as a document. A value serde cannot encode as JSON (a map with keys that
    /// are not strings) becomes `null`; the hub's own types always encode.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Json {
        serde_json::value::to_raw_value(value).map(Json).unwrap_or_else(|_| Json::null())
    }

    /// The document's text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Reads the document as a `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.text())
    }

    /// The document as a `serde_json::Value` tree.
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }

    /// The document stored in `column`, checked to be JSON.
    pub(crate) fn from_column(column: &'static str, text: String) -> Result<Json> {
        RawValue::from_string(text).map(Json).map_err(|source| StoreError::Json { column, source })
    }
}

impl Default for Json {
    fn default() -> Json {
        Json::null()
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Json {
        Json::of(&value)
    }
}

impl From<&Value> for Json {
    fn from(value: &Value) -> Json {
        Json::of(value)
    }
}

/// Two documents are equal when their texts are: the store writes what it is given and
/// reads back what it wrote, so a document compares equal to itself after a round trip.
impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.text() == other.text()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Json, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Json)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_document_is_embedded_as_it_is_and_reads_back_as_what_it_was() {
        let doc = Json::of(&json!({"b": [1, 2.5, "x"], "a": null}));
        let wrapper = json!({"id": 7, "doc": serde_json::to_value(&doc).unwrap()});
        assert_eq!(wrapper["doc"]["b"][1], json!(2.5));
        let text = serde_json::to_string(&std::collections::BTreeMap::from([("doc", &doc)])).unwrap();
        assert_eq!(text, format!("{{\"doc\":{}}}", doc.text()));
        let back: std::collections::BTreeMap<String, Json> = serde_json::from_str(&text).unwrap();
        assert_eq!(back["doc"], doc);
        assert_eq!(doc.to_value(), json!({"a": null, "b": [1, 2.5, "x"]}));
    }

    #[test]
    fn a_column_that_is_not_json_is_an_error_naming_the_column() {
        let err = Json::from_column("decisions.reasons", "[1, 2".to_owned()).unwrap_err();
        assert!(err.to_string().contains("decisions.reasons"), "{err}");
        assert_eq!(
            Json::from_column("targets.spec", " {\"a\":1} ".to_owned()).unwrap().parse::<Value>().unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn what_json_cannot_encode_is_null() {
        let map = std::collections::HashMap::from([((1, 2), 3)]);
        assert_eq!(Json::of(&map).text(), "null");
        assert_eq!(Json::default(), Json::null());
    }
}
