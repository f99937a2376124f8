//! Splitting large messages into datagram-sized pieces and putting them back.
//!
//! The reassembler holds incomplete messages under two caps (bytes and count) and
//! drops any that stay incomplete past a timeout. Pieces may arrive in any order and
//! more than once; a message is delivered exactly when every piece has arrived.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Smallest piece a sender produces for any piece but the last.
pub const MIN_PIECE: usize = 64;
/// What holding one piece costs beyond its bytes (its map entry and box),
/// charged against the byte cap so tiny pieces cannot hold memory for free.
pub const PIECE_OVERHEAD: usize = 64;

/// Why a piece was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassemblyDrop {
    /// `index >= count`, a zero count, an empty piece, a piece shorter than
    /// [`MIN_PIECE`] that is not the last, or a piece that disagrees with
    /// earlier pieces of the same message.
    Inconsistent,
    /// The whole message would exceed the maximum message size.
    TooLarge,
    /// Holding it would exceed the per-session caps.
    OverCap,
}

/// Caps for one reassembler.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyLimits {
    /// Largest whole message.
    pub max_message: usize,
    /// Most bytes held in incomplete messages.
    pub max_bytes: usize,
    /// Most incomplete messages.
    pub max_messages: usize,
    /// Largest piece (the sender's fragment size can be at most this).
    pub max_piece: usize,
    /// Incomplete messages older than this are dropped.
    pub timeout: Duration,
}

#[derive(Debug)]
struct Partial {
    kind: u32,
    count: u32,
    received: u32,
    bytes: usize,
    /// What the held pieces are charged: bytes plus [`PIECE_OVERHEAD`] each.
    cost: usize,
    /// Pieces by index; memory grows with what arrived, not with `count`.
    pieces: HashMap<u32, Box<[u8]>>,
    started: Instant,
}

/// Reassembly state for one session.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partials: HashMap<u32, Partial>,
    held_bytes: usize,
    /// Recently completed message ids: late duplicates of their pieces are
    /// ignored instead of starting a new partial (or delivering twice).
    completed: HashSet<u32>,
    completed_order: VecDeque<u32>,
}

/// How many completed message ids are remembered.
const COMPLETED_MEMORY: usize = 1024;

/// A whole message put back together.
#[derive(Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// The message kind.
    pub kind: u32,
    /// The message.
    pub payload: Vec<u8>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            partials: HashMap::new(),
            held_bytes: 0,
            completed: HashSet::new(),
            completed_order: VecDeque::new(),
        }
    }

    /// What incomplete messages currently hold: their bytes plus
    /// [`PIECE_OVERHEAD`] per piece.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Incomplete messages currently held.
    pub fn held_messages(&self) -> usize {
        self.partials.len()
    }

    /// Adds one piece; returns the message when it is complete.
    pub fn push(
        &mut self,
        msg_id: u32,
        index: u32,
        count: u32,
        kind: u32,
        piece: &[u8],
        now: Instant,
    ) -> Result<Option<Reassembled>, ReassemblyDrop> {
        if count == 0 || index >= count || piece.len() > self.limits.max_piece {
            return Err(ReassemblyDrop::Inconsistent);
        }
        // Senders fragment only messages larger than one datagram, in pieces of
        // at least MIN_PIECE bytes but the last, which is never empty.
        let last = index + 1 == count;
        if piece.is_empty() || (!last && piece.len() < MIN_PIECE.min(self.limits.max_piece)) {
            return Err(ReassemblyDrop::Inconsistent);
        }
        let cost = piece.len() + PIECE_OVERHEAD;
        // Every piece but the last carries at least MIN_PIECE bytes (senders
        // validate their budget), so `count` bounds the message size.
        let max_pieces = self.limits.max_message.div_ceil(MIN_PIECE).max(1);
        if count as usize > max_pieces {
            return Err(ReassemblyDrop::TooLarge);
        }
        if self.completed.contains(&msg_id) {
            return Ok(None);
        }
        if !self.partials.contains_key(&msg_id) {
            if self.partials.len() >= self.limits.max_messages {
                return Err(ReassemblyDrop::OverCap);
            }
            self.partials.insert(
                msg_id,
                Partial {
                    kind,
                    count,
                    received: 0,
                    bytes: 0,
                    cost: 0,
                    pieces: HashMap::new(),
                    started: now,
                },
            );
        }
        let Some(partial) = self.partials.get_mut(&msg_id) else {
            return Err(ReassemblyDrop::Inconsistent);
        };
        if partial.count != count || partial.kind != kind {
            return Err(ReassemblyDrop::Inconsistent);
        }
        if partial.pieces.contains_key(&index) {
            return Ok(None); // A duplicate: harmless.
        }
        if self.held_bytes + cost > self.limits.max_bytes
            || partial.bytes + piece.len() > self.limits.max_message
        {
            let dropped = self.partials.remove(&msg_id).map_or(0, |p| p.cost);
            self.held_bytes -= dropped;
            return Err(ReassemblyDrop::OverCap);
        }
        partial.pieces.insert(index, piece.into());
        partial.received += 1;
        partial.bytes += piece.len();
        partial.cost += cost;
        self.held_bytes += cost;
        if partial.received < partial.count {
            return Ok(None);
        }
        let Some(done) = self.partials.remove(&msg_id) else { return Ok(None) };
        self.held_bytes -= done.cost;
        if self.completed_order.len() == COMPLETED_MEMORY
            && let Some(old) = self.completed_order.pop_front()
        {
            self.completed.remove(&old);
        }
        self.completed.insert(msg_id);
        self.completed_order.push_back(msg_id);
        let mut payload = Vec::with_capacity(done.bytes);
        for index in 0..done.count {
            if let Some(piece) = done.pieces.get(&index) {
                payload.extend_from_slice(piece);
            }
        }
        Ok(Some(Reassembled { kind: done.kind, payload }))
    }

    /// Drops incomplete messages older than the timeout; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.limits.timeout;
        let before = self.partials.len();
        let mut freed = 0;
        self.partials.retain(|_, p| {
            let keep = now.saturating_duration_since(p.started) < timeout;
            if !keep {
                freed += p.cost;
            }
            keep
        });
        self.held_bytes -= freed;
        before - self.partials.len()
    }
}

