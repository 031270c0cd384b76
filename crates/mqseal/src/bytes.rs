//! Short byte-string helpers for the per-message path: comparing a topic and
//! copying a header or a sender id without a call to `memcmp` or `memcpy`,
//! whose call costs more than the work for a few dozen bytes.

/// `a == b`, without a call to `memcmp` for up to 32 bytes (a topic and a
/// sender id are compared on every message). Not constant time: for public
/// data.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => return true,
        1..=3 => return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => {
            let word = |s: &[u8], i: usize| u32::from_ne_bytes(chunk(s, i));
            return (word(a, 0) ^ word(b, 0)) | (word(a, n - 4) ^ word(b, n - 4)) == 0;
        }
        8..=32 => {}
        _ => return a == b,
    }
    let word = |s: &[u8], i: usize| u64::from_ne_bytes(chunk(s, i));
    // Overlapping words at both ends cover 8..=16 bytes; two more, 8..=32.
    let mut diff = (word(a, 0) ^ word(b, 0)) | (word(a, n - 8) ^ word(b, n - 8));
    if n > 16 {
        diff |= (word(a, 8) ^ word(b, 8)) | (word(a, n - 16) ^ word(b, n - 16));
    }
    diff == 0
}

/// `dst.copy_from_slice(src)` for up to 48 bytes with fixed-size loads and
/// stores (overlapping chunks from both ends) instead of a `memcpy` call.
///
/// # Panics
///
/// If the lengths differ, as `copy_from_slice` does.
#[inline(always)]
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    assert_eq!(dst.len(), n, "copy_short: lengths differ");
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&chunk::<8>(src, 0));
            dst[n - 8..].copy_from_slice(&chunk::<8>(src, n - 8));
        }
        17..=32 => {
            dst[..16].copy_from_slice(&chunk::<16>(src, 0));
            dst[n - 16..].copy_from_slice(&chunk::<16>(src, n - 16));
        }
        33..=48 => {
            dst[..16].copy_from_slice(&chunk::<16>(src, 0));
            dst[16..32].copy_from_slice(&chunk::<16>(src, 16));
            dst[n - 16..].copy_from_slice(&chunk::<16>(src, n - 16));
        }
        _ => dst.copy_from_slice(src),
    }
}

/// `s[i..i + N]` as an array.
#[inline(always)]
fn chunk<const N: usize>(s: &[u8], i: usize) -> [u8; N] {
    let mut c = [0u8; N];
    c.copy_from_slice(&s[i..i + N]);
    c
}

#[cfg(test)]
mod tests {
    use super::{copy_short, same_bytes};

    #[test]
    fn same_bytes_matches_slice_equality() {
        let base: Vec<u8> = (0..40u8).collect();
        for n in 0..=40 {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &base[..n.saturating_sub(1)]) || n == 0);
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert!(!same_bytes(a, &b), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn copy_short_copies_every_byte_and_nothing_else() {
        let src: Vec<u8> = (1..=64u8).collect();
        for n in 0..=64 {
            for at in [0, 1, 7] {
                let mut dst = vec![0u8; n + at + 3];
                copy_short(&mut dst[at..at + n], &src[..n]);
                assert_eq!(&dst[at..at + n], &src[..n], "n={n}");
                assert!(dst[..at].iter().all(|&b| b == 0), "n={n}: before");
                assert!(dst[at + n..].iter().all(|&b| b == 0), "n={n}: after");
            }
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn copy_short_refuses_different_lengths() {
        copy_short(&mut [0u8; 3], &[1, 2]);
    }
}
