//! The rules for what users type: usernames and chat texts.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::{MAX_USERNAME_CHARS, ProtocolError};

/// Why a username is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// No characters.
    #[error("it is empty")]
    Empty,
    /// More than [`MAX_USERNAME_CHARS`] characters.
    #[error("it has more than {MAX_USERNAME_CHARS} characters")]
    TooLong,
    /// It holds a control character (newline, tab, escape, ...: Unicode category Cc).
    #[error("it contains a control character")]
    ControlCharacter,
    /// It holds an invisible formatting character (Unicode category Cf: a zero-width space
    /// or joiner, a bidirectional override, a soft hyphen, ...), which would let two names
    /// that print alike differ.
    #[error("it contains an invisible formatting character (U+{:04X})", u32::from(*.0))]
    FormatCharacter(char),
    /// It holds a line or paragraph separator (U+2028, U+2029: Unicode categories Zl, Zp).
    #[error("it contains a line or paragraph separator")]
    LineSeparator,
    /// It starts or ends with white space.
    #[error("it starts or ends with a space")]
    SurroundingSpace,
}

/// Checks the username rules: 1 to [`MAX_USERNAME_CHARS`] characters; no control
/// characters (Unicode Cc), no invisible formatting characters (Cf: zero-width characters,
/// bidirectional overrides), no line or paragraph separators (Zl, Zp); no white space at
/// either end. White space inside a name (`Ana Maria`) is fine.
///
/// The peer, the tracker, the terminal peer and the desktop app all check names with this
/// one function, so they refuse the same names.
///
/// ```
/// use p2p_core::protocol::{UsernameError, validate_username};
/// assert_eq!(validate_username("Ana Maria"), Ok(()));
/// assert_eq!(
///     validate_username("ali\u{200b}ce"),
///     Err(UsernameError::FormatCharacter('\u{200b}'))
/// );
/// assert_eq!(validate_username(" alice"), Err(UsernameError::SurroundingSpace));
/// ```
pub fn validate_username(name: &str) -> Result<(), UsernameError> {
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(UsernameError::TooLong);
    }
    check_characters(name)
}

/// The character rules usernames and room names share: no Cc, Cf, Zl or Zp characters, no
/// white space at either end.
fn check_characters(name: &str) -> Result<(), UsernameError> {
    for c in name.chars() {
        match c.general_category() {
            GeneralCategory::Control => return Err(UsernameError::ControlCharacter),
            GeneralCategory::Format => return Err(UsernameError::FormatCharacter(c)),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
                return Err(UsernameError::LineSeparator);
            }
            _ => {}
        }
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(UsernameError::SurroundingSpace);
    }
    Ok(())
}

/// Longest room name, in bytes of UTF-8.
pub const MAX_ROOM_NAME_BYTES: usize = 64;

/// Why a room name is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomNameError {
    /// No characters.
    #[error("it is empty")]
    Empty,
    /// More than [`MAX_ROOM_NAME_BYTES`] bytes of UTF-8.
    #[error("it is longer than {MAX_ROOM_NAME_BYTES} bytes")]
    TooLong,
    /// A character usernames may not hold either (control, invisible formatting, line
    /// separators, white space at either end).
    #[error(transparent)]
    Character(UsernameError),
}

/// Checks the room name rules: 1 to [`MAX_ROOM_NAME_BYTES`] bytes, and the characters
/// usernames may hold (see [`validate_username`]). A room's name never travels on the
/// network (peers and trackers see the room's opaque id), but it is printed and typed, and
/// two names that print alike must not be two rooms.
///
/// ```
/// use p2p_core::protocol::validate_room_name;
/// assert!(validate_room_name("sala 3 ☕").is_ok());
/// assert!(validate_room_name("lobby\u{200b}").is_err());
/// ```
pub fn validate_room_name(name: &str) -> Result<(), RoomNameError> {
    if name.is_empty() {
        return Err(RoomNameError::Empty);
    }
    if name.len() > MAX_ROOM_NAME_BYTES {
        return Err(RoomNameError::TooLong);
    }
    check_characters(name).map_err(RoomNameError::Character)
}

/// Checks a chat text against the text limit.
pub fn validate_text(text: &str, max_text_bytes: usize) -> Result<(), ProtocolError> {
    if text.len() > max_text_bytes {
        return Err(ProtocolError::TextTooLong {
            len: text.len(),
            max: max_text_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(
            validate_username("a\nb"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(validate_username(&"ã".repeat(32)), Ok(()));
        assert_eq!(
            validate_username(&"a".repeat(33)),
            Err(UsernameError::TooLong)
        );
        for good in [
            "alice",
            "Ana Maria",
            "bó",
            "李小龍",
            "o'neil-2",
            "👋",
            "a b c",
        ] {
            assert_eq!(validate_username(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn room_names() {
        assert_eq!(validate_room_name(""), Err(RoomNameError::Empty));
        assert_eq!(validate_room_name(&"é".repeat(32)), Ok(()));
        assert_eq!(
            validate_room_name(&"é".repeat(33)),
            Err(RoomNameError::TooLong)
        );
        assert_eq!(
            validate_room_name("a\tb"),
            Err(RoomNameError::Character(UsernameError::ControlCharacter))
        );
        assert_eq!(
            validate_room_name(" lobby"),
            Err(RoomNameError::Character(UsernameError::SurroundingSpace))
        );
        assert_eq!(
            validate_room_name("lo\u{202e}bby").unwrap_err().to_string(),
            "it contains an invisible formatting character (U+202E)"
        );
    }

    /// Names that print like another name, or span lines, are refused with a message that
    /// says which rule they break.
    #[test]
    fn names_that_look_alike_are_refused() {
        for (name, c) in [
            ("ali\u{200b}ce", '\u{200b}'),   // zero-width space
            ("ali\u{200d}ce", '\u{200d}'),   // zero-width joiner
            ("\u{202e}ecila", '\u{202e}'),   // right-to-left override
            ("alice\u{2066}", '\u{2066}'),   // left-to-right isolate
            ("al\u{ad}ice", '\u{ad}'),       // soft hyphen
            ("\u{feff}alice", '\u{feff}'),   // byte order mark
            ("alice\u{e0041}", '\u{e0041}'), // tag character
        ] {
            assert_eq!(
                validate_username(name),
                Err(UsernameError::FormatCharacter(c)),
                "{name:?}"
            );
        }
        let e = validate_username("ali\u{200b}ce").unwrap_err();
        assert_eq!(
            e.to_string(),
            "it contains an invisible formatting character (U+200B)"
        );
        for name in ["ali\u{2028}ce", "alice\u{2029}"] {
            assert_eq!(
                validate_username(name),
                Err(UsernameError::LineSeparator),
                "{name:?}"
            );
        }
        for name in [" alice", "alice ", "\u{3000}alice", "alice\u{a0}", " "] {
            assert_eq!(
                validate_username(name),
                Err(UsernameError::SurroundingSpace),
                "{name:?}"
            );
        }
        assert_eq!(
            validate_username("ali\u{85}ce"),
            Err(UsernameError::ControlCharacter)
        );
    }
}
