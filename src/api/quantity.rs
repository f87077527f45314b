//! Kubernetes resource quantities (`100m`, `1.5`, `64Mi`, `1G`, `2e3`): parsed exactly into
//! thousandths, which is what the scheduler and the kubelet compare (`MilliValue` for CPU,
//! `Value` — thousandths rounded up to a whole unit — for memory and counts).
//!
//! Exact integer arithmetic (no floats): `0.1` CPU and `100m` are the same quantity, and two
//! parses of one string always agree, which placement decisions depend on.

/// The largest quantity accepted, in thousandths (about 9.2e15 units: far beyond any real
/// node's memory in bytes).
pub const MAX_MILLIS: i128 = i64::MAX as i128;
/// Longest quantity string accepted.
pub const MAX_QUANTITY_CHARS: usize = 64;

/// A parsed quantity in thousandths of its unit (CPU: millicores; memory: millibytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Quantity {
    millis: i64,
}

impl Quantity {
    pub fn from_millis(millis: i64) -> Quantity {
        Quantity { millis }
    }

    /// Thousandths of the unit (upstream `MilliValue`).
    pub fn milli_value(self) -> i64 {
        self.millis
    }

    /// Whole units, rounded up (upstream `Value`).
    pub fn value(self) -> i64 {
        self.millis.div_euclid(1000) + i64::from(self.millis.rem_euclid(1000) != 0)
    }
}

/// Splits a quantity into its number and its suffix.
fn split(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// The suffix's multiplier as (power of two, power of ten).
fn suffix_scale(suffix: &str) -> Result<(u32, i32), String> {
    let binary = |p: u32| Ok((p, 0));
    let decimal = |p: i32| Ok((0, p));
    match suffix {
        "" => decimal(0),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..]
                .parse()
                .map_err(|_| format!("invalid exponent {s:?}"))?;
            if !(-30..=30).contains(&exp) {
                return Err(format!("exponent {exp} out of range"));
            }
            decimal(exp)
        }
        s => Err(format!("unknown suffix {s:?}")),
    }
}

/// Parses a quantity; fractions of a thousandth round up, as upstream's `MilliValue` does.
pub fn parse(s: &str) -> Result<Quantity, String> {
    let bad = |why: String| {
        format!("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s:?}: {why}")
    };
    if s.is_empty() || s.len() > MAX_QUANTITY_CHARS {
        return Err(bad("empty or too long".into()));
    }
    let (number, suffix) = split(s);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad("no number".into()));
    }
    let (pow2, pow10) = suffix_scale(suffix).map_err(bad)?;
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(frac.chars()) {
        let d = c.to_digit(10).ok_or_else(|| bad("not a digit".into()))?;
        mantissa = mantissa * 10 + i128::from(d);
        if mantissa > MAX_MILLIS {
            return Err(bad("too large".into()));
        }
    }
    // value = mantissa × 10^(pow10 − frac digits) × 2^pow2; in thousandths: one more 10^3.
    let exp10 = pow10 + 3 - frac.len() as i32;
    // mantissa ≤ 2^63 and pow2 ≤ 60: the shift stays below 2^123.
    assert!(mantissa <= MAX_MILLIS && pow2 <= 60);
    let mut m = mantissa << pow2;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            m = m
                .checked_mul(10)
                .filter(|m| *m <= MAX_MILLIS)
                .ok_or_else(|| bad("too large".into()))?;
        }
    } else {
        let div = 10i128
            .checked_pow(exp10.unsigned_abs())
            .unwrap_or(i128::MAX);
        m = m / div + i128::from(m % div != 0);
    }
    if m > MAX_MILLIS {
        return Err(bad("too large".into()));
    }
    let m = m as i64;
    Ok(Quantity::from_millis(if negative { -m } else { m }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upstream_examples() {
        let m = |s: &str| parse(s).unwrap().milli_value();
        assert_eq!(m("100m"), 100);
        assert_eq!(m("0.1"), 100);
        assert_eq!(m("1"), 1000);
        assert_eq!(m("1.5"), 1500);
        assert_eq!(m("2k"), 2_000_000);
        assert_eq!(m("1e3"), 1_000_000);
        assert_eq!(m("1E-3"), 1);
        assert_eq!(parse("64Mi").unwrap().value(), 64 << 20);
        assert_eq!(parse("1Gi").unwrap().value(), 1 << 30);
        assert_eq!(parse("1G").unwrap().value(), 1_000_000_000);
        assert_eq!(parse("0.5Ki").unwrap().value(), 512);
        assert_eq!(m("1n"), 1, "a fraction of a thousandth rounds up");
        assert_eq!(m("-100m"), -100);
        assert_eq!(parse("1500m").unwrap().value(), 2, "Value rounds up");
        assert_eq!(
            parse("8Ei").map(|q| q.value()).ok(),
            None,
            "beyond the range"
        );
        for bad in ["", "m", "1.2.3", "1Qi", "abc", "1 Gi", "--1", "1e99"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        /// Millicores written either way parse to the same quantity.
        #[test]
        fn milli_and_decimal_forms_agree(m in 0i64..10_000_000) {
            let decimal = format!("{}.{:03}", m / 1000, m % 1000);
            prop_assert_eq!(parse(&format!("{m}m")).unwrap().milli_value(), m);
            prop_assert_eq!(parse(&decimal).unwrap().milli_value(), m);
        }

        #[test]
        fn binary_suffixes_scale_exactly(n in 0i64..1_000_000, p in 0usize..4) {
            let (suffix, shift) = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40)][p];
            let q = parse(&format!("{n}{suffix}"));
            if let Some(v) = n.checked_shl(shift).filter(|v| v.checked_mul(1000).is_some() && (v >> shift) == n) {
                prop_assert_eq!(q.unwrap().value(), v);
            }
        }

        #[test]
        fn parsing_never_panics(s in "[-+0-9.eEKMGTPinumk]{0,20}") {
            let _ = parse(&s);
        }
    }
}
