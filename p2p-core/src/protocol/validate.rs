//! The rules for what users type: usernames and chat texts.

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
    /// It holds a control character (newline, tab, escape, ...).
    #[error("it contains a control character")]
    ControlCharacter,
}

/// Checks the username rules: 1 to [`MAX_USERNAME_CHARS`] characters, none of them a control
/// character.
pub fn validate_username(name: &str) -> Result<(), UsernameError> {
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(UsernameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(UsernameError::ControlCharacter);
    }
    Ok(())
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
    }
}
