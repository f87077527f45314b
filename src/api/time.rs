//! Kubernetes timestamps: RFC 3339 in UTC with whole seconds (`2026-11-26T23:07:07Z`).

/// Formats Unix milliseconds as Kubernetes does (seconds precision, `Z`).
pub fn rfc3339(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Formats Unix microseconds as a Kubernetes `MicroTime` (`2026-11-27T02:24:45.123456Z`), used
/// by Leases and events.
pub fn rfc3339_micros(unix_us: i64) -> String {
    let seconds = rfc3339(unix_us.div_euclid(1_000_000) * 1000);
    let micros = unix_us.rem_euclid(1_000_000);
    format!("{}.{micros:06}Z", seconds.trim_end_matches('Z'))
}

/// Parses an RFC 3339 UTC timestamp (`2026-11-26T23:07:07Z`, fractional seconds allowed)
/// into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, clock) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (whole, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = whole.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let valid = (1..=12).contains(&m) && (1..=31).contains(&day) && hh < 24 && mm < 60 && ss < 61;
    if !valid || hh < 0 || mm < 0 || ss < 0 {
        return None;
    }
    let millis = match frac.get(..3.min(frac.len())) {
        Some("") | None => 0,
        Some(f) => f.parse::<i64>().ok()? * 10_i64.pow(3 - f.len() as u32),
    };
    let days = days_from_civil(y, m as u32, day as u32);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + millis)
}

/// (year, month, day) → days since 1970-01-01 (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_734_427_999), "2026-11-26T23:07:07Z");
        assert_eq!(rfc3339(-1_000), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_micros(1_795_734_427_000_042),
            "2026-11-26T23:07:07.000042Z"
        );
        assert_eq!(
            parse_rfc3339(&rfc3339_micros(1_795_734_427_250_000)),
            Some(1_795_734_427_250)
        );
    }

    #[test]
    fn parses_what_it_formats() {
        for ms in [
            0,
            951_782_400_000,
            1_795_734_427_000,
            -86_400_000,
            4_102_444_800_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-26T23:07:07.25Z"),
            Some(1_795_734_427_250)
        );
        for bad in [
            "",
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-11-26T23:07:07+01:00",
            "x-1-1T0:0:0Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
