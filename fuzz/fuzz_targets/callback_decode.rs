//! Any callback body and X-VERIFY header: decoding never panics. The first byte chooses whether
//! the body is signed correctly, so the fuzzer also reaches the base64 and JSON decoding behind
//! the signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parkpay_checksum::{Message, SaltIndex, SaltKey, SaltKeys};
use parkpay_gateway::phonepe_v1::verify_callback;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let keys = SaltKeys::single(SaltIndex::new(1), SaltKey::new("fuzz-salt").unwrap());
    let mut headers = http::HeaderMap::new();
    let body: Vec<u8> = if mode & 1 == 1 {
        // Treat the rest as the `response` string and sign it: exercises decoding.
        let response = String::from_utf8_lossy(rest).into_owned();
        let sig = keys.sign(Message::Callback { response: &response }).to_string();
        headers.insert("x-verify", sig.parse().unwrap());
        let mut b = br#"{"response":"#.to_vec();
        b.extend_from_slice(serde_json_escape(&response).as_bytes());
        b.push(b'}');
        b
    } else {
        // Raw: the first line is the header, the rest the body.
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        if let Ok(v) = http::HeaderValue::from_bytes(&rest[..split]) {
            headers.insert("x-verify", v);
        }
        rest.get(split + 1..).unwrap_or_default().to_vec()
    };
    let _ = verify_callback(&keys, &headers, &body);
});

fn serde_json_escape(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