/// The pieces of `payload` for a given piece size (at least one piece, even for an
/// empty payload).
pub fn split(payload: &[u8], piece: usize) -> impl Iterator<Item = &[u8]> {
    let piece = piece.max(1);
    let empty: &[u8] = &[];
    let first_empty = payload.is_empty().then_some(empty);
    first_empty.into_iter().chain(payload.chunks(piece))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ReassemblyLimits {
        ReassemblyLimits {
            max_message: 128,
            max_bytes: 150,
            max_messages: 2,
            max_piece: 10,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn caps_and_timeouts() {
        let now = Instant::now();
        let mut r = Reassembler::new(limits());
        assert_eq!(r.push(1, 0, 3, 0, &[0; 10], now), Err(ReassemblyDrop::TooLarge));
        assert_eq!(r.push(1, 3, 3, 0, &[0; 10], now), Err(ReassemblyDrop::Inconsistent));
        assert_eq!(r.push(1, 0, 2, 0, &[0; 11], now), Err(ReassemblyDrop::Inconsistent));
        assert_eq!(r.push(1, 0, 2, 0, &[1; 10], now), Ok(None));
        assert_eq!(r.push(2, 0, 2, 0, &[2; 10], now), Ok(None));
        assert_eq!(r.push(3, 0, 2, 0, &[3; 10], now), Err(ReassemblyDrop::OverCap));
        assert_eq!(r.push(1, 0, 2, 7, &[1; 10], now), Err(ReassemblyDrop::Inconsistent));
        assert_eq!(r.held_bytes(), 2 * (10 + PIECE_OVERHEAD));
        assert_eq!(r.expire(now + Duration::from_secs(2)), 2);
        assert_eq!(r.held_bytes(), 0);
        let done = r.push(4, 1, 2, 9, &[5; 3], now).unwrap();
        assert!(done.is_none());
        let done = r.push(4, 0, 2, 9, &[4; 10], now).unwrap().unwrap();
        assert_eq!(done.kind, 9);
        assert_eq!(done.payload.len(), 13);
    }

    #[test]
    fn empty_and_short_pieces_are_refused_and_each_piece_costs_its_overhead() {
        let now = Instant::now();
        let mut r =
            Reassembler::new(ReassemblyLimits { max_piece: 1000, max_bytes: 1000, ..limits() });
        assert_eq!(r.push(1, 0, 2, 0, &[], now), Err(ReassemblyDrop::Inconsistent));
        assert_eq!(r.push(1, 1, 2, 0, &[], now), Err(ReassemblyDrop::Inconsistent));
        // Not the last piece, and shorter than a sender ever makes one.
        assert_eq!(r.push(1, 0, 2, 0, &[1; 8], now), Err(ReassemblyDrop::Inconsistent));
        // A one-byte last piece is fine, but is charged its overhead.
        assert_eq!(r.push(1, 1, 2, 0, &[1; 1], now), Ok(None));
        assert_eq!(r.held_bytes(), 1 + PIECE_OVERHEAD);
        assert_eq!(r.held_messages(), 1);
    }

    #[test]
    fn late_duplicates_of_a_completed_message_are_ignored() {
        let now = Instant::now();
        let mut r = Reassembler::new(limits());
        assert!(r.push(9, 0, 1, 0, &[1; 5], now).unwrap().is_some());
        assert_eq!(r.push(9, 0, 1, 0, &[1; 5], now), Ok(None));
        assert_eq!(r.held_messages(), 0);
    }

    #[test]
    fn split_covers_everything() {
        assert_eq!(split(&[], 10).count(), 1);
        let data: Vec<u8> = (0..25).collect();
        let pieces: Vec<_> = split(&data, 10).collect();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), data);
    }
}
