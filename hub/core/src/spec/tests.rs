//! Annotation parsing tests.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn profiles() -> BTreeMap<String, SpecDefaults> {
    let custom = SpecDefaults { min_replicas: 2, max_replicas: 20, ..SpecDefaults::default() };
    BTreeMap::from([("default".to_owned(), SpecDefaults::default()), ("big".to_owned(), custom)])
}

fn parse(pairs: &[(&str, &str)]) -> Result<TargetSpec, SpecErrors> {
    TargetSpec::from_annotations(&annotations(pairs), &profiles())
}

#[test]
fn only_the_exact_value_true_opts_in() {
    assert!(is_opted_in(&annotations(&[(ENABLED, "true")])));
    for value in ["True", "yes", "1", " true", ""] {
        assert!(!is_opted_in(&annotations(&[(ENABLED, value)])), "{value:?}");
    }
    assert!(!is_opted_in(&annotations(&[])));
}

#[test]
fn absent_annotations_take_the_documented_defaults() {
    let spec = parse(&[(ENABLED, "true")]).unwrap();
    assert_eq!(spec.profile, "default");
    assert_eq!((spec.min_replicas, spec.max_replicas), (1, 10));
    assert_eq!(spec.interval, Duration::from_secs(15));
    assert_eq!(spec.downscale_stabilization, Duration::from_secs(300));
    assert_eq!(spec.upscale_stabilization, Duration::ZERO);
    assert_eq!(spec.run_mode, RunMode::PerResource);
    assert_eq!(spec.mode, Mode::Active);
    assert!(spec.params.is_empty());
    assert_eq!(spec.rate_limits, None);
}

#[test]
fn bounds_default_to_the_profile_then_to_annotations() {
    let spec = parse(&[(PROFILE, "big")]).unwrap();
    assert_eq!((spec.min_replicas, spec.max_replicas), (2, 20));
    let spec = parse(&[(PROFILE, "big"), (MIN_REPLICAS, "0"), (MAX_REPLICAS, "5")]).unwrap();
    assert_eq!((spec.min_replicas, spec.max_replicas), (0, 5));
}

#[test]
fn every_setting_is_read() {
    let spec = parse(&[
        (ENABLED, "true"),
        (INTERVAL, "1m"),
        (DOWNSCALE_STABILIZATION, "10m"),
        (UPSCALE_STABILIZATION, "30s"),
        (RUN_MODE, "per-pod"),
        (MODE, "shadow"),
        ("scalehub.io/param.queue", "orders"),
        ("scalehub.io/param.target", "$(touch /tmp/x); rm -rf"),
        ("app.kubernetes.io/name", "web"),
    ])
    .unwrap();
    assert_eq!(spec.interval, Duration::from_secs(60));
    assert_eq!(spec.downscale_stabilization, Duration::from_secs(600));
    assert_eq!(spec.upscale_stabilization, Duration::from_secs(30));
    assert_eq!(spec.run_mode, RunMode::PerPod);
    assert_eq!(spec.mode, Mode::Shadow);
    assert_eq!(spec.params["queue"], "orders");
    // Values are data: kept byte for byte, never interpreted.
    assert_eq!(spec.params["target"], "$(touch /tmp/x); rm -rf");
}

