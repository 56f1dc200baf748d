//! Config parsing and validation tests.

use std::time::Duration;

use super::*;
use crate::policy::{PolicyType, RateLimits, RatePolicy, SelectPolicy};
use crate::spec::RunMode;

/// The CPA's python-custom-autoscaler example `config.yaml`, as its users have it today.
const CPA_EXAMPLE: &str = r#"
evaluate:
  type: "shell"
  timeout: 2500
  shell:
    entrypoint: "python"
    command:
      - "/evaluate.py"
metric:
  type: "shell"
  timeout: 2500
  shell:
    entrypoint: "python"
    command:
      - "/metric.py"
runMode: "per-resource"
"#;

/// Indents a YAML body so it can sit under `profiles.<name>:`.
fn as_profile(name: &str, body: &str) -> String {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!("profiles:\n  {name}:\n{indented}")
}

fn invalid(yaml: &str) -> Vec<String> {
    match Config::from_yaml_str(yaml) {
        Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[test]
fn the_cpa_example_config_is_accepted_unchanged_as_a_profile() {
    let config = Config::from_yaml_str(&as_profile("default", CPA_EXAMPLE)).unwrap();
    let profile = config.profile("default").unwrap();
    let metric = profile.metric.as_ref().unwrap();
    assert_eq!(metric.method_type, MethodType::Shell);
    assert_eq!(metric.timeout(), Duration::from_millis(2500));
    let shell = metric.shell.as_ref().unwrap();
    assert_eq!(shell.entrypoint, "python");
    assert_eq!(shell.command, ["/metric.py"]);
    assert_eq!(profile.run_mode, Some(RunMode::PerResource));
    // Everything else is the hub's defaults.
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database, "sqlite://scalehub.db");
    assert_eq!(config.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(config.hook_concurrency, 32);
}

#[test]
fn cpa_keys_scalehub_does_not_use_are_accepted_and_ignored() {
    let body = format!(
        "{CPA_EXAMPLE}namespace: prod\nscaleTargetRef:\n  apiVersion: apps/v1\n  kind: Deployment\n  name: web\n\
         startTime: 60000\napiConfig:\n  enabled: true\n  port: 5000\nlogVerbosity: 2\n\
         interval: 30000\ndownscaleStabilization: 120\nminReplicas: 2\nmaxReplicas: 7\n\
         initialReadinessDelay: 10\ncpuInitializationPeriod: 60\nrequireKubernetesMetrics: true\n"
    );
    let config = Config::from_yaml_str(&as_profile("legacy", &body)).unwrap();
    let profile = config.profile("legacy").unwrap();
    let defaults = profile.spec_defaults();
    assert_eq!((defaults.min_replicas, defaults.max_replicas), (2, 7));
    assert_eq!(defaults.interval, Duration::from_secs(30));
    assert_eq!(defaults.downscale_stabilization, Duration::from_secs(120));
    assert_eq!(defaults.rate_limits, None);
    assert_eq!(profile.initial_readiness_delay(), Duration::from_secs(10));
    assert_eq!(profile.cpu_initialization_period(), Duration::from_secs(60));
    assert_eq!(profile.require_kubernetes_metrics, Some(true));
}

#[test]
fn a_full_hub_config_parses_with_defaults_merged_into_profiles() {
    let yaml = r#"
listen: 0.0.0.0:9090
database: sqlite:///var/lib/scalehub/state.db
namespaces: [shop, payments]
retention: 3d
hookConcurrency: 8
api:
  tokenFile: /var/run/secrets/scalehub/token
  protectReads: true
defaults:
  timeoutless: null
"#;
    // `defaults` is profile-shaped: an unknown key there is reported, not fatal.
    let config = Config::from_yaml_str(yaml).unwrap();
    assert!(config.warnings[0].starts_with("defaults.timeoutless: not a key this hub knows"), "{:?}", config.warnings);

    let yaml = r#"
listen: 0.0.0.0:9090
namespaces: [shop]
retention: 3d
defaults:
  preScale:
    type: http
    timeout: 500
    http:
      method: POST
      url: https://audit.example/scale
      headers: {X-Team: infra}
      successCodes: [200, 202]
  maxReplicas: 30
profiles:
  default:
    metric: {type: shell, timeout: 1000, shell: {entrypoint: /bin/sh, command: [-c, "echo 1"]}}
    evaluate: {type: http, timeout: 2000, http: {method: POST, url: "http://127.0.0.1:9000/evaluate", parameterMode: query}}
    kubernetesMetricSpecs:
      - type: Resource
        resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
      - type: Pods
        pods:
          metric: {name: packets-per-second, selector: {matchLabels: {tier: web}}}
          target: {type: AverageValue, averageValue: 1k}
    behavior:
      scaleUp:
        stabilizationWindowSeconds: 60
        policies: [{type: Pods, value: 2, periodSeconds: 30}]
      scaleDown:
        selectPolicy: Min
"#;
    let config = Config::from_yaml_str(yaml).unwrap();
    assert_eq!(config.namespaces, ["shop"]);
    assert_eq!(config.retention, Duration::from_secs(3 * 86_400));
    let profile = config.profile("default").unwrap();
    let pre_scale = profile.pre_scale.as_ref().expect("merged from defaults");
    let http = pre_scale.http.as_ref().unwrap();
    assert_eq!(http.success_codes, [200, 202]);
    assert_eq!(http.headers["X-Team"], "infra");
    let evaluate = profile.evaluate.as_ref().unwrap().http.as_ref().unwrap();
    assert_eq!(evaluate.parameter_mode, ParameterMode::Query);
    assert_eq!(evaluate.success_codes, [200]);
    let specs = profile.kubernetes_metric_specs.as_ref().unwrap();
    assert_eq!(specs[1].pods.as_ref().unwrap().target.average_value.as_deref(), Some("1k"));

    let defaults = &config.spec_defaults()["default"];
    assert_eq!(defaults.max_replicas, 30);
    assert_eq!(defaults.upscale_stabilization, Duration::from_secs(60));
    // Not set in behavior and no downscaleStabilization: the HPA's behavior default.
    assert_eq!(defaults.downscale_stabilization, Duration::from_secs(300));
    assert_eq!(defaults.lineage, crate::spec::Lineage::Cpa, "a hook profile keeps the CPA's other rules");
    let limits = defaults.rate_limits.clone().unwrap();
    assert_eq!(limits.scale_up.policies, [RatePolicy { policy_type: PolicyType::Pods, value: 2, period_seconds: 30 }]);
    assert_eq!(limits.scale_down.select_policy, SelectPolicy::Min);
    assert_eq!(limits.scale_down.policies, RateLimits::hpa_default().scale_down.policies);
}

#[test]
fn a_hook_profile_has_the_cpa_defaults_and_a_builtin_one_the_hpa_defaults() {
    let bare = CPA_EXAMPLE.replace("runMode: \"per-resource\"\n", "");
    let cpa = Config::from_yaml_str(&as_profile("default", &bare)).unwrap();
    let defaults = cpa.profile("default").unwrap().spec_defaults();
    assert_eq!(defaults.downscale_stabilization, Duration::ZERO);
    assert_eq!(defaults.run_mode, crate::spec::RunMode::PerPod);
    assert_eq!(defaults.lineage, crate::spec::Lineage::Cpa);
    assert_eq!(defaults.start_time, None);
    let body = "kubernetesMetricSpecs:\n  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}\n";
    let hpa = Config::from_yaml_str(&as_profile("default", body)).unwrap();
    let defaults = hpa.profile("default").unwrap().spec_defaults();
    assert_eq!(defaults.downscale_stabilization, Duration::from_secs(300));
    assert_eq!(defaults.run_mode, crate::spec::RunMode::PerResource);
    assert_eq!(defaults.lineage, crate::spec::Lineage::Hpa);
    // A profile's own CPA keys win over either.
    let body = format!("{bare}downscaleStabilization: 45\nrunMode: per-resource\nstartTime: 60000\n");
    let own = Config::from_yaml_str(&as_profile("default", &body)).unwrap();
    let defaults = own.profile("default").unwrap().spec_defaults();
    assert_eq!(defaults.downscale_stabilization, Duration::from_secs(45));
    assert_eq!(defaults.run_mode, crate::spec::RunMode::PerResource);
    assert_eq!(defaults.start_time, Some(Duration::from_secs(60)));
    let from_profile: Vec<_> =
        defaults.sources.iter().filter(|(_, s)| *s == crate::spec::Source::Profile).map(|(k, _)| k).collect();
    assert_eq!(from_profile, ["downscaleStabilization", "runMode", "startTime"]);
    let bad = format!("{CPA_EXAMPLE}startTime: 0\n");
    let err = Config::from_yaml_str(&as_profile("default", &bad)).unwrap_err().to_string();
    assert!(err.contains("profiles.default.startTime: must be between 1 and 86400000"), "{err}");
}

#[test]
fn keys_of_other_cpa_versions_are_warnings_and_typos_of_the_hubs_own_keys_errors() {
    let body = format!("{CPA_EXAMPLE}metricMode: fast\nfutureKey: {{nested: [1, 2]}}\n");
    let config = Config::from_yaml_str(&as_profile("default", &body)).unwrap();
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(config.warnings[0].starts_with("profiles.default.futureKey: not a key this hub knows"));
    assert!(config.warnings[1].starts_with("profiles.default.metricMode: not a key this hub knows"));
    assert!(config.profile("default").unwrap().evaluate.is_some(), "the rest of the profile is used");
    let err = Config::from_yaml_str(&format!("retension: 3d\n{}", as_profile("default", CPA_EXAMPLE))).unwrap_err();
    assert!(err.to_string().contains("retension: unknown field"), "{err}");
}

#[test]
fn an_empty_behavior_means_the_hpa_defaults() {
    let body = format!("{CPA_EXAMPLE}behavior: {{}}\ndownscaleStabilization: 60\n");
    let config = Config::from_yaml_str(&as_profile("default", &body)).unwrap();
    let defaults = config.profile("default").unwrap().spec_defaults();
    assert_eq!(defaults.rate_limits, Some(RateLimits::hpa_default()));
    // The CPA key still sets the window when behavior leaves it out.
    assert_eq!(defaults.downscale_stabilization, Duration::from_secs(60));
}

#[test]
fn schema_errors_name_the_field_path_and_the_line() {
    // A typo inside a method (the hub's own schema) is an error with its line.
    let typo = as_profile("default", &CPA_EXAMPLE.replacen("timeout:", "timout:", 1));
    let err = Config::from_yaml_str(&typo).unwrap_err().to_string();
    assert!(err.starts_with("profiles.default.evaluate.timout: unknown field `timout`"), "{err}");
    assert!(err.contains("line"), "{err}");
    // A misspelt profile key is a warning, but the config it leaves invalid names it as the cause.
    let typo = as_profile("default", &CPA_EXAMPLE.replace("evaluate:", "evalute:"));
    let err = Config::from_yaml_str(&typo).unwrap_err().to_string();
    assert!(err.contains("profiles.default.evaluate: is required"), "{err}");
    assert!(err.contains("profiles.default.evalute: not a key this hub knows"), "{err}");

    let wrong_type = as_profile("default", &CPA_EXAMPLE.replacen("2500", "soon", 1));
    let err = Config::from_yaml_str(&wrong_type).unwrap_err().to_string();
    assert!(err.starts_with("profiles.default.evaluate.timeout: "), "{err}");

    let err = Config::from_yaml_str("listen: nowhere\n").unwrap_err().to_string();
    assert!(err.starts_with("listen: "), "{err}");
    let err = Config::from_yaml_str("retention: 7\n").unwrap_err().to_string();
    assert!(err.starts_with("retention: "), "{err}");
    assert!(err.contains("has no unit"), "{err}");
    // A retention that would wrap `now - retention` around is refused, not obeyed.
    let err = Config::from_yaml_str(
        "retention: 1000000000y
",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("retention: must be at most"), "{err}");
    let config = Config::from_yaml_str(
        "metricsResolution: 30s
",
    )
    .unwrap();
    assert_eq!(config.metrics_resolution, Duration::from_secs(30));
    let err = Config::from_yaml_str("profiles:\n  a:\n    runMode: per-node\n").unwrap_err();
    assert!(err.to_string().starts_with("profiles.a.runMode: "), "{err}");
}

#[test]
fn validation_lists_every_problem_with_its_path() {
    let yaml = r#"
hookConcurrency: 0
database: mysql://db
profiles:
  default:
    metric: {type: shell, timeout: 0, shell: {command: [x]}}
    preScale: {type: http, timeout: 10, http: {url: "ftp://x", successCodes: [700]}}
    postScale: {type: shell, timeout: 10}
    minReplicas: 5
    maxReplicas: 2
    interval: 0
    kubernetesMetricSpecs:
      - type: ContainerResource
        containerResource: {name: cpu}
      - type: Pods
        pods: {metric: {name: rps}, target: {type: Utilization, averageValue: lots}}
    behavior:
      scaleUp:
        stabilizationWindowSeconds: 4000
        policies: [{type: Percent, value: 0, periodSeconds: 0}]
      scaleDown:
        policies: []
"#;
    let errors = invalid(yaml);
    let expected = [
        "database: must be a sqlite: or postgres:// URL, e.g. sqlite://scalehub.db or postgres://scalehub@db/scalehub",
        "hookConcurrency: must be > 0",
        "profiles.default.metric.timeout: must be > 0",
        "profiles.default.metric.shell.entrypoint: is required, e.g. /bin/sh or python3",
        "profiles.default.preScale.http.url: \"ftp://x\" must start with http:// or https://",
        "profiles.default.preScale.http.successCodes[0]: 700 is not an HTTP status",
        "profiles.default.postScale.shell: is required when type is shell",
        "profiles.default.kubernetesMetricSpecs[0].type: ContainerResource metrics are not supported by scalehub, nor by the CPA (supported: Resource, Pods, Object, External)",
        "profiles.default.kubernetesMetricSpecs[1].pods.target.type: must be AverageValue for a Pods metric",
        "profiles.default.kubernetesMetricSpecs[1].pods.target.averageValue: \"lots\" is not a quantity: the number part is malformed",
        "profiles.default.interval: must be > 0 (milliseconds)",
        "profiles.default.behavior.scaleUp.stabilizationWindowSeconds: must be between 0 and 3600",
        "profiles.default.behavior.scaleUp.policies[0].value: must be > 0",
        "profiles.default.behavior.scaleUp.policies[0].periodSeconds: must be between 1 and 1800",
        "profiles.default.behavior.scaleDown.policies: must list at least one policy",
        "profiles.default.evaluate: is required (or leave out both metric and evaluate and give kubernetesMetricSpecs with a target value for the built-in HPA calculation)",
        "profiles.default.minReplicas: 5 is greater than maxReplicas 2",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn an_empty_or_missing_config() {
    let config = Config::from_yaml_str("listen: 127.0.0.1:8080\n").unwrap();
    assert!(config.profiles.is_empty());
    assert_eq!(config, Config::empty());
    let err = Config::load("/nonexistent/scalehub.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().starts_with("cannot read config file"), "{err}");
}

#[test]
fn an_empty_file_or_comments_only_means_all_defaults() {
    assert_eq!(Config::from_yaml_str("").unwrap(), Config::empty());
    assert_eq!(Config::from_yaml_str("# nothing yet\n").unwrap(), Config::empty());
}

#[test]
fn a_profile_without_hooks_uses_the_builtin_calculation_when_a_metric_spec_has_a_target() {
    let yaml = r#"
profiles:
  cpu:
    kubernetesMetricSpecs:
      - type: Resource
        resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
"#;
    let config = Config::from_yaml_str(yaml).unwrap();
    assert!(config.profile("cpu").unwrap().evaluate.is_none());

    let no_target = r#"
profiles:
  cpu:
    kubernetesMetricSpecs:
      - type: Resource
        resource: {name: cpu, target: {type: Utilization}}
"#;
    let errors = invalid(no_target);
    assert!(errors.iter().any(|e| e.starts_with("profiles.cpu.evaluate: is required")), "{errors:?}");
}

#[test]
fn a_profile_interval_outside_one_second_to_a_day_is_refused() {
    for (ms, ok) in [(1, false), (999, false), (1_000, true), (86_400_000, true), (86_400_001, false)] {
        let yaml = format!(
            "profiles:\n  default:\n    interval: {ms}\n    kubernetesMetricSpecs:\n      - type: Resource\n        resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}\n"
        );
        match Config::from_yaml_str(&yaml) {
            Ok(_) => assert!(ok, "interval {ms} ms was accepted"),
            Err(e) => {
                assert!(!ok, "interval {ms} ms was refused: {e}");
                assert!(e.to_string().contains("profiles.default.interval: must be between 1s and 1day"), "{e}");
            }
        }
    }
}

#[test]
fn the_kubernetes_timeout_defaults_to_ten_seconds_and_is_bounded() {
    assert_eq!(Config::from_yaml_str("{}").unwrap().kubernetes_timeout, Duration::from_secs(10));
    assert_eq!(Config::from_yaml_str("kubernetesTimeout: 30s").unwrap().kubernetes_timeout, Duration::from_secs(30));
    for bad in ["0s", "500ms", "6m"] {
        let e = Config::from_yaml_str(&format!("kubernetesTimeout: {bad}")).unwrap_err().to_string();
        assert!(e.contains("kubernetesTimeout: must be between 1s and 5m"), "{bad}: {e}");
    }
}

#[test]
fn object_and_external_metrics_take_value_or_average_value_targets() {
    let yaml = r#"
profiles:
  queue:
    kubernetesMetricSpecs:
      - type: Object
        object:
          describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main}
          metric: {name: requests_per_second}
          target: {type: Value, value: 2k}
      - type: External
        external:
          metric: {name: queue_messages_ready, selector: {matchLabels: {queue: jobs}}}
          target: {type: AverageValue, averageValue: 30}
"#;
    let config = Config::from_yaml_str(yaml).unwrap();
    let specs = config.profile("queue").unwrap().kubernetes_metric_specs.clone().unwrap();
    assert!(specs.iter().all(MetricSpec::has_builtin_target), "{specs:?}");
    assert_eq!(specs[0].object.as_ref().unwrap().described_object.kind, "Ingress");
    assert_eq!(specs[1].target().unwrap().average_value.as_deref(), Some("30"));
    // A Value target without its value is not something the built-in calculation can aim for.
    let hookless = r#"
profiles:
  queue:
    kubernetesMetricSpecs:
      - type: External
        external: {metric: {name: q}, target: {type: Value}}
"#;
    assert!(invalid(hookless).iter().any(|e| e.starts_with("profiles.queue.evaluate: is required")));
    let bad = r#"
profiles:
  queue:
    metric: {type: shell, timeout: 10, shell: {entrypoint: /bin/sh, command: [x]}}
    evaluate: {type: shell, timeout: 10, shell: {entrypoint: /bin/sh, command: [x]}}
    kubernetesMetricSpecs:
      - type: Object
        object: {describedObject: {kind: "", name: ""}, metric: {name: ""}, target: {type: Utilization, averageUtilization: 50}}
      - type: External
        external: {metric: {name: q}, target: {type: Utilization, value: lots}}
      - type: Object
"#;
    assert_eq!(
        invalid(bad),
        [
            "profiles.queue.kubernetesMetricSpecs[0].object.describedObject.kind: is required, e.g. Ingress",
            "profiles.queue.kubernetesMetricSpecs[0].object.describedObject.name: is required",
            "profiles.queue.kubernetesMetricSpecs[0].object.metric.name: is required",
            "profiles.queue.kubernetesMetricSpecs[0].object.target.type: must be Value or AverageValue for an Object metric",
            "profiles.queue.kubernetesMetricSpecs[1].external.target.type: must be Value or AverageValue for an External metric",
            "profiles.queue.kubernetesMetricSpecs[1].external.target.value: \"lots\" is not a quantity: the number part is malformed",
            "profiles.queue.kubernetesMetricSpecs[2].object: is required when type is Object",
        ]
    );
}

#[test]
fn a_fallback_combines_with_the_current_count_as_keda_does() {
    let yaml =
        format!("{CPA_EXAMPLE}fallback: {{failureThreshold: 3, replicas: 4, behavior: currentReplicasIfLower}}\n");
    let config = Config::from_yaml_str(&as_profile("default", &yaml)).unwrap();
    let fallback = config.profile("default").unwrap().fallback.clone().unwrap();
    assert_eq!((fallback.failure_threshold, fallback.replicas(6), fallback.replicas(2)), (3, 4, 2));
    let with = |behavior| Fallback { behavior, ..fallback.clone() };
    assert_eq!(with(FallbackBehavior::Static).replicas(6), 4);
    assert_eq!(with(FallbackBehavior::CurrentReplicas).replicas(6), 6);
    assert_eq!(
        (
            with(FallbackBehavior::CurrentReplicasIfHigher).replicas(6),
            with(FallbackBehavior::CurrentReplicasIfHigher).replicas(2)
        ),
        (6, 4)
    );
    let bad = format!("{CPA_EXAMPLE}fallback: {{failureThreshold: 0, replicas: -1}}\n");
    assert_eq!(
        invalid(&as_profile("default", &bad)),
        [
            "profiles.default.fallback.failureThreshold: must be >= 1",
            "profiles.default.fallback.replicas: must be >= 0"
        ]
    );
    let typo = format!("{CPA_EXAMPLE}fallback: {{failureThreshold: 1, replicas: 1, behaviour: static}}\n");
    assert!(Config::from_yaml_str(&as_profile("default", &typo)).unwrap_err().to_string().contains("behaviour"));
}

#[test]
fn extra_kinds_name_a_scalable_resource_and_bad_ones_name_their_field() {
    let ok = format!(
        "extraKinds:\n  - {{group: argoproj.io, version: v1alpha1, kind: Rollout, plural: rollouts}}\n  - {{version: v1, kind: ReplicationController, plural: replicationcontrollers}}\n{}",
        as_profile("default", CPA_EXAMPLE)
    );
    let config = Config::from_yaml_str(&ok).unwrap();
    assert_eq!(config.extra_kinds.len(), 2);
    assert_eq!(config.extra_kinds[0].group, "argoproj.io");
    assert_eq!(config.extra_kinds[1].group, "", "the core group");

    let bad = format!(
        "extraKinds:\n  - {{group: Argo_Proj, version: v1alpha1, kind: rollout, plural: Rollouts}}\n  - {{group: apps, version: v1, kind: Deployment, plural: deployments}}\n  - {{group: a.io, version: v1, kind: Widget, plural: widgets}}\n  - {{group: b.io, version: v1, kind: Widget, plural: widgets}}\n{}",
        as_profile("default", CPA_EXAMPLE)
    );
    let err = Config::from_yaml_str(&bad).unwrap_err().to_string();
    for expected in [
        "extraKinds[0].group: must be a DNS subdomain",
        "extraKinds[0].plural: must be the lowercase plural",
        "extraKinds[0].kind: must be a Kubernetes kind in CamelCase",
        "extraKinds[1].kind: Deployment is a built-in kind",
        "extraKinds[3].kind: Widget is listed twice",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from {err}");
    }
    let typo = format!(
        "extraKinds:\n  - {{version: v1, kind: Rollout, plurals: rollouts}}\n{}",
        as_profile("default", CPA_EXAMPLE)
    );
    let err = Config::from_yaml_str(&typo).unwrap_err().to_string();
    assert!(err.contains("extraKinds[0]") && err.contains("plurals"), "{err}");
}

#[test]
fn behavior_sets_the_tolerance_of_each_direction() {
    use crate::tolerance::{Tolerance, Tolerances};
    let body = "kubernetesMetricSpecs:\n  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}\n";
    let plain = Config::from_yaml_str(&as_profile("default", body)).unwrap();
    assert_eq!(plain.profile("default").unwrap().spec_defaults().tolerance, Tolerances::default());
    let tuned = format!("{body}behavior:\n  scaleUp: {{tolerance: 0.05}}\n  scaleDown: {{tolerance: 50m}}\n");
    let config = Config::from_yaml_str(&as_profile("default", &tuned)).unwrap();
    let defaults = config.profile("default").unwrap().spec_defaults();
    assert_eq!(
        defaults.tolerance,
        Tolerances { scale_up: Tolerance::from_milli(50), scale_down: Tolerance::from_milli(50) }
    );
    let one_way = format!("{body}behavior:\n  scaleDown: {{tolerance: 0.3}}\n");
    let config = Config::from_yaml_str(&as_profile("default", &one_way)).unwrap();
    let tolerance = config.profile("default").unwrap().spec_defaults().tolerance;
    assert_eq!((tolerance.scale_up.milli(), tolerance.scale_down.milli()), (100, 300));
    let negative = format!("{body}behavior:\n  scaleUp: {{tolerance: -0.1}}\n");
    let err = Config::from_yaml_str(&as_profile("default", &negative)).unwrap_err().to_string();
    assert!(err.contains("profiles.default.behavior.scaleUp.tolerance"), "{err}");
    assert!(err.contains(">= 0"), "{err}");
}

#[test]
fn scale_to_zero_has_keda_defaults_and_needs_a_value_to_wake_a_builtin_profile() {
    let hooks = format!("{CPA_EXAMPLE}minReplicas: 0\nscaleToZero: {{}}\n");
    let config = Config::from_yaml_str(&as_profile("default", &hooks)).unwrap();
    let zero = config.profile("default").unwrap().spec_defaults().scale_to_zero.unwrap();
    assert_eq!((zero.activation_threshold_milli, zero.cooldown_period), (0, Duration::from_secs(300)));
    let tuned = format!("{CPA_EXAMPLE}scaleToZero: {{activationThreshold: 500m, cooldownPeriod: 60}}\n");
    let config = Config::from_yaml_str(&as_profile("default", &tuned)).unwrap();
    let zero = config.profile("default").unwrap().spec_defaults().scale_to_zero.unwrap();
    assert_eq!((zero.activation_threshold_milli, zero.cooldown_period), (500, Duration::from_secs(60)));

    let cpu = "kubernetesMetricSpecs:\n  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}\n";
    let err = Config::from_yaml_str(&as_profile("cpu", &format!("{cpu}scaleToZero: {{}}\n"))).unwrap_err().to_string();
    assert!(err.contains("profiles.cpu.scaleToZero: needs an Object or External metric"), "{err}");
    let queue = "kubernetesMetricSpecs:\n  - {type: External, external: {metric: {name: queue}, target: {type: AverageValue, averageValue: '20'}}}\n";
    let builtin = format!("{queue}minReplicas: 0\nscaleToZero: {{activationThreshold: 5}}\n");
    let config = Config::from_yaml_str(&as_profile("queue", &builtin)).unwrap();
    assert_eq!(
        config.profile("queue").unwrap().spec_defaults().scale_to_zero.unwrap().activation_threshold_milli,
        5000
    );

    for (bad, field) in [
        ("scaleToZero: {cooldownPeriod: -1}", "scaleToZero.cooldownPeriod"),
        ("scaleToZero: {cooldownPeriod: 90000}", "scaleToZero.cooldownPeriod"),
        ("scaleToZero: {activationThreshold: -2}", "scaleToZero.activationThreshold"),
        ("scaleToZero: {activation: 2}", "scaleToZero"),
    ] {
        let err =
            Config::from_yaml_str(&as_profile("default", &format!("{CPA_EXAMPLE}{bad}\n"))).unwrap_err().to_string();
        assert!(err.contains(&format!("profiles.default.{field}")), "{bad}: {err}");
    }
}

#[test]
fn predictive_models_load_in_the_predictive_hpas_shape_and_bad_ones_name_the_field() {
    let body = format!(
        "{CPA_EXAMPLE}predictive:\n  decisionType: maximum\n  models:\n    - {{name: trend, type: Linear, linear: {{historySize: 6, lookAhead: 30000}}}}\n    - name: daily\n      type: HoltWinters\n      perSyncPeriod: 2\n      resetDuration: 10m\n      holtWinters: {{seasonalPeriods: 96, storedSeasons: 3, trend: add, seasonal: mul, alpha: 0.9, beta: 0.9, gamma: 0.9}}\n"
    );
    let config = Config::from_yaml_str(&as_profile("default", &body)).unwrap();
    let predictive = config.profile("default").unwrap().spec_defaults().predictive.unwrap();
    assert_eq!(predictive.models.len(), 2);
    assert_eq!(predictive.models[1].per_sync_period, 2);
    assert_eq!(predictive.models[1].reset_duration, Some(Duration::from_secs(600)));
    assert_eq!(predictive.models[1].holt_winters.unwrap().capacity(), 288);
    for (bad, field) in [
        ("models: []", "predictive.models"),
        ("models: [{name: a, type: Linear}]", "predictive.models[0].linear"),
        (
            "models: [{name: a, type: Linear, linear: {historySize: 0, lookAhead: 1}}]",
            "predictive.models[0].linear.historySize",
        ),
        (
            "models: [{name: a, type: Linear, linear: {historySize: 2, lookAhead: 1}}, {name: a, type: Linear, linear: {historySize: 2, lookAhead: 1}}]",
            "predictive.models[1].name",
        ),
        (
            "models: [{name: s, type: HoltWinters, holtWinters: {seasonalPeriods: 4, storedSeasons: 1, trend: add, seasonal: add}}]",
            "predictive.models[0].holtWinters.storedSeasons",
        ),
        (
            "models: [{name: s, type: HoltWinters, holtWinters: {seasonalPeriods: 4, storedSeasons: 2, trend: add, seasonal: add, alpha: 0.5}}]",
            "predictive.models[0].holtWinters",
        ),
        (
            "models: [{name: s, type: HoltWinters, holtWinters: {seasonalPeriods: 4, storedSeasons: 2, trend: add, seasonal: add, alpha: 2, beta: 0, gamma: 0}}]",
            "predictive.models[0].holtWinters.alpha",
        ),
        ("decisionType: largest\nmodels: []", "predictive"),
    ] {
        let body = format!("{CPA_EXAMPLE}predictive:\n  {}\n", bad.replace('\n', "\n  "));
        let err = Config::from_yaml_str(&as_profile("default", &body)).unwrap_err().to_string();
        assert!(err.contains(&format!("profiles.default.{field}")), "{bad}: {err}");
    }
}
