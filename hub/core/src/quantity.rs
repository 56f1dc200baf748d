//! Kubernetes `resource.Quantity` strings (`250m`, `64Ki`, `1.5`, `2e3`, `12345678n`).
//!
//! The metrics code reads pod usage from `metrics.k8s.io` (CPU in nanocores such as `12345678n`,
//! memory in `Ki`) and compares it with container requests. Milli-units are computed exactly with
//! integer arithmetic and rounded away from zero, like the API machinery's `MilliValue()`, so a
//! tiny non-zero usage never reads as 0.

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string was empty.
    #[error("quantity is empty")]
    Empty,
    /// The number part is not `<digits>[.<digits>]` with an optional sign.
    #[error("{0:?} is not a quantity: the number part is malformed")]
    BadNumber(String),
    /// The suffix is none of the SI, binary or exponent suffixes Kubernetes knows.
    #[error("{input:?} is not a quantity: unknown suffix {suffix:?}")]
    BadSuffix {
        /// The whole input.
        input: String,
        /// The part after the number.
        suffix: String,
    },
    /// The value does not fit the requested representation.
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2`, with its sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// Parses a quantity to a floating-point number of base units (`250m` → 0.25, `1Ki` → 1024).
pub fn parse_quantity(input: &str) -> Result<f64, QuantityError> {
    let parsed = parse(input)?;
    let magnitude = parsed.mantissa as f64 * 10f64.powi(parsed.exp10) * 2f64.powi(parsed.exp2 as i32);
    if !magnitude.is_finite() {
        return Err(QuantityError::Overflow(input.to_owned()));
    }
    Ok(if parsed.negative { -magnitude } else { magnitude })
}

/// Parses a quantity to whole milli-units, rounding away from zero (`12345678n` → 13, `1` → 1000).
pub fn parse_milli(input: &str) -> Result<i64, QuantityError> {
    let parsed = parse(input)?;
    let overflow = || QuantityError::Overflow(input.to_owned());
    let binary = 1u128.checked_shl(parsed.exp2).ok_or_else(overflow)?;
    let scaled = parsed.mantissa.checked_mul(binary).ok_or_else(overflow)?;
    let exp = parsed.exp10 + 3;
    let magnitude = if exp >= 0 {
        let factor = 10u128.checked_pow(exp.unsigned_abs()).ok_or_else(overflow)?;
        scaled.checked_mul(factor).ok_or_else(overflow)?
    } else {
        // A divisor beyond u128 means the value is far below one milli-unit: it rounds up to 1.
        match 10u128.checked_pow(exp.unsigned_abs()) {
            Some(divisor) => scaled.div_ceil(divisor),
            None => u128::from(scaled > 0),
        }
    };
    let magnitude = i64::try_from(magnitude).map_err(|_| overflow())?;
    Ok(if parsed.negative { -magnitude } else { magnitude })
}

fn parse(input: &str) -> Result<Parsed, QuantityError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }
    let (negative, unsigned) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);
    let (mantissa, fraction_digits) = parse_decimal(number).ok_or_else(|| QuantityError::BadNumber(text.to_owned()))?;
    let (suffix_exp10, exp2) = parse_suffix(suffix)
        .ok_or_else(|| QuantityError::BadSuffix { input: text.to_owned(), suffix: suffix.to_owned() })?;
    Ok(Parsed { negative, mantissa, exp10: suffix_exp10 - fraction_digits, exp2 })
}

/// Reads `<digits>`, `<digits>.<digits>`, `<digits>.` or `.<digits>` as an integer mantissa plus
/// the number of fraction digits.
fn parse_decimal(number: &str) -> Option<(u128, i32)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let mut mantissa: u128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(u128::from(digit - b'0'))?;
    }
    Some((mantissa, i32::try_from(fraction.len()).ok()?))
}

/// Maps a suffix to (power of ten, power of two).
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let pair = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => return parse_exponent(suffix).map(|exp| (exp, 0)),
    };
    Some(pair)
}

/// Reads a decimal exponent suffix such as `e3`, `E-2` or `e+6`.
fn parse_exponent(suffix: &str) -> Option<i32> {
    let digits = suffix.strip_prefix(['e', 'E'])?;
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Beyond ±1000 nothing fits an f64 or i64 anyway; refusing keeps the arithmetic bounded.
    digits.parse::<i32>().ok().filter(|exp| exp.abs() <= 1000)
}

/// A non-negative quantity as a config writes it, a number (`5`, `0.5`) or a quantity string
/// (`"500m"`, `"2k"`), held in whole thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Milli(pub i64);

impl<'de> serde::Deserialize<'de> for Milli {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Integer(i64),
            Number(f64),
            Text(String),
        }
        let milli = match Raw::deserialize(deserializer)? {
            Raw::Integer(n) => n.checked_mul(1000).ok_or_else(|| format!("{n} is too large")),
            Raw::Number(n) if n.is_finite() && n.abs() < 9e15 => Ok((n * 1000.0).ceil() as i64),
            Raw::Number(n) => Err(format!("{n} is not a finite number")),
            Raw::Text(text) => parse_milli(text.trim()).map_err(|e| format!("{text:?} is not a quantity: {e}")),
        }
        .map_err(serde::de::Error::custom)?;
        if milli < 0 {
            return Err(serde::de::Error::custom("must be >= 0"));
        }
        Ok(Milli(milli))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_forms_parse_to_base_units() {
        let cases = [
            ("12345678n", 0.012_345_678),
            ("250m", 0.25),
            ("1", 1.0),
            ("64Ki", 65_536.0),
            ("1Gi", 1_073_741_824.0),
            ("1.5", 1.5),
            ("2e3", 2000.0),
            ("1k", 1000.0),
            ("1M", 1_000_000.0),
            ("-3", -3.0),
            (".5", 0.5),
            ("1E-3", 0.001),
        ];
        for (input, expected) in cases {
            let value = parse_quantity(input).unwrap();
            assert!((value - expected).abs() < 1e-12, "{input}: {value} != {expected}");
        }
    }

    #[test]
    fn milli_values_are_exact_and_round_away_from_zero() {
        assert_eq!(parse_milli("12345678n"), Ok(13));
        assert_eq!(parse_milli("250m"), Ok(250));
        assert_eq!(parse_milli("1"), Ok(1000));
        assert_eq!(parse_milli("1.5"), Ok(1500));
        assert_eq!(parse_milli("64Ki"), Ok(65_536_000));
        assert_eq!(parse_milli("1n"), Ok(1));
        assert_eq!(parse_milli("0"), Ok(0));
        assert_eq!(parse_milli("-1500u"), Ok(-2));
        assert_eq!(parse_milli("2e3"), Ok(2_000_000));
        assert_eq!(parse_milli("1e-900"), Ok(1));
    }

    #[test]
    fn malformed_quantities_say_what_is_wrong() {
        assert_eq!(parse_milli(""), Err(QuantityError::Empty));
        assert!(matches!(parse_milli("abc"), Err(QuantityError::BadNumber(_))));
        assert!(matches!(parse_milli("1.2.3"), Err(QuantityError::BadNumber(_))));
        assert!(matches!(parse_milli("."), Err(QuantityError::BadNumber(_))));
        assert!(matches!(parse_milli("5Xi"), Err(QuantityError::BadSuffix { .. })));
        assert!(matches!(parse_milli("5e"), Err(QuantityError::BadSuffix { .. })));
        assert!(matches!(parse_milli("1Ei1"), Err(QuantityError::BadSuffix { .. })));
        assert!(matches!(parse_milli("100E"), Err(QuantityError::Overflow(_))));
        assert!(matches!(parse_quantity("1e999"), Err(QuantityError::Overflow(_))));
    }
}
