//! The daemon SDK: long-running services registered on a node.
//!
//! A daemon is any `Send` value implementing [`Daemon`]; it does its work in tasks
//! of its own and gives the node a control surface: a name, control messages,
//! health and saturation. The node polls health and saturation, delivers
//! controls, and publishes all of it cluster-wide through the fold.
//!
//! Every call into a daemon is guarded: a panic marks the daemon Unhealthy with the
//! panic message, counts a restart, and the node keeps running; the daemon is
//! resumed after a backoff (doubling from 200 ms to 30 s), and three crashes within
//! a minute show it as crash-looping.

use std::collections::VecDeque;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use mesh_auth::OriginHash;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::logs::LogLevel;

/// Longest daemon name accepted, in bytes.
pub const MAX_DAEMON_NAME: usize = 128;
/// Crashes within this window make a daemon crash-looping (3 or more).
const CRASH_WINDOW: Duration = Duration::from_secs(60);
const CRASH_LOOP_COUNT: usize = 3;

/// A control message delivered to a daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DaemonControl {
    /// Stop within `grace`.
    Shutdown {
        /// How long the daemon has.
        grace: Duration,
    },
    /// Stop taking new work (the node is being drained).
    DrainStart,
    /// Draining is over; the daemon is about to be stopped or moved.
    DrainFinish,
    /// Slow down: downstream (for example the log queue) is filling up.
    BackpressureOn {
        /// How full, 0.0 to 1.0.
        level: f32,
    },
    /// Pressure is gone.
    BackpressureOff,
    /// Restart: an operator (or the node's admin path) asked for a fresh start.
    /// The daemon should reset its work; the node counts a restart.
    Restart,
}

/// What a daemon says about its own health.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DaemonHealth {
    /// Working normally.
    Healthy,
    /// Working, but impaired.
    Degraded {
        /// Why.
        reason: String,
    },
    /// Not working.
    Unhealthy {
        /// Why.
        reason: String,
    },
}

impl DaemonHealth {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn label(&self) -> &'static str {
        match self {
            DaemonHealth::Healthy => "healthy",
            DaemonHealth::Degraded { .. } => "degraded",
            DaemonHealth::Unhealthy { .. } => "unhealthy",
        }
    }

    /// The reason, when not healthy.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DaemonHealth::Healthy => None,
            DaemonHealth::Degraded { reason } | DaemonHealth::Unhealthy { reason } => Some(reason),
        }
    }

    fn sanitized(self) -> Self {
        let clean = |r: String| crate::logs::sanitize(&r).chars().take(256).collect();
        match self {
            DaemonHealth::Healthy => DaemonHealth::Healthy,
            DaemonHealth::Degraded { reason } => DaemonHealth::Degraded { reason: clean(reason) },
            DaemonHealth::Unhealthy { reason } => DaemonHealth::Unhealthy { reason: clean(reason) },
        }
    }
}

impl fmt::Display for DaemonHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            None => f.write_str(self.label()),
            Some(reason) => write!(f, "{} ({reason})", self.label()),
        }
    }
}

/// Where a daemon is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lifecycle {
    /// Running normally.
    Running,
    /// Draining (between DrainStart and DrainFinish).
    Draining,
    /// Crashed; will be resumed after a backoff.
    Crashed,
    /// Being moved to another node.
    Migrating,
    /// Told to shut down.
    Stopping,
}

impl Lifecycle {
    /// Lower-case name.
    pub fn label(self) -> &'static str {
        match self {
            Lifecycle::Running => "running",
            Lifecycle::Draining => "draining",
            Lifecycle::Crashed => "crashed",
            Lifecycle::Migrating => "migrating",
            Lifecycle::Stopping => "stopping",
        }
    }
}

