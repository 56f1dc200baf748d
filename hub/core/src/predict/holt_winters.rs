//! Holt-Winters exponential smoothing, one step ahead, computed as statsmodels'
//! `ExponentialSmoothing(series, trend, seasonal, seasonal_periods, damped_trend,
//! initialization_method="estimated").fit(smoothing_level=α, smoothing_trend=β,
//! smoothing_seasonal=γ, damping_trend=φ, optimized=False).forecast(1)` computes it — the call
//! the predictive HPA makes in Python — so a model tuned there predicts the same here.
//!
//! With fixed parameters and `estimated` initialisation, statsmodels starts from the heuristic
//! initial values of Hyndman et al. §2.6 (`_initialization_heuristic`): a centred moving
//! average over the first few seasons gives the trend, the mean de-trended value per season
//! position the seasonal indices, and a regression over the first ten moving-average points the
//! initial level and trend. The recursions are those of statsmodels' `_predict`.

use serde::{Deserialize, Serialize};

/// How the trend or the seasonal component combines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Added (`add`).
    #[serde(alias = "additive")]
    Add,
    /// Multiplied (`mul`); the series must then be positive.
    #[serde(alias = "multiplicative")]
    Mul,
}

/// A model's fixed parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The trend's form.
    pub trend: Component,
    /// The seasonal component's form.
    pub seasonal: Component,
    /// Observations in one season (`m`).
    pub seasonal_periods: usize,
    /// Level smoothing (α), 0..=1.
    pub alpha: f64,
    /// Trend smoothing (β), 0..=1.
    pub beta: f64,
    /// Seasonal smoothing (γ), 0..=1.
    pub gamma: f64,
    /// The damping factor φ of a damped trend; `None` for an undamped one.
    pub damping: Option<f64>,
}

/// Why no forecast could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// The heuristic initialisation needs `needed` observations.
    #[error("needs {needed} observations, has {have}")]
    TooShort {
        /// Observations needed.
        needed: usize,
        /// Observations given.
        have: usize,
    },
    /// A multiplicative component met a value that is not positive.
    #[error("a multiplicative model needs positive values")]
    NotPositive,
    /// The arithmetic left the finite numbers.
    #[error("the model diverged")]
    Diverged,
}

/// The fewest observations a forecast needs: two seasons and `10 + 2 × (m / 2)`.
pub fn min_observations(seasonal_periods: usize) -> usize {
    (2 * seasonal_periods).max(10 + 2 * (seasonal_periods / 2))
}

/// Initial level, trend and seasonal indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Initial {
    /// Level `l0`.
    pub level: f64,
    /// Trend `b0` (a difference for `add`, a ratio for `mul`).
    pub trend: f64,
    /// The `m` seasonal indices.
    pub seasonal: Vec<f64>,
}

/// statsmodels' `_initialization_heuristic` for a seasonal model with a trend.
pub fn heuristic_initial(series: &[f64], params: &Params) -> Result<Initial, ForecastError> {
    let m = params.seasonal_periods;
    let needed = min_observations(m);
    if series.len() < needed || m < 2 {
        return Err(ForecastError::TooShort { needed: needed.max(4), have: series.len() });
    }
    let min_obs = 10 + 2 * (m / 2);
    let k_cycles = (series.len() / m).min(5).max(min_obs.div_ceil(m));
    let window = &series[..(m * k_cycles).min(series.len())];
    // The centred moving average (a 2×m one for an even m), NaN where it is undefined.
    let moving = centred_moving_average(window, m);
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for (i, (&y, ma)) in window.iter().zip(&moving).enumerate() {
        if let Some(ma) = ma {
            let detrended = match params.seasonal {
                Component::Add => y - ma,
                Component::Mul => y / ma,
            };
            sums[i % m] += detrended;
            counts[i % m] += 1;
        }
    }
    let mut seasonal: Vec<f64> = sums.iter().zip(&counts).map(|(s, &c)| s / c as f64).collect();
    let mean = seasonal.iter().sum::<f64>() / m as f64;
    for s in &mut seasonal {
        match params.seasonal {
            Component::Add => *s -= mean,
            Component::Mul => *s /= mean,
        }
    }
    // Level and trend: least squares of the first ten moving-average points on 1..=10.
    let trend_points: Vec<f64> = moving.iter().flatten().copied().take(10).collect();
    if trend_points.len() < 10 {
        return Err(ForecastError::TooShort { needed, have: series.len() });
    }
    let (intercept, slope) = least_squares(&trend_points);
    let trend = match params.trend {
        Component::Add => slope,
        Component::Mul => 1.0 + slope / intercept,
    };
    let initial = Initial { level: intercept, trend, seasonal };
    if !initial.level.is_finite() || !initial.trend.is_finite() || initial.seasonal.iter().any(|s| !s.is_finite()) {
        return Err(ForecastError::Diverged);
    }
    Ok(initial)
}

