//! Room names: validation and the canonical (case-folded) form used as the room's key.

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    Empty,
    TooLong { max: usize },
    BadChar(char),
    LeadingDot,
}

impl std::fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "the room name is empty"),
            Self::TooLong { max } => write!(f, "the room name is longer than {max} characters"),
            Self::BadChar(c) => write!(
                f,
                "the room name contains {c:?}; use letters, digits, '-', '_' and '.'"
            ),
            Self::LeadingDot => write!(f, "the room name may not start with '.'"),
        }
    }
}

impl std::error::Error for RoomNameError {}

/// Validates a room name from a URL and returns its canonical lower-case form, so `Standup` and
/// `standup` are one room. Letters and digits of any script are allowed, plus `-`, `_` and `.`;
/// nothing that needs escaping in a URL path or a file name.
pub fn canonical_room_name(name: &str, max_len: usize) -> Result<String, RoomNameError> {
    if name.is_empty() {
        return Err(RoomNameError::Empty);
    }
    if name.chars().count() > max_len {
        return Err(RoomNameError::TooLong { max: max_len });
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(RoomNameError::BadChar(c));
    }
    // A leading dot would make hidden files of per-room recordings and `..` a path component.
    if name.starts_with('.') {
        return Err(RoomNameError::LeadingDot);
    }
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(canonical_room_name("StandUp", 64).unwrap(), "standup");
        assert_eq!(
            canonical_room_name("Café-42_x.y", 64).unwrap(),
            "café-42_x.y"
        );
    }

    #[test]
    fn invalid_names_are_refused_with_a_reason() {
        assert_eq!(canonical_room_name("", 64), Err(RoomNameError::Empty));
        assert_eq!(
            canonical_room_name(&"a".repeat(65), 64),
            Err(RoomNameError::TooLong { max: 64 })
        );
        assert!(canonical_room_name(&"é".repeat(64), 64).is_ok());
        assert_eq!(
            canonical_room_name("a/b", 64),
            Err(RoomNameError::BadChar('/'))
        );
        assert_eq!(
            canonical_room_name("a b", 64),
            Err(RoomNameError::BadChar(' '))
        );
        assert_eq!(
            canonical_room_name("..", 64),
            Err(RoomNameError::LeadingDot)
        );
        assert!(
            canonical_room_name("a%2F", 64)
                .unwrap_err()
                .to_string()
                .contains("'%'")
        );
    }
}
