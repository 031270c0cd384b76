//! The envelope format, version 1: suites, header layout and the parser.
//!
//! The normative description is `docs/envelope.md`; this module is its
//! implementation. In short:
//!
//! ```text
//! byte 0      version (high 4 bits, = 1) | flags (low 4 bits; bit 0 = timestamp present)
//! byte 1      suite id
//! varint      key epoch            (LEB128, shortest form, at most 5 bytes, <= 2^32-1)
//! byte        sender id length     (1..=16)
//! bytes       sender id
//! varint      counter              (LEB128, shortest form, at most 7 bytes, <= 2^48-1)
//! [varint     timestamp, ms since the Unix epoch, if flag bit 0; <= 2^48-1]
//! bytes       body                 (ciphertext or payload)
//! 16/32 bytes AEAD tag or HMAC-SHA256 tag (none for the sign-only suite)
//! [64 bytes   Ed25519 signature, for signing suites]
//! ```
//!
//! The parser borrows from its input, bounds every length, never panics and
//! rejects unknown versions, suites and flags, non-canonical integers and
//! truncation. The body runs to the fixed-size trailer, so bytes appended to an
//! envelope become part of the authenticated region and fail authentication.

use std::fmt;

use crate::error::Malformed;

/// The envelope version this implementation writes and reads.
pub const VERSION: u8 = 1;
/// The longest sender id, in bytes.
pub const MAX_SENDER_ID_LEN: usize = 16;
/// The largest counter value a sender may use.
pub const MAX_COUNTER: u64 = (1 << 48) - 1;
/// The largest timestamp (milliseconds since the Unix epoch).
pub const MAX_TIMESTAMP_MS: u64 = (1 << 48) - 1;
/// The longest header: 2 fixed bytes, a 5-byte epoch, the sender id with its
/// length byte, a 7-byte counter and a 7-byte timestamp.
pub const MAX_HEADER_LEN: usize = 2 + 5 + 1 + MAX_SENDER_ID_LEN + 7 + 7;
/// Length of an AEAD tag.
pub const AEAD_TAG_LEN: usize = 16;
/// Length of an HMAC-SHA256 tag.
pub const MAC_TAG_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// The longest trailer (HMAC tag and signature).
pub const MAX_TRAILER_LEN: usize = MAC_TAG_LEN + SIGNATURE_LEN;
/// The largest body an envelope can carry: MQTT's maximum packet size.
pub const MAX_BODY_LEN: usize = 268_435_455;

const FLAG_TIMESTAMP: u8 = 0x01;
const FLAGS_RESERVED: u8 = 0x0e;
const EPOCH_MAX_BYTES: usize = 5;
const COUNTER_MAX_BYTES: usize = 7;

/// The symmetric part of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Symmetric {
    /// AES-256-GCM: confidentiality and integrity.
    Aes256Gcm,
    /// ChaCha20-Poly1305: confidentiality and integrity.
    ChaCha20Poly1305,
    /// HMAC-SHA256: integrity only; the payload stays readable.
    HmacSha256,
}

impl Symmetric {
    /// Length of the tag this algorithm appends.
    pub const fn tag_len(self) -> usize {
        match self {
            Symmetric::Aes256Gcm | Symmetric::ChaCha20Poly1305 => AEAD_TAG_LEN,
            Symmetric::HmacSha256 => MAC_TAG_LEN,
        }
    }

    /// Whether this algorithm encrypts.
    pub const fn encrypts(self) -> bool {
        !matches!(self, Symmetric::HmacSha256)
    }
}

