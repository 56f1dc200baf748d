//! The evaluate hook's answer, `{"targetReplicas": N}`, read as the CPA reads it — with one
//! deliberate difference.
//!
//! The CPA decodes it with Go's `encoding/json` into an `int32`, so scalehub accepts what that
//! accepts: the key in any letter case (`TargetReplicas`; of several spellings the last one
//! wins, as in Go), and a negative count (the policy then clamps it to the minimum, and the
//! reason says so). It rejects what Go rejects: floats (`3.0`), strings, values outside int32.
//!
//! The difference: Go turns a missing field or `null` into 0, a silent scale to zero with
//! `minReplicas: 0`; scalehub rejects anything that is not an explicit count.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A parsed evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The replica count the evaluate hook asks for (before clamping and stabilisation).
    #[serde(rename = "targetReplicas")]
    pub target_replicas: i32,
    /// Any other fields the hook printed, kept for the record and for `postEvaluate`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Evaluation {
    /// An evaluation with just a target.
    pub fn new(target_replicas: i32) -> Self {
        Evaluation { target_replicas, extra: Map::new() }
    }
}

/// Why an evaluate hook's output was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// Nothing but whitespace was printed.
    #[error("evaluation output is empty; expected {{\"targetReplicas\": N}}")]
    Empty,
    /// The output does not parse as one JSON document (trailing text included).
    #[error("evaluation output is not valid json: {0}")]
    NotJson(String),
    /// The JSON is valid but not an object.
    #[error("evaluation must be a json object, got {0}")]
    NotObject(&'static str),
    /// The object has no `targetReplicas` key.
    #[error("evaluation has no targetReplicas field")]
    Missing,
    /// `targetReplicas` is present but not an integer (null, string, float, ...).
    #[error("targetReplicas must be an integer, got {0}")]
    NotInteger(String),
    /// `targetReplicas` does not fit the Kubernetes int32 replica count.
    #[error("targetReplicas {0} is outside the int32 range of a replica count")]
    TooLarge(String),
}

/// Parses an evaluate hook's stdout into an [`Evaluation`].
pub fn parse_evaluation(stdout: &str) -> Result<Evaluation, EvaluationError> {
    if stdout.trim().is_empty() {
        return Err(EvaluationError::Empty);
    }
    let value: Value = serde_json::from_str(stdout).map_err(|e| EvaluationError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(EvaluationError::NotObject(json_type(&value)));
    }
    // Go decodes every key that matches the field in turn, so the last spelling stays; a `Map`
    // sorts its keys, so the document is read again for their order (outputs are small).
    let Ordered(entries) = serde_json::from_str(stdout).map_err(|e| EvaluationError::NotJson(e.to_string()))?;
    let mut raw = None;
    let mut extra = Map::new();
    for (key, value) in entries {
        if key.eq_ignore_ascii_case("targetReplicas") {
            raw = Some(value);
        } else {
            extra.insert(key, value);
        }
    }
    let raw = raw.ok_or(EvaluationError::Missing)?;
    let target_replicas = replica_count(&raw)?;
    Ok(Evaluation { target_replicas, extra })
}

/// A JSON object's entries in document order.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Checks that a JSON value is an integer that fits an int32.
fn replica_count(raw: &Value) -> Result<i32, EvaluationError> {
    let Value::Number(n) = raw else {
        return Err(EvaluationError::NotInteger(describe(raw)));
    };
    if let Some(i) = n.as_i64() {
        return i32::try_from(i).map_err(|_| EvaluationError::TooLarge(i.to_string()));
    }
    if n.is_u64() {
        return Err(EvaluationError::TooLarge(n.to_string()));
    }
    // serde_json reads `3.0` and `1e2` as floats: a script that means an integer prints one.
    Err(EvaluationError::NotInteger(n.to_string()))
}

/// A value shown in an error: numbers and short strings verbatim, otherwise the type name.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() <= 32 => format!("the string {s:?}"),
        Value::Number(n) => n.to_string(),
        other => json_type(other).to_string(),
    }
}

