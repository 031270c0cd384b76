//! Small pieces shared by the commands: durations, times, names, output.

use std::io::Write;
use std::time::Duration;

use mqseal::Clock;

use crate::civil;

/// Parses a duration: one or more `<number><unit>` with the units `ms`, `s`,
/// `m`, `h` and `d` (`90s`, `10m`, `1h30m`, `7d`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: write a number and a unit, such as 500ms, 60s, 10m, \
             1h30m or 7d"
        )
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(ms_per)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration compactly: `0s`, `500ms`, `90s` as `1m30s`, `1h`, `7d`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Parses a time: milliseconds since 1970, or ISO-8601 UTC
/// (`2026-11-18T11:06:40Z`, `2026-11-18T11:06:40.123Z`).
pub fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || {
        format!(
            "invalid time {text:?}: write ISO-8601 UTC such as 2026-11-18T11:06:40Z, or \
             milliseconds since 1970"
        )
    };
    let t = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<&str> = hms.split(':').collect();
    let [hh, mi, ss] = h[..] else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    let (hh, mi, ss) = (num(hh)?, num(mi)?, num(ss)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || hh > 23 || mi > 59 || ss > 60 {
        return Err(bad());
    }
    if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ms_frac = num(&format!("{frac:0<3}"))?;
    let days = civil::days_from_civil(i64::from(y), mo, da);
    let secs = days * 86_400 + i64::from(hh * 3600 + mi * 60 + ss);
    let ms = u64::try_from(secs).map_err(|_| bad())? * 1000 + u64::from(ms_frac);
    Ok(ms)
}

/// Milliseconds since 1970 as ISO-8601 UTC to the second: `2026-11-18T11:06:40Z`.
pub fn iso_seconds(ms: u64) -> String {
    let full = civil::iso8601_ms(ms);
    format!("{}Z", &full[..full.len() - 5])
}

/// The system clock, in milliseconds since 1970.
pub fn now_ms() -> u64 {
    mqseal::SystemClock.now_ms()
}

/// Checks a sender id given on the command line: 1 to 16 bytes.
pub fn parse_sender_id(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > mqseal::envelope::MAX_SENDER_ID_LEN {
        return Err(format!(
            "a sender id has 1 to {} bytes",
            mqseal::envelope::MAX_SENDER_ID_LEN
        ));
    }
    Ok(text.to_string())
}

/// The sender id of a name checked by [`parse_sender_id`] or
/// [`parse_client_name`](crate::provision::parse_client_name).
pub fn sender_id(name: &str) -> Result<mqseal::SenderId, String> {
    mqseal::SenderId::new(name.as_bytes()).map_err(|e| format!("sender id {name:?}: {e}"))
}

/// Writes bytes to standard output and flushes.
pub fn stdout_bytes(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))
}

/// A progress or status line on standard error.
pub fn note(line: &str) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("60").unwrap(), ms(60_000));
        assert_eq!(parse_duration("500ms").unwrap(), ms(500));
        assert_eq!(parse_duration("10m").unwrap(), ms(600_000));
        assert_eq!(parse_duration("1h30m").unwrap(), ms(5_400_000));
        assert_eq!(parse_duration("7d").unwrap(), ms(7 * 86_400_000));
        assert_eq!(parse_duration("0s").unwrap(), ms(0));
        for bad in ["", "m", "10x", "1.5h", "-1s", "10 m", "s10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(ms(0)), "0s");
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(600_000)), "10m");
        assert_eq!(format_duration(ms(86_400_500)), "1d500ms");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1795000000000").unwrap(), 1_795_000_000_000);
        assert_eq!(
            parse_time("2026-11-18T11:06:40Z").unwrap(),
            1_795_000_000_000
        );
        assert_eq!(
            parse_time("2026-11-18T11:06:40.12Z").unwrap(),
            1_795_000_000_120
        );
        for bad in [
            "2026-11-18",
            "2026-11-18T11:06:40",
            "2026-13-18T11:06:40Z",
            "x",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
        assert_eq!(iso_seconds(1_795_000_000_999), "2026-11-18T11:06:40Z");
    }
}
