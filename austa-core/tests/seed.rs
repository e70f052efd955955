//! The development seed: the reference's counts, stable ids, a second run that changes nothing,
//! counters and ledgers that add up, and valid check digits everywhere.

use austa_core::repo::PageRequest;
use austa_core::seed::{self, ids};
use austa_core::{Actor, Scope};

use crate::support::TestDb;
use austa_macros::backends;

async fn count<T>(page: austa_core::Result<austa_core::repo::Page<T>>) -> usize {
    page.unwrap().items.len()
}

async fn counts(hospital: &Scope, clinic: &Scope) -> Vec<(&'static str, usize)> {
    let all = || PageRequest::first(500);
    let mut out = Vec::new();
    for s in [hospital, clinic] {
        let v = [
            ("providers", count(s.providers().list(all()).await).await),
            ("patients", count(s.patients().list(all()).await).await),
            ("health_data", count(s.health_data().list(all()).await).await),
            ("missions", count(s.missions().list(all()).await).await),
            ("conversations", count(s.conversations().list(all()).await).await),
            ("messages", count(s.messages().list(all()).await).await),
            ("documents", count(s.documents().list(all()).await).await),
            ("onboarding_progress", count(s.onboarding_progress().list(all()).await).await),
            ("health_points", count(s.health_points().list(all()).await).await),
            ("point_transactions", count(s.point_transactions().list(all()).await).await),
        ];
        for (name, n) in v {
            match out.iter_mut().find(|(k, _)| *k == name) {
                Some((_, total)) => *total += n,
                None => out.push((name, n)),
            }
        }
    }
    out
}

#[backends]
async fn seed_matches_the_reference_and_is_idempotent(tdb: TestDb) {
    let first = seed::run(&tdb.db).await.unwrap();
    assert_eq!(first.created(), 29);
    assert_eq!(first.existing(), 0);
    let hospital = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let clinic = tdb.db.scope(ids::CLINIC, Actor::platform()).await.unwrap();
    let expected = vec![
        ("providers", 3),
        ("patients", 3),
        ("health_data", 4),
        ("missions", 3),
        ("conversations", 2),
        ("messages", 3),
        ("documents", 1),
        ("onboarding_progress", 3),
        ("health_points", 2),
        ("point_transactions", 3),
    ];
    assert_eq!(counts(&hospital, &clinic).await, expected, "{:?}", tdb.backend);

    let carlos_before = hospital.patients().get(ids::PATIENT_CARLOS).await.unwrap();
    let second = seed::run(&tdb.db).await.unwrap();
    assert_eq!((second.created(), second.existing()), (0, 29));
    assert_eq!(counts(&hospital, &clinic).await, expected);
    assert_eq!(hospital.patients().get(ids::PATIENT_CARLOS).await.unwrap(), carlos_before, "second run is a no-op");
}

#[backends]
async fn seeded_counters_and_ledgers_add_up(tdb: TestDb) {
    seed::run(&tdb.db).await.unwrap();
    let hospital = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();

    for conversation in [ids::CONVERSATION_CARLOS, ids::CONVERSATION_ANA] {
        let c = hospital.conversations().get(conversation).await.unwrap();
        let messages = hospital.messages().history(conversation, PageRequest::first(500)).await.unwrap().items;
        assert_eq!(c.message_count, messages.len() as i64);
        if let Some(latest) = messages.first() {
            assert_eq!(c.last_message_at, latest.sent_at);
        }
    }

    for (patient, total) in [(ids::PATIENT_CARLOS, 150), (ids::PATIENT_ANA, 200)] {
        let points = hospital.health_points().for_patient(patient).await.unwrap().unwrap();
        let (earned, spent) = hospital.point_transactions().ledger_balance(patient).await.unwrap();
        assert_eq!(points.total_points, total);
        assert_eq!((points.total_points, points.spent_points), (earned, spent));
        assert_eq!(points.available_points, earned - spent);
    }

    // The original's mistakes, fixed: valid check digits, titles apart from names, verified rows
    // have a verification time, the bot's message has a bot sender, mission 3 really requires 1.
    for id in [ids::PATIENT_CARLOS, ids::PATIENT_ANA] {
        let p = hospital.patients().get(id).await.unwrap();
        let cpf = p.cpf.as_ref().unwrap().expose().unwrap().clone();
        assert!(austa_core::validate::cpf("cpf", &cpf).is_ok());
    }
    let ana_silva = hospital.providers().get(ids::PROVIDER_ANA_SILVA).await.unwrap();
    assert_eq!((ana_silva.title.as_deref(), ana_silva.first_name.as_str()), (Some("Dr."), "Ana"));
    for id in &ids::HEALTH_DATA[..2] {
        let h = hospital.health_data().get(*id).await.unwrap();
        assert!(h.is_verified && h.verified_at.is_some() && h.verified_by_provider_id.is_some());
    }
    let bot = hospital.messages().get(ids::MESSAGES[1]).await.unwrap();
    assert!(bot.is_bot);
    assert_eq!(hospital.missions().prerequisites(ids::MISSIONS[2]).await.unwrap(), vec![ids::MISSIONS[0]]);
    let org = hospital.organization().await.unwrap();
    assert_eq!(org.tax_id.as_deref(), Some("12345678000195"));
}

#[backends]
async fn quickstart_path_finds_carlos_by_phone_in_the_hospital_only(tdb: TestDb) {
    seed::run(&tdb.db).await.unwrap();
    let hospital = tdb.db.scope(ids::HOSPITAL, Actor::platform()).await.unwrap();
    let clinic = tdb.db.scope(ids::CLINIC, Actor::platform()).await.unwrap();
    let carlos = hospital.patients().find_by_phone("+5511987654321").await.unwrap().unwrap();
    assert_eq!(carlos.id, ids::PATIENT_CARLOS);
    assert!(clinic.patients().find_by_phone("+5511987654321").await.unwrap().is_none());
    assert_eq!(clinic.patients().find_by_cpf("456.789.123-64").await.unwrap().unwrap().id, ids::PATIENT_PEDRO);
}
