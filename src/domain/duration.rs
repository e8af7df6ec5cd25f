//! Durations typed by people (`--for 2h`, `90m`, `1d12h`) and shown back to them.

use std::time::Duration;

/// Longest duration accepted: a lock for a year is a mistake.
const MAX_SECONDS: u64 = 366 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: use a number and a unit, such as 30m, 2h or 1d12h (up to 366d)")]
pub struct DurationError(pub String);

/// Parses `2h`, `30m`, `45s`, `1d12h`, `1w`: whole numbers, each followed by a unit.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_string());
    let mut total: u64 = 0;
    let mut digits = String::new();
    if text.is_empty() {
        return Err(err());
    }
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(err()),
        };
        let n: u64 = digits.parse().map_err(|_| err())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(err)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 || total > MAX_SECONDS {
        return Err(err());
    }
    Ok(Duration::from_secs(total))
}

/// `2h30m`, `45s`, `3d`: the largest units first, zero parts left out.
pub fn render_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "2", "h", "2x", "0m", "400d", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_largest_units_first() {
        assert_eq!(render_duration(Duration::from_secs(9000)), "2h30m");
        assert_eq!(render_duration(Duration::from_millis(250)), "250ms");
    }
}

/// A duration written as text in the config: `30s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(secs))
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        parse_duration(&text).map(HumanDuration)
    }
}
