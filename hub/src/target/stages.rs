//! The hook stages of a tick, in the CPA's order and with its payloads:
//! Kubernetes metrics → preMetric → metric (per pod or per resource) → postMetric →
//! preEvaluate → evaluate (or the built-in calculation) → postEvaluate; and the
//! preScale/postScale hooks around the scale call.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::{Value, json};

use scalehub_core::calc::{self, MetricUsage};
use scalehub_core::spec::{RunMode, TargetSpec};
use scalehub_hooks::{
    EvaluatePayload, FinalEvaluation, HookOutcome, HookSpec, MetricPayload, MetricValue, RunType, ScalePayload,
    ScaleTargetRef, StageContext, TargetRef, payload,
};

use crate::hub::Context;
use crate::k8smetrics::{self, Gathered};
use crate::profile::Profile;
use crate::target::TargetInput;
use crate::watch::PodInfo;
use crate::workload::TargetKey;
use scalehub_store::Json;

/// One hook run, as kept in the decision record.
#[derive(Clone, Debug, Serialize)]
pub struct HookRecord {
    /// The stage: `metric`, `evaluate`, `preScale`, ... (per-pod metric runs add the pod).
    pub stage: String,
    /// Exit or HTTP status, duration, stderr excerpt, error.
    #[serde(flatten)]
    pub outcome: HookOutcome,
}

/// Why the metric or evaluate stages failed.
#[derive(Debug)]
pub struct StageFailure {
    /// The stage that failed.
    pub stage: &'static str,
    /// What went wrong, for the record and the Event.
    pub message: String,
    /// Metrics gathered before the failure.
    pub metrics: Vec<MetricValue>,
}

/// What the evaluate stage asked for.
#[derive(Debug)]
pub enum Evaluation {
    /// The evaluate hook's answer.
    Hook(scalehub_hooks::Evaluation),
    /// The HPA's calculation over the Kubernetes metrics, with the largest Object or External
    /// metric value (milli) read this tick, if any.
    Builtin(calc::Calculation, Option<i64>),
}

impl Evaluation {
    /// The replica count asked for, before the policy.
    pub fn replicas(&self) -> i32 {
        match self {
            Evaluation::Hook(e) => e.target_replicas,
            Evaluation::Builtin(c, _) => c.replicas,
        }
    }

    /// The built-in calculation's usage ratio (what a replay needs to apply another tolerance).
    pub fn ratio(&self) -> Option<f64> {
        match self {
            Evaluation::Hook(_) => None,
            Evaluation::Builtin(c, _) => Some(c.ratio),
        }
    }

    /// The value that says whether a scale-to-zero target is active: the evaluation for a
    /// hook, the largest Object or External metric value for the built-in calculation (`None`
    /// when none could be read).
    pub fn activation_milli(&self) -> Option<i64> {
        match self {
            Evaluation::Hook(e) => Some(i64::from(e.target_replicas) * 1000),
            Evaluation::Builtin(_, peak) => *peak,
        }
    }

    /// The evaluation as the decision record keeps it: the hook's document, or the
    /// calculation's ratio and reason under `builtin`.
    pub fn to_record(&self) -> Json {
        match self {
            Evaluation::Hook(e) => Json::of(e),
            Evaluation::Builtin(c, _) => {
                Json::of(&json!({"targetReplicas": c.replicas, "builtin": {"ratio": c.ratio, "reason": c.reason}}))
            }
        }
    }
}

/// The stages of one target's tick.
pub struct Stages<'a> {
    /// The hub-wide context.
    pub ctx: &'a Arc<Context>,
    /// The target.
    pub key: &'a TargetKey,
    /// Its workload and spec.
    pub input: &'a TargetInput,
    /// The parsed spec.
    pub spec: &'a TargetSpec,
    /// The profile the spec names.
    pub profile: &'a Profile,
    /// scaler, api or api_dry_run.
    pub run_type: RunType,
    /// Replicas the workload has now.
    pub current: i32,
}

