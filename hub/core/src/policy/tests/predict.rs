//! The predict step: predictions standing in for the evaluation.

use super::*;

#[test]
fn predictions_stand_in_for_the_evaluation_and_their_history_persists() {
    use crate::predict::{DecisionType, Linear, Model, ModelType, Predictive};
    let linear = Model {
        name: "trend".into(),
        model_type: ModelType::Linear,
        per_sync_period: 1,
        reset_duration: None,
        linear: Some(Linear { history_size: 4, look_ahead: 30_000 }),
        holt_winters: None,
    };
    let mut target = Target::new(2).windows(0, 300).bounds(1, 20);
    target.predictive = Some(Predictive { decision_type: DecisionType::Maximum, models: vec![linear] });
    target.tick(0, 2);
    target.tick(15_000, 3);
    let decision = target.tick(30_000, 4);
    // 2, 3, 4 every 15 s reach 6 thirty seconds on: the maximum with 4 is 6.
    assert_eq!(decision.desired_replicas, 6);
    assert_eq!(codes(&decision), [ReasonCode::Predicted]);
    let reason = &decision.reasons[0];
    assert_eq!((reason.step, reason.from, reason.to), (Step::Predict, 4, 6));
    assert!(reason.message.contains("trend predicts 6"), "{}", reason.message);
    // The window records the combination (the HPA's unclamped recommendation), the history the
    // evaluations; both round-trip through the stored JSON (tick does that).
    assert_eq!(target.state.recommendations.last().map(|s| s.replicas), Some(6));
    let history: Vec<i32> = target.state.models["trend"].history.iter().map(|s| s.replicas).collect();
    assert_eq!(history, [2, 3, 4]);
}

#[test]
fn a_model_without_enough_history_leaves_the_evaluation_and_says_so() {
    use crate::predict::holt_winters::Component;
    use crate::predict::{DecisionType, HoltWinters, Model, ModelType, Predictive};
    let seasonal = Model {
        name: "daily".into(),
        model_type: ModelType::HoltWinters,
        per_sync_period: 1,
        reset_duration: None,
        linear: None,
        holt_winters: Some(HoltWinters {
            seasonal_periods: 96,
            stored_seasons: 2,
            trend: Component::Add,
            seasonal: Component::Add,
            alpha: Some(0.5),
            beta: Some(0.1),
            gamma: Some(0.1),
            damped_trend: false,
            damping_trend: None,
        }),
    };
    let mut target = Target::new(3).windows(0, 0);
    target.predictive = Some(Predictive { decision_type: DecisionType::Minimum, models: vec![seasonal] });
    let decision = target.tick(0, 5);
    assert_eq!(decision.desired_replicas, 5, "not the predictive HPA's 0");
    assert_eq!(codes(&decision), [ReasonCode::PredictionUnavailable]);
    assert!(
        decision.reasons[0].message.contains("too little history: needs 192 ticks"),
        "{}",
        decision.reasons[0].message
    );
}