/// A cipher suite: which symmetric protection and whether an Ed25519 signature follows.
///
/// The id is the envelope's second byte. The low nibble names the symmetric
/// algorithm (0 none, 1 AES-256-GCM, 2 ChaCha20-Poly1305, 3 HMAC-SHA256), the
/// high nibble the signature (0 none, 1 Ed25519). At least one is present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// `0x01`: AES-256-GCM.
    Aes256Gcm,
    /// `0x02`: ChaCha20-Poly1305.
    ChaCha20Poly1305,
    /// `0x03`: HMAC-SHA256, payload readable.
    HmacSha256,
    /// `0x10`: Ed25519 signature only, payload readable.
    Ed25519,
    /// `0x11`: AES-256-GCM, then an Ed25519 signature over the envelope.
    Aes256GcmEd25519,
    /// `0x12`: ChaCha20-Poly1305, then an Ed25519 signature over the envelope.
    ChaCha20Poly1305Ed25519,
    /// `0x13`: HMAC-SHA256, then an Ed25519 signature over the envelope.
    HmacSha256Ed25519,
}

impl Suite {
    /// Every defined suite.
    pub const ALL: [Suite; 7] = [
        Suite::Aes256Gcm,
        Suite::ChaCha20Poly1305,
        Suite::HmacSha256,
        Suite::Ed25519,
        Suite::Aes256GcmEd25519,
        Suite::ChaCha20Poly1305Ed25519,
        Suite::HmacSha256Ed25519,
    ];

    /// The suite id written in the envelope.
    pub const fn id(self) -> u8 {
        match self {
            Suite::Aes256Gcm => 0x01,
            Suite::ChaCha20Poly1305 => 0x02,
            Suite::HmacSha256 => 0x03,
            Suite::Ed25519 => 0x10,
            Suite::Aes256GcmEd25519 => 0x11,
            Suite::ChaCha20Poly1305Ed25519 => 0x12,
            Suite::HmacSha256Ed25519 => 0x13,
        }
    }

    /// The suite with this id, if defined.
    pub const fn from_id(id: u8) -> Option<Suite> {
        Some(match id {
            0x01 => Suite::Aes256Gcm,
            0x02 => Suite::ChaCha20Poly1305,
            0x03 => Suite::HmacSha256,
            0x10 => Suite::Ed25519,
            0x11 => Suite::Aes256GcmEd25519,
            0x12 => Suite::ChaCha20Poly1305Ed25519,
            0x13 => Suite::HmacSha256Ed25519,
            _ => return None,
        })
    }

    /// Builds the suite from its parts; `None` when both are absent.
    pub const fn from_parts(symmetric: Option<Symmetric>, signed: bool) -> Option<Suite> {
        Some(match (symmetric, signed) {
            (Some(Symmetric::Aes256Gcm), false) => Suite::Aes256Gcm,
            (Some(Symmetric::ChaCha20Poly1305), false) => Suite::ChaCha20Poly1305,
            (Some(Symmetric::HmacSha256), false) => Suite::HmacSha256,
            (None, true) => Suite::Ed25519,
            (Some(Symmetric::Aes256Gcm), true) => Suite::Aes256GcmEd25519,
            (Some(Symmetric::ChaCha20Poly1305), true) => Suite::ChaCha20Poly1305Ed25519,
            (Some(Symmetric::HmacSha256), true) => Suite::HmacSha256Ed25519,
            (None, false) => return None,
        })
    }

    /// The symmetric algorithm, if any.
    pub const fn symmetric(self) -> Option<Symmetric> {
        match self {
            Suite::Aes256Gcm | Suite::Aes256GcmEd25519 => Some(Symmetric::Aes256Gcm),
            Suite::ChaCha20Poly1305 | Suite::ChaCha20Poly1305Ed25519 => {
                Some(Symmetric::ChaCha20Poly1305)
            }
            Suite::HmacSha256 | Suite::HmacSha256Ed25519 => Some(Symmetric::HmacSha256),
            Suite::Ed25519 => None,
        }
    }

    /// Whether an Ed25519 signature follows.
    pub const fn signed(self) -> bool {
        self.id() & 0xf0 == 0x10
    }

    /// Whether the payload is encrypted.
    pub const fn encrypts(self) -> bool {
        match self.symmetric() {
            Some(s) => s.encrypts(),
            None => false,
        }
    }

