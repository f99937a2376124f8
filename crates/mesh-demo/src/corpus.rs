//! The demo's log corpus: lines that read like an inference fleet at work.
//!
//! Deterministic: the line for tick `t` on node `n` is a pure function of both,
//! so runs are reproducible and tests can check them. Numbers come from cheap
//! arithmetic on the tick, not from an RNG.

use mesh::LogLevel;

/// One template: a level and a formatter over a few derived numbers.
struct Template {
    level: LogLevel,
    render: fn(n: usize, a: u64, b: u64, c: u64) -> String,
}

const TEMPLATES: &[Template] = &[
    Template {
        level: LogLevel::Info,
        render: |n, a, b, _| {
            format!(
                "gpu-{n} :: dispatched batch #{a} ({} requests, {} tok padded)",
                8 + b % 56,
                (b * 37) % 900
            )
        },
    },
    Template {
        level: LogLevel::Info,
        render: |n, a, b, _| {
            format!(
                "gpu-{n} :: prefill {} tok/s over {} sequences",
                18_000 + (a * 131) % 9_000,
                4 + b % 28
            )
        },
    },
    Template {
        level: LogLevel::Info,
        render: |n, a, _, c| {
            format!(
                "gpu-{n} :: prompt cache hit rate {}.{}% (window {} req)",
                61 + a % 35,
                c % 10,
                512 + (c * 7) % 1536
            )
        },
    },
    Template {
        level: LogLevel::Debug,
        render: |n, a, b, c| {
            format!(
                "gpu-{n} :: decode step {} ttft {} ms, itl {}.{} ms",
                a * 3 + b,
                38 + c % 90,
                11 + b % 9,
                a % 10
            )
        },
    },
    Template {
        level: LogLevel::Warn,
        render: |n, _, b, c| {
            format!(
                "gpu-{n} :: kv-cache pressure: evicted {} blocks ({} MiB) to host",
                16 + c % 240,
                2 + b % 61
            )
        },
    },
    Template {
        level: LogLevel::Info,
        render: |n, a, b, _| {
            format!(
                "gpu-{n} :: scheduler queue depth {} (p95 wait {} ms)",
                a % 48,
                3 + (b * 13) % 140
            )
        },
    },
    Template {
        level: LogLevel::Info,
        render: |n, a, _, c| {
            format!(
                "gpu-{n} :: weight sync epoch {} applied ({} shards, {} ms)",
                1000 + a / 7,
                8 + c % 56,
                120 + c % 800
            )
        },
    },
    Template {
        level: LogLevel::Debug,
        render: |n, a, b, _| {
            format!(
                "gpu-{n} :: telemetry flush: {} points, {} KiB",
                400 + (a * 17) % 3600,
                12 + b % 200
            )
        },
    },
    Template {
        level: LogLevel::Info,
        render: |n, a, b, c| {
            format!(
                "gpu-{n} :: speculative decode accepted {}/{} draft tokens (batch {})",
                3 + c % 5,
                8,
                a % 1000 + b
            )
        },
    },
    Template {
        level: LogLevel::Info,
        render: |n, _, b, c| {
            format!(
                "gpu-{n} :: lora adapter swap: {} -> {} in {} ms",
                c % 12,
                (c + b) % 12,
                9 + b % 40
            )
        },
    },
    Template {
        level: LogLevel::Warn,
        render: |n, a, _, c| {
            format!(
                "gpu-{n} :: request {} exceeded slo (ttft {} ms > 250 ms)",
                a * 101 + c,
                251 + c % 400
            )
        },
    },
    Template {
        level: LogLevel::Error,
        render: |n, a, b, _| {
            format!(
                "gpu-{n} :: nccl all-reduce retry {} on ring {} (timeout after 5000 ms)",
                1 + b % 3,
                a % 4
            )
        },
    },
];

/// The log line for `tick` on node `node` (level and text).
pub fn line(node: usize, tick: u64) -> (LogLevel, String) {
    // Mix the inputs so neighbouring nodes and ticks pick different templates.
    let mix = (tick.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (node as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        >> 7;
    // Errors are rare: the last template only every 37th pick.
    let mut index = (mix % TEMPLATES.len() as u64) as usize;
    if index == TEMPLATES.len() - 1 && mix % 37 != 0 {
        index = (mix / 7 % (TEMPLATES.len() as u64 - 1)) as usize;
    }
    let t = &TEMPLATES[index];
    (t.level, (t.render)(node, tick + mix % 97, mix % 1013, mix % 4093))
}

/// Jitter in milliseconds, in `-spread..=spread`, derived from (tick, node).
pub fn jitter_ms(node: usize, tick: u64, spread: u64) -> i64 {
    if spread == 0 {
        return 0;
    }
    let mix = (tick ^ ((node as u64) << 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 11;
    (mix % (2 * spread + 1)) as i64 - spread as i64
}

/// Number of templates.
pub fn templates() -> usize {
    TEMPLATES.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_deterministic_prefixed_and_varied() {
        assert_eq!(line(3, 42), line(3, 42));
        let lines: std::collections::HashSet<String> = (0..200).map(|t| line(2, t).1).collect();
        assert!(lines.len() > 150);
        assert!((0..50).all(|t| line(7, t).1.starts_with("gpu-7 :: ")));
        let used: std::collections::HashSet<usize> = (0..500)
            .map(|t| TEMPLATES.iter().position(|x| x.level == line(1, t).0).unwrap_or(0))
            .collect();
        assert!(used.len() >= 3);
    }

    #[test]
    fn jitter_stays_in_bounds_and_differs_by_node() {
        for t in 0..1000 {
            assert!(jitter_ms(4, t, 150).abs() <= 150);
        }
        assert_ne!(
            (0..10).map(|t| jitter_ms(0, t, 150)).collect::<Vec<_>>(),
            (0..10).map(|t| jitter_ms(1, t, 150)).collect::<Vec<_>>()
        );
        assert_eq!(jitter_ms(0, 5, 0), 0);
    }
}
