//! Replay: a sliding-window bitmap per (sender, epoch), in the style of RFC 6479.
//!
//! The bitmap is a ring of 64-bit words, so sliding the window forward clears
//! words instead of shifting bits. A window of `W` bits accepts any counter
//! greater than the highest seen, and any counter at most `W - 1` below it
//! that has not been seen; it rejects everything else.
//!
//! The window is split into a read-only [`ReplayWindow::check`] and a
//! [`ReplayWindow::commit`] that requires an [`Authenticated`] proof. Only
//! mqseal's verification code can create that proof, so a window cannot be
//! updated before the message that would update it is authenticated.
//!
//! ```
//! use mqseal::replay::ReplayWindow;
//! let w = ReplayWindow::new(128).unwrap();
//! assert!(w.check(5).is_ok());
//! // w.commit(5, proof) needs an `Authenticated`, which only `Endpoint::open` has.
//! ```

use crate::error::{ConfigError, Rejection};

/// The default window size in bits.
pub const DEFAULT_WINDOW: usize = 256;
/// The largest window, in bits (as WireGuard's 8192-bit bitmap).
pub const MAX_WINDOW: usize = 8192;

/// Proof that a message was authenticated. It cannot be created outside mqseal.
#[derive(Debug)]
pub struct Authenticated {
    _private: (),
}

impl Authenticated {
    pub(crate) fn new() -> Self {
        Authenticated { _private: () }
    }
}

/// A sliding replay window.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Counters below this are rejected (restored from persistent state).
    floor: u64,
    /// The highest accepted counter plus one; 0 when none was accepted.
    top: u64,
    /// Window size in bits: a multiple of 64.
    size: u64,
    /// `size / 64 + 1` words rounded up to a power of two, indexed by
    /// `(counter / 64) % words` (a mask, not a division).
    bits: Box<[u64]>,
}

impl ReplayWindow {
    /// A window of `size` bits: a multiple of 64, from 64 to [`MAX_WINDOW`].
    pub fn new(size: usize) -> Result<Self, ConfigError> {
        if size == 0 || !size.is_multiple_of(64) || size > MAX_WINDOW {
            return Err(ConfigError::ReplayWindow(size));
        }
        Ok(ReplayWindow {
            floor: 0,
            top: 0,
            size: size as u64,
            bits: vec![0u64; (size / 64 + 1).next_power_of_two()].into_boxed_slice(),
        })
    }

    /// A window that rejects every counter below `floor`, as restored after a
    /// restart from a persisted mark.
    pub fn with_floor(size: usize, floor: u64) -> Result<Self, ConfigError> {
        let mut w = ReplayWindow::new(size)?;
        w.floor = floor;
        Ok(w)
    }

    /// The window size in bits.
    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// The highest accepted counter, if any.
    pub fn highest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    /// Bytes of memory this window uses, inline and on the heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bits.len() * 8
    }

    fn slot(&self, counter: u64) -> (usize, u64) {
        let mask = self.bits.len() as u64 - 1;
        (((counter / 64) & mask) as usize, 1u64 << (counter % 64))
    }

    /// Whether `counter` would be accepted. Changes nothing.
    #[inline(always)]
    pub fn check(&self, counter: u64) -> Result<(), Rejection> {
        if counter < self.floor || counter > crate::envelope::MAX_COUNTER {
            return Err(Rejection::Replayed);
        }
        if counter >= self.top {
            return Ok(());
        }
        // counter < top, so top >= 1.
        let highest = self.top - 1;
        if highest - counter >= self.size {
            return Err(Rejection::Replayed);
        }
        let (w, bit) = self.slot(counter);
        if self.bits[w] & bit != 0 {
            Err(Rejection::Replayed)
        } else {
            Ok(())
        }
    }

    /// Whether `counter` was accepted and is still inside the window (not
    /// merely below it or below the floor).
    pub fn contains(&self, counter: u64) -> bool {
        if counter >= self.top || counter < self.floor || self.top - 1 - counter >= self.size {
            return false;
        }
        let (w, bit) = self.slot(counter);
        self.bits[w] & bit != 0
    }

    /// Records `counter` as accepted. Call only after [`ReplayWindow::check`]
    /// succeeded for it and the message was authenticated.
    #[inline(always)]
    pub fn commit(&mut self, counter: u64, _proof: &Authenticated) -> Result<(), Rejection> {
        self.check(counter)?;
        if counter >= self.top {
            let words = self.bits.len() as u64;
            let new_block = counter / 64;
            if self.top == 0 {
                self.bits.fill(0);
            } else {
                let old_block = (self.top - 1) / 64;
                let diff = new_block - old_block;
                if diff >= words {
                    self.bits.fill(0);
                } else {
                    for b in old_block + 1..=new_block {
                        self.bits[(b & (words - 1)) as usize] = 0;
                    }
                }
            }
            self.top = counter + 1;
        }
        let (w, bit) = self.slot(counter);
        self.bits[w] |= bit;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, c: u64) -> bool {
        let ok = w.check(c).is_ok();
        if ok {
            w.commit(c, &Authenticated::new()).unwrap();
        }
        ok
    }

    #[test]
    fn sizes_are_validated() {
        assert!(ReplayWindow::new(0).is_err());
        assert!(ReplayWindow::new(100).is_err());
        assert!(ReplayWindow::new(8256).is_err());
        assert!(ReplayWindow::new(64).is_ok());
    }

    #[test]
    fn in_order_reorder_and_replay() {
        let mut w = ReplayWindow::new(64).unwrap();
        assert!(accept(&mut w, 10));
        assert!(!accept(&mut w, 10));
        assert!(accept(&mut w, 12));
        assert!(accept(&mut w, 11));
        assert!(!accept(&mut w, 11));
        assert!(accept(&mut w, 200));
        // 200 - 137 = 63 < 64: inside the window, unseen.
        assert!(accept(&mut w, 137));
        // 200 - 136 = 64: outside.
        assert!(!accept(&mut w, 136));
        assert!(!accept(&mut w, 12));
    }

    #[test]
    fn floor_rejects_below() {
        let mut w = ReplayWindow::with_floor(64, 100).unwrap();
        assert!(!accept(&mut w, 99));
        assert!(accept(&mut w, 100));
    }

    #[test]
    fn state_is_small() {
        let w = ReplayWindow::new(DEFAULT_WINDOW).unwrap();
        assert!(w.memory_bytes() <= 256, "{}", w.memory_bytes());
    }
}
