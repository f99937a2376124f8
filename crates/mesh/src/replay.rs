//! A sliding replay window over explicit nonces (UDP reorders and duplicates).
//!
//! Accepts each counter at most once, in any order, as long as it is no more than
//! [`WINDOW`] behind the highest counter seen. Check with [`ReplayWindow::check`]
//! before decrypting and [`ReplayWindow::commit`] only after the AEAD tag verified,
//! so forged packets cannot move the window.

/// Width of the window in counters.
pub const WINDOW: u64 = 2048;
const WORDS: usize = (WINDOW / 64) as usize;

/// The window state for one direction of one session.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// One past the highest committed counter (0 = nothing yet).
    next: u64,
    /// Bit `c % WINDOW` is set when counter `c` (within the window) was seen.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self { next: 0, bits: [0; WORDS] }
    }
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `counter` would be accepted (fresh and not too old).
    pub fn check(&self, counter: u64) -> bool {
        if counter >= self.next {
            return true;
        }
        if self.next - counter > WINDOW {
            return false;
        }
        let bit = counter % WINDOW;
        self.bits[(bit / 64) as usize] & (1 << (bit % 64)) == 0
    }

    /// Records `counter` as seen. Call only after [`ReplayWindow::check`] passed and
    /// the packet authenticated.
    pub fn commit(&mut self, counter: u64) {
        if counter >= self.next {
            // Clear the bits of the counters the window slides over.
            let advance = counter - self.next + 1;
            if advance >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for c in self.next..=counter {
                    let bit = c % WINDOW;
                    self.bits[(bit / 64) as usize] &= !(1 << (bit % 64));
                }
            }
            self.next = counter + 1;
        }
        let bit = counter % WINDOW;
        self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    /// `check` then `commit`: true if the counter was fresh.
    pub fn accept(&mut self, counter: u64) -> bool {
        if self.check(counter) {
            self.commit(counter);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_reorder_duplicates_and_old() {
        let mut w = ReplayWindow::new();
        assert!(w.accept(0));
        assert!(!w.accept(0));
        assert!(w.accept(5));
        assert!(w.accept(3));
        assert!(!w.accept(3));
        assert!(w.accept(4000));
        assert!(!w.accept(5), "far behind the window");
        assert!(w.accept(4000 - 2047));
        assert!(!w.accept(4000 - 2049));
        assert!(w.accept(u64::MAX - 1));
        assert!(!w.accept(u64::MAX - 1));
    }
}
