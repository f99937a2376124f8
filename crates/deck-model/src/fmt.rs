//! Short human forms for table cells: ages, durations, byte counts, clock times.
//!
//! Every function is total (no panics on extreme values) and returns plain ASCII
//! (apart from the `µ` of microseconds), so column widths are predictable.

use std::time::Duration;

/// An age or interval in milliseconds: `850ms`, `12s`, `4m12s`, `3h05m`, `2d04h`.
pub fn age_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{s}s"),
        60_000..3_600_000 => format!("{}m{:02}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A latency: `850µs`, `12.4ms`, `1.25s`.
pub fn latency(d: Duration) -> String {
    latency_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A latency in microseconds (see [`latency`]).
pub fn latency_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1000.0),
        _ => format!("{:.2}s", us as f64 / 1_000_000.0),
    }
}

/// A byte count in binary units: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A fraction 0.0..=1.0 as a whole percentage: `42%`.
pub fn percent(fraction: f64) -> String {
    if fraction.is_nan() {
        return "-".into();
    }
    format!("{:.0}%", (fraction * 100.0).clamp(0.0, 999.0))
}

/// Wall-clock time of day (UTC) with milliseconds: `14:03:07.215`.
pub fn clock_ms(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let s = unix_ms / 1000;
    format!("{:02}:{:02}:{:02}.{ms:03}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// Wall-clock time of day (UTC) to the second: `14:03:07`.
pub fn clock(unix_ms: u64) -> String {
    let s = unix_ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// A bar of `width` cells filled to `fraction` (`███░░`).
pub fn bar(fraction: f64, width: usize) -> String {
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    let filled = ((fraction * width as f64).round() as usize).min(width);
    let mut out = String::with_capacity(width * 3);
    for i in 0..width {
        out.push(if i < filled { '█' } else { '░' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(age_ms(850), "850ms");
        assert_eq!(age_ms(12_400), "12s");
        assert_eq!(age_ms(252_000), "4m12s");
        assert_eq!(age_ms(3 * 3_600_000 + 5 * 60_000), "3h05m");
        assert!(!age_ms(u64::MAX).is_empty());
        assert_eq!(latency_us(850), "850µs");
        assert_eq!(latency_us(12_400), "12.4ms");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(percent(0.424), "42%");
        assert_eq!(clock_ms(3_723_004), "01:02:03.004");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(f64::NAN, 2), "░░");
    }
}