/// A long-running service on a node.
///
/// Methods are called from the node's state task and must return quickly; do real
/// work in tasks the daemon spawns. Panics are caught (see the module docs).
pub trait Daemon: Send + 'static {
    /// The daemon's name; may carry a lineage suffix (`#replica`, `#standby`,
    /// `#fork@SEQ`). Read once, at registration.
    fn name(&self) -> &str;

    /// A control message from the node or an operator.
    fn on_control(&mut self, control: DaemonControl) {
        let _ = control;
    }

    /// Current health (polled every probe interval).
    fn health(&self) -> DaemonHealth {
        DaemonHealth::Healthy
    }

    /// How busy it is, 0.0 (idle) to 1.0 (saturated); values outside are clamped.
    fn saturation(&self) -> f32 {
        0.0
    }

    /// The daemon's kind, for migration: a daemon with a kind can be moved to any
    /// node that registered a factory for that kind
    /// ([`crate::MeshNode::register_factory`]). `None` (the default) pins it.
    fn kind(&self) -> Option<&str> {
        None
    }

    /// Serializes the daemon's state for migration; the target node rebuilds it
    /// with the factory for [`Daemon::kind`]. Called once, when a move starts.
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        Err("this daemon does not support migration".to_owned())
    }
}

/// Why a daemon could not be registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The name is empty, too long or contains control characters.
    #[error("invalid daemon name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (escaped in Display).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A daemon with this id is already registered on this node.
    #[error("daemon {0} is already registered")]
    AlreadyRegistered(OriginHash),
    /// No daemon with this id on this node.
    #[error("no daemon {0} on this node")]
    NotFound(OriginHash),
    /// The node is shut down.
    #[error("the mesh node is shut down")]
    Shutdown,
}

/// Checks a daemon name: 1 to [`MAX_DAEMON_NAME`] bytes, no control characters.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_DAEMON_NAME {
        return Err("longer than 128 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// One log line on its way from a daemon into the node's ring.
#[derive(Debug)]
pub(crate) struct PendingLine {
    pub(crate) ts_ms: u64,
    pub(crate) daemon: Option<OriginHash>,
    pub(crate) level: LogLevel,
    pub(crate) message: String,
}

/// Shared between a registered daemon's handle and the node.
pub(crate) struct DaemonSlot {
    pub(crate) id: OriginHash,
    pub(crate) name: String,
    pub(crate) daemon: Mutex<Box<dyn Daemon>>,
    pub(crate) started_at_ms: u64,
    /// Migration kind (`Some` = migratable).
    pub(crate) kind: Option<String>,
    /// The daemon's identity; travels with it when it migrates.
    pub(crate) keypair: mesh_auth::EntityKeypair,
    pub(crate) log_dropped: AtomicU64,
    /// Set when a publish found the queue full; cleared when Off is delivered.
    pub(crate) pressured: AtomicBool,
    pub(crate) state: Mutex<SlotState>,
}

/// Mutable supervision state of one daemon.
pub(crate) struct SlotState {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) health: DaemonHealth,
    pub(crate) saturation_milli: u16,
    pub(crate) restarts: u32,
    pub(crate) crashes: VecDeque<Instant>,
    pub(crate) resume_at: Option<Instant>,
    pub(crate) controls: VecDeque<DaemonControl>,
    pub(crate) backpressure_on: bool,
}

impl SlotState {
    /// Three or more crashes within the last minute.
    pub(crate) fn crash_looping(&self) -> bool {
        self.crashes.len() >= CRASH_LOOP_COUNT
    }
}

/// The outcome of guarding a call into a daemon.
pub(crate) enum Guarded<T> {
    Ok(T),
    Panicked(String),
}

impl DaemonSlot {
    pub(crate) fn new(
        keypair: mesh_auth::EntityKeypair,
        daemon: Box<dyn Daemon>,
        name: String,
        now_ms: u64,
    ) -> Self {
        let kind = guard(|| daemon.kind().map(str::to_owned)).ok().flatten();
        Self {
            id: keypair.origin_hash(),
            keypair,
            name,
            daemon: Mutex::new(daemon),
            started_at_ms: now_ms,
            kind,
            log_dropped: AtomicU64::new(0),
            pressured: AtomicBool::new(false),
            state: Mutex::new(SlotState {
                lifecycle: Lifecycle::Running,
                health: DaemonHealth::Healthy,
                saturation_milli: 0,
                restarts: 0,
                crashes: VecDeque::new(),
                resume_at: None,
                controls: VecDeque::new(),
                backpressure_on: false,
            }),
        }
    }

