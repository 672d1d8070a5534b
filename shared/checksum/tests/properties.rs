//! Property tests: signing then verifying round-trips, and any change to what was signed, or to
//! the header, is caught; no input makes the parser panic.

use parkpay_checksum::{HeaderError, MAX_HEADER_LEN, Message, SaltIndex, SaltKey, SaltKeys, VerifyError, XVerify};
use proptest::prelude::*;

fn keys(salt: &str, index: u32) -> SaltKeys {
    SaltKeys::single(SaltIndex::new(index), SaltKey::new(salt).unwrap())
}

fn flip(s: &str, at: usize, with: u8) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = at % b.len();
    // Replace by a different printable ASCII byte.
    b[i] = if b[i] == with { if with == b'z' { b'y' } else { with + 1 } } else { with };
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn body_round_trip(b64 in "[A-Za-z0-9+/=]{1,200}", path in "/[a-z0-9/]{1,40}", salt in "[ -~]{1,64}", idx in 1u32..1000) {
        let k = keys(&salt, idx);
        let msg = Message::Body { base64: &b64, path: &path };
        let header = k.sign(msg).to_string();
        prop_assert_eq!(k.verify(&header, msg), Ok(SaltIndex::new(idx)));
        prop_assert_eq!(XVerify::parse(&header).unwrap().to_string(), header);
    }

    #[test]
    fn any_changed_byte_fails(b64 in "[A-Za-z0-9+/=]{1,200}", path in "/[a-z0-9/]{1,40}", salt in "[ -~]{1,64}",
                              at in any::<usize>(), with in 0x21u8..0x7f, which in 0usize..3) {
        let k = keys(&salt, 1);
        let header = k.sign(Message::Body { base64: &b64, path: &path }).to_string();
        let (b2, p2, s2) = match which {
            0 => (flip(&b64, at, with), path.clone(), salt.clone()),
            1 => (b64.clone(), flip(&path, at, with), salt.clone()),
            _ => (b64.clone(), path.clone(), flip(&salt, at, with)),
        };
        let res = keys(&s2, 1).verify(&header, Message::Body { base64: &b2, path: &p2 });
        prop_assert_eq!(res, Err(VerifyError::Mismatch));
    }

    #[test]
    fn changed_digest_or_index_fails(path in "/[a-z0-9/]{1,40}", at in 0usize..64, idx in 1u32..1000, other in 1u32..1000) {
        let k = keys("salt", idx);
        let msg = Message::Path { path: &path };
        let header = k.sign(msg).to_string();
        // one hex digit changed
        let mut bytes = header.clone().into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(k.verify(&tampered, msg), Err(VerifyError::Mismatch));
        // another index: unknown to this merchant
        prop_assume!(other != idx);
        let (digest, _) = header.split_once("###").unwrap();
        let reindexed = format!("{digest}###{other}");
        prop_assert_eq!(k.verify(&reindexed, msg), Err(VerifyError::UnknownIndex(SaltIndex::new(other))));
    }

    #[test]
    fn index_selects_the_key(path in "/[a-z]{1,20}") {
        // Two keys: a header signed by either verifies; the active one signs.
        let k = SaltKeys::new(vec![
            (SaltIndex::new(1), SaltKey::new("old").unwrap()),
            (SaltIndex::new(2), SaltKey::new("new").unwrap()),
        ], SaltIndex::new(2)).unwrap();
        let msg = Message::Callback { response: &path };
        let by_old = XVerify::sign(msg, &SaltKey::new("old").unwrap(), SaltIndex::new(1)).to_string();
        prop_assert_eq!(k.verify(&by_old, msg), Ok(SaltIndex::new(1)));
        prop_assert!(k.sign(msg).to_string().ends_with("###2"));
        // old key's digest under the new key's index is wrong
        let swapped = by_old.replace("###1", "###2");
        prop_assert_eq!(k.verify(&swapped, msg), Err(VerifyError::Mismatch));
    }

    #[test]
    fn parser_never_panics(s in any::<String>()) {
        let _ = XVerify::parse(&s);
    }

    #[test]
    fn parser_accepts_exactly_the_documented_shape(hex in "[0-9a-fA-Fg ]{0,70}", sep in "(###|##|#|####|)", idx in "[0-9 +-]{0,12}") {
        let s = format!("{hex}{sep}{idx}");
        let well_formed = hex.len() == 64
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && sep == "###"
            && !idx.is_empty() && idx.len() <= 9
            && idx.bytes().all(|b| b.is_ascii_digit());
        match XVerify::parse(&s) {
            Ok(x) => {
                prop_assert!(well_formed, "accepted {s:?}");
                let canonical = format!("{}###{}", hex.to_lowercase(), idx.parse::<u32>().unwrap());
                prop_assert_eq!(x.to_string(), canonical);
            }
            Err(e) => {
                prop_assert!(!well_formed, "rejected {s:?}: {e}");
                if s.len() > MAX_HEADER_LEN {
                    let is_too_long = matches!(e, HeaderError::TooLong { .. });
                    prop_assert!(is_too_long);
                }
            }
        }
    }
}

#[test]
fn every_malformed_shape_has_its_own_error() {
    let good_hex = "d7a8e4458caa6fcd781166bbdc85fec76740c18cb9baa9a4c48cf2387d554180";
    assert_eq!(XVerify::parse(""), Err(HeaderError::Empty));
    assert_eq!(XVerify::parse(good_hex), Err(HeaderError::MissingSeparator));
    assert_eq!(XVerify::parse(&format!("{good_hex}#1")), Err(HeaderError::MissingSeparator));
    assert_eq!(XVerify::parse("abc###1"), Err(HeaderError::DigestLength { len: 3, expected: 64 }));
    assert_eq!(XVerify::parse(&format!("{}###1", "g".repeat(64))), Err(HeaderError::NonHexDigest));
    assert_eq!(XVerify::parse(&format!("{good_hex}###")), Err(HeaderError::BadIndex));
    assert_eq!(XVerify::parse(&format!("{good_hex}###x")), Err(HeaderError::BadIndex));
    assert_eq!(XVerify::parse(&format!("{good_hex}###1 ")), Err(HeaderError::BadIndex));
    assert_eq!(XVerify::parse(&format!("{good_hex}###-1")), Err(HeaderError::BadIndex));
    assert_eq!(XVerify::parse(&format!("{good_hex}######1")), Err(HeaderError::BadIndex));
    assert_eq!(
        XVerify::parse(&format!("{good_hex}###9999999999")).unwrap_err(),
        HeaderError::TooLong { len: 77, max: MAX_HEADER_LEN }
    );
    let huge = "a".repeat(1 << 20);
    assert_eq!(XVerify::parse(&huge), Err(HeaderError::TooLong { len: 1 << 20, max: MAX_HEADER_LEN }));
    // a multi-byte character where a hex digit should be: a clean error, not a slicing panic
    let mut odd = "é".repeat(32);
    odd.push_str("###1");
    assert_eq!(XVerify::parse(&odd), Err(HeaderError::NonHexDigest));
    assert!(XVerify::parse(&format!("{good_hex}###1")).is_ok());
}