    /// Length of the symmetric tag (0 for the sign-only suite).
    pub const fn tag_len(self) -> usize {
        match self.symmetric() {
            Some(s) => s.tag_len(),
            None => 0,
        }
    }

    /// Length of everything after the body: tag and signature.
    pub const fn trailer_len(self) -> usize {
        self.tag_len() + if self.signed() { SIGNATURE_LEN } else { 0 }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Suite::Aes256Gcm => 0,
            Suite::ChaCha20Poly1305 => 1,
            Suite::HmacSha256 => 2,
            Suite::Ed25519 => 3,
            Suite::Aes256GcmEd25519 => 4,
            Suite::ChaCha20Poly1305Ed25519 => 5,
            Suite::HmacSha256Ed25519 => 6,
        }
    }

    /// A stable lower-case name, as used in the vector files.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Aes256Gcm => "aes256gcm",
            Suite::ChaCha20Poly1305 => "chacha20poly1305",
            Suite::HmacSha256 => "hmacsha256",
            Suite::Ed25519 => "ed25519",
            Suite::Aes256GcmEd25519 => "aes256gcm+ed25519",
            Suite::ChaCha20Poly1305Ed25519 => "chacha20poly1305+ed25519",
            Suite::HmacSha256Ed25519 => "hmacsha256+ed25519",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The decoded header of an envelope, borrowing the sender id from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The suite.
    pub suite: Suite,
    /// The key epoch.
    pub epoch: u32,
    /// The sender id (1 to [`MAX_SENDER_ID_LEN`] bytes).
    pub sender_id: &'a [u8],
    /// The sender's counter.
    pub counter: u64,
    /// The sender's timestamp, in milliseconds since the Unix epoch, if present.
    pub timestamp_ms: Option<u64>,
}

impl Header<'_> {
    /// The encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        2 + varint_len(u64::from(self.epoch))
            + 1
            + self.sender_id.len()
            + varint_len(self.counter)
            + self.timestamp_ms.map_or(0, varint_len)
    }

    /// Writes the header into `out`, which must be at least
    /// [`Header::encoded_len`] long, and returns the number of bytes written.
    ///
    /// The caller guarantees the fields are in range (sender id length,
    /// counter and timestamp limits); this is checked in debug builds.
    pub(crate) fn write(&self, out: &mut [u8]) -> usize {
        debug_assert!(!self.sender_id.is_empty() && self.sender_id.len() <= MAX_SENDER_ID_LEN);
        debug_assert!(self.counter <= MAX_COUNTER);
        debug_assert!(self.timestamp_ms.is_none_or(|t| t <= MAX_TIMESTAMP_MS));
        let flags = if self.timestamp_ms.is_some() {
            FLAG_TIMESTAMP
        } else {
            0
        };
        out[0] = (VERSION << 4) | flags;
        out[1] = self.suite.id();
        let mut n = 2;
        n += write_varint(u64::from(self.epoch), &mut out[n..]);
        out[n] = self.sender_id.len() as u8;
        n += 1;
        out[n..n + self.sender_id.len()].copy_from_slice(self.sender_id);
        n += self.sender_id.len();
        n += write_varint(self.counter, &mut out[n..]);
        if let Some(ts) = self.timestamp_ms {
            n += write_varint(ts, &mut out[n..]);
        }
        n
    }
}

/// A parsed envelope: the header and views of each region of the input.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// The decoded header.
    pub header: Header<'a>,
    bytes: &'a [u8],
    header_len: usize,
    /// Where the sender id starts.
    sender_at: usize,
}

