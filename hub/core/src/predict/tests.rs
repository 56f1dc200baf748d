//! The predictive step, and Holt-Winters against statsmodels (`fixtures.json`, written by
//! `scripts/predict-fixtures.py` with statsmodels' `ExponentialSmoothing`).

use serde_json::Value;

use super::holt_winters::{self, Component, Params};
use super::*;

fn close(ours: f64, theirs: f64, what: &str) {
    let scale = theirs.abs().max(1.0);
    assert!((ours - theirs).abs() <= 1e-7 * scale, "{what}: ours {ours}, statsmodels {theirs}");
}

fn component(value: &Value) -> Component {
    match value.as_str() {
        Some("add") => Component::Add,
        Some("mul") => Component::Mul,
        other => panic!("component {other:?}"),
    }
}

#[test]
fn holt_winters_matches_statsmodels_exponential_smoothing() {
    let doc: Value = serde_json::from_str(include_str!("fixtures.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let series: Vec<f64> = case["series"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let params = Params {
            trend: component(&p["trend"]),
            seasonal: component(&p["seasonal"]),
            seasonal_periods: p["seasonal_periods"].as_u64().unwrap() as usize,
            alpha: p["alpha"].as_f64().unwrap(),
            beta: p["beta"].as_f64().unwrap(),
            gamma: p["gamma"].as_f64().unwrap(),
            damping: p["damped_trend"].as_bool().unwrap_or(false).then(|| p["damping_trend"].as_f64().unwrap()),
        };
        let initial = holt_winters::heuristic_initial(&series, &params).unwrap();
        close(initial.level, case["initialLevel"].as_f64().unwrap(), &format!("{name}: initial level"));
        close(initial.trend, case["initialTrend"].as_f64().unwrap(), &format!("{name}: initial trend"));
        let seasons = case["initialSeasonal"].as_array().unwrap();
        assert_eq!(initial.seasonal.len(), seasons.len(), "{name}");
        for (i, (ours, theirs)) in initial.seasonal.iter().zip(seasons).enumerate() {
            close(*ours, theirs.as_f64().unwrap(), &format!("{name}: initial season {i}"));
        }
        let forecast = holt_winters::forecast(&series, &params).unwrap();
        close(forecast.next, case["forecast"].as_f64().unwrap(), &format!("{name}: forecast"));
        close(forecast.sse, case["sse"].as_f64().unwrap(), &format!("{name}: sse"));
    }
}

fn linear(name: &str, history_size: usize, look_ahead: i64) -> Model {
    Model {
        name: name.into(),
        model_type: ModelType::Linear,
        per_sync_period: 1,
        reset_duration: None,
        linear: Some(Linear { history_size, look_ahead }),
        holt_winters: None,
    }
}

fn seasonal(name: &str, m: usize, stored: usize) -> Model {
    Model {
        name: name.into(),
        model_type: ModelType::HoltWinters,
        per_sync_period: 1,
        reset_duration: None,
        linear: None,
        holt_winters: Some(HoltWinters {
            seasonal_periods: m,
            stored_seasons: stored,
            trend: Component::Add,
            seasonal: Component::Add,
            alpha: Some(0.5),
            beta: Some(0.1),
            gamma: Some(0.5),
            damped_trend: false,
            damping_trend: None,
        }),
    }
}

#[test]
fn decision_types_combine_as_the_predictive_hpa_does() {
    assert_eq!(DecisionType::Maximum.combine(&[3, 7, 5]), 7);
    assert_eq!(DecisionType::Minimum.combine(&[3, 7, 5]), 3);
    assert_eq!(DecisionType::Mean.combine(&[3, 4]), 4, "3.5 rounds half away from zero");
    assert_eq!(DecisionType::Median.combine(&[9, 3, 5]), 5);
    assert_eq!(DecisionType::Median.combine(&[3, 4, 8, 9]), 6, "(4 + 8) / 2");
    assert_eq!(DecisionType::Median.combine(&[3, 4]), 3, "(3 + 4) / 2 truncates");
}