#[test]
fn every_bad_annotation_is_reported_with_key_value_and_reason() {
    let errors = parse(&[
        (MIN_REPLICAS, "abc"),
        (MAX_REPLICAS, "-3"),
        (INTERVAL, "0s"),
        (DOWNSCALE_STABILIZATION, "5"),
        (UPSCALE_STABILIZATION, "2h"),
        (RUN_MODE, "per-node"),
        (MODE, "dry"),
        (PROFILE, "nope"),
        ("scalehub.io/min-replica", "2"),
        ("scalehub.io/param.", "x"),
    ])
    .unwrap_err();
    let text: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    let expected = [
        "scalehub.io/profile: \"nope\" is not a profile in the hub config (known: big, default)",
        "scalehub.io/min-replicas: \"abc\" is not a whole number",
        "scalehub.io/max-replicas: \"-3\" must be >= 1",
        "scalehub.io/interval: \"0s\" must be between 1s and 1day (got 0s)",
        "scalehub.io/downscale-stabilization: \"5\" is not a duration: \"5\" has no unit; write e.g. 5s or 5ms",
        "scalehub.io/upscale-stabilization: \"2h\" must be at most 1h",
        "scalehub.io/run-mode: \"per-node\" is not a run mode (per-pod or per-resource)",
        "scalehub.io/mode: \"dry\" is not a mode (active or shadow)",
        "scalehub.io/min-replica: \"2\" is not a scalehub annotation (check the spelling)",
        "scalehub.io/param.: \"x\" has no parameter name after \"param.\"",
    ];
    assert_eq!(text, expected);
    assert!(errors.to_string().contains("; "));
}

#[test]
fn replica_counts_must_be_plain_non_negative_integers() {
    for (value, reason) in [
        ("-", "is not a whole number"),
        ("+3", "is not a whole number"),
        (" 3", "is not a whole number"),
        ("2.5", "is not a whole number"),
        ("-1", "must be >= 0"),
        ("99999999999", "is too large"),
    ] {
        let errors = parse(&[(MIN_REPLICAS, value)]).unwrap_err();
        assert_eq!(errors.0[0].reason, reason, "{value:?}");
    }
    assert_eq!(parse(&[(MAX_REPLICAS, "0")]).unwrap_err().0[0].reason, "must be >= 1");
}

#[test]
fn min_above_max_is_an_error() {
    let errors = parse(&[(MIN_REPLICAS, "5"), (MAX_REPLICAS, "3")]).unwrap_err();
    assert_eq!(
        errors.0,
        vec![SpecError {
            key: MIN_REPLICAS.into(),
            value: Some("5".into()),
            reason: "leaves min-replicas 5 above max-replicas 3".into(),
        }]
    );
    // Only max given: the error points at it.
    let errors = parse(&[(PROFILE, "big"), (MAX_REPLICAS, "1")]).unwrap_err();
    assert_eq!(errors.0[0].key, MAX_REPLICAS);
}

#[test]
fn a_missing_default_profile_is_explained() {
    let only_big: BTreeMap<_, _> = profiles().into_iter().filter(|(k, _)| k == "big").collect();
    let errors = TargetSpec::from_annotations(&annotations(&[]), &only_big).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "scalehub.io/profile: is absent and the hub config has no \"default\" profile (known: big)"
    );
}

#[test]
fn the_spec_serialises_durations_as_human_strings() {
    let spec = parse(&[(INTERVAL, "90s")]).unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["interval"], "1m 30s");
    assert_eq!(json["downscaleStabilization"], "5m");
    assert_eq!(json["runMode"], "per-resource");
    let back: TargetSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn the_policy_input_carries_the_spec() {
    let spec = parse(&[(MIN_REPLICAS, "2"), (UPSCALE_STABILIZATION, "1m")]).unwrap();
    let input = spec.policy_input(1_000, 3, 7, None);
    assert_eq!((input.min_replicas, input.max_replicas), (2, 10));
    assert_eq!(input.upscale_window, Duration::from_secs(60));
    assert_eq!((input.current_replicas, input.evaluated_replicas), (3, 7));
}

#[test]
fn intervals_are_bounded_so_no_loop_ticks_faster_than_a_second_or_never() {
    let profiles = BTreeMap::from([("default".to_owned(), SpecDefaults::default())]);
    for (value, reason) in [
        ("9300000000000000000s", "must be between 1s and 1day"),
        ("1000000h", "must be between 1s and 1day"),
        ("1ms", "must be between 1s and 1day"),
        ("999ms", "must be between 1s and 1day"),
    ] {
        let annotations = BTreeMap::from([
            ("scalehub.io/enabled".to_owned(), "true".to_owned()),
            (INTERVAL.to_owned(), value.to_owned()),
        ]);
        let errors = TargetSpec::from_annotations(&annotations, &profiles).unwrap_err().to_string();
        assert!(errors.contains(reason), "{value}: {errors}");
    }
    for value in ["1s", "24h", "90s"] {
        let annotations = BTreeMap::from([
            ("scalehub.io/enabled".to_owned(), "true".to_owned()),
            (INTERVAL.to_owned(), value.to_owned()),
        ]);
        assert!(TargetSpec::from_annotations(&annotations, &profiles).is_ok(), "{value}");
    }
}