/// pandas' `rolling(m, center=True).mean()`, followed for an even `m` by
/// `.shift(-1).rolling(2).mean()`: `None` where the window does not fit.
fn centred_moving_average(series: &[f64], m: usize) -> Vec<Option<f64>> {
    let n = series.len();
    // rolling(m, center=True): the window of index t is [t - m/2, t - m/2 + m).
    let centred: Vec<Option<f64>> = (0..n)
        .map(|t| {
            let start = t.checked_sub(m / 2)?;
            let end = start + m;
            (end <= n).then(|| series[start..end].iter().sum::<f64>() / m as f64)
        })
        .collect();
    if m % 2 == 1 {
        return centred;
    }
    // shift(-1) then rolling(2): the mean of the centred values at t and t + 1.
    (0..n)
        .map(|t| match (centred.get(t).copied().flatten(), centred.get(t + 1).copied().flatten()) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            _ => None,
        })
        .collect()
}

/// Intercept and slope of `y` on `x = 1..=len`.
fn least_squares(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let mean_x = (n + 1.0) / 2.0;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let dx = (i + 1) as f64 - mean_x;
        sxy += dx * (v - mean_y);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    (mean_y - slope * mean_x, slope)
}

/// The one-step-ahead forecast after `series`, and the in-sample sum of squared one-step errors.
pub fn forecast(series: &[f64], params: &Params) -> Result<Forecast, ForecastError> {
    let multiplicative = params.trend == Component::Mul || params.seasonal == Component::Mul;
    if multiplicative && series.iter().any(|&y| y <= 0.0) {
        return Err(ForecastError::NotPositive);
    }
    let initial = heuristic_initial(series, params)?;
    let m = params.seasonal_periods;
    let Params { alpha, beta, gamma, .. } = *params;
    let phi = params.damping.unwrap_or(1.0);
    let trended = |level: f64, trend: f64| match params.trend {
        Component::Add => level + trend,
        Component::Mul => level * trend,
    };
    let dampen = |trend: f64, phi: f64| match params.trend {
        Component::Add => trend * phi,
        Component::Mul => trend.powf(phi),
    };
    let detrend = |level: f64, previous: f64| match params.trend {
        Component::Add => level - previous,
        Component::Mul => level / previous,
    };
    let n = series.len();
    let mut seasonal = initial.seasonal.clone();
    seasonal.resize(n + m, 0.0);
    let (mut level, mut trend) = (initial.level, initial.trend);
    let mut sse = 0.0;
    for (i, &y) in series.iter().enumerate() {
        let s = seasonal[i];
        let base = trended(level, dampen(trend, phi));
        let fitted = match params.seasonal {
            Component::Add => base + s,
            Component::Mul => base * s,
        };
        sse += (fitted - y) * (fitted - y);
        let new_level = match params.seasonal {
            Component::Add => alpha * (y - s) + (1.0 - alpha) * base,
            Component::Mul => alpha * y / s + (1.0 - alpha) * base,
        };
        let new_trend = beta * detrend(new_level, level) + (1.0 - beta) * dampen(trend, phi);
        seasonal[i + m] = match params.seasonal {
            Component::Add => gamma * (y - base) + (1.0 - gamma) * s,
            Component::Mul => gamma * y / base + (1.0 - gamma) * s,
        };
        (level, trend) = (new_level, new_trend);
    }
    let base = trended(level, dampen(trend, phi));
    let next = match params.seasonal {
        Component::Add => base + seasonal[n],
        Component::Mul => base * seasonal[n],
    };
    if !next.is_finite() || !sse.is_finite() {
        return Err(ForecastError::Diverged);
    }
    Ok(Forecast { next, sse })
}

/// A forecast and how well the model fitted the series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The value one step after the series.
    pub next: f64,
    /// Sum of the squared in-sample one-step errors.
    pub sse: f64,
}

