//! Lowercase hexadecimal, for the room id, the infohash and the identity key file.

use std::fmt;

/// Writes `bytes` as lowercase hex digits.
pub(crate) fn write(f: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Decodes exactly `2 * out.len()` hex digits (either case) into `out`. Returns `false`, with
/// `out` in an unspecified state, for any other text.
pub(crate) fn decode_into(text: &str, out: &mut [u8]) -> bool {
    let digits = text.as_bytes();
    if digits.len() != 2 * out.len() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => d - b'0',
        _ => (d | 0x20) - b'a' + 10,
    };
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0]) << 4 | value(pair[1]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_non_hex() {
        let mut text = String::new();
        write(&mut text, &[0x00, 0x7f, 0xab, 0xff]).unwrap();
        assert_eq!(text, "007fabff");
        let mut out = [0u8; 4];
        assert!(decode_into("007FABff", &mut out));
        assert_eq!(out, [0x00, 0x7f, 0xab, 0xff]);
        for bad in [
            "007fab",
            "007fabff00",
            "+07fabff",
            "007fabfg",
            "007fabf\u{e9}",
        ] {
            assert!(!decode_into(bad, &mut out), "{bad:?}");
        }
    }
}