impl<'a> Envelope<'a> {
    /// The encoded header (the first bytes of the envelope).
    #[inline]
    pub fn header_bytes(&self) -> &'a [u8] {
        &self.bytes[..self.header_len]
    }

    /// Length of the encoded header.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Where the sender id starts.
    #[inline(always)]
    pub(crate) fn sender_at(&self) -> usize {
        self.sender_at
    }

    /// The body: ciphertext, or the readable payload for MAC and sign-only suites.
    #[inline(always)]
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[self.header_len..self.body_end()]
    }

    /// The symmetric tag (empty for the sign-only suite).
    #[inline]
    pub fn tag(&self) -> &'a [u8] {
        let end = self.body_end();
        &self.bytes[end..end + self.header.suite.tag_len()]
    }

    /// The Ed25519 signature, for signing suites.
    pub fn signature(&self) -> Option<&'a [u8]> {
        self.header
            .suite
            .signed()
            .then(|| &self.bytes[self.bytes.len() - SIGNATURE_LEN..])
    }

    /// The bytes a signature covers: everything before the signature.
    pub fn signed_bytes(&self) -> &'a [u8] {
        let sig = if self.header.suite.signed() {
            SIGNATURE_LEN
        } else {
            0
        };
        &self.bytes[..self.bytes.len() - sig]
    }

    /// The whole envelope.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the body is the readable payload (MAC and sign-only suites).
    pub fn body_is_plaintext(&self) -> bool {
        !self.header.suite.encrypts()
    }

    #[inline(always)]
    fn body_end(&self) -> usize {
        self.bytes.len() - self.header.suite.trailer_len()
    }
}

/// Parses an envelope without any key: checks its structure only.
///
/// Authentication happens when an [`Endpoint`](crate::Endpoint) opens it.
pub fn parse(input: &[u8]) -> Result<Envelope<'_>, Malformed> {
    parse_inline(input)
}

/// [`parse`], inlined into the endpoint's open path, where the parsed
/// fields then stay in registers instead of going through memory.
#[inline(always)]
pub(crate) fn parse_inline(input: &[u8]) -> Result<Envelope<'_>, Malformed> {
    let mut r = Reader { buf: input, pos: 0 };
    let b0 = r.byte()?;
    let version = b0 >> 4;
    if version != VERSION {
        return Err(Malformed::UnsupportedVersion(version));
    }
    let flags = b0 & 0x0f;
    if flags & FLAGS_RESERVED != 0 {
        return Err(Malformed::ReservedFlags);
    }
    let suite_id = r.byte()?;
    let suite = Suite::from_id(suite_id).ok_or(Malformed::UnknownSuite(suite_id))?;
    let epoch = r.varint("epoch", EPOCH_MAX_BYTES)?;
    let epoch = u32::try_from(epoch).map_err(|_| Malformed::OutOfRange("epoch"))?;
    let sid_len = usize::from(r.byte()?);
    if sid_len == 0 || sid_len > MAX_SENDER_ID_LEN {
        return Err(Malformed::SenderIdLength);
    }
    let sender_at = r.pos;
    let sender_id = r.take(sid_len)?;
    let counter = r.varint("counter", COUNTER_MAX_BYTES)?;
    if counter > MAX_COUNTER {
        return Err(Malformed::OutOfRange("counter"));
    }
    let timestamp_ms = if flags & FLAG_TIMESTAMP != 0 {
        let ts = r.varint("timestamp", COUNTER_MAX_BYTES)?;
        if ts > MAX_TIMESTAMP_MS {
            return Err(Malformed::OutOfRange("timestamp"));
        }
        Some(ts)
    } else {
        None
    };
    let header_len = r.pos;
    let rest = input.len() - header_len;
    if rest < suite.trailer_len() {
        return Err(Malformed::Truncated);
    }
    if rest - suite.trailer_len() > MAX_BODY_LEN {
        return Err(Malformed::OutOfRange("body length"));
    }
    Ok(Envelope {
        header: Header {
            suite,
            epoch,
            sender_id,
            counter,
            timestamp_ms,
        },
        bytes: input,
        header_len,
        sender_at,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn byte(&mut self) -> Result<u8, Malformed> {
        let b = *self.buf.get(self.pos).ok_or(Malformed::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// Unsigned LEB128 in its shortest form, at most `max_bytes` long.
    #[inline]
    fn varint(&mut self, field: &'static str, max_bytes: usize) -> Result<u64, Malformed> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_long(field, max_bytes),
        }
    }

    /// [`Reader::varint`] past its one-byte case.
    fn varint_long(&mut self, field: &'static str, max_bytes: usize) -> Result<u64, Malformed> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(Malformed::BadInteger(field));
                }
                return Ok(value);
            }
        }
        Err(Malformed::BadInteger(field))
    }
}