/// The JSON type name of a value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_evaluations_parse_and_keep_extra_fields() {
        let cases: &[(&str, i32)] = &[
            (r#"{"targetReplicas": 3}"#, 3),
            ("{\"targetReplicas\":0}\n", 0),
            (r#"  {"targetReplicas": 2147483647}  "#, i32::MAX),
            (r#"{"targetReplicas": 5, "reason": "queue depth"}"#, 5),
        ];
        for (input, want) in cases {
            let got = parse_evaluation(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.target_replicas, *want, "{input}");
        }
        let with_extra = parse_evaluation(r#"{"targetReplicas": 5, "reason": "queue"}"#).unwrap();
        assert_eq!(with_extra.extra.get("reason"), Some(&Value::from("queue")));
    }

    const EMPTY: &str = "evaluation output is empty; expected {\"targetReplicas\": N}";

    #[test]
    fn invalid_evaluations_are_rejected_with_precise_messages() {
        let cases: &[(&str, EvaluationError, &str)] = &[
            ("", EvaluationError::Empty, EMPTY),
            (" \n", EvaluationError::Empty, EMPTY),
            ("{}", EvaluationError::Missing, "evaluation has no targetReplicas field"),
            (
                r#"{"targetReplicas": null}"#,
                EvaluationError::NotInteger("null".into()),
                "targetReplicas must be an integer, got null",
            ),
            (
                r#"{"TargetReplicas": null}"#,
                EvaluationError::NotInteger("null".into()),
                "targetReplicas must be an integer, got null",
            ),
            (r#"{"target_replicas": 3}"#, EvaluationError::Missing, "evaluation has no targetReplicas field"),
            (
                r#"{"targetReplicas": -2147483649}"#,
                EvaluationError::TooLarge("-2147483649".into()),
                "targetReplicas -2147483649 is outside the int32 range of a replica count",
            ),
            (
                r#"{"targetReplicas": 2.5}"#,
                EvaluationError::NotInteger("2.5".into()),
                "targetReplicas must be an integer, got 2.5",
            ),
            (
                r#"{"targetReplicas": 3.0}"#,
                EvaluationError::NotInteger("3.0".into()),
                "targetReplicas must be an integer, got 3.0",
            ),
            (
                r#"{"targetReplicas": "3"}"#,
                EvaluationError::NotInteger("the string \"3\"".into()),
                "targetReplicas must be an integer, got the string \"3\"",
            ),
            (
                r#"{"targetReplicas": 2147483648}"#,
                EvaluationError::TooLarge("2147483648".into()),
                "targetReplicas 2147483648 is outside the int32 range of a replica count",
            ),
            (
                r#"{"targetReplicas": 18446744073709551615}"#,
                EvaluationError::TooLarge("18446744073709551615".into()),
                "targetReplicas 18446744073709551615 is outside the int32 range of a replica count",
            ),
            ("[1, 2]", EvaluationError::NotObject("an array"), "evaluation must be a json object, got an array"),
            ("7", EvaluationError::NotObject("a number"), "evaluation must be a json object, got a number"),
        ];
        for (input, want, message) in cases {
            let err = parse_evaluation(input).expect_err(input);
            assert_eq!(&err, want, "{input}");
            assert_eq!(err.to_string(), *message, "{input}");
        }
    }

    #[test]
    fn what_go_accepts_is_accepted_as_go_reads_it() {
        let cases: &[(&str, i32)] = &[
            (r#"{"TargetReplicas": 3}"#, 3),
            (r#"{"TARGETREPLICAS": 4}"#, 4),
            // Go decodes every matching key in turn: the last one stays.
            (r#"{"targetReplicas": 1, "TargetReplicas": 6}"#, 6),
            (r#"{"TargetReplicas": 6, "targetReplicas": 1}"#, 1),
            // An int32 may be negative; the policy clamps it to the minimum.
            (r#"{"targetReplicas": -3}"#, -3),
            (r#"{"targetReplicas": -2147483648}"#, i32::MIN),
        ];
        for (input, want) in cases {
            let got = parse_evaluation(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.target_replicas, *want, "{input}");
            assert!(got.extra.is_empty(), "{input}: a spelling of the count was kept as an extra field");
        }
    }

    #[test]
    fn non_json_and_trailing_garbage_are_not_json() {
        for input in ["targetReplicas: 3", r#"{"targetReplicas": 3} done"#, r#"{"targetReplicas": 3}{}"#] {
            let err = parse_evaluation(input).expect_err(input);
            assert!(matches!(err, EvaluationError::NotJson(_)), "{input}: {err:?}");
            assert!(err.to_string().starts_with("evaluation output is not valid json: "));
        }
    }

    #[test]
    fn an_evaluation_serialises_with_the_cpa_field_name() {
        let mut e = Evaluation::new(4);
        e.extra.insert("note".into(), Value::from("x"));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json, serde_json::json!({"targetReplicas": 4, "note": "x"}));
    }
}
