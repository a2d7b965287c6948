//! The room key, and what is derived from it: the Noise pre-shared key that closes the
//! handshake to strangers, the opaque room id that trackers and LAN announcements carry, and
//! the DHT infohash under which the room's peers meet.
//!
//! ```text
//! salt     = BLAKE2s-256(len ‖ "p2p-chat room salt v1" ‖ len ‖ room name)
//! room key = argon2id(passphrase or "", salt; m = 19 MiB, t = 2, p = 1) → 32 bytes
//! psk      = BLAKE2s-MAC-256(key = room key, "p2p-chat v1 noise psk")
//! room id  = BLAKE2s-MAC-256(key = room key, "p2p-chat v1 room id")[..16]      (32 hex digits)
//! infohash = BLAKE2s-MAC-256(key = room key, "p2p-chat v1 dht infohash")[..20]
//! ```
//!
//! (`len` is the length of the part that follows, 8 bytes big-endian.) Keyed BLAKE2s is a
//! pseudo-random function, so the three outputs are independent: knowing the room id (the
//! tracker does) or the infohash (the DHT does) tells nothing about the PSK or about each
//! other.

use std::fmt;
use std::str::FromStr;

use std::sync::{Mutex, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac256};
use zeroize::Zeroize;
use zeroize::Zeroizing;

use super::error::SecureError;
use super::hex;
use super::passphrase::Passphrase;

/// The room everyone is in unless told otherwise.
pub const DEFAULT_ROOM: &str = "lobby";

/// argon2id memory cost in KiB (19 MiB, the OWASP recommendation for argon2id).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// argon2id passes over that memory.
pub const ARGON2_PASSES: u32 = 2;
/// argon2id lanes.
pub const ARGON2_LANES: u32 = 1;

/// Bytes of a room id.
pub const ROOM_ID_BYTES: usize = 16;

/// A room's key: derived once per start from the room name and the passphrase, shared by
/// every link of the peer.
///
/// It never reaches `Debug` output (which shows only the room id, which trackers see anyway)
/// and is zeroed when dropped. Cloning copies the key; each copy is zeroed when dropped.
#[derive(Clone)]
pub struct RoomKey {
    psk: Zeroizing<[u8; 32]>,
    room_id: RoomId,
    infohash: InfoHash,
}

impl RoomKey {
    /// Derives the key of `room` with `passphrase` (or with none: an open room still gets a
    /// key, from its name alone). Costs one argon2id run (tens of milliseconds and 19 MiB):
    /// derive once per start, never per link.
    ///
    /// The name is used byte for byte: `Lobby` and `lobby` are different rooms.
    ///
    /// # Errors
    ///
    /// [`SecureError::Crypto`] if argon2 cannot run (it cannot allocate its memory).
    pub fn derive(room: &str, passphrase: Option<&Passphrase>) -> Result<RoomKey, SecureError> {
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
            .map_err(|_| SecureError::Crypto("argon2 parameters"))?;
        let blocks = params.block_count();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = hash_parts(&[b"p2p-chat room salt v1", room.as_bytes()]);
        let secret = passphrase.map_or(&[][..], Passphrase::as_bytes);
        let mut key = Zeroizing::new([0u8; 32]);
        with_working_memory(blocks, |memory| {
            argon2.hash_password_into_with_memory(secret, &salt, &mut key[..], memory)
        })
        .map_err(|_| SecureError::Crypto("argon2id key derivation"))?;
        Ok(RoomKey::from_key(&key))
    }

    /// Splits a derived key into its parts (kept apart so the key itself need not be kept).
    fn from_key(key: &[u8; 32]) -> RoomKey {
        let psk = Zeroizing::new(prf(key, b"p2p-chat v1 noise psk"));
        let id = prf(key, b"p2p-chat v1 room id");
        let hash = prf(key, b"p2p-chat v1 dht infohash");
        let mut room_id = [0u8; ROOM_ID_BYTES];
        room_id.copy_from_slice(&id[..ROOM_ID_BYTES]);
        let mut infohash = [0u8; 20];
        infohash.copy_from_slice(&hash[..20]);
        RoomKey {
            psk,
            room_id: RoomId(room_id),
            infohash: InfoHash(infohash),
        }
    }

    /// The opaque id of the room: what a tracker keys its registry by and what a LAN
    /// announcement carries. Peers with the same room name and passphrase have the same id;
    /// it reveals neither.
    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    /// The infohash the room's peers announce themselves under in the Mainline DHT.
    pub fn infohash(&self) -> InfoHash {
        self.infohash
    }

    /// The Noise pre-shared key (`psk3` of the handshake).
    pub(crate) fn psk(&self) -> &[u8; 32] {
        &self.psk
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomKey")
            .field("room_id", &self.room_id)
            .finish_non_exhaustive()
    }
}

/// The opaque id of a room (16 bytes, shown as 32 lowercase hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId([u8; ROOM_ID_BYTES]);

impl RoomId {
    /// A room id from its bytes (as a tracker receives it).
    pub fn from_bytes(bytes: [u8; ROOM_ID_BYTES]) -> RoomId {
        RoomId(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; ROOM_ID_BYTES] {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write(f, &self.0)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({self})")
    }
}

impl FromStr for RoomId {
    type Err = InvalidHex;

