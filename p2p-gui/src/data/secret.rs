//! The passphrase as typed in the connect form's masked field: kept out of `Debug` output
//! and of the settings file, and zeroed when dropped.
//!
//! It is text, not yet a [`Passphrase`] (which is never empty, while an empty field means a
//! room without one); [`Secret::passphrase`] makes the core's type from it.

use std::fmt;

use p2p_core::secure::{MAX_PASSPHRASE_BYTES, Passphrase};
use zeroize::Zeroizing;

use crate::data::form::FieldError;

/// Text typed in a masked field. Its `Debug` output is `Secret(..)` whatever it holds; its
/// bytes are zeroed when it is dropped or replaced.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// The text typed (taken over, not copied).
    pub fn new(text: String) -> Secret {
        Secret(Zeroizing::new(text))
    }

    /// The text, for the masked field to draw its dots.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `true` if nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The room's passphrase: `None` for an empty field (a room without one), or why the
    /// text cannot be one (longer than [`MAX_PASSPHRASE_BYTES`]).
    pub fn passphrase(&self) -> Result<Option<Passphrase>, FieldError> {
        if self.is_empty() {
            return Ok(None);
        }
        if self.0.len() > MAX_PASSPHRASE_BYTES {
            return Err(FieldError::TooLongBytes(MAX_PASSPHRASE_BYTES));
        }
        // The copy moves into the passphrase, which zeroes it when dropped.
        Passphrase::new(self.0.as_str().to_owned())
            .map(Some)
            .map_err(|_| FieldError::TooLongBytes(MAX_PASSPHRASE_BYTES))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_and_makes_a_passphrase_only_when_typed() {
        let secret = Secret::new("correct horse".into());
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(..))");
        assert_eq!(
            secret.passphrase(),
            Ok(Some(Passphrase::new("correct horse").unwrap()))
        );
        assert_eq!(
            Secret::default().passphrase(),
            Ok(None),
            "empty: no passphrase"
        );
        let long = Secret::new("x".repeat(MAX_PASSPHRASE_BYTES + 1));
        assert_eq!(
            long.passphrase(),
            Err(FieldError::TooLongBytes(MAX_PASSPHRASE_BYTES))
        );
        assert!(
            Secret::new("x".repeat(MAX_PASSPHRASE_BYTES))
                .passphrase()
                .is_ok()
        );
    }
}