/// Encoded length of `v` as unsigned LEB128.
pub(crate) const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline(always)]
fn write_varint(mut v: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[n] = b;
            return n + 1;
        }
        out[n] = b | 0x80;
        n += 1;
    }
}

/// The longest run of header bytes that stays the same for one sender under
/// one epoch: the epoch varint, the sender id length and the sender id.
pub(crate) const FIXED_FIELDS_MAX: usize = 5 + 1 + MAX_SENDER_ID_LEN;

/// [`FIXED_FIELDS_MAX`] and the two bytes in front of them (version/flags
/// and suite), which [`FixedFields::write_header`] copies as one block.
const FIXED_BLOCK: usize = 2 + FIXED_FIELDS_MAX;
const _: () = assert!(MAX_HEADER_LEN - 2 * COUNTER_MAX_BYTES == FIXED_BLOCK);

/// A sender's epoch and id, encoded once, so that writing a header per
/// message only encodes the counter (and timestamp). Writes the same bytes
/// as [`Header::write`].
#[derive(Clone, Copy)]
pub(crate) struct FixedFields {
    /// The encoded fields, right-aligned: `block[FIXED_BLOCK - len..]`.
    block: [u8; FIXED_BLOCK],
    len: u8,
}

impl FixedFields {
    pub(crate) fn new(epoch: u32, sender_id: &[u8]) -> Self {
        debug_assert!(!sender_id.is_empty() && sender_id.len() <= MAX_SENDER_ID_LEN);
        let n = varint_len(u64::from(epoch)) + 1 + sender_id.len();
        let mut block = [0u8; FIXED_BLOCK];
        let sid_at = FIXED_BLOCK - sender_id.len();
        write_varint(u64::from(epoch), &mut block[FIXED_BLOCK - n..]);
        block[sid_at - 1] = sender_id.len() as u8;
        block[sid_at..].copy_from_slice(sender_id);
        FixedFields {
            block,
            len: n as u8,
        }
    }

    /// Writes the header of the message with this counter (and timestamp)
    /// to the *end* of `out` and returns its length `n`: the header is
    /// `out[MAX_HEADER_LEN - n..]`. Right-aligned, it can be copied in front
    /// of a payload (or a topic) with one fixed-size copy. The bytes before
    /// the header are overwritten too: `out` is a slot, not a buffer.
    #[inline(always)]
    pub(crate) fn write_header(
        &self,
        suite: Suite,
        counter: u64,
        timestamp_ms: Option<u64>,
        out: &mut [u8; MAX_HEADER_LEN],
    ) -> usize {
        debug_assert!(counter <= MAX_COUNTER);
        debug_assert!(timestamp_ms.is_none_or(|t| t <= MAX_TIMESTAMP_MS));
        // At most 7 bytes each (checked by the callers' limits), so the
        // block always fits: `end >= MAX_HEADER_LEN - 14 == FIXED_BLOCK`.
        let counter_len = varint_len(counter).min(COUNTER_MAX_BYTES);
        let ts_len = timestamp_ms.map_or(0, |t| varint_len(t).min(COUNTER_MAX_BYTES));
        let end = MAX_HEADER_LEN - counter_len - ts_len;
        let start = end - 2 - usize::from(self.len);
        // One fixed-size copy of the fields block, which ends where the
        // counter starts; what lands before `start` is not header.
        out[end - FIXED_BLOCK..end].copy_from_slice(&self.block);
        let flags = if timestamp_ms.is_some() {
            FLAG_TIMESTAMP
        } else {
            0
        };
        out[start] = (VERSION << 4) | flags;
        out[start + 1] = suite.id();
        let n = end + write_varint(counter, &mut out[end..]);
        if let Some(ts) = timestamp_ms {
            write_varint(ts, &mut out[n..]);
        }
        MAX_HEADER_LEN - start
    }
}