    /// Parses the 32 hex digits [`Display`](fmt::Display) writes (either case).
    fn from_str(s: &str) -> Result<RoomId, InvalidHex> {
        let mut bytes = [0u8; ROOM_ID_BYTES];
        if hex::decode_into(s, &mut bytes) {
            Ok(RoomId(bytes))
        } else {
            Err(InvalidHex(2 * ROOM_ID_BYTES))
        }
    }
}

/// A 20-byte BitTorrent infohash (BEP 5) derived from a room key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash([u8; 20]);

impl InfoHash {
    /// Its bytes, as the DHT takes them.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write(f, &self.0)
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// A text that is not the expected number of hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not {0} hex digits")]
pub struct InvalidHex(usize);

/// Runs `f` with argon2id's working memory (19 MiB), zeroed afterwards. The memory is kept
/// for the process's later derivations, which take turns with it: freed instead, it would
/// stay with the allocator all the same (glibc serves blocks of this size from the heap of
/// the thread that asked, once the first one has been freed), once per thread that derived
/// a key, so a process that starts many peers (tests, benchmarks) would keep many of them.
fn with_working_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    static MEMORY: Mutex<Vec<Block>> = Mutex::new(Vec::new());
    let mut memory = MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    if memory.len() != blocks {
        memory.clear();
        memory.resize(blocks, Block::default());
    }
    let result = f(&mut memory);
    memory.iter_mut().for_each(Zeroize::zeroize);
    result
}

/// BLAKE2s-256 of the parts, each preceded by its length, so that no two lists of parts
/// hash the same input.
pub(crate) fn hash_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Blake2s256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Keyed BLAKE2s-256 (a PRF) of `label` under `key`.
fn prf(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac = <Blake2sMac256 as KeyInit>::new(key.into());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One argon2id run costs tens of milliseconds (more in a debug build): the tests derive
    // few keys.

    #[test]
    fn the_same_room_and_passphrase_give_the_same_key_and_others_do_not() {
        let secret = Passphrase::new("correct horse").unwrap();
        let a = RoomKey::derive("lobby", Some(&secret)).unwrap();
        let b = RoomKey::derive("lobby", Some(&secret.clone())).unwrap();
        assert_eq!(a.psk(), b.psk());
        assert_eq!(a.room_id(), b.room_id());
        assert_eq!(a.infohash(), b.infohash());

        let open = RoomKey::derive("lobby", None).unwrap();
        let other_room = RoomKey::derive("Lobby", Some(&secret)).unwrap();
        for other in [&open, &other_room] {
            assert_ne!(a.psk(), other.psk());
            assert_ne!(a.room_id(), other.room_id());
            assert_ne!(a.infohash(), other.infohash());
        }
    }

    /// Known answers, computed independently with Python's `cryptography` (Argon2id) and
    /// `hashlib` (BLAKE2s) from the formulas of the module documentation. A change here
    /// splits every existing room in two: bump the version labels instead.
    #[test]
    fn the_derivation_matches_known_answers() {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let secret = Passphrase::new("correct horse").unwrap();
        for (passphrase, room_id, infohash, psk) in [
            (
                None,
                "d26f55ec8e004d4371268f012f195a38",
                "f3821a9f416ead454ed6444f95930301f28c03ac",
                "33633be6b78a20cc7e6aa73054e5510619b88d2ea583b2ec584e44406e43c53a",
            ),
            (
                Some(&secret),
                "5dc44afe5022ce2f03e0af7888f3fe06",
                "eff201cdd755f1bb02b195733c1eac60f75c6b89",
                "8823cc5fdaac7fbeb892e7737288ff1717b51d190236ad66f5db6ec263bb87d9",
            ),
        ] {
            let key = RoomKey::derive(DEFAULT_ROOM, passphrase).unwrap();
            assert_eq!(key.room_id().to_string(), room_id);
            assert_eq!(key.infohash().to_string(), infohash);
            assert_eq!(hex(key.psk()), psk);
        }
    }

    #[test]
    fn the_parts_are_independent_of_each_other() {
        let key = RoomKey::from_key(&[7u8; 32]);
        assert_ne!(&key.psk()[..16], key.room_id().as_bytes());
        assert_ne!(&key.psk()[..20], key.infohash().as_bytes());
        assert_ne!(
            key.room_id().as_bytes()[..],
            key.infohash().as_bytes()[..16]
        );
    }

    #[test]
    fn debug_shows_the_room_id_and_no_key() {
        let key = RoomKey::from_key(&[7u8; 32]);
        let shown = format!("{key:?}");
        assert_eq!(
            shown,
            format!("RoomKey {{ room_id: RoomId({}), .. }}", key.room_id())
        );
        let psk_hex: String = key.psk().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&psk_hex[..8]));
    }

    #[test]
    fn ids_print_as_hex_and_parse_back() {
        let key = RoomKey::from_key(&[1u8; 32]);
        let id = key.room_id();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(text.parse::<RoomId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<RoomId>(), Ok(id));
        assert_eq!(RoomId::from_bytes(*id.as_bytes()), id);
        assert!("abc".parse::<RoomId>().is_err());
        assert!(format!("{}zz", &text[..30]).parse::<RoomId>().is_err());
        assert!(format!("+{}", &text[..31]).parse::<RoomId>().is_err());
        assert_eq!(key.infohash().to_string().len(), 40);
    }

    #[test]
    fn hash_parts_separates_its_parts() {
        assert_ne!(hash_parts(&[b"ab", b"c"]), hash_parts(&[b"a", b"bc"]));
        assert_ne!(hash_parts(&[b"abc"]), hash_parts(&[b"abc", b""]));
    }
}
