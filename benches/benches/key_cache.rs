//! Decrypting one patient's 1,000 messages with a warm and a cold key cache.
//!
//! Warm: the organization and patient keys are cached, so the read is two history pages of 500 rows
//! plus 1,000 AES-GCM decryptions. Cold: the cache is cleared first, so the read also loads and unwraps
//! the organization key (master key) and the patient key (organization key) from the key store, once.
//!
//! `cargo bench -p austa-benches --bench key_cache`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use austa_benches::{patient_with_messages, sqlite_fixture};
use austa_core::repo::PageRequest;
use criterion::{criterion_group, criterion_main, Criterion};

fn read_history(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (fixture, conversation) = rt.block_on(async {
        let fixture = sqlite_fixture().await.expect("fixture");
        let conversation = patient_with_messages(&fixture.scope, "+5511987654321", 1_000).await.expect("messages");
        (fixture, conversation)
    });
    let read_all = || async {
        let messages = fixture.scope.messages();
        let first = messages.history(conversation, PageRequest::first(500)).await.expect("page 1");
        let cursor = first.next.clone().expect("a second page");
        let second = messages.history(conversation, PageRequest::after(cursor, 500)).await.expect("page 2");
        assert_eq!(first.items.len() + second.items.len(), 1_000);
    };

    let mut group = c.benchmark_group("history_1000_messages_sqlite");
    group.sample_size(20);
    group.bench_function("warm_key_cache", |b| b.to_async(&rt).iter(read_all));
    group.bench_function("cold_key_cache", |b| {
        b.to_async(&rt).iter(|| async {
            fixture.db.clear_key_cache();
            read_all().await
        })
    });
    group.finish();

    let before = fixture.db.key_stats();
    rt.block_on(async {
        fixture.db.clear_key_cache();
        read_all().await;
    });
    let after = fixture.db.key_stats();
    println!("cold read of 1,000 messages unwrapped {} keys", after.unwraps - before.unwraps);
}

criterion_group!(benches, read_history);
criterion_main!(benches);
