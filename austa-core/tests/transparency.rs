//! The audit log as a transparency log, on every available backend: signed checkpoints, inclusion
//! and consistency proofs that need no key, and the attacks the MAC chain alone cannot see (the
//! newest events cut together with the head, an older copy restored, history rewritten by someone
//! holding the data keys), each detected against a checkpoint kept outside the database.

use austa_core::audit::transparency::{CheckpointVerifier, Ed25519Signer};
use austa_core::audit::{witness, TamperKind};
use austa_core::model::AppEvent;
use austa_core::Scope;

use crate::support::{Backend, TestDb};
use austa_macros::backends;

const AUDIT_TABLES: [&str; 5] = ["audit_logs", "audit_chain", "audit_heads", "audit_tree", "audit_pending"];

async fn events(scope: &Scope, n: usize) {
    for _ in 0..n {
        scope.audit().record(AppEvent::Login).await.unwrap();
    }
}

fn keys() -> (Ed25519Signer, CheckpointVerifier) {
    let signer = Ed25519Signer::generate("hospital-witness-test").unwrap();
    let verifier = CheckpointVerifier::of(&signer).unwrap();
    (signer, verifier)
}

/// The number of events a note signs (its second line).
fn size_of(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// Copies the organization's audit rows aside, as a backup taken now would hold them (once every
/// event is linked, so that the table-by-table copy is of one state).
async fn back_up(tdb: &TestDb, scope: &Scope, tag: &str) {
    assert!(scope.audit().verify().await.unwrap().is_intact());
    let org = scope.organization_id();
    for table in AUDIT_TABLES {
        tdb.raw_execute(&format!(
            "CREATE TABLE {table}_{tag} AS SELECT * FROM {table} WHERE organization_id = '{org}'"
        ))
        .await;
    }
}

/// Puts the copy back in place of the organization's audit rows: an older copy of the database restored.
async fn restore(tdb: &TestDb, scope: &Scope, tag: &str) {
    let org = scope.organization_id();
    let script: String = AUDIT_TABLES
        .iter()
        .map(|t| format!("DELETE FROM {t} WHERE organization_id = '{org}'; INSERT INTO {t} SELECT * FROM {t}_{tag}; "))
        .collect();
    tdb.tamper(&script).await;
}

#[backends]
async fn a_checkpoint_is_signed_over_the_verified_root_and_the_growing_log_keeps_extending_it(tdb: TestDb) {
    let (signer, verifier) = keys();
    let scope = tdb.org("Transparência").await;
    events(&scope, 40).await;
    let first = scope.audit().checkpoint(&signer).await.unwrap();
    let report = scope.audit().verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(size_of(&first), report.head_seq as u64);
    assert_eq!(first.lines().nth(2), report.tree_root.as_deref(), "the note signs the recomputed root");
    assert!(first.starts_with(&format!("austa-audit/{}\n", scope.organization_id())));

    events(&scope, 300).await;
    let report = scope.audit().verify_against(&first, &verifier).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let second = scope.audit().checkpoint(&signer).await.unwrap();
    let proof = scope.audit().consistency_proof(size_of(&first), None).await.unwrap();
    assert!(proof.verify());
    assert!(proof.hashes.len() <= 2 * 9, "O(log n) hashes: {}", proof.hashes.len());
    let kept = witness(&verifier, &first, &second, &proof).unwrap();
    assert_eq!(kept.size, size_of(&second));
    // The witness refuses a proof that does not join its checkpoints, or one of another key.
    assert_eq!(witness(&verifier, &second, &first, &proof).unwrap_err().code(), "validation");
    let (_, stranger) = keys();
    assert!(witness(&stranger, &first, &second, &proof).is_err());
    let mut forged = proof.clone();
    forged.hashes[0] = forged.hashes[1].clone();
    assert!(!forged.verify() && witness(&verifier, &first, &second, &forged).is_err());

    // Every event's link is in the tree a checkpoint signed, by a proof of hashes only.
    let org = scope.organization_id();
    for seq in [1, 17, 256, size_of(&second) as i64] {
        let event = tdb
            .raw_text(&format!(
                "SELECT CAST(event_id AS TEXT) FROM audit_chain WHERE organization_id = '{org}' AND seq = {seq}"
            ))
            .await;
        let proof = scope.audit().inclusion_proof(event.parse().unwrap(), Some(size_of(&second))).await.unwrap();
        assert!(proof.verify_against(&verifier.open(&second).unwrap()), "{seq}");
        assert!(!proof.verify_against(&verifier.open(&first).unwrap()), "another tree's checkpoint");
        let mut moved = proof.clone();
        moved.seq += 1;
        assert!(!moved.verify(), "the proof binds the event's position");
    }
    // A checkpoint of another organization, or altered, is refused as input.
    let other = tdb.org("Outra").await;
    let foreign = other.audit().checkpoint(&signer).await.unwrap();
    assert_eq!(scope.audit().verify_against(&foreign, &verifier).await.unwrap_err().code(), "validation");
    let altered = first.replacen(&format!("\n{}\n", size_of(&first)), "\n1\n", 1);
    assert_eq!(scope.audit().verify_against(&altered, &verifier).await.unwrap_err().code(), "validation");
}

#[backends]
async fn cutting_the_newest_events_with_the_head_or_restoring_an_old_copy_is_named_against_a_checkpoint(tdb: TestDb) {
    let (signer, verifier) = keys();
    let scope = tdb.org("Reversão").await;
    events(&scope, 20).await;
    back_up(&tdb, &scope, "before").await;
    events(&scope, 20).await;
    let note = scope.audit().checkpoint(&signer).await.unwrap();

    // The copy taken before the checkpoint comes back: the chain alone, head and all, is intact...
    restore(&tdb, &scope, "before").await;
    let alone = scope.audit().verify().await.unwrap();
    assert!(alone.is_intact(), "the MAC chain cannot see a rollback: {alone:?}");
    // ...and the checkpoint names what is missing.
    let report = scope.audit().verify_against(&note, &verifier).await.unwrap();
    let broken = report.broken.expect("rollback detected");
    assert_eq!(broken.kind, TamperKind::Truncated, "{broken:?}");
    assert_eq!(broken.seq, Some(alone.head_seq + 1));
    assert!(broken.detail.contains(&size_of(&note).to_string()), "{}", broken.detail);
}

#[backends]
async fn history_rewritten_by_a_holder_of_the_data_keys_is_named_against_a_checkpoint(tdb: TestDb) {
    let (signer, verifier) = keys();
    let scope = tdb.org("Reescrita").await;
    events(&scope, 10).await;
    back_up(&tdb, &scope, "early").await;
    events(&scope, 10).await;
    let note = scope.audit().checkpoint(&signer).await.unwrap();

    // Someone with the data keys (here: the library itself) goes back to the early copy and records
    // another history past the checkpoint's size: every MAC is genuine.
    restore(&tdb, &scope, "early").await;
    events(&scope, 25).await;
    let alone = scope.audit().verify().await.unwrap();
    assert!(alone.is_intact(), "{alone:?}");
    assert!(alone.head_seq as u64 > size_of(&note));
    let broken = scope.audit().verify_against(&note, &verifier).await.unwrap().broken.expect("rewrite detected");
    assert_eq!(broken.kind, TamperKind::Rewritten, "{broken:?}");
    // No consistency proof joins the two: the witness refuses the new checkpoint.
    let newer = scope.audit().checkpoint(&signer).await.unwrap();
    let proof = scope.audit().consistency_proof(size_of(&note), None).await.unwrap();
    assert!(witness(&verifier, &note, &newer, &proof).is_err());
}

#[backends]
async fn a_stored_subtree_or_frontier_that_does_not_match_the_links_is_named(tdb: TestDb) {
    let (signer, verifier) = keys();
    let bogus = match tdb.backend {
        Backend::Postgres => "'\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea",
        Backend::Sqlite => "zeroblob(32)",
    };
    // A stored subtree, which proofs are built from: verification names it, and no proof is given.
    let scope = tdb.org("Nó Alterado").await;
    events(&scope, 40).await;
    let note = scope.audit().checkpoint(&signer).await.unwrap();
    let org = scope.organization_id();
    tdb.tamper(&format!(
        "UPDATE audit_tree SET hash = {bogus} WHERE organization_id = '{org}' AND level = 4 AND idx = 0"
    ))
    .await;
    let broken = scope.audit().verify().await.unwrap().broken.expect("subtree altered");
    assert_eq!((broken.kind, broken.seq), (TamperKind::Modified, Some(16)), "{broken:?}");
    assert!(broken.detail.contains("subtree 0 at level 4"), "{}", broken.detail);
    let size = size_of(&note);
    assert_eq!(scope.audit().consistency_proof(20, Some(size)).await.unwrap_err().code(), "corrupt_data");
    assert!(scope.audit().checkpoint(&signer).await.is_err(), "no checkpoint over a tree that does not verify");

    // The head's frontier: the walk recomputes the tree from the links and names the head.
    let scope = tdb.org("Fronteira Alterada").await;
    events(&scope, 40).await;
    let note = scope.audit().checkpoint(&signer).await.unwrap();
    let org = scope.organization_id();
    let swapped = format!(
        "(SELECT hash FROM audit_tree WHERE organization_id = '{org}' AND level = 4 AND idx = 1) || substr(frontier, 33)"
    );
    let swapped = match tdb.backend {
        Backend::Postgres => swapped,
        // SQLite's || makes text of blobs.
        Backend::Sqlite => format!("CAST({swapped} AS BLOB)"),
    };
    tdb.tamper(&format!("UPDATE audit_heads SET frontier = {swapped} WHERE organization_id = '{org}'")).await;
    let broken = scope.audit().verify_against(&note, &verifier).await.unwrap().broken.expect("frontier altered");
    assert_eq!(broken.kind, TamperKind::Modified, "{broken:?}");
    assert!(broken.detail.contains("frontier"), "{}", broken.detail);
}

#[backends]
async fn a_queue_entry_that_linking_cannot_take_is_named_stalled(tdb: TestDb) {
    let scope = tdb.org("Fila Parada").await;
    events(&scope, 5).await;
    assert!(scope.audit().verify().await.unwrap().is_intact());
    // A queue entry for an event that is not there: linking passes over it, every time.
    let org = scope.organization_id();
    let ghost = uuid::Uuid::now_v7();
    tdb.raw_execute(&format!("INSERT INTO audit_pending (organization_id, event_id) VALUES ('{org}', '{ghost}')"))
        .await;
    let broken = scope.audit().verify_range(1, 3).await.unwrap().broken.expect("stalled");
    assert_eq!((broken.kind, broken.event_id), (TamperKind::Stalled, Some(ghost)), "{broken:?}");
    // The whole chain names it too: a recorded event removed before it was linked.
    let broken = scope.audit().verify().await.unwrap().broken.expect("deleted");
    assert_eq!((broken.kind, broken.event_id), (TamperKind::Deleted, Some(ghost)), "{broken:?}");
}

#[backends]
async fn a_chain_linked_before_the_tree_existed_gets_its_tree_built_on_first_use(tdb: TestDb) {
    let (signer, verifier) = keys();
    let scope = tdb.org("Árvore Tardia").await;
    events(&scope, 70).await;
    let note = scope.audit().checkpoint(&signer).await.unwrap();
    let org = scope.organization_id();
    // As the migration leaves an older chain: no frontier, no stored subtrees.
    tdb.tamper(&format!(
        "DELETE FROM audit_tree WHERE organization_id = '{org}'; \
         UPDATE audit_heads SET frontier = NULL WHERE organization_id = '{org}'"
    ))
    .await;
    events(&scope, 5).await;
    let report = scope.audit().verify_against(&note, &verifier).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    let proof = scope.audit().consistency_proof(size_of(&note), None).await.unwrap();
    assert!(proof.verify() && proof.new_size == report.head_seq as u64 && proof.new_size > size_of(&note), "{proof:?}");
}

#[backends]
async fn a_patient_gets_the_inclusion_proofs_of_their_own_events_only(tdb: TestDb) {
    use austa_core::model::NewPatient;
    use austa_core::Actor;
    let (signer, verifier) = keys();
    let platform = tdb.org("Prova do Paciente").await;
    let org = platform.organization_id();
    let new = |first: &str, phone: &str| NewPatient {
        first_name: first.into(),
        last_name: "Prova".into(),
        phone: phone.into(),
        ..Default::default()
    };
    let carlos = platform.patients().create(new("Carlos", "+5511987650101")).await.unwrap();
    let ana = platform.patients().create(new("Ana", "+5511987650102")).await.unwrap();
    let note = platform.audit().checkpoint(&signer).await.unwrap();
    let event_of = |patient: uuid::Uuid| {
        format!(
            "SELECT CAST(id AS TEXT) FROM audit_logs WHERE organization_id = '{org}' AND patient_id = '{patient}' \
             AND action = 'CREATE'"
        )
    };
    let (his, hers): (uuid::Uuid, uuid::Uuid) = (
        tdb.raw_text(&event_of(carlos.id)).await.parse().unwrap(),
        tdb.raw_text(&event_of(ana.id)).await.parse().unwrap(),
    );
    let me = tdb.db.scope(org, Actor::patient(carlos.id)).await.unwrap();
    let proof = me.audit().inclusion_proof(his, Some(size_of(&note))).await.unwrap();
    assert!(proof.verify_against(&verifier.open(&note).unwrap()));
    assert_eq!(me.audit().inclusion_proof(hers, None).await.unwrap_err().code(), "permission_denied");
    assert_eq!(me.audit().inclusion_proof(uuid::Uuid::now_v7(), None).await.unwrap_err().code(), "permission_denied");
    // The refusal was recorded.
    let denied = tdb
        .raw_i64(&format!(
            "SELECT count(*) FROM audit_logs WHERE organization_id = '{org}' AND action = 'ACCESS_DENIED' AND actor_id = '{}'",
            carlos.id
        ))
        .await;
    assert_eq!(denied, 2);
}
