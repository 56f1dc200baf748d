//! Linear regression of replicas on time, evaluated `lookAhead` after now — the predictive
//! HPA's `linear_regression.py` (statsmodels OLS with a constant), in Rust.

use crate::policy::{EpochMillis, Sample};

/// The replicas a straight line through `history` reaches at `at`; with one point, that point
/// (as the predictive HPA does); with all points at one instant, their mean.
pub fn predict(history: &[Sample], at: EpochMillis) -> Option<f64> {
    match history {
        [] => None,
        [only] => Some(f64::from(only.replicas)),
        _ => {
            // Seconds before the searched time, as the predictive HPA centres its x values.
            let xs: Vec<f64> = history.iter().map(|s| (at - s.at) as f64 / 1000.0).collect();
            let ys: Vec<f64> = history.iter().map(|s| f64::from(s.replicas)).collect();
            let n = xs.len() as f64;
            let mean_x = xs.iter().sum::<f64>() / n;
            let mean_y = ys.iter().sum::<f64>() / n;
            let sxx: f64 = xs.iter().map(|x| (x - mean_x) * (x - mean_x)).sum();
            if sxx == 0.0 {
                return Some(mean_y);
            }
            let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
            let slope = sxy / sxx;
            // The fitted value at x = 0, the searched time.
            Some(mean_y - slope * mean_x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(points: &[(EpochMillis, i32)]) -> Vec<Sample> {
        points.iter().map(|&(at, replicas)| Sample { at, replicas }).collect()
    }

    #[test]
    fn a_rising_line_is_extended_to_the_look_ahead() {
        // 2, 4, 6 at 0, 10, 20 s: 8 at 30 s.
        let h = history(&[(0, 2), (10_000, 4), (20_000, 6)]);
        assert!((predict(&h, 30_000).unwrap() - 8.0).abs() < 1e-9);
        assert!((predict(&h, 25_000).unwrap() - 7.0).abs() < 1e-9);
    }

    #[test]
    fn one_point_is_its_own_prediction_and_none_is_none() {
        assert_eq!(predict(&history(&[(5, 3)]), 60_000), Some(3.0));
        assert_eq!(predict(&[], 0), None);
        assert_eq!(predict(&history(&[(5, 3), (5, 5)]), 60_000), Some(4.0));
    }

    #[test]
    fn noisy_points_get_the_least_squares_line() {
        // y = 1 + 0.1 t with residuals +1, -1, -1, +1 (orthogonal to the line): the same line.
        let h = history(&[(0, 2), (10_000, 1), (20_000, 2), (30_000, 5)]);
        assert!((predict(&h, 40_000).unwrap() - 5.0).abs() < 1e-9);
    }
}