/// Fits α, β and γ to the series (least in-sample squared one-step error, with the heuristic
/// initial values), for a model configured without them: a coarse grid over (0, 1), then a
/// finer one around the best point.
pub fn fit(series: &[f64], params: &Params) -> Result<Params, ForecastError> {
    let sse = |a: f64, b: f64, g: f64| {
        forecast(series, &Params { alpha: a, beta: b, gamma: g, ..*params }).map(|f| f.sse).unwrap_or(f64::INFINITY)
    };
    // Fail early with the real reason (too short, not positive).
    forecast(series, &Params { alpha: 0.5, beta: 0.1, gamma: 0.1, ..*params })?;
    let mut best = (f64::INFINITY, 0.5, 0.1, 0.1);
    let mut step = 0.1;
    let mut centre = (0.5, 0.5, 0.5);
    let mut span = 4; // the first pass covers 0.1..=0.9 in steps of 0.1
    for _ in 0..3 {
        for i in -span..=span {
            for j in -span..=span {
                for k in -span..=span {
                    let clampv = |c: f64, d: i32| (c + f64::from(d) * step).clamp(0.0, 1.0);
                    let (a, b, g) = (clampv(centre.0, i), clampv(centre.1, j), clampv(centre.2, k));
                    let e = sse(a, b, g);
                    if e < best.0 {
                        best = (e, a, b, g);
                    }
                }
            }
        }
        centre = (best.1, best.2, best.3);
        step /= 5.0;
        span = 3;
    }
    if !best.0.is_finite() {
        return Err(ForecastError::Diverged);
    }
    Ok(Params { alpha: best.1, beta: best.2, gamma: best.3, ..*params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(m: usize, trend: Component, seasonal: Component) -> Params {
        Params { trend, seasonal, seasonal_periods: m, alpha: 0.5, beta: 0.2, gamma: 0.3, damping: None }
    }

    #[test]
    fn the_moving_average_is_centred_like_pandas() {
        let series: Vec<f64> = (0..10).map(f64::from).collect();
        // rolling(5, center=True): defined from index 2 to 7.
        let odd = centred_moving_average(&series, 5);
        assert_eq!(odd[1], None);
        assert_eq!(odd[2], Some(2.0));
        assert_eq!(odd[7], Some(7.0));
        assert_eq!(odd[8], None);
        // rolling(4, center=True) is 1.5 at 2; then shift(-1).rolling(2): (1.5 + 2.5) / 2 at 2.
        let even = centred_moving_average(&series, 4);
        assert_eq!(even[1], None);
        assert_eq!(even[2], Some(2.0));
        assert_eq!(even[7], Some(7.0));
        assert_eq!(even[8], None);
    }

    #[test]
    fn too_short_and_non_positive_series_are_refused() {
        let p = params(4, Component::Add, Component::Add);
        assert_eq!(min_observations(4), 14);
        assert_eq!(min_observations(12), 24);
        let short = vec![1.0; 13];
        assert_eq!(forecast(&short, &p), Err(ForecastError::TooShort { needed: 14, have: 13 }));
        let mut zero = vec![1.0; 20];
        zero[3] = 0.0;
        assert_eq!(forecast(&zero, &params(4, Component::Add, Component::Mul)), Err(ForecastError::NotPositive));
    }

    #[test]
    fn a_pure_season_is_forecast_exactly() {
        // No noise, no trend: the heuristic finds the season and the forecast repeats it.
        let season = [2.0, 4.0, 6.0, 4.0];
        let series: Vec<f64> = season.iter().cycle().take(24).copied().collect();
        let f = forecast(&series, &params(4, Component::Add, Component::Add)).unwrap();
        assert!((f.next - 2.0).abs() < 1e-9, "{f:?}");
        assert!(f.sse < 1e-9, "{f:?}");
    }

    #[test]
    fn fitting_finds_parameters_at_least_as_good_as_a_fixed_guess() {
        let series: Vec<f64> = (0..48)
            .map(|t| 10.0 + 0.2 * f64::from(t) + 3.0 * (f64::from(t) * std::f64::consts::PI / 6.0).sin())
            .collect();
        let p = params(12, Component::Add, Component::Add);
        let fixed = forecast(&series, &p).unwrap();
        let fitted = fit(&series, &p).unwrap();
        let better = forecast(&series, &fitted).unwrap();
        assert!(better.sse <= fixed.sse, "{better:?} vs {fixed:?}");
        assert!((0.0..=1.0).contains(&fitted.alpha) && (0.0..=1.0).contains(&fitted.gamma));
    }
}
