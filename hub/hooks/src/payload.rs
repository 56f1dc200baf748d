//! The JSON each stage sends to its hooks: the CPA's fields, with their exact (camelCase)
//! names, plus scalehub's additions `target`, `params` and `currentReplicas`.
//!
//! Existing CPA scripts read only the CPA fields, so the additions are safe for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::evaluation::Evaluation;

/// Why a run happens (CPA `runType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunType {
    /// The timer loop; the result may scale.
    #[serde(rename = "scaler")]
    Scaler,
    /// An API call that will scale.
    #[serde(rename = "api")]
    Api,
    /// An API call that will not scale.
    #[serde(rename = "api_dry_run")]
    ApiDryRun,
}

impl RunType {
    /// The wire name, e.g. `api_dry_run`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::Scaler => "scaler",
            RunType::Api => "api",
            RunType::ApiDryRun => "api_dry_run",
        }
    }
}

/// Which workload a run is for (scalehub addition).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetRef {
    /// Namespace of the workload.
    pub namespace: String,
    /// `Deployment`, `StatefulSet` or `ReplicaSet`.
    pub kind: String,
    /// Name of the workload.
    pub name: String,
}

/// The fields every stage sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageContext {
    /// The full workload (or, for a per-pod metric run, the pod) object.
    pub resource: Value,
    /// Why this run happens.
    pub run_type: RunType,
    /// Which workload this is for (scalehub addition).
    pub target: TargetRef,
    /// `scalehub.io/param.<key>` annotation values (scalehub addition); data, never code.
    pub params: BTreeMap<String, String>,
    /// The workload's replicas when the tick started (scalehub addition).
    pub current_replicas: i32,
}

/// One metric value: the metric hook's stdout, verbatim, for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricValue {
    /// Name of the workload (per-resource) or of the pod (per-pod).
    pub resource: String,
    /// The metric hook's stdout, untouched.
    pub value: String,
}

/// Payload of `preMetric`, `metric` and `postMetric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPayload {
    /// Common fields.
    #[serde(flatten)]
    pub context: StageContext,
    /// Gathered Kubernetes metrics; present only when specs are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_metrics: Option<Value>,
    /// The gathered metrics; set for `postMetric` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricValue>>,
}

/// Payload of `preEvaluate`, `evaluate` and `postEvaluate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatePayload {
    /// Common fields.
    #[serde(flatten)]
    pub context: StageContext,
    /// The metric stage's values.
    pub metrics: Vec<MetricValue>,
    /// The evaluation; set for `postEvaluate` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
}

/// The final target as `preScale`/`postScale` see it (CPA `evaluation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalEvaluation {
    /// Replicas after clamping and stabilisation.
    pub target_replicas: i32,
}

/// The workload reference in the scale payload (autoscaling/v2 CrossVersionObjectReference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// Kind of the workload.
    pub kind: String,
    /// Name of the workload.
    pub name: String,
    /// API version, e.g. `apps/v1`.
    pub api_version: String,
}

/// Payload of `preScale` and `postScale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalePayload {
    /// Common fields.
    #[serde(flatten)]
    pub context: StageContext,
    /// The final target.
    pub evaluation: FinalEvaluation,
    /// The workload reference.
    pub scale_target_ref: ScaleTargetRef,
    /// Namespace of the workload (the CPA field; same as `target.namespace`).
    pub namespace: String,
    /// Lower bound in force.
    pub min_replicas: i32,
    /// Upper bound in force.
    pub max_replicas: i32,
    /// The raw evaluation, before clamping (the CPA leaves it 0 on API runs; scalehub fills it).
    pub target_replicas: i32,
}

/// Serialises a typed payload to the JSON value [`crate::HookRunner::run`] takes.
pub fn to_json<T: Serialize>(payload: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(payload)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context(run_type: RunType) -> StageContext {
        StageContext {
            resource: json!({"kind": "Deployment", "metadata": {"name": "web"}}),
            run_type,
            target: TargetRef { namespace: "shop".into(), kind: "Deployment".into(), name: "web".into() },
            params: BTreeMap::from([("queue".to_string(), "orders".to_string())]),
            current_replicas: 2,
        }
    }

    #[test]
    fn metric_payload_has_the_cpa_fields_and_omits_unset_ones() {
        let payload = MetricPayload { context: context(RunType::Scaler), kubernetes_metrics: None, metrics: None };
        let got = to_json(&payload).unwrap();
        assert_eq!(
            got,
            json!({
                "resource": {"kind": "Deployment", "metadata": {"name": "web"}},
                "runType": "scaler",
                "target": {"namespace": "shop", "kind": "Deployment", "name": "web"},
                "params": {"queue": "orders"},
                "currentReplicas": 2
            })
        );
    }

    #[test]
    fn post_metric_payload_carries_metrics_and_kubernetes_metrics() {
        let payload = MetricPayload {
            context: context(RunType::ApiDryRun),
            kubernetes_metrics: Some(json!([{"current_replicas": 2}])),
            metrics: Some(vec![MetricValue { resource: "web".into(), value: "5\n".into() }]),
        };
        let got = to_json(&payload).unwrap();
        assert_eq!(got["runType"], "api_dry_run");
        assert_eq!(got["kubernetesMetrics"], json!([{"current_replicas": 2}]));
        assert_eq!(got["metrics"], json!([{"resource": "web", "value": "5\n"}]));
    }

    #[test]
    fn post_evaluate_payload_carries_the_evaluation() {
        let payload = EvaluatePayload {
            context: context(RunType::Api),
            metrics: vec![MetricValue { resource: "web".into(), value: "5".into() }],
            evaluation: Some(Evaluation::new(10)),
        };
        let got = to_json(&payload).unwrap();
        assert_eq!(got["evaluation"], json!({"targetReplicas": 10}));
        assert_eq!(got["metrics"][0]["value"], "5");
        assert!(got.get("kubernetesMetrics").is_none());
    }

    #[test]
    fn scale_payload_matches_the_cpa_shape() {
        let payload = ScalePayload {
            context: context(RunType::Scaler),
            evaluation: FinalEvaluation { target_replicas: 4 },
            scale_target_ref: ScaleTargetRef {
                kind: "Deployment".into(),
                name: "web".into(),
                api_version: "apps/v1".into(),
            },
            namespace: "shop".into(),
            min_replicas: 1,
            max_replicas: 4,
            target_replicas: 9,
        };
        let got = to_json(&payload).unwrap();
        assert_eq!(got["evaluation"], json!({"targetReplicas": 4}));
        assert_eq!(got["scaleTargetRef"], json!({"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}));
        assert_eq!(got["namespace"], "shop");
        assert_eq!((got["minReplicas"].clone(), got["maxReplicas"].clone()), (json!(1), json!(4)));
        assert_eq!(got["targetReplicas"], 9);
        assert_eq!(got["currentReplicas"], 2);
        let back: ScalePayload = serde_json::from_value(got).unwrap();
        assert_eq!(back, payload);
    }
}
