//! The demo's daemons: fleet members whose saturation and health move, and a
//! migratable compute daemon with real state.

use std::time::Instant;

use mesh::{Daemon, DaemonControl, DaemonHealth};

/// How long a saturation reading holds before the next step (keeps the fold
/// quiet: a step is news, a wobble every poll would not be).
const STEP_SECS: f64 = 2.0;

/// A fleet member (`node_agent`, `inference_worker#replica`, ...): busy in waves.
#[derive(Debug)]
pub struct FleetDaemon {
    name: String,
    phase: f64,
    period_s: f64,
    started: Instant,
    draining: bool,
}

impl FleetDaemon {
    /// A daemon named `name`; `seed` spreads phases and periods apart.
    pub fn new(name: &str, seed: u64) -> Self {
        Self {
            name: name.to_owned(),
            phase: (seed % 628) as f64 / 100.0,
            period_s: 20.0 + (seed % 17) as f64 * 3.0,
            started: Instant::now(),
            draining: false,
        }
    }

    fn level(&self) -> f64 {
        let t = (self.started.elapsed().as_secs_f64() / STEP_SECS).floor() * STEP_SECS;
        let wave = (t / self.period_s * std::f64::consts::TAU + self.phase).sin();
        let ripple = (t * 0.37 + self.phase * 3.0).sin() * 0.08;
        (0.52 + 0.42 * wave + ripple).clamp(0.0, 1.0)
    }
}

impl Daemon for FleetDaemon {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_control(&mut self, control: DaemonControl) {
        match control {
            DaemonControl::DrainStart => self.draining = true,
            DaemonControl::DrainFinish | DaemonControl::Restart => self.draining = false,
            _ => {}
        }
    }

    fn health(&self) -> DaemonHealth {
        let level = self.level();
        if self.draining {
            DaemonHealth::Degraded { reason: "draining: refusing new batches".into() }
        } else if level > 0.9 {
            DaemonHealth::Degraded {
                reason: format!("decode queue saturated ({:.0}%)", level * 100.0),
            }
        } else {
            DaemonHealth::Healthy
        }
    }

    fn saturation(&self) -> f32 {
        if self.draining { 0.0 } else { self.level() as f32 }
    }
}

/// Kind name of the migratable compute daemon.
pub const COMPUTE_KIND: &str = "compute";

/// A migratable daemon with state: a step counter and a working set.
#[derive(Debug)]
pub struct Compute {
    name: String,
    steps: u64,
    working_set: Vec<u8>,
    started: Instant,
}

impl Compute {
    /// A fresh daemon with a working set of `bytes` bytes.
    pub fn new(name: &str, bytes: usize) -> Self {
        Self {
            name: name.to_owned(),
            steps: 0,
            working_set: (0..bytes).map(|i| (i * 31 % 251) as u8).collect(),
            started: Instant::now(),
        }
    }

    /// Rebuilds a daemon from [`Daemon::snapshot`] bytes (the factory).
    pub fn restore(state: &[u8]) -> Result<Self, String> {
        let (name_len, rest) = state.split_first_chunk::<2>().ok_or("state too short")?;
        let name_len = u16::from_le_bytes(*name_len) as usize;
        let name = rest.get(..name_len).ok_or("state truncated (name)")?;
        let name = std::str::from_utf8(name).map_err(|_| "name is not UTF-8")?.to_owned();
        let rest = &rest[name_len..];
        let (steps, working_set) =
            rest.split_first_chunk::<8>().ok_or("state truncated (steps)")?;
        Ok(Self {
            name,
            steps: u64::from_le_bytes(*steps),
            working_set: working_set.to_vec(),
            started: Instant::now(),
        })
    }

    /// Steps done so far (grows while it runs, survives migration).
    pub fn steps(&self) -> u64 {
        self.steps + self.started.elapsed().as_secs()
    }
}

impl Daemon for Compute {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> Option<&str> {
        Some(COMPUTE_KIND)
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(2 + name.len() + 8 + self.working_set.len());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&self.steps().to_le_bytes());
        out.extend_from_slice(&self.working_set);
        Ok(out)
    }

    fn saturation(&self) -> f32 {
        0.35
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_round_trips_and_refuses_garbage() {
        let mut c = Compute::new("compute-7", 1000);
        let state = c.snapshot().unwrap();
        let back = Compute::restore(&state).unwrap();
        assert_eq!(back.name, "compute-7");
        assert_eq!(back.working_set, c.working_set);
        for cut in 0..12 {
            let _ = Compute::restore(&state[..cut.min(state.len())]);
        }
        assert!(Compute::restore(&[]).is_err());
    }

    #[test]
    fn fleet_levels_stay_in_range() {
        let d = FleetDaemon::new("x#replica", 99);
        assert!((0.0..=1.0).contains(&d.saturation()));
    }
}