    /// Delivers queued controls and polls health and saturation, all guarded.
    /// Returns a failure message if the daemon panicked.
    pub(crate) fn poll(&self, now: Instant) -> Option<String> {
        let controls: Vec<DaemonControl> = {
            let mut st = self.state.lock();
            if st.lifecycle == Lifecycle::Crashed {
                match st.resume_at {
                    Some(at) if now >= at => {
                        st.lifecycle = Lifecycle::Running;
                        st.resume_at = None;
                    }
                    _ => return None,
                }
            }
            st.controls.drain(..).collect()
        };
        let mut daemon = self.daemon.lock();
        for control in controls {
            let is_restart = control == DaemonControl::Restart;
            let lifecycle = match &control {
                DaemonControl::DrainStart => Some(Lifecycle::Draining),
                DaemonControl::DrainFinish => Some(Lifecycle::Running),
                DaemonControl::Shutdown { .. } => Some(Lifecycle::Stopping),
                DaemonControl::Restart => Some(Lifecycle::Running),
                _ => None,
            };
            if let Guarded::Panicked(msg) = guard(|| daemon.on_control(control)) {
                drop(daemon);
                return Some(self.crashed(now, msg));
            }
            if let Some(l) = lifecycle {
                let mut st = self.state.lock();
                st.lifecycle = l;
                if is_restart {
                    st.restarts += 1;
                }
            }
        }
        let health = match guard(|| daemon.health()) {
            Guarded::Ok(h) => h.sanitized(),
            Guarded::Panicked(msg) => {
                drop(daemon);
                return Some(self.crashed(now, msg));
            }
        };
        let saturation = match guard(|| daemon.saturation()) {
            Guarded::Ok(s) => s,
            Guarded::Panicked(msg) => {
                drop(daemon);
                return Some(self.crashed(now, msg));
            }
        };
        drop(daemon);
        let mut st = self.state.lock();
        st.health = health;
        st.saturation_milli = quantize(saturation);
        None
    }

    fn crashed(&self, now: Instant, message: String) -> String {
        let mut st = self.state.lock();
        st.restarts += 1;
        st.crashes.push_back(now);
        while st.crashes.front().is_some_and(|t| now.saturating_duration_since(*t) > CRASH_WINDOW) {
            st.crashes.pop_front();
        }
        let exp = st.crashes.len().saturating_sub(1).min(8) as u32;
        let backoff = (Duration::from_millis(200) * 2u32.pow(exp)).min(Duration::from_secs(30));
        st.lifecycle = Lifecycle::Crashed;
        st.resume_at = Some(now + backoff);
        let reason = format!("panicked: {}", crate::logs::sanitize(&message));
        st.health = DaemonHealth::Unhealthy { reason: reason.clone() };
        reason
    }

    /// Delivers `control` at once, whatever the lifecycle (used for shutdown).
    pub(crate) fn deliver_now(&self, control: DaemonControl) -> Option<String> {
        let stopping = matches!(control, DaemonControl::Shutdown { .. });
        let result = guard(|| self.daemon.lock().on_control(control));
        if let Guarded::Panicked(msg) = result {
            return Some(self.crashed(Instant::now(), msg));
        }
        if stopping {
            self.state.lock().lifecycle = Lifecycle::Stopping;
        }
        None
    }

    /// Restart now: clears a crash backoff and queues [`DaemonControl::Restart`].
    pub(crate) fn force_restart(&self) {
        let mut st = self.state.lock();
        if st.lifecycle == Lifecycle::Crashed {
            st.lifecycle = Lifecycle::Running;
            st.resume_at = None;
        }
        st.controls.push_back(DaemonControl::Restart);
    }

    pub(crate) fn enqueue(&self, control: DaemonControl) {
        self.state.lock().controls.push_back(control);
    }
}

/// Saturation as thousandths, clamped; NaN counts as 0.
fn quantize(saturation: f32) -> u16 {
    if saturation.is_nan() {
        return 0;
    }
    (saturation.clamp(0.0, 1.0) * 1000.0).round() as u16
}

pub(crate) fn guard<T>(f: impl FnOnce() -> T) -> Guarded<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Guarded::Ok(v),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_owned());
            Guarded::Panicked(msg)
        }
    }
}

