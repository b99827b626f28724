//! Request-target parsing: path, percent-decoded query parameters, hex decoding.

/// A request target split into its path and decoded query parameters.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Path part, before `?`.
    pub path: String,
    /// Query parameters in order; names and values are percent-decoded bytes
    /// (`+` is kept literally, it does not mean space).
    pub params: Vec<(String, Vec<u8>)>,
}

impl Target {
    /// Splits `target` (e.g. `/close?code=4001&reason=bye`).
    pub fn parse(target: &str) -> Target {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        let params = query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (
                    String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                    percent_decode(v),
                )
            })
            .collect();
        Target {
            path: path.to_string(),
            params,
        }
    }

    /// Raw decoded bytes of the first parameter called `name`.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// First parameter called `name` as (lossy) UTF-8 text.
    pub fn str(&self, name: &str) -> Option<String> {
        self.bytes(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// First parameter called `name` parsed as a number; `None` if absent or invalid.
    pub fn num<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.str(name).and_then(|s| s.trim().parse().ok())
    }

    /// Whether parameter `name` is present with a truthy value (`1`, `true`, `yes`, or empty).
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.str(name).as_deref(),
            Some("1") | Some("true") | Some("yes") | Some("")
        )
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept literally.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Decodes a hex string (either case, whitespace ignored); `None` if malformed.
pub fn hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
        .collect()
}

/// Encodes bytes as lowercase hex.
pub fn hex_encode(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_decoding() {
        let t = Target::parse("/close?code=4001&reason=b%C3%BCe+x%2&empty");
        assert_eq!(t.path, "/close");
        assert_eq!(t.num::<u16>("code"), Some(4001));
        assert_eq!(t.bytes("reason").unwrap(), "büe+x%2".as_bytes());
        assert!(t.flag("empty"));
        assert!(!t.flag("missing"));
        assert_eq!(hex_decode(b"8a00FF").unwrap(), vec![0x8a, 0, 0xff]);
        assert!(hex_decode(b"8a0").is_none());
        assert_eq!(hex_encode(&[0x8a, 0, 0xff]), "8a00ff");
        assert_eq!(percent_decode("%"), b"%");
        assert_eq!(percent_decode("a%4"), b"a%4");
        assert_eq!(percent_decode("%41"), b"A");
    }
}
