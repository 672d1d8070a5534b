//! Checksum sign/verify throughput. `cargo bench -p parkpay-checksum`.

use criterion::{Criterion, criterion_group, criterion_main};
use parkpay_checksum::{Message, SaltIndex, SaltKey, SaltKeys};
use std::hint::black_box;

const PAY_B64: &str = "ewogICJtZXJjaGFudElkIjogIlBHVEVTVFBBWVVBVCIsCiAgIm1lcmNoYW50VHJhbnNhY3Rpb25JZCI6ICJNVDc4NTA1OTAwNjgxODgxMDQiLAogICJtZXJjaGFudFVzZXJJZCI6ICJNVUlEMTIzIiwKICAiYW1vdW50IjogMTAwMDAsCiAgInJlZGlyZWN0VXJsIjogImh0dHBzOi8vd2ViaG9vay5zaXRlL3JlZGlyZWN0LXVybCIsCiAgInJlZGlyZWN0TW9kZSI6ICJSRURJUkVDVCIsCiAgImNhbGxiYWNrVXJsIjogImh0dHBzOi8vd2ViaG9vay5zaXRlL2NhbGxiYWNrLXVybCIsCiAgIm1vYmlsZU51bWJlciI6ICI5OTk5OTk5OTk5IiwKICAicGF5bWVudEluc3RydW1lbnQiOiB7CiAgICAidHlwZSI6ICJQQVlfUEFHRSIKICB9Cn0=";

fn bench(c: &mut Criterion) {
    let keys = SaltKeys::single(SaltIndex::new(1), SaltKey::new("099eb0cd-02cf-4e2a-8aca-3e6c6aff0399").unwrap());
    let msg = Message::Body { base64: PAY_B64, path: "/pg/v1/pay" };
    let header = keys.sign(msg).to_string();
    c.bench_function("sign pay (488-byte body) + format header", |b| {
        b.iter(|| black_box(&keys).sign(black_box(msg)).to_string())
    });
    c.bench_function("verify pay header", |b| {
        b.iter(|| black_box(&keys).verify(black_box(&header), black_box(msg)).unwrap())
    });
    let bad = header.replace("d7a8", "d7a9");
    c.bench_function("verify pay header (mismatch)", |b| {
        b.iter(|| black_box(&keys).verify(black_box(&bad), black_box(msg)).unwrap_err())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
