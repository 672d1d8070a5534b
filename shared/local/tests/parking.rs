//! Parking around the payment, end to end over HTTP on both stores: the entry pass a gate checks
//! offline, entry and exit, the cancellation rule, receipts, history, revoked passes and the UPI
//! QR image.

#[macro_use]
mod common;

use common::Env;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What a gate does with a pass, offline: fetch the JWKS once (no token), then check each pass
/// with it, here with `jsonwebtoken` directly (any JOSE library would do) and with
/// `parkpay_passes::verify`.
async fn gate_checks(env: &Env, pass: &str) -> parkpay_passes::PassClaims {
    let (s, jwks) = env.call("GET", "/api/passes/keys/", None, None).await;
    assert_eq!(s, StatusCode::OK, "{jwks}");
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    // A standard library, from the JWKS entry the header names.
    let header = jsonwebtoken::decode_header(pass).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let kid = header.kid.expect("the header names its key");
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("the key is published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Value>(pass, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation)
        .expect("a standard JOSE library accepts the pass");
    // And parkpay's own check, the same way.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = parkpay_passes::verify(pass, &jwks, now, 60).expect("the pass verifies offline");
    assert_eq!(data.claims["jti"], claims.jti.as_str());
    // A pass changed by one character is refused.
    let mut forged = pass.to_owned().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    assert!(parkpay_passes::verify(std::str::from_utf8(&forged).unwrap(), &jwks, now, 60).is_err());
    claims
}

/// The text of a QR code in a PNG image.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    // 1-bit greyscale rows, or 8-bit: normalise to one byte per pixel.
    let luma = |x: usize, y: usize| -> u8 {
        match info.bit_depth {
            png::BitDepth::One => {
                let row = &buf[y * info.line_size..];
                if row[x / 8] & (0x80 >> (x % 8)) != 0 { 255 } else { 0 }
            }
            _ => buf[y * info.line_size + x * info.color_type.samples()],
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma(x, y));
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

async fn get_bytes(env: &Env, path: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let resp = env.http.get(format!("{}{path}", env.base)).bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

async fn scan(env: &Env, token: &str, sid: &str, kind: &str, body: Value) -> (StatusCode, Value) {
    env.call("POST", &format!("/api/sessions/{sid}/{kind}/"), Some(token), Some(&body.to_string())).await
}

/// book → pay → pass → the gate verifies it offline → entry → the driver's own refund is refused
/// → exit → the receipt lists the payment; an operator may still refund.
async fn paid_visit(env: Env) {
    let t = env.token("parker-1");
    let gate = env.server.gate_token("gate-north-1");
    let op = common::operator(&env);
    let sid = env.book(&t).await;
    // No pass before paying.
    let (s, v) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("SESSION_NOT_PAID")), "{v}");
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;

    let (s, pass) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!(s, StatusCode::OK, "{pass}");
    let token = pass["pass"].as_str().unwrap();
    let claims = gate_checks(&env, token).await;
    assert_eq!(
        (claims.sid.as_str(), claims.lot.as_str(), claims.veh.as_str()),
        (sid.as_str(), "MG-ROAD-1", "KA-01-AB-1234")
    );
    // Valid from the booking to its end (2 h) plus 15 minutes' grace.
    assert_eq!(claims.exp - claims.nbf, 2 * 3600 + 15 * 60, "{claims:?}");
    assert_eq!(pass["kid"], jsonwebtoken::decode_header(token).unwrap().kid.unwrap().as_str());
    // Asking again gives the same pass; another driver cannot get it; an operator can.
    let (_, again) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!(again["pass"], pass["pass"]);
    let (s, _) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&env.token("someone-else")), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&op), None).await;
    assert_eq!(s, StatusCode::OK);
    // The same token as a QR image, PNG and SVG.
    let (s, ct, png_bytes) = get_bytes(&env, &format!("/api/sessions/{sid}/pass/qr/"), &t).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/png"));
    assert_eq!(decode_qr(&png_bytes), token, "the QR holds the exact pass");
    let (s, ct, svg) = get_bytes(&env, &format!("/api/sessions/{sid}/pass/qr/?format=svg"), &t).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/svg+xml"));
    assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    let (s, _, _) = get_bytes(&env, &format!("/api/sessions/{sid}/pass/qr/?format=gif"), &t).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Entry by a gate; a driver may not record one.
    let (s, v) = scan(&env, &t, &sid, "entry", json!({"gate": "north-1"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("GATE_ONLY")), "{v}");
    let now = now_text();
    let (s, v) = scan(&env, &gate, &sid, "entry", json!({"gate": "north-1", "scanned_at": now})).await;
    assert_eq!((s, v["recorded"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    // Repeated: the same answer, nothing recorded again.
    let (s, v2) = scan(&env, &gate, &sid, "entry", json!({"gate": "north-1", "scanned_at": now})).await;
    assert_eq!((s, v2["recorded"].as_bool(), &v2["entry"]), (StatusCode::OK, Some(false), &v["entry"]));

    // The driver's own refund is now refused (they parked); an operator's is not.
    let body = json!({"merchant_txn_id": p["merchant_txn_id"], "amount": "10.00"}).to_string();
    let (s, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&body)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("REFUND_NOT_ALLOWED")), "{v}");
    let (s, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&op), Some(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    // Staying longer: a payment for the difference, the booked end moving only once it is paid.
    let extend = |hours: i64| {
        let body = json!({"hours": hours}).to_string();
        let path = format!("/api/sessions/{sid}/extend/");
        let t = t.clone();
        let env = &env;
        async move { env.call("POST", &path, Some(&t), Some(&body)).await }
    };
    let (s, declined) = extend(1).await;
    assert_eq!(s, StatusCode::CREATED, "{declined}");
    assert_eq!((declined["amount"].as_str(), declined["status"].as_str()), (Some("50.00"), Some("PENDING")));
    let (s, v) = extend(1).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("PAYMENT_IN_PROGRESS")),
        "one at a time: {v}"
    );
    env.pay(&declined, "failure").await;
    common::wait_session(&env, &sid, "the declined extension recorded", |s| {
        s["payments"].as_array().unwrap().iter().any(|p| p["status"] == "FAILED")
    })
    .await;
    let (_, same) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!(same["valid_until"], pass["valid_until"], "a declined extension moves nothing");
    let (s, ext) = extend(1).await;
    assert_eq!(s, StatusCode::CREATED, "{ext}");
    env.pay(&ext, "success").await;
    let paid = common::wait_session(&env, &sid, "the extension paid", |s| s["paid"] == "150.00").await;
    assert_eq!(paid["can_enter"], true, "{paid}");
    let (_, longer) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    let longer = gate_checks(&env, longer["pass"].as_str().unwrap()).await;
    assert_eq!(longer.exp - claims.exp, 3600, "the pass is valid an hour longer");
    assert_eq!(longer.jti, claims.jti, "the same pass id: revoking it revokes both");
    // Too many hours in all (the catalogue allows 24) is refused before anything is recorded.
    let (s, v) = extend(22).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_HOURS")), "{v}");

    // Exit, then the receipt.
    let (s, v) = scan(&env, &gate, &sid, "exit", json!({"gate": "south-2"})).await;
    assert_eq!((s, v["recorded"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let s = env.wait_for_status(&t, &sid, "PARTIALLY_REFUNDED").await;
    assert_eq!((s["refunded"].as_str(), s["paid"].as_str()), (Some("10.00"), Some("150.00")));
    let (code, r) = env.call("GET", &format!("/api/sessions/{sid}/receipt/"), Some(&t), None).await;
    assert_eq!(code, StatusCode::OK, "{r}");
    assert_eq!(
        (r["amount"].as_str(), r["paid"].as_str(), r["refunded"].as_str(), r["net_paid"].as_str()),
        (Some("100.00"), Some("150.00"), Some("10.00"), Some("140.00"))
    );
    // Both payments that took money (the declined extension took none).
    let listed: Vec<&str> =
        r["payments"].as_array().unwrap().iter().map(|x| x["merchant_txn_id"].as_str().unwrap()).collect();
    let expected = [p["merchant_txn_id"].as_str().unwrap(), ext["merchant_txn_id"].as_str().unwrap()];
    assert_eq!(listed, expected, "{r}");
    assert_eq!((r["hours"].as_u64(), r["extra_hours"].as_u64()), (Some(2), Some(1)), "{r}");
    assert_eq!(r["payments"][1]["purpose"], "EXTENSION");
    assert!(r["payments"][0]["phonepe_transaction_id"].as_str().is_some_and(|x| !x.is_empty()), "{r}");
    assert_eq!((r["entry"]["gate"].as_str(), r["exit"]["gate"].as_str()), (Some("north-1"), Some("south-2")));
    assert_eq!(r["refunds"][0]["amount"], "10.00");
    // The printable page, for a browser.
    let resp = env
        .http
        .get(format!("{}/api/sessions/{sid}/receipt/", env.base))
        .bearer_auth(&t)
        .header("accept", "text/html,application/xhtml+xml;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains(&sid) && html.contains("₹100.00") && html.contains("north-1"), "{html}");
    common::assert_money(&env, &[sid]).await;
}

/// Cancel before entry: the driver gets everything back, and the pass is revoked (refused, and
/// listed for gates).
async fn cancel_before_entry(env: Env) {
    let t = env.token("parker-2");
    let gate = env.server.gate_token("gate-south-1");
    let (s, before) = env.call("GET", "/api/passes/revoked/", Some(&gate), None).await;
    assert_eq!(s, StatusCode::OK, "{before}");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    let (s, pass) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!(s, StatusCode::OK, "{pass}");
    let jti = gate_checks(&env, pass["pass"].as_str().unwrap()).await.jti;
    // The driver cancels: the whole amount back.
    let body = json!({"merchant_txn_id": p["merchant_txn_id"], "reason": "plans changed"}).to_string();
    let (s, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["amount"], "100.00");
    let done = env.wait_for_status(&t, &sid, "REFUNDED").await;
    assert_eq!(done["refunded"], "100.00");
    // The pass is refused now, and gates learn it is revoked.
    let (s, v) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("PASS_REVOKED")), "{v}");
    let (s, list) = env.call("GET", "/api/passes/revoked/", Some(&gate), None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let entry = list["revoked"].as_array().unwrap().iter().find(|e| e["session_id"] == sid.as_str()).cloned();
    let entry = entry.unwrap_or_else(|| panic!("the refunded session's pass is listed: {list}"));
    assert_eq!(entry["jti"], jti.as_str());
    // Polling from just before it finds it; from after it, not.
    let at = entry["revoked_at"].as_str().unwrap();
    let since = |t: &str| format!("/api/passes/revoked/?since={}", urlencode(t));
    let (_, from_before) = env.call("GET", &since("2020-01-01T00:00:00Z"), Some(&gate), None).await;
    assert!(from_before["revoked"].as_array().unwrap().iter().any(|e| e["session_id"] == sid.as_str()));
    // `since` is inclusive (a gate re-polls from its last `revoked_at` and misses nothing that
    // shares that millisecond); a millisecond later, the entry is behind it.
    let (_, from_it) = env.call("GET", &since(at), Some(&gate), None).await;
    assert!(from_it["revoked"].as_array().unwrap().iter().any(|e| e["session_id"] == sid.as_str()), "{from_it}");
    let next = parkpay_domain::Timestamp::parse_rfc3339(at).unwrap().unix_millis() + 1;
    let next = parkpay_domain::Timestamp::from_unix_millis(next).unwrap().to_rfc3339();
    let (_, from_after) = env.call("GET", &since(&next), Some(&gate), None).await;
    assert!(!from_after["revoked"].as_array().unwrap().iter().any(|e| e["session_id"] == sid.as_str()), "{from_after}");
    // Drivers may not read the list.
    let (s, v) = env.call("GET", "/api/passes/revoked/", Some(&t), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("GATE_ONLY")));
    // No entry after a refund: the gate may still record what it saw (a pass scanned offline).
    common::assert_money(&env, &[sid]).await;
}

fn now_text() -> String {
    parkpay_api::Clock::now(&parkpay_api::SystemClock).to_rfc3339()
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

/// The cancellation window: past it, with no entry recorded, the driver's refund is refused too.
async fn cancellation_window_closes(env: Env) {
    let t = env.token("parker-3");
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    env.server.clock.advance(std::time::Duration::from_secs(16 * 60));
    let body = json!({"merchant_txn_id": p["merchant_txn_id"]}).to_string();
    let (s, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&t), Some(&body)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("REFUND_NOT_ALLOWED")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("window"), "{v}");
}

/// A gate that was offline sends its scans late: the earliest wins; bad scans are 4xx.
async fn offline_gate_scans(env: Env) {
    let t = env.token("parker-4");
    let gate = env.server.gate_token("gate-east-1");
    let sid = env.book(&t).await;
    let (s, v) = scan(&env, &gate, &sid, "entry", json!({"gate": "east-1"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("SESSION_NOT_PAID")), "{v}");
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    let later = now_text();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (_, v) = scan(&env, &gate, &sid, "entry", json!({"gate": "east-2", "scanned_at": now_text()})).await;
    assert_eq!(v["recorded"], true);
    // The queued, earlier scan arrives after: it wins.
    let (_, v) = scan(&env, &gate, &sid, "entry", json!({"gate": "east-1", "scanned_at": later})).await;
    assert_eq!((v["recorded"].as_bool(), v["entry"]["gate"].as_str()), (Some(true), Some("east-1")), "{v}");
    for (body, code) in [
        (json!({"gate": "east 1"}), "INVALID_GATE_ID"),
        (json!({}), "MISSING_FIELD"),
        (json!({"gate": "east-1", "scanned_at": "yesterday"}), "INVALID_SCAN_TIME"),
        (json!({"gate": "east-1", "scanned_at": "2001-01-01T00:00:00Z"}), "INVALID_SCAN_TIME"),
        (json!({"gate": "east-1", "scanned_at": "2999-01-01T00:00:00Z"}), "INVALID_SCAN_TIME"),
    ] {
        let (s, v) = scan(&env, &gate, &sid, "entry", body.clone()).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{body}: {v}");
    }
    // An exit before the entry is refused; an unknown session is 404.
    let (s, v) = scan(&env, &gate, &sid, "exit", json!({"gate": "east-1", "scanned_at": "2026-01-01T00:00:00Z"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = scan(&env, &gate, "ps_00000000000000000000000000", "entry", json!({"gate": "east-1"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The caller's sessions, newest first, page by page; nobody else's.
async fn history(env: Env) {
    let t = env.token("parker-5");
    let other = env.token("parker-6");
    env.book(&other).await;
    let mut booked = Vec::new();
    for _ in 0..5 {
        booked.push(env.book(&t).await);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    booked.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/sessions/?limit=2&cursor={c}"),
            None => "/api/sessions/?limit=2".to_owned(),
        };
        let (s, page) = env.call("GET", &path, Some(&t), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let sessions = page["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 2);
        seen.extend(sessions.iter().map(|x| x["session_id"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, booked, "newest first, each once, nobody else's");
    for (q, code) in [("limit=0", "INVALID_LIMIT"), ("limit=101", "INVALID_LIMIT"), ("cursor=%21%21", "INVALID_CURSOR")]
    {
        let (s, v) = env.call("GET", &format!("/api/sessions/?{q}"), Some(&t), None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{q}: {v}");
    }
}

/// A UPI payment's link as a QR image (PG v1 only: v2's Standard Checkout has no QR): the image
/// decodes to the exact link PhonePe returned.
async fn upi_qr_round_trip(env: Env) {
    let t = env.token("parker-7");
    let sid = env.book(&t).await;
    let body = json!({"session_id": sid, "payment_instrument": "UPI_QR"}).to_string();
    let (s, p) = env.call("POST", "/api/payment/phonepe/create/", Some(&t), Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let link = p["qr_data"].as_str().unwrap();
    assert!(link.starts_with("upi://pay?"), "{link}");
    let txn = p["merchant_txn_id"].as_str().unwrap();
    let (s, ct, bytes) = get_bytes(&env, &format!("/api/payment/phonepe/qr/{txn}/"), &t).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/png"));
    assert_eq!(decode_qr(&bytes), link);
    let (s, _, _) = get_bytes(&env, &format!("/api/payment/phonepe/qr/{txn}/"), &env.token("stranger")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A pay page payment has no UPI link.
    let sid2 = env.book(&t).await;
    let pp = env.create_payment(&t, &sid2).await;
    let (s, _, _) =
        get_bytes(&env, &format!("/api/payment/phonepe/qr/{}/", pp["merchant_txn_id"].as_str().unwrap()), &t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Once paid, there is nothing left to pay.
    env.server.simulator.complete(txn, parkpay_simulator::Outcome::Success).await.unwrap();
    env.wait_for_status(&t, &sid, "PAID").await;
    let (s, _, _) = get_bytes(&env, &format!("/api/payment/phonepe/qr/{txn}/"), &t).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

/// An extension that succeeds after its session was refunded in full cannot extend it: its money
/// is refunded automatically, and the books balance with PhonePe's.
async fn extension_after_a_full_refund_is_refunded(env: Env) {
    let t = env.token("parker-8");
    let op = common::operator(&env);
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    let (s, ext) = env.call("POST", &format!("/api/sessions/{sid}/extend/"), Some(&t), Some(r#"{"hours": 2}"#)).await;
    assert_eq!((s, ext["amount"].as_str()), (StatusCode::CREATED, Some("100.00")), "{ext}");
    let ext_id = ext["merchant_txn_id"].as_str().unwrap();
    // The booking is refunded in full while the extension is still open.
    let body = json!({"merchant_txn_id": p["merchant_txn_id"], "reason": "goodwill"}).to_string();
    let (s, v) = env.call("POST", "/api/payment/phonepe/refund/", Some(&op), Some(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    env.wait_for_status(&t, &sid, "REFUNDED").await;
    // Now the extension is paid: the session cannot take it.
    env.server.simulator.complete(ext_id, parkpay_simulator::Outcome::Success).await.unwrap();
    let done = common::wait_session(&env, &sid, "the extension refunded automatically", |s| {
        s["refunds"].as_array().unwrap().iter().any(|r| r["merchant_txn_id"] == ext_id && r["status"] == "SUCCESS")
    })
    .await;
    assert_eq!(done["status"], "REFUNDED", "{done}");
    assert_eq!(done["paid"], "100.00", "the extension never became the session's: {done}");
    let (s, v) = env.call("GET", &format!("/api/sessions/{sid}/pass/"), Some(&t), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("PASS_REVOKED")));
    common::assert_money(&env, &[sid]).await;
}

/// An operator finds a driver's session by each key, and downloads the day's settlement CSV that
/// lists the payment and, once settled, its refund.
async fn operators_find_and_settle(env: Env) {
    let t = env.token("parker-9");
    let op = common::operator(&env);
    let sid = env.book(&t).await;
    let p = env.create_payment(&t, &sid).await;
    env.pay(&p, "success").await;
    env.wait_for_status(&t, &sid, "PAID").await;
    let txn = p["merchant_txn_id"].as_str().unwrap();
    let (_, receipt) = env.call("GET", &format!("/api/sessions/{sid}/receipt/"), Some(&t), None).await;
    let phonepe_id = receipt["payments"][0]["phonepe_transaction_id"].as_str().unwrap().to_owned();
    let utr = receipt["payments"][0]["utr"].as_str().unwrap().to_owned();
    for query in [
        "vehicle_number=ka01ab1234".to_owned(),
        format!("merchant_txn_id={txn}"),
        format!("phonepe_transaction_id={phonepe_id}"),
        format!("utr={utr}"),
    ] {
        let (s, v) = env.call("GET", &format!("/api/search/?{query}"), Some(&op), None).await;
        assert_eq!(s, StatusCode::OK, "{query}: {v}");
        let found = v["sessions"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{query}: {v}");
        assert_eq!(found[0]["session_id"], sid.as_str());
        assert_eq!(found[0]["payments"][0]["merchant_txn_id"], txn);
    }
    let (s, v) = env.call("GET", "/api/search/?vehicle_number=KA01AB1234", Some(&t), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("OPERATOR_ONLY")));
    let (s, v) = env.call("GET", &format!("/api/search/?utr={utr}&merchant_txn_id={txn}"), Some(&op), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("INVALID_QUERY")));
    let (s, v) = env.call("GET", "/api/search/?utr=nothing-like-it", Some(&op), None).await;
    assert_eq!((s, v["sessions"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{v}");

    // Today's settlement (India's day): the payment; after a refund settles, the refund too.
    let body = json!({"merchant_txn_id": txn, "amount": "25.00", "reason": "settle test"}).to_string();
    let (s, r) = env.call("POST", "/api/payment/phonepe/refund/", Some(&op), Some(&body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let refund_id = r["refund_id"].as_str().unwrap().to_owned();
    common::wait_session(&env, &sid, "the refund settled", |s| s["refunded"] == "25.00").await;
    let now = parkpay_api::Clock::now(&parkpay_api::SystemClock).unix_millis() + (5 * 60 + 30) * 60_000;
    let today = parkpay_domain::Timestamp::from_unix_millis(now).unwrap().to_rfc3339()[..10].to_owned();
    let (s, ct, csv) = get_bytes(&env, &format!("/api/reports/settlement/?date={today}"), &op).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("kind,merchant_txn_id,phonepe_transaction_id,utr,session_id,amount,state,final_at"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let payment = rows.iter().find(|r| r[1] == txn).unwrap_or_else(|| panic!("the payment's row: {csv}"));
    assert_eq!(
        (payment[0], payment[2], payment[3], payment[4], payment[5], payment[6]),
        ("PAYMENT", phonepe_id.as_str(), utr.as_str(), sid.as_str(), "100.00", "SUCCESS")
    );
    let refund = rows.iter().find(|r| r[1] == refund_id).unwrap_or_else(|| panic!("the refund's row: {csv}"));
    assert_eq!((refund[0], refund[4], refund[5], refund[6]), ("REFUND", sid.as_str(), "25.00", "SUCCESS"));
    // Another day has neither; drivers cannot download it; a bad date is 422.
    let (s, _, other) = get_bytes(&env, "/api/reports/settlement/?date=2020-01-01", &op).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!String::from_utf8(other).unwrap().contains(txn));
    let (s, _, _) = get_bytes(&env, &format!("/api/reports/settlement/?date={today}"), &t).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = get_bytes(&env, "/api/reports/settlement/?date=2026-02-30", &op).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

on_both_stores!(
    operators_find_and_settle,
    extension_after_a_full_refund_is_refunded,
    paid_visit,
    cancel_before_entry,
    cancellation_window_closes,
    offline_gate_scans,
    history,
    upi_qr_round_trip
);
