//! The replay window against a reference model: a counter is accepted iff
//! it is at or above the floor, was not accepted before, and is above the
//! highest accepted or less than `window` below it.
//!
//! Input: `window selector (1 B) || floor selector (1 B) || ops`, each op a
//! tag byte then either a 2-byte signed delta from the highest accepted
//! counter (tag bit 7 clear) or an 8-byte absolute counter (tag bit 7 set).
//! Absolute counters cover the whole `u64` range: the window must reject
//! anything above `MAX_COUNTER` (2^48 - 1), which no envelope can carry.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mqseal::envelope::MAX_COUNTER;
use mqseal::internal::replay_accept_for_testing_only;
use mqseal::replay::{MAX_WINDOW, ReplayWindow};

fuzz_target!(|data: &[u8]| {
    let [w, f, ops @ ..] = data else { return };
    let mut ops = ops;
    let size = 64 * (1 + usize::from(*w) % (MAX_WINDOW / 64));
    let floor = u64::from(*f & 0x3f);
    let mut window = ReplayWindow::with_floor(size, floor).unwrap();
    let (mut seen, mut highest) = (HashSet::new(), None::<u64>);
    while let [tag, rest @ ..] = ops {
        let counter = if tag & 0x80 != 0 {
            let Some((b, r)) = rest.split_first_chunk::<8>() else {
                break;
            };
            ops = r;
            u64::from_le_bytes(*b)
        } else {
            let Some((b, r)) = rest.split_first_chunk::<2>() else {
                break;
            };
            ops = r;
            let delta = i64::from(i16::from_le_bytes(*b));
            highest
                .unwrap_or(0)
                .saturating_add_signed(delta)
                .min(MAX_COUNTER)
        };
        let expect = counter >= floor
            && counter <= MAX_COUNTER
            && !seen.contains(&counter)
            && highest.is_none_or(|h| counter > h || h - counter < size as u64);
        let got = replay_accept_for_testing_only(&mut window, counter).is_ok();
        assert_eq!(
            got, expect,
            "counter {counter}, highest {highest:?}, window {size}"
        );
        assert!(window.check(counter).is_err(), "accepted twice: {counter}");
        if got {
            seen.insert(counter);
            highest = highest.max(Some(counter));
        }
        assert_eq!(window.highest(), highest);
    }
});
