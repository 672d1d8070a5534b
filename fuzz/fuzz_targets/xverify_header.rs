//! Any header text: parsing and verifying never panic, and whatever parses prints back to a
//! header that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parkpay_checksum::{Message, SaltIndex, SaltKey, SaltKeys, WebhookCredentials, XVerify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(x) = XVerify::parse(text) {
        let again = XVerify::parse(&x.to_string()).expect("canonical form parses");
        assert_eq!(again, x);
    }
    let keys = SaltKeys::single(SaltIndex::new(1), SaltKey::new("fuzz-salt").unwrap());
    let _ = keys.verify(text, Message::Callback { response: text });
    let creds = WebhookCredentials::new("u", "p".to_owned().into());
    let _ = creds.verify(text);
});