impl Stages<'_> {
    fn context(&self, resource: Value) -> StageContext {
        StageContext {
            resource,
            run_type: self.run_type,
            target: TargetRef {
                namespace: self.key.namespace.clone(),
                kind: self.key.kind.as_str().into(),
                name: self.key.name.clone(),
            },
            params: self.spec.params.clone(),
            current_replicas: self.current,
        }
    }

    fn workload_json(&self) -> Value {
        let mut v = self.input.workload.to_json();
        // The watch cache drops apiVersion/kind; CPA scripts may read them.
        v["apiVersion"] = json!("apps/v1");
        v["kind"] = json!(self.key.kind.as_str());
        v
    }

    fn pods(&self) -> Vec<Arc<PodInfo>> {
        match self.input.workload.pod_selector() {
            Some(sel) => self.ctx.pods.select(&self.key.namespace, sel),
            None => Vec::new(),
        }
    }

    /// The target's pods in full, for per-pod hooks, which get each pod as the CPA passed it:
    /// read from the API server (the cache keeps only what ticks need), as the CPA read them.
    async fn full_pods(&self) -> Result<Vec<Pod>, String> {
        let Some(sel) = self.input.workload.pod_selector() else { return Ok(Vec::new()) };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.key.namespace);
        let timeout = std::time::Duration::from_secs(10);
        let list = tokio::time::timeout(timeout, api.list(&ListParams::default().labels(sel.as_str())))
            .await
            .map_err(|_| format!("listing the target's pods timed out after {timeout:?}"))?
            .map_err(|e| format!("listing the target's pods failed: {e}"))?;
        let mut pods: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| sel.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default())))
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(pods)
    }

    async fn hook(
        &self,
        stage: &str,
        spec: &HookSpec,
        payload: &Value,
        hooks: &mut Vec<HookRecord>,
    ) -> Result<String, String> {
        match self.ctx.hooks.run(spec, payload).await {
            Ok(out) => {
                hooks.push(HookRecord { stage: stage.into(), outcome: out.outcome });
                Ok(out.stdout)
            }
            Err(failure) => {
                let message = format!("{stage} hook failed: {}", failure.error);
                hooks.push(HookRecord { stage: stage.into(), outcome: failure.outcome });
                Err(message)
            }
        }
    }

    /// Runs the metric stage and the evaluate stage; returns the metrics, the evaluation and
    /// what was observed of each Kubernetes metric (for the tick series).
    pub async fn metrics_and_evaluation(
        &self,
        hooks: &mut Vec<HookRecord>,
    ) -> Result<(Vec<MetricValue>, Evaluation, Vec<MetricUsage>), StageFailure> {
        let (metrics, gathered) = self.metrics(hooks).await?;
        let status = self.input.workload.status_replicas;
        let usage: Vec<MetricUsage> =
            gathered.iter().map(|g| MetricUsage { key: g.key.clone(), observed: g.observed(status) }).collect();
        let evaluation = self.evaluation(&metrics, &gathered, &usage, hooks).await?;
        Ok((metrics, evaluation, usage))
    }

    /// The metric stage alone (the CPA's `GET /metrics`): Kubernetes metrics, then the
    /// metric hooks. Without a metric hook the metrics are one summary line per metric spec.
    pub async fn metrics(
        &self,
        hooks: &mut Vec<HookRecord>,
    ) -> Result<(Vec<MetricValue>, Vec<Gathered>), StageFailure> {
        let fail = |stage: &'static str, message: String, metrics: &[MetricValue]| StageFailure {
            stage,
            message,
            metrics: metrics.to_vec(),
        };
        let pods = self.pods();
        let mut gathered: Vec<Gathered> = Vec::new();
        let mut kubernetes_metrics = None;
        if !self.profile.metric_specs.is_empty() {
            let (ok, errors) = k8smetrics::gather(
                &self.ctx.client,
                &self.ctx.pod_metrics,
                &self.key.namespace,
                self.input.workload.pod_selector(),
                &pods,
                &self.profile.metric_specs,
                self.profile.readiness,
                self.current,
                // The CPA's kubernetesMetrics blocks go only to metric hooks.
                self.profile.metric.is_some(),
            )
            .await;
            if !errors.is_empty() {
                let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
                if self.profile.require_kubernetes_metrics || ok.is_empty() && self.profile.metric.is_none() {
                    return Err(fail("kubernetesMetrics", format!("kubernetes metrics: {message}"), &[]));
                }
                tracing::warn!(error = %message, "some kubernetes metrics failed; passing on what was gathered");
            }
            kubernetes_metrics = Some(Value::Array(ok.iter().map(|g| g.cpa.clone()).collect()));
            gathered = ok;
        }
        let mut metrics = Vec::new();
        if let Some(metric) = &self.profile.metric {
            // The workload's JSON is parsed only here and for other hooks: the built-in
            // calculation never needs it, and parsing it was a sixth of a tick's cost.
            let resource = self.workload_json();
            let mut payload = MetricPayload {
                context: self.context(resource.clone()),
                kubernetes_metrics: kubernetes_metrics.clone(),
                metrics: None,
            };
            if let Some(pre) = &self.profile.pre_metric {
                self.hook("preMetric", pre, &to_json(&payload), hooks)
                    .await
                    .map_err(|m| fail("preMetric", m, &metrics))?;
            }
            match self.spec.run_mode {
                RunMode::PerPod => {
                    let full = self.full_pods().await.map_err(|m| fail("metric", m, &metrics))?;
                    for pod in &full {
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let mut pod_json = serde_json::to_value(pod).unwrap_or(Value::Null);
                        pod_json["apiVersion"] = json!("v1");
                        pod_json["kind"] = json!("Pod");
                        let p = MetricPayload {
                            context: self.context(pod_json),
                            kubernetes_metrics: kubernetes_metrics.clone(),
                            metrics: None,
                        };
                        let value = self
                            .hook(&format!("metric[{name}]"), metric, &to_json(&p), hooks)
                            .await
                            .map_err(|m| fail("metric", m, &metrics))?;
                        metrics.push(MetricValue { resource: name, value });
                    }
                }
                RunMode::PerResource => {
                    let value = self
                        .hook("metric", metric, &to_json(&payload), hooks)
                        .await
                        .map_err(|m| fail("metric", m, &metrics))?;
                    metrics.push(MetricValue { resource: self.key.name.clone(), value });
                }
            }
            if let Some(post) = &self.profile.post_metric {
                payload.metrics = Some(metrics.clone());
                self.hook("postMetric", post, &to_json(&payload), hooks)
                    .await
                    .map_err(|m| fail("postMetric", m, &metrics))?;
            }
        }
        if metrics.is_empty() {
            metrics =
                gathered.iter().map(|g| MetricValue { resource: g.name.clone(), value: g.summary.clone() }).collect();
        }
        Ok((metrics, gathered))
    }

    /// The evaluate stage: the evaluate hooks, or the built-in calculation over `gathered`.
    async fn evaluation(
        &self,
        metrics: &[MetricValue],
        gathered: &[Gathered],
        usage: &[MetricUsage],
        hooks: &mut Vec<HookRecord>,
    ) -> Result<Evaluation, StageFailure> {
        let fail = |stage: &'static str, message: String, metrics: &[MetricValue]| StageFailure {
            stage,
            message,
            metrics: metrics.to_vec(),
        };
        let evaluation = match &self.profile.evaluate {
            Some(evaluate) => {
                let mut payload = EvaluatePayload {
                    context: self.context(self.workload_json()),
                    metrics: metrics.to_vec(),
                    evaluation: None,
                };
                if let Some(pre) = &self.profile.pre_evaluate {
                    self.hook("preEvaluate", pre, &to_json(&payload), hooks)
                        .await
                        .map_err(|m| fail("preEvaluate", m, metrics))?;
                }
                let evaluation = match self.ctx.hooks.evaluate(evaluate, &to_json(&payload)).await {
                    Ok((evaluation, outcome)) => {
                        hooks.push(HookRecord { stage: "evaluate".into(), outcome });
                        evaluation
                    }
                    Err(failure) => {
                        hooks.push(HookRecord { stage: "evaluate".into(), outcome: failure.outcome });
                        return Err(fail("evaluate", format!("evaluate hook failed: {}", failure.error), metrics));
                    }
                };
                if let Some(post) = &self.profile.post_evaluate {
                    payload.evaluation = Some(evaluation.clone());
                    self.hook("postEvaluate", post, &to_json(&payload), hooks)
                        .await
                        .map_err(|m| fail("postEvaluate", m, metrics))?;
                }
                Evaluation::Hook(evaluation)
            }
            None => {
                let calculation = self.builtin(gathered, usage).map_err(|m| fail("evaluate", m, metrics))?;
                let peak = gathered.iter().filter_map(|g| g.total.as_ref().map(|t| t.milli)).max();
                Evaluation::Builtin(calculation, peak)
            }
        };
        Ok(evaluation)
    }

    /// The HPA's calculation over the Kubernetes metrics: the largest count any spec asks for.
    fn builtin(&self, gathered: &[Gathered], usage: &[MetricUsage]) -> Result<calc::Calculation, String> {
        let metrics = gathered
            .iter()
            .zip(usage)
            .filter_map(|(g, u)| g.builtin.as_ref().map(|b| (g.name.as_str(), b.goal, &u.observed)));
        calc::evaluate(self.current, metrics, self.spec.tolerance)
    }

    /// Runs the preScale or postScale hook, if the profile has it.
    pub async fn scale_hook(
        &self,
        stage: &'static str,
        raw: i32,
        final_replicas: i32,
        hooks: &mut Vec<HookRecord>,
    ) -> Result<(), String> {
        let spec = match stage {
            "preScale" => self.profile.pre_scale.as_ref(),
            _ => self.profile.post_scale.as_ref(),
        };
        let Some(spec) = spec else { return Ok(()) };
        let payload = ScalePayload {
            context: self.context(self.workload_json()),
            evaluation: FinalEvaluation { target_replicas: final_replicas },
            scale_target_ref: ScaleTargetRef {
                kind: self.key.kind.as_str().into(),
                name: self.key.name.clone(),
                api_version: "apps/v1".into(),
            },
            namespace: self.key.namespace.clone(),
            min_replicas: self.spec.min_replicas,
            max_replicas: self.spec.max_replicas,
            target_replicas: raw,
        };
        self.hook(stage, spec, &to_json(&payload), hooks).await.map(|_| ())
    }
}

fn to_json<T: Serialize>(v: &T) -> Value {
    payload::to_json(v).unwrap_or(Value::Null)
}
