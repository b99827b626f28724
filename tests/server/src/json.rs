//! Tiny JSON writer helpers (enough for header maps and the observation log).

/// Returns `s` as a quoted, escaped JSON string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders header pairs as a JSON object; repeated names are joined with ", ".
pub fn header_object(headers: &[(String, String)]) -> String {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in headers {
        match merged.iter_mut().find(|(mk, _)| mk == k) {
            Some((_, mv)) => {
                mv.push_str(", ");
                mv.push_str(v);
            }
            None => merged.push((k.clone(), v.clone())),
        }
    }
    let fields: Vec<String> = merged
        .iter()
        .map(|(k, v)| format!("{}:{}", string(k), string(v)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_merges() {
        assert_eq!(string("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
        let h = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "3".to_string()),
        ];
        assert_eq!(header_object(&h), r#"{"a":"1, 3","b":"2"}"#);
    }
}
