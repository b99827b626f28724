//! The constructor's input checks: URL parsing (with and without a base) and subprotocols.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.split('\u{1}');
    let url = parts.next().unwrap_or("");
    let base = parts.next();
    if let Ok(u) = wsdom_core::parse_websocket_url(url, base) {
        // Whatever parses must be a ws/wss URL without a fragment.
        assert!(matches!(u.scheme(), "ws" | "wss"));
        assert!(u.fragment().is_none());
        let _ = wsdom_core::origin_of(&u);
    }
    let protocols: Vec<String> = parts.map(str::to_owned).collect();
    if wsdom_core::subprotocol::validate_protocols(&protocols).is_ok() {
        assert!(protocols.iter().all(|p| wsdom_core::subprotocol::is_token(p)));
    }
});
