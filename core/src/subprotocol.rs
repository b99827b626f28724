//! Validation of the constructor's `protocols` argument (constructor step 9, RFC 6455 §4.1).

use crate::error::DomError;

/// True when `s` is a non-empty RFC 2616 token: U+0021-U+007E without separators.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// Checks every offered subprotocol: each must be a token, and none may repeat
/// (compared ASCII case-insensitively, as undici and WPT's repeated-case-insensitive test do).
pub fn validate_protocols(protocols: &[String]) -> Result<(), DomError> {
    for (i, p) in protocols.iter().enumerate() {
        if !is_token(p) {
            return Err(DomError::syntax(format!(
                "{p:?} is not a valid subprotocol token"
            )));
        }
        if protocols[..i].iter().any(|q| q.eq_ignore_ascii_case(p)) {
            return Err(DomError::syntax(format!("subprotocol {p:?} is repeated")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &[&str]) -> bool {
        validate_protocols(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).is_ok()
    }

    #[test]
    fn tokens() {
        assert!(check(&[]));
        assert!(check(&["echo", "chat.v2", "a-b_c~!#$%&'*+.^`|"]));
        assert!(!check(&[""]));
        assert!(!check(&["ec ho"]));
        assert!(!check(&["/echo"]));
        assert!(!check(&["foobar, foobar"]));
        assert!(!check(&["\u{80}echo"]));
        assert!(!check(&["a\u{0}b"]));
        for c in (1u8..=0x1f).chain(0x7f..=0xff) {
            let s = format!("a{}b", char::from(c));
            assert!(!check(&[&s]), "{c:#x}");
        }
    }

    #[test]
    fn duplicates() {
        assert!(!check(&["echo", "echo"]));
        assert!(!check(&["echo", "eCho"]));
        assert!(check(&["echo", "chat"]));
    }
}
