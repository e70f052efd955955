//! The library's crypto paths, one operation at a time: sealing and opening a 1 KB field (AES-256-GCM
//! envelope with the row's associated data), a phone's blind index (HMAC-SHA-256), and loading an
//! organization's keys warm (key cache hit) and cold (key store read, master key unwrap, subkey
//! derivation).
//!
//! `cargo bench -p austa-benches --bench crypto`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use austa_benches::sqlite_fixture;
use austa_core::crypto::probe::{load_organization_keys, FieldProbe};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn crypto(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let fixture = rt.block_on(sqlite_fixture()).expect("fixture");
    let org = fixture.scope.organization_id();
    let probe = rt.block_on(FieldProbe::new(&fixture.db, org)).expect("probe");
    let field = vec![b'x'; 1024];
    let sealed = probe.seal(&field).expect("seal");

    let mut group = c.benchmark_group("field_1kb");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("encrypt", |b| b.iter(|| probe.seal(std::hint::black_box(&field)).expect("seal")));
    group.bench_function("decrypt", |b| b.iter(|| probe.open(std::hint::black_box(&sealed)).expect("open")));
    group.finish();

    c.bench_function("blind_index_phone", |b| b.iter(|| probe.blind_phone(std::hint::black_box("+5511987654321"))));

    let mut group = c.benchmark_group("organization_key");
    group.bench_function("warm", |b| {
        b.to_async(&rt).iter(|| async { load_organization_keys(&fixture.db, org).await.expect("warm") })
    });
    group.bench_function("cold", |b| {
        b.to_async(&rt).iter(|| async {
            fixture.db.clear_key_cache();
            load_organization_keys(&fixture.db, org).await.expect("cold")
        })
    });
    group.finish();
}

criterion_group!(benches, crypto);
criterion_main!(benches);