/// The topic's length as two big-endian bytes (topics are validated to fit).
///
/// The associated data of an envelope on a topic, which is the AEAD
/// associated data, the start of the HMAC input and the start of the signed
/// digest's input, is `header || u16be(len(topic)) || topic`.
pub(crate) fn topic_len_bytes(topic: &str) -> [u8; 2] {
    debug_assert!(topic.len() <= usize::from(u16::MAX));
    (topic.len() as u16).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_encoding() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            (1 << 21) - 1,
            1 << 21,
            MAX_COUNTER,
        ] {
            let mut buf = [0u8; 10];
            let n = write_varint(v, &mut buf);
            assert_eq!(n, varint_len(v), "value {v}");
            let mut r = Reader {
                buf: &buf[..n],
                pos: 0,
            };
            assert_eq!(r.varint("x", 7).unwrap(), v);
        }
    }

    #[test]
    fn non_canonical_varint_is_rejected() {
        let mut r = Reader {
            buf: &[0x81, 0x00],
            pos: 0,
        };
        assert_eq!(r.varint("x", 7), Err(Malformed::BadInteger("x")));
        let mut r = Reader {
            buf: &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            pos: 0,
        };
        assert_eq!(r.varint("x", 5), Err(Malformed::BadInteger("x")));
    }

    #[test]
    fn suite_ids_round_trip() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_id(s.id()), Some(s));
            assert_eq!(Suite::from_parts(s.symmetric(), s.signed()), Some(s));
        }
        for id in 0..=255u8 {
            if let Some(s) = Suite::from_id(id) {
                assert_eq!(s.id(), id);
            }
        }
    }

    #[test]
    fn fixed_fields_write_the_same_header() {
        let sids: [&[u8]; 3] = [b"a", b"dev1", &[0xff; MAX_SENDER_ID_LEN]];
        for &epoch in &[0u32, 1, 127, 128, 300, u32::MAX] {
            for &sid in &sids {
                let fixed = FixedFields::new(epoch, sid);
                for &counter in &[0u64, 1, 127, 128, 1 << 20, MAX_COUNTER] {
                    for ts in [
                        None,
                        Some(0),
                        Some(1_700_000_000_000),
                        Some(MAX_TIMESTAMP_MS),
                    ] {
                        for suite in Suite::ALL {
                            let h = Header {
                                suite,
                                epoch,
                                sender_id: sid,
                                counter,
                                timestamp_ms: ts,
                            };
                            let mut want = [0u8; MAX_HEADER_LEN];
                            let n = h.write(&mut want);
                            let mut got = [0u8; MAX_HEADER_LEN];
                            let m = fixed.write_header(suite, counter, ts, &mut got);
                            assert_eq!(&got[MAX_HEADER_LEN - m..], &want[..n]);
                            assert_eq!(m, h.encoded_len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn header_round_trip() {
        let h = Header {
            suite: Suite::Aes256GcmEd25519,
            epoch: 70_000,
            sender_id: b"robot-7",
            counter: 1 << 40,
            timestamp_ms: Some(1_790_000_000_000),
        };
        let mut buf = vec![0u8; MAX_HEADER_LEN + Suite::Aes256GcmEd25519.trailer_len()];
        let n = h.write(&mut buf);
        assert_eq!(n, h.encoded_len());
        buf.truncate(n + Suite::Aes256GcmEd25519.trailer_len());
        let env = parse(&buf).unwrap();
        assert_eq!(env.header, h);
        assert_eq!(env.body(), b"");
    }
}