impl<T> Guarded<T> {
    fn ok(self) -> Option<T> {
        match self {
            Guarded::Ok(v) => Some(v),
            Guarded::Panicked(_) => None,
        }
    }
}

/// Called once when a handle is dropped.
pub(crate) type Unregister = Box<dyn FnOnce(&Arc<DaemonSlot>) + Send + Sync>;

/// Keeps a daemon registered; dropping it unregisters the daemon everywhere.
///
/// Clone-free by design: one owner decides the daemon's lifetime. Use
/// [`DaemonHandle::logger`] for cheap log publishers in other tasks.
pub struct DaemonHandle {
    pub(crate) slot: Arc<DaemonSlot>,
    pub(crate) logger: DaemonLogger,
    pub(crate) unregister: Option<Unregister>,
}

impl fmt::Debug for DaemonHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonHandle")
            .field("id", &self.slot.id)
            .field("name", &self.slot.name)
            .finish()
    }
}

impl DaemonHandle {
    /// The daemon's id (origin hash of its key).
    pub fn id(&self) -> OriginHash {
        self.slot.id
    }

    /// The daemon's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// Publishes a log line. Never blocks: when the node's queue is full the line
    /// is dropped, counted (shown in the snapshot) and the daemon is sent
    /// [`DaemonControl::BackpressureOn`].
    pub fn publish_log(&self, level: LogLevel, message: impl Into<String>) {
        self.logger.publish_log(level, message);
    }

    /// A cloneable log publisher for this daemon's tasks.
    pub fn logger(&self) -> DaemonLogger {
        self.logger.clone()
    }
}

impl Drop for DaemonHandle {
    fn drop(&mut self) {
        if let Some(unregister) = self.unregister.take() {
            unregister(&self.slot);
        }
    }
}

/// A cloneable, non-blocking log publisher bound to one daemon.
#[derive(Clone)]
pub struct DaemonLogger {
    pub(crate) slot: Arc<DaemonSlot>,
    pub(crate) tx: mpsc::Sender<PendingLine>,
}

impl fmt::Debug for DaemonLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonLogger").field("daemon", &self.slot.id).finish()
    }
}

impl DaemonLogger {
    /// See [`DaemonHandle::publish_log`].
    pub fn publish_log(&self, level: LogLevel, message: impl Into<String>) {
        let line = PendingLine {
            ts_ms: mesh_auth::unix_now_ms(),
            daemon: Some(self.slot.id),
            level,
            message: message.into(),
        };
        if self.tx.try_send(line).is_err() {
            self.slot.log_dropped.fetch_add(1, Ordering::Relaxed);
            self.slot.pressured.store(true, Ordering::Relaxed);
        }
    }

    /// Lines of this daemon dropped so far.
    pub fn dropped(&self) -> u64 {
        self.slot.log_dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bomb;
    impl Daemon for Bomb {
        fn name(&self) -> &str {
            "bomb"
        }
        fn health(&self) -> DaemonHealth {
            panic!("boom")
        }
    }

    #[test]
    fn panics_are_caught_counted_and_backed_off() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let key = mesh_auth::EntityKeypair::from_seed(&[1; 32]);
        let slot = DaemonSlot::new(key, Box::new(Bomb), "bomb".into(), 0);
        let t0 = Instant::now();
        assert_eq!(slot.poll(t0).as_deref(), Some("panicked: boom"));
        assert_eq!(slot.state.lock().lifecycle, Lifecycle::Crashed);
        assert!(slot.poll(t0 + Duration::from_millis(10)).is_none(), "backing off");
        assert!(slot.poll(t0 + Duration::from_millis(250)).is_some());
        assert!(slot.poll(t0 + Duration::from_secs(2)).is_some());
        std::panic::set_hook(prev);
        assert_eq!(slot.state.lock().restarts, 3);
        assert!(slot.state.lock().crash_looping());
    }

    #[test]
    fn names_and_saturation() {
        assert!(validate_name("ok#replica").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(129)).is_err());
        assert_eq!(quantize(f32::NAN), 0);
        assert_eq!(quantize(7.0), 1000);
        assert_eq!(quantize(0.4567), 457);
    }
}