#[test]
fn a_rising_load_is_predicted_ahead_and_the_maximum_wins() {
    let config = Predictive { decision_type: DecisionType::Maximum, models: vec![linear("trend", 6, 30_000)] };
    let mut states = BTreeMap::new();
    let mut last = None;
    for (i, evaluated) in [2, 3, 4, 5].into_iter().enumerate() {
        last = Some(run(&config, &mut states, i as i64 * 15_000, evaluated));
    }
    // 2, 3, 4, 5 every 15 s: a line that reaches 7 thirty seconds after the last.
    let outcome = last.unwrap();
    assert_eq!(outcome.predictions[0].replicas, Some(7));
    assert_eq!(outcome.replicas, 7);
    // The minimum keeps the evaluation.
    let min = Predictive { decision_type: DecisionType::Minimum, ..config.clone() };
    let mut states = BTreeMap::new();
    let outcomes: Vec<_> =
        [2, 3, 4, 5].iter().enumerate().map(|(i, &e)| run(&min, &mut states, i as i64 * 15_000, e)).collect();
    assert_eq!(outcomes[3].replicas, 5);
    // The history holds at most historySize points.
    let mut states = BTreeMap::new();
    for i in 0..20 {
        run(&config, &mut states, i * 15_000, 4);
    }
    assert_eq!(states["trend"].history.len(), 6);
}

#[test]
fn a_model_with_too_little_history_is_left_out_and_says_so() {
    let config = Predictive { decision_type: DecisionType::Minimum, models: vec![seasonal("daily", 4, 3)] };
    let mut states = BTreeMap::new();
    let first = run(&config, &mut states, 0, 6);
    // Not 0 (the predictive HPA's answer), which a minimum would have picked: the evaluation.
    assert_eq!(first.replicas, 6);
    assert_eq!(first.predictions[0].replicas, None);
    assert_eq!(first.predictions[0].note.as_deref(), Some("too little history: needs 14 ticks"));
    // Whole seasons accumulate, then the model predicts; stored seasons cap the history.
    let season = [2, 4, 8, 4];
    let mut outcome = first;
    for t in 1..40 {
        outcome = run(&config, &mut states, t * 1000, season[t as usize % 4]);
    }
    // t = 39 was phase 3; the next is phase 0, a 2.
    assert_eq!(outcome.predictions[0].replicas, Some(2), "{outcome:?}");
    assert!(states["daily"].history.len() <= 4 * 4 && states["daily"].history.len() >= 12);
}

#[test]
fn per_sync_period_reset_duration_and_changed_models() {
    let mut model = linear("trend", 10, 0);
    model.per_sync_period = 3;
    model.reset_duration = Some(Duration::from_secs(60));
    let config = Predictive { decision_type: DecisionType::Maximum, models: vec![model] };
    let mut states = BTreeMap::new();
    let notes: Vec<Option<i32>> =
        (0..6).map(|t| run(&config, &mut states, t * 1000, 4).predictions[0].replicas).collect();
    // As the predictive HPA counts: a new model has passed one period, so it predicts on its
    // third tick, and every third after.
    assert_eq!(notes, [None, None, Some(4), None, None, Some(4)]);
    assert_eq!(states["trend"].history.len(), 6);
    // A gap longer than the reset duration forgets the history.
    run(&config, &mut states, 5_000 + 61_000, 4);
    assert_eq!(states["trend"].history.len(), 1);
    // A model renamed or retyped starts afresh; a removed one is dropped.
    let retyped = Predictive { decision_type: DecisionType::Maximum, models: vec![seasonal("trend", 4, 2)] };
    run(&retyped, &mut states, 70_000, 4);
    assert_eq!(states["trend"].history.len(), 1);
    assert_eq!(states["trend"].model_type, Some(ModelType::HoltWinters));
    let renamed = Predictive { decision_type: DecisionType::Maximum, models: vec![linear("other", 3, 0)] };
    run(&renamed, &mut states, 71_000, 4);
    assert_eq!(states.keys().collect::<Vec<_>>(), ["other"]);
}

#[test]
fn a_multiplicative_model_meeting_zero_is_left_out() {
    let mut model = seasonal("daily", 2, 5);
    model.holt_winters.as_mut().unwrap().seasonal = Component::Mul;
    let config = Predictive { decision_type: DecisionType::Maximum, models: vec![model] };
    let mut states = BTreeMap::new();
    let mut outcome = None;
    for t in 0..12 {
        outcome = Some(run(&config, &mut states, t * 1000, (t % 2) as i32));
    }
    let outcome = outcome.unwrap();
    assert_eq!(outcome.replicas, 1);
    assert_eq!(outcome.predictions[0].note.as_deref(), Some("a multiplicative model needs positive values"));
}
