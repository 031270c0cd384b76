//! `mqseal inspect`: decode an envelope's structure without any key.

use std::fmt::Write as _;

use mqseal::Malformed;
use mqseal::envelope;

use crate::civil;

/// The longest readable payload printed in full; longer ones are cut.
pub const PAYLOAD_PREVIEW: usize = 256;

/// Describes an envelope, one `label value` line per field.
///
/// Only the structure is checked (as [`mqseal::envelope::parse`] does): without
/// the keys nothing says whether the envelope is authentic.
pub fn describe(input: &[u8]) -> Result<String, Malformed> {
    let env = envelope::parse(input)?;
    let h = &env.header;
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<11} {value}");
    };
    line("version", &envelope::VERSION.to_string());
    line(
        "suite",
        &format!("{} (0x{:02x})", h.suite.name(), h.suite.id()),
    );
    line("epoch", &h.epoch.to_string());
    line("sender id", &sender_id(h.sender_id));
    line("counter", &h.counter.to_string());
    line(
        "timestamp",
        &match h.timestamp_ms {
            Some(ms) => format!("{ms} ms ({})", civil::iso8601_ms(ms)),
            None => "none".to_string(),
        },
    );
    line("header", &bytes(env.header_len()));
    line("body", &bytes(env.body().len()));
    line(
        "tag",
        &match h.suite.symmetric() {
            Some(_) => format!("{} ({})", bytes(env.tag().len()), tag_name(h.suite)),
            None => "none".to_string(),
        },
    );
    line(
        "signature",
        &match env.signature() {
            Some(sig) => format!("{} (ed25519)", bytes(sig.len())),
            None => "none".to_string(),
        },
    );
    line("total", &bytes(input.len()));
    if env.body_is_plaintext() {
        line(
            "readable",
            "yes: the body is the payload itself, authenticated but not encrypted",
        );
        line("payload", &payload(env.body()));
    } else {
        line(
            "readable",
            "no: the body is ciphertext; only a holder of the group key can open it",
        );
    }
    Ok(out)
}

fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

fn tag_name(suite: mqseal::Suite) -> &'static str {
    match suite.symmetric() {
        Some(envelope::Symmetric::Aes256Gcm) => "AES-256-GCM",
        Some(envelope::Symmetric::ChaCha20Poly1305) => "Poly1305",
        Some(envelope::Symmetric::HmacSha256) => "HMAC-SHA256",
        _ => "none",
    }
}

/// Printable ASCII sender ids are shown quoted, others in hex.
fn sender_id(id: &[u8]) -> String {
    if id.iter().all(|b| (0x20..=0x7e).contains(b)) {
        // Printable ASCII: `{:?}` only escapes `"` and `\`.
        format!("{:?}", String::from_utf8_lossy(id))
    } else {
        format!("{} (hex: not printable)", hex::encode(id))
    }
}

/// A readable payload: quoted when it is text, hex otherwise; cut after
/// [`PAYLOAD_PREVIEW`] bytes.
pub fn payload(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty)".to_string();
    }
    let shown = &body[..body.len().min(PAYLOAD_PREVIEW)];
    let more = body.len() - shown.len();
    let text = std::str::from_utf8(shown)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    let mut s = match text {
        Some(t) => format!("{t:?}"),
        None => format!("{} (hex)", hex::encode(shown)),
    };
    if more > 0 {
        let _ = write!(s, " ... (+{})", bytes(more));
    }
    s
}

/// Decodes hexadecimal text, ignoring ASCII whitespace; the error says where
/// the input stops being hex.
pub fn decode_hex(text: &[u8]) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if let Some(pos) = digits.iter().position(|b| !b.is_ascii_hexdigit()) {
        let b = digits[pos];
        let shown = if b.is_ascii_graphic() {
            format!("{:?}", char::from(b))
        } else {
            format!("byte 0x{b:02x}")
        };
        return Err(format!(
            "the input is not hexadecimal: {shown} at hex digit {}; \
             drop --hex to read raw bytes",
            pos + 1
        ));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "the input has an odd number of hex digits ({}): a byte is two digits",
            digits.len()
        ));
    }
    hex::decode(&digits).map_err(|e| format!("the input is not hexadecimal: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_errors_say_where() {
        assert_eq!(decode_hex(b" 10 01\n0a ").unwrap(), [0x10, 0x01, 0x0a]);
        assert!(
            decode_hex(b"10zz")
                .unwrap_err()
                .contains("'z' at hex digit 3")
        );
        assert!(decode_hex(b"100").unwrap_err().contains("odd number"));
    }

    #[test]
    fn sender_ids_and_payloads() {
        assert_eq!(sender_id(b"dev1"), "\"dev1\"");
        assert_eq!(sender_id(b"a\"b"), "\"a\\\"b\"");
        assert_eq!(sender_id(&[0, 0xff]), "00ff (hex: not printable)");
        assert_eq!(payload(b""), "(empty)");
        assert_eq!(payload(b"move 10 20"), "\"move 10 20\"");
        assert_eq!(payload(&[1, 2]), "0102 (hex)");
        let long = vec![b'a'; PAYLOAD_PREVIEW + 3];
        assert!(payload(&long).ends_with("aaa\" ... (+3 bytes)"));
    }
}
