//! Monitoring Plugins threshold ranges: `[@][start:][end]`.
//!
//! | text     | alerts when            |
//! |----------|------------------------|
//! | `10`     | value < 0 or > 10      |
//! | `10:`    | value < 10             |
//! | `~:10`   | value > 10             |
//! | `10:20`  | value < 10 or > 20     |
//! | `@10:20` | 10 <= value <= 20      |
//!
//! Pure parsing and evaluation; no I/O.

use std::fmt;
use std::str::FromStr;

use crate::error::RangeError;

/// A threshold range as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound; `None` is negative infinity (`~`).
    start: Option<f64>,
    /// Upper bound; `None` is positive infinity (nothing after `:`).
    end: Option<f64>,
    /// `@`: alert inside the range instead of outside.
    inside: bool,
}

// === impl Range ===

impl Range {
    /// `0:max`: alerts when the value is above `max` (the common "more than N" threshold).
    pub fn above(max: f64) -> Self {
        Range {
            start: Some(0.0),
            end: Some(max),
            inside: false,
        }
    }

    /// `min:`: alerts when the value is below `min`.
    pub fn below(min: f64) -> Self {
        Range {
            start: Some(min),
            end: None,
            inside: false,
        }
    }

    /// Whether `value` raises an alert under this range.
    pub fn alerts(&self, value: f64) -> bool {
        let lo_ok = self.start.is_none_or(|s| value >= s);
        let hi_ok = self.end.is_none_or(|e| value <= e);
        let within = lo_ok && hi_ok;
        if self.inside { within } else { !within }
    }

    /// The threshold as a plain number for perfdata, when it has one: Icinga's metric
    /// writers drop anything but a plain number, so `0:10` and `10` become `10`, `~:10`
    /// becomes `10`; ranges without a single meaningful bound (`10:20`, `@..`, `10:`)
    /// return the range text, which Icinga keeps in the raw perfdata only.
    pub fn perfdata(&self) -> String {
        match (self.inside, self.start, self.end) {
            (false, None | Some(0.0), Some(e)) => num(e),
            _ => self.to_string(),
        }
    }
}

fn num(v: f64) -> String {
    // POSIX decimal point, no exponent, no trailing ".0" for integers.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (Some(s), Some(e)) if s == 0.0 && !self.inside => write!(f, "{}", num(e)),
            (Some(s), Some(e)) => write!(f, "{}:{}", num(s), num(e)),
            (Some(s), None) => write!(f, "{}:", num(s)),
            (None, Some(e)) => write!(f, "~:{}", num(e)),
            (None, None) => f.write_str("~:"),
        }
    }
}

impl FromStr for Range {
    type Err = RangeError;

    fn from_str(text: &str) -> Result<Self, RangeError> {
        let err = |reason: &'static str| RangeError {
            text: text.to_string(),
            reason,
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(err("empty range"));
        }
        let (inside, body) = match t.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let parse_num = |s: &str| -> Result<f64, RangeError> {
            // Refuse what f64::from_str accepts but a threshold should not be.
            if s.is_empty()
                || s.contains(['e', 'E'])
                || s.eq_ignore_ascii_case("inf")
                || s.to_ascii_lowercase().contains("nan")
                || s.to_ascii_lowercase().contains("inf")
            {
                return Err(err("not a number"));
            }
            s.parse::<f64>().map_err(|_| err("not a number"))
        };
        let (start, end) = match body.split_once(':') {
            None => (Some(0.0), Some(parse_num(body)?)),
            Some((s, e)) => {
                if e.contains(':') {
                    return Err(err("more than one ':'"));
                }
                let start = match s {
                    "~" => None,
                    "" => Some(0.0),
                    s => Some(parse_num(s)?),
                };
                let end = if e.is_empty() {
                    None
                } else {
                    Some(parse_num(e)?)
                };
                (start, end)
            }
        };
        if start.zip(end).is_some_and(|(s, e)| s > e) {
            return Err(err("start is greater than end"));
        }
        Ok(Range { start, end, inside })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r(t: &str) -> Range {
        t.parse().unwrap()
    }

    #[test]
    fn plain_number_alerts_below_zero_or_above_it() {
        let x = r("10");
        assert!(x.alerts(-1.0));
        assert!(!x.alerts(0.0));
        assert!(!x.alerts(10.0));
        assert!(x.alerts(10.5));
    }

    #[test]
    fn open_end_alerts_below_start() {
        let x = r("10:");
        assert!(x.alerts(9.9));
        assert!(!x.alerts(10.0));
        assert!(!x.alerts(1e9));
    }

    #[test]
    fn tilde_start_alerts_above_end_only() {
        let x = r("~:10");
        assert!(!x.alerts(-1000.0));
        assert!(!x.alerts(10.0));
        assert!(x.alerts(11.0));
    }

    #[test]
    fn two_bounds_alert_outside_inclusive() {
        let x = r("10:20");
        assert!(x.alerts(9.0));
        assert!(!x.alerts(10.0));
        assert!(!x.alerts(20.0));
        assert!(x.alerts(21.0));
    }

    #[test]
    fn at_sign_alerts_inside_inclusive() {
        let x = r("@10:20");
        assert!(!x.alerts(9.0));
        assert!(x.alerts(10.0));
        assert!(x.alerts(15.0));
        assert!(x.alerts(20.0));
        assert!(!x.alerts(20.1));
    }

    #[test]
    fn empty_start_means_zero() {
        let x = r(":5");
        assert!(x.alerts(-0.5));
        assert!(x.alerts(6.0));
        assert!(!x.alerts(5.0));
    }

    #[test]
    fn decimals_and_negatives_parse() {
        let x = r("-1.5:2.25");
        assert!(!x.alerts(-1.5));
        assert!(x.alerts(-1.6));
        assert!(x.alerts(2.3));
    }

    #[test]
    fn malformed_ranges_are_refused_with_the_text() {
        for bad in [
            "", "abc", "1:2:3", "20:10", "@", "~", "1e3", "inf", "nan", "10:x",
        ] {
            let e = bad.parse::<Range>().expect_err(bad);
            assert_eq!(e.text, bad);
        }
    }

    #[test]
    fn perfdata_shows_plain_numbers_where_possible() {
        assert_eq!(r("10").perfdata(), "10");
        assert_eq!(r("~:10").perfdata(), "10");
        assert_eq!(r("0:7").perfdata(), "7");
        assert_eq!(r("10:").perfdata(), "10:");
        assert_eq!(r("@10:20").perfdata(), "@10:20");
        assert_eq!(r("1.5").perfdata(), "1.5");
    }

    #[test]
    fn display_round_trips() {
        for t in ["10", "10:", "~:10", "10:20", "@10:20", "@~:3", "-2:-1"] {
            assert_eq!(r(t).to_string(), t);
            assert_eq!(r(&r(t).to_string()), r(t));
        }
    }

    #[test]
    fn constructors_match_their_text() {
        assert_eq!(Range::above(5.0), r("5"));
        assert_eq!(Range::below(2.0), r("2:"));
    }
}
