//! Fingerprints: a short rendering of an identity key that people can read aloud and compare.
//!
//! `fingerprint = base32(BLAKE2s-256(public key)[..10])`, lowercase RFC 4648 base32 (the
//! alphabet `a`–`z`, `2`–`7`) in four groups of four: `gifv-5km6-mu54-fnmt`. Eighty bits: a
//! stranger who wants a key with the fingerprint of someone else's must try about 2^80 keys.
//!
//! The base32 encoder is the 16-symbol special case written out here (10 bytes are exactly 16
//! symbols, no padding), tested against RFC 4648 vectors; no crate of the dependency tree
//! offers lowercase base32.

use std::fmt;
use std::str::FromStr;

use blake2::{Blake2s256, Digest};

/// Bytes of the hash a fingerprint shows.
pub const FINGERPRINT_BYTES: usize = 10;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const SYMBOLS: usize = FINGERPRINT_BYTES * 8 / 5;

/// The fingerprint of an identity key. [`Display`](fmt::Display) writes it as
/// `xxxx-xxxx-xxxx-xxxx`; [`FromStr`] reads that back (any case, dashes optional).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; FINGERPRINT_BYTES]);

impl Fingerprint {
    /// The fingerprint of a 32-byte public key.
    pub(crate) fn of_key(public: &[u8; 32]) -> Fingerprint {
        let hash = Blake2s256::digest(public);
        let mut bytes = [0u8; FINGERPRINT_BYTES];
        bytes.copy_from_slice(&hash[..FINGERPRINT_BYTES]);
        Fingerprint(bytes)
    }

    /// The hash bytes it shows.
    pub fn as_bytes(&self) -> &[u8; FINGERPRINT_BYTES] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value = [0u8; 16];
        value[16 - FINGERPRINT_BYTES..].copy_from_slice(&self.0);
        let value = u128::from_be_bytes(value);
        let mut text = [0u8; SYMBOLS + 3];
        let mut at = 0;
        for i in 0..SYMBOLS {
            if i > 0 && i % 4 == 0 {
                text[at] = b'-';
                at += 1;
            }
            let shift = 5 * (SYMBOLS - 1 - i);
            text[at] = ALPHABET[((value >> shift) & 31) as usize];
            at += 1;
        }
        // The text is ASCII by construction.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A text that is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a fingerprint (16 letters a-z and digits 2-7, in groups such as abcd-efgh-ijkl-mnop)")]
pub struct InvalidFingerprint;

impl FromStr for Fingerprint {
    type Err = InvalidFingerprint;

    fn from_str(s: &str) -> Result<Fingerprint, InvalidFingerprint> {
        let mut value: u128 = 0;
        let mut symbols = 0;
        for c in s.bytes().filter(|&c| c != b'-') {
            let digit = match c.to_ascii_lowercase() {
                c @ b'a'..=b'z' => c - b'a',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(InvalidFingerprint),
            };
            symbols += 1;
            if symbols > SYMBOLS {
                return Err(InvalidFingerprint);
            }
            value = value << 5 | u128::from(digit);
        }
        if symbols != SYMBOLS {
            return Err(InvalidFingerprint);
        }
        let mut bytes = [0u8; FINGERPRINT_BYTES];
        bytes.copy_from_slice(&value.to_be_bytes()[16 - FINGERPRINT_BYTES..]);
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> String {
        text.replace('-', "")
    }

    #[test]
    fn matches_rfc_4648_base32() {
        // Vectors from Python's base64.b32encode, lowercased.
        for (bytes, expected) in [
            (*b"foobarfoob", "mzxw6ytbojtg633c"),
            ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "aaaqeayeaudaocaj"),
            ([0xff; 10], "7777777777777777"),
            ([0; 10], "aaaaaaaaaaaaaaaa"),
        ] {
            let fp = Fingerprint(bytes);
            assert_eq!(plain(&fp.to_string()), expected);
            assert_eq!(expected.parse::<Fingerprint>(), Ok(fp));
        }
    }

    #[test]
    fn is_the_first_ten_bytes_of_the_blake2s_hash_of_the_key() {
        // BLAKE2s-256 of 32 zero bytes starts 320b5ea99e653bc2b593 (Python's hashlib).
        let fp = Fingerprint::of_key(&[0; 32]);
        assert_eq!(fp.to_string(), "gifv-5km6-mu54-fnmt");
        assert_eq!(
            fp.as_bytes(),
            &[0x32, 0x0b, 0x5e, 0xa9, 0x9e, 0x65, 0x3b, 0xc2, 0xb5, 0x93]
        );
        assert_ne!(Fingerprint::of_key(&[1; 32]), fp);
    }

    #[test]
    fn parses_what_it_displays_in_any_case_with_or_without_dashes() {
        let fp = Fingerprint::of_key(&[9; 32]);
        let text = fp.to_string();
        assert_eq!(text.len(), 19);
        assert_eq!(text.matches('-').count(), 3);
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(text.to_uppercase().parse::<Fingerprint>(), Ok(fp));
        assert_eq!(plain(&text).parse::<Fingerprint>(), Ok(fp));
        assert_eq!(format!("{fp:?}"), format!("Fingerprint({text})"));
    }

    #[test]
    fn refuses_what_is_not_a_fingerprint() {
        for bad in [
            "",
            "abcd-efgh-ijkl-mno",
            "abcd-efgh-ijkl-mnopq",
            "abcd-efgh-ijkl-mno1",
            "abcd-efgh-ijkl-mno8",
            "abcd efgh ijkl mnop",
            "abcd-efgh-ijkl-mnoé",
        ] {
            assert_eq!(
                bad.parse::<Fingerprint>(),
                Err(InvalidFingerprint),
                "{bad:?}"
            );
        }
    }
}
