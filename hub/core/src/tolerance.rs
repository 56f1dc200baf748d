//! The built-in calculation's tolerance, per direction (`behavior.scaleUp.tolerance` and
//! `behavior.scaleDown.tolerance`, Kubernetes 1.33+, KEP-4951; hpa-keda.md §1.2–1.3).
//!
//! A usage ratio `r` is within tolerance, and the current replica count is kept, when
//! `1 − scaleDown ≤ r ≤ 1 + scaleUp`. Both default to the HPA's `--horizontal-pod-autoscaler-tolerance`
//! default, 0.1. Kubernetes writes a tolerance as a quantity (`0.05`, `50m`); it is kept here in
//! thousandths, so the type stays exact and comparable.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::quantity::parse_milli;

/// One direction's tolerance, in thousandths (`100` is 0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tolerance(u32);

/// The HPA's default tolerance, 0.1.
pub const DEFAULT_TOLERANCE: Tolerance = Tolerance(100);

impl Tolerance {
    /// A tolerance of `milli` thousandths.
    pub const fn from_milli(milli: u32) -> Self {
        Tolerance(milli)
    }

    /// Its value in thousandths.
    pub const fn milli(self) -> u32 {
        self.0
    }

    /// Its value as a fraction (0.1 for 100).
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// Parses a quantity (`0.05`, `50m`), which must not be negative; finer values than a
    /// thousandth round up, as Kubernetes rounds a quantity's milli value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let milli = parse_milli(text.trim()).map_err(|e| format!("{text:?} is not a quantity: {e}"))?;
        Self::from_milli_i64(milli).ok_or_else(|| format!("{text:?} must be between 0 and 1000000"))
    }

    fn from_milli_i64(milli: i64) -> Option<Self> {
        // More than a million (a ratio a million times off) is certainly a mistake.
        u32::try_from(milli).ok().filter(|m| *m <= 1_000_000_000).map(Tolerance)
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        DEFAULT_TOLERANCE
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for Tolerance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.fraction())
    }
}

impl<'de> Deserialize<'de> for Tolerance {
    /// A number (`0.05`) or a quantity string (`"50m"`), as an HPA manifest may write either.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) if n.is_finite() && n >= 0.0 => Tolerance::from_milli_i64((n * 1000.0).ceil() as i64)
                .ok_or_else(|| serde::de::Error::custom(format!("tolerance {n} must be between 0 and 1000000"))),
            Raw::Number(n) => Err(serde::de::Error::custom(format!("tolerance {n} must be a number >= 0"))),
            Raw::Text(text) => Tolerance::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// The tolerances of both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tolerances {
    /// How far above 1 the usage ratio may be before scaling up.
    pub scale_up: Tolerance,
    /// How far below 1 the usage ratio may be before scaling down.
    pub scale_down: Tolerance,
}

impl Tolerances {
    /// Whether `ratio` keeps the current replica count: `1 − scaleDown ≤ ratio ≤ 1 + scaleUp`.
    pub fn within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down.fraction()..=1.0 + self.scale_up.fraction()).contains(&ratio)
    }
}

impl fmt::Display for Tolerances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale_up == self.scale_down {
            write!(f, "±{}", self.scale_up)
        } else {
            write!(f, "+{}/−{}", self.scale_up, self.scale_down)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerance(json: &str) -> Result<Tolerance, String> {
        serde_json::from_str::<Tolerance>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_and_quantities_parse_to_thousandths() {
        assert_eq!(tolerance("0.05"), Ok(Tolerance::from_milli(50)));
        assert_eq!(tolerance("\"50m\""), Ok(Tolerance::from_milli(50)));
        assert_eq!(tolerance("0"), Ok(Tolerance::from_milli(0)));
        assert_eq!(tolerance("1"), Ok(Tolerance::from_milli(1000)));
        // Finer than a thousandth rounds up, never to zero.
        assert_eq!(tolerance("0.0001"), Ok(Tolerance::from_milli(1)));
        assert!(tolerance("-0.1").unwrap_err().contains(">= 0"));
        assert!(tolerance("\"-100m\"").is_err());
        assert!(tolerance("\"ten\"").unwrap_err().contains("not a quantity"));
    }

    #[test]
    fn within_is_inclusive_and_per_direction() {
        let t = Tolerances { scale_up: Tolerance::from_milli(50), scale_down: Tolerance::from_milli(200) };
        assert!(t.within(1.05) && t.within(0.8) && t.within(1.0));
        assert!(!t.within(1.06) && !t.within(0.79));
        assert!(Tolerances::default().within(1.1) && !Tolerances::default().within(1.11));
    }

    #[test]
    fn display_and_json_use_fractions() {
        let t = Tolerances { scale_up: Tolerance::from_milli(50), scale_down: Tolerance::from_milli(100) };
        assert_eq!(t.to_string(), "+0.05/−0.1");
        assert_eq!(Tolerances::default().to_string(), "±0.1");
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"scaleUp":0.05,"scaleDown":0.1}"#);
        let back: Tolerances = serde_json::from_str(r#"{"scaleUp":0.05,"scaleDown":0.1}"#).unwrap();
        assert_eq!(back, t);
    }
}