#[test]
fn every_setting_says_where_it_came_from() {
    let mut cpa = SpecDefaults { min_replicas: 3, ..SpecDefaults::cpa() };
    cpa.sources.set("minReplicas", Source::Profile);
    let profiles = BTreeMap::from([("default".to_owned(), cpa)]);
    let spec = TargetSpec::from_annotations(
        &annotations(&[(ENABLED, "true"), (MAX_REPLICAS, "7"), (START_TIME, "1m")]),
        &profiles,
    )
    .unwrap();
    assert_eq!(spec.lineage, Lineage::Cpa);
    assert_eq!(spec.start_time, Some(Duration::from_secs(60)));
    let source = |key: &str| spec.sources.get(key);
    assert_eq!(source("minReplicas"), Some(Source::Profile));
    assert_eq!(source("maxReplicas"), Some(Source::Annotation));
    assert_eq!(source("downscaleStabilization"), Some(Source::CpaDefault));
    assert_eq!(source("startTime"), Some(Source::Annotation));
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["sources"]["downscaleStabilization"], "cpa-default");
    assert_eq!(json["startTime"], "1m");
    assert_eq!(serde_json::from_value::<TargetSpec>(json).unwrap(), spec, "the spec round-trips");
    // The HPA's rules for a built-in profile; no start time unless one is set.
    let spec = parse(&[(ENABLED, "true")]).unwrap();
    assert_eq!(spec.sources.get("downscaleStabilization"), Some(Source::HpaDefault));
    assert!(spec.sources.get("startTime").is_none() && spec.start_time.is_none());
    let keys: Vec<_> = spec.sources.iter().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        ["minReplicas", "maxReplicas", "interval", "downscaleStabilization", "upscaleStabilization", "runMode"]
    );
    let bad = serde_json::from_value::<Sources>(serde_json::json!({"minReplica": "profile"})).unwrap_err();
    assert!(bad.to_string().contains("\"minReplica\" is not a setting with a source"), "{bad}");
    let err = parse(&[(ENABLED, "true"), (START_TIME, "0s")]).unwrap_err().to_string();
    assert!(err.contains("scalehub.io/start-time: \"0s\" must be between 1s and"), "{err}");
}

#[test]
fn a_target_scales_to_zero_only_with_the_profiles_scale_to_zero_and_a_minimum_of_zero() {
    let zero = ScaleToZero { activation_threshold_milli: 2000, cooldown_period: Duration::from_secs(60) };
    let defaults = SpecDefaults { min_replicas: 0, scale_to_zero: Some(zero), ..SpecDefaults::default() };
    let profiles = BTreeMap::from([("default".to_owned(), defaults)]);
    let spec = TargetSpec::from_annotations(&annotations(&[(ENABLED, "true")]), &profiles).unwrap();
    let activation = spec.activation(Some(2500)).unwrap();
    assert!(activation.active);
    assert_eq!((activation.threshold_milli, activation.cooldown_ms), (2000, 60_000));
    assert!(!spec.activation(Some(2000)).unwrap().active, "at the threshold is inactive");
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["scaleToZero"], serde_json::json!({"activationThresholdMilli": 2000, "cooldownPeriod": "1m"}));
    // An annotated minimum of 1 switches it off for this target.
    let one = TargetSpec::from_annotations(&annotations(&[(ENABLED, "true"), (MIN_REPLICAS, "1")]), &profiles).unwrap();
    assert_eq!(one.activation(Some(2500)), None);
    assert_eq!(parse(&[(ENABLED, "true")]).unwrap().activation(Some(2500)), None);
}
