//! Go duration strings (`1.5ms`, `2s`, `1h30m`), as the Jaeger and Tempo APIs take them.

/// Parses a Go duration into nanoseconds. Negative durations are refused: no search
/// bound can use them.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let err = || format!("invalid duration {text:?}: expected a Go duration such as 1.5ms, 2s or 1h30m");
    let s = text.trim();
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(err());
    }
    let total = sum_of_units(s.strip_prefix('+').unwrap_or(s), go_unit).ok_or_else(err)?;
    if total > u64::MAX as f64 {
        return Err(err());
    }
    Ok(total.round() as u64)
}

/// Nanoseconds in one of Go's duration units.
pub fn go_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

/// `text` as a sum of `<number><unit>` terms (`1h30m`, `1.5s`), in nanoseconds, with
/// each unit's size given by `unit`; `None` when a term does not read.
pub fn sum_of_units(text: &str, unit: impl Fn(&str) -> Option<f64>) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        total += number * unit(&rest[..unit_len])?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_go_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("100us"), Ok(100_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        for bad in ["", "5", "-1s", "1x", "ms"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
