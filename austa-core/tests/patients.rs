//! Patients and organizations: round trips, validation, lookups through blind indexes, pagination,
//! tenant isolation, and what encryption guarantees (ciphertext at rest, tampering detected, moved
//! ciphertexts rejected, redacted Debug).

use austa_core::crypto::Sensitive;
use austa_core::model::{EmergencyContact, Gender, NewOrganization, NewPatient, OrganizationType, PatientPatch};
use austa_core::repo::PageRequest;
use austa_core::{CryptoErrorKind, Error, Scope};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::support::TestDb;
use austa_macros::backends;

fn carlos() -> NewPatient {
    NewPatient {
        first_name: "Carlos".into(),
        last_name: "Mendes".into(),
        phone: "+5511987654321".into(),
        email: Some("Carlos.Mendes@Email.com".into()),
        cpf: Some("123.456.789-09".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1985, 3, 15).map(Sensitive::new),
        gender: Some(Gender::Male.into()),
        whatsapp_id: Some("wa-user-001".into()),
        emergency_contact: Some(Sensitive::new(EmergencyContact {
            name: "Maria Mendes".into(),
            phone: "11 98765-4322".into(),
            relationship: "spouse".into(),
        })),
        is_verified: true,
        ..Default::default()
    }
}

fn patient(first: &str, phone: &str) -> NewPatient {
    NewPatient { first_name: first.into(), last_name: "Silva".into(), phone: phone.into(), ..Default::default() }
}

async fn count_patients(scope: &Scope) -> usize {
    scope.patients().list(PageRequest::first(500)).await.unwrap().items.len()
}

#[backends]
async fn create_get_round_trip_normalizes_and_decrypts(tdb: TestDb) {
    let scope = tdb.org("Hospital São Paulo").await;
    let created = scope.patients().create(carlos()).await.unwrap();
    let got = scope.patients().get(created.id).await.unwrap();
    assert_eq!(got, created, "{:?}", tdb.backend);
    assert_eq!(got.phone.expose().unwrap(), "+5511987654321");
    assert_eq!(got.cpf.as_ref().unwrap().expose().unwrap(), "12345678909");
    assert_eq!(got.email.as_ref().unwrap().expose().unwrap(), "carlos.mendes@email.com");
    assert_eq!(got.emergency_contact.as_ref().unwrap().expose().unwrap().phone, "+5511987654322");
    assert_eq!(got.gender.as_ref().map(|g| *g.expose().unwrap()), Some(Gender::Male));
    assert_eq!(got.timezone, "America/Sao_Paulo");
    assert_eq!(got.id.get_version_num(), 7, "ids are UUIDv7");
}

#[backends]
async fn lookups_go_through_blind_indexes(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let p = scope.patients().create(carlos()).await.unwrap();
    let repo = scope.patients();
    assert_eq!(repo.find_by_phone("(11) 98765-4321").await.unwrap().unwrap().id, p.id);
    assert_eq!(repo.find_by_cpf("12345678909").await.unwrap().unwrap().id, p.id);
    assert_eq!(repo.find_by_email("CARLOS.MENDES@email.com").await.unwrap().unwrap().id, p.id);
    assert_eq!(repo.find_by_whatsapp_id("wa-user-001").await.unwrap().unwrap().id, p.id);
    assert!(repo.find_by_phone("+5511876543210").await.unwrap().is_none());
    assert_eq!(repo.find_by_cpf("123.456.789-01").await.unwrap_err().field(), Some("cpf"));
}

#[backends]
async fn validation_errors_name_the_field_and_write_nothing(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let cases: Vec<(&str, NewPatient)> = vec![
        ("cpf", NewPatient { cpf: Some("123.456.789-01".into()), ..carlos() }),
        ("phone", NewPatient { phone: "12".into(), ..carlos() }),
        ("email", NewPatient { email: Some("not-an-email".into()), ..carlos() }),
        ("first_name", NewPatient { first_name: "  ".into(), ..carlos() }),
        ("timezone", NewPatient { timezone: Some("Mars/Olympus".into()), ..carlos() }),
        (
            "date_of_birth",
            NewPatient { date_of_birth: NaiveDate::from_ymd_opt(2999, 1, 1).map(Sensitive::new), ..carlos() },
        ),
    ];
    for (field, input) in cases {
        let err = scope.patients().create(input).await.unwrap_err();
        assert_eq!(err.code(), "validation");
        assert_eq!(err.field(), Some(field));
        assert!(!err.to_string().contains("123.456.789-01"), "errors never echo values");
    }
    assert_eq!(count_patients(&scope).await, 0);
}

#[backends]
async fn uniqueness_is_per_organization(tdb: TestDb) {
    let a = tdb.org("A").await;
    let b = tdb.org("B").await;
    a.patients().create(carlos()).await.unwrap();
    // The same person may be a patient of another organization.
    b.patients().create(carlos()).await.unwrap();
    // Within one organization the phone (and CPF) are unique.
    let err =
        a.patients().create(NewPatient { cpf: None, email: None, whatsapp_id: None, ..carlos() }).await.unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert_eq!(err.field(), Some("phone"));
    let err = a.patients().create(NewPatient { phone: "+5511876543210".into(), ..carlos() }).await.unwrap_err();
    assert_eq!(err.code(), "conflict");
    assert_eq!(count_patients(&a).await, 1);
}

#[backends]
async fn update_clear_and_soft_delete(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let p = scope.patients().create(carlos()).await.unwrap();
    let updated = scope
        .patients()
        .update(p.id, PatientPatch { last_name: Some("Mendes Filho".into()), cpf: Some(None), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(updated.last_name.expose().unwrap(), "Mendes Filho");
    assert!(updated.cpf.is_none());
    assert!(updated.updated_at >= p.updated_at);
    assert_eq!(scope.patients().get(p.id).await.unwrap(), updated);
    assert!(scope.patients().find_by_cpf("123.456.789-09").await.unwrap().is_none());

    let err = scope
        .patients()
        .update(p.id, PatientPatch { first_name: Some("Novo".into()), phone: Some("0".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("phone"));
    assert_eq!(scope.patients().get(p.id).await.unwrap().first_name.expose().unwrap(), "Carlos", "nothing written");

    scope.patients().delete(p.id).await.unwrap();
    assert_eq!(scope.patients().get(p.id).await.unwrap_err().code(), "not_found");
    assert_eq!(scope.patients().delete(p.id).await.unwrap_err().code(), "not_found");
    assert!(scope.patients().find_by_phone("+5511987654321").await.unwrap().is_none());
    assert!(tdb.raw_bytes("patients", "phone", p.id).await.is_some(), "soft delete keeps the row");
}

#[backends]
async fn list_pages_newest_first_exactly_once(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(scope.patients().create(patient(&format!("P{i}"), &format!("+55119876543{i:02}"))).await.unwrap().id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = scope.patients().list(page.clone()).await.unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(p.items.iter().map(|x| x.id));
        match p.next {
            Some(c) => page = PageRequest::after(c, 2),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let bad = PageRequest { limit: Some(0), after: None };
    assert_eq!(scope.patients().list(bad).await.unwrap_err().field(), Some("limit"));
    let bad_cursor = "not-a-cursor!".parse::<austa_core::repo::Cursor>();
    assert!(bad_cursor.is_err());
}

#[backends]
async fn other_organizations_rows_are_not_found(tdb: TestDb) {
    let a = tdb.org("A").await;
    let b = tdb.org("B").await;
    let theirs = b.patients().create(carlos()).await.unwrap();
    assert_eq!(a.patients().get(theirs.id).await.unwrap_err().code(), "not_found");
    let patch = PatientPatch { first_name: Some("Hacked".into()), ..Default::default() };
    assert_eq!(a.patients().update(theirs.id, patch).await.unwrap_err().code(), "not_found");
    assert_eq!(a.patients().delete(theirs.id).await.unwrap_err().code(), "not_found");
    assert_eq!(count_patients(&a).await, 0);
    assert!(a.patients().find_by_phone("+5511987654321").await.unwrap().is_none());
    assert!(a.patients().find_by_cpf("123.456.789-09").await.unwrap().is_none());
    assert_eq!(b.patients().get(theirs.id).await.unwrap(), theirs, "B's row unchanged");
    // A scope cannot even be opened for an organization that does not exist.
    let err = tdb.db.scope(Uuid::now_v7(), austa_core::Actor::platform()).await.unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[backends]
async fn sensitive_columns_hold_only_ciphertext_and_debug_is_redacted(tdb: TestDb) {
    let scope = tdb.org("Hospital").await;
    let p = scope.patients().create(carlos()).await.unwrap();
    for (column, plain) in [
        ("first_name", "Carlos"),
        ("last_name", "Mendes"),
        ("phone", "+5511987654321"),
        ("cpf", "12345678909"),
        ("email", "carlos.mendes@email.com"),
        ("whatsapp_id", "wa-user-001"),
        ("date_of_birth", "1985-03-15"),
        ("gender", "MALE"),
        ("emergency_contact", "Maria"),
    ] {
        let raw = tdb.raw_bytes("patients", column, p.id).await.unwrap();
        assert!(!raw.windows(plain.len()).any(|w| w == plain.as_bytes()), "{column} leaks plaintext");
    }
    let debug = format!("{p:?}");
    for plain in ["Carlos", "Mendes", "5511987654321", "12345678909", "Maria", "1985"] {
        assert!(!debug.contains(plain), "Debug leaks {plain}: {debug}");
    }
    let input_debug = format!("{:?}", carlos());
    assert!(!input_debug.contains("Carlos") && !input_debug.contains("123.456"));
}

fn crypto_kind(err: Error) -> CryptoErrorKind {
    match err {
        Error::Crypto { kind, .. } => kind,
        other => panic!("expected a crypto error, got {other:?}"),
    }
}

#[backends]
async fn tampered_or_moved_ciphertexts_fail_with_a_typed_error(tdb: TestDb) {
    let a = tdb.org("A").await;
    let b = tdb.org("B").await;
    let carlos = a.patients().create(carlos()).await.unwrap();
    let ana = a.patients().create(patient("Ana", "+5511876543210")).await.unwrap();
    let pedro = b.patients().create(patient("Pedro", "+5511765432109")).await.unwrap();
    let original = tdb.raw_bytes("patients", "first_name", carlos.id).await.unwrap();

    // One flipped byte anywhere in the ciphertext (past the header).
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    tdb.raw_set_bytes("patients", "first_name", carlos.id, Some(flipped)).await;
    assert_eq!(crypto_kind(a.patients().get(carlos.id).await.unwrap_err()), CryptoErrorKind::AuthenticationFailed);

    // Carlos's ciphertext copied into Ana's row: it names Carlos's key, which is not Ana's.
    tdb.raw_set_bytes("patients", "first_name", ana.id, Some(original.clone())).await;
    assert_eq!(crypto_kind(a.patients().get(ana.id).await.unwrap_err()), CryptoErrorKind::UnknownKey);

    // ... into another column of his own row.
    tdb.raw_set_bytes("patients", "first_name", carlos.id, Some(original.clone())).await;
    tdb.raw_set_bytes("patients", "last_name", carlos.id, Some(original.clone())).await;
    assert_eq!(crypto_kind(a.patients().get(carlos.id).await.unwrap_err()), CryptoErrorKind::AuthenticationFailed);

    // ... into another organization's row: B has no such key.
    tdb.raw_set_bytes("patients", "first_name", pedro.id, Some(original.clone())).await;
    assert_eq!(crypto_kind(b.patients().get(pedro.id).await.unwrap_err()), CryptoErrorKind::UnknownKey);

    // A truncated envelope.
    tdb.raw_set_bytes("patients", "first_name", pedro.id, Some(original[..10].to_vec())).await;
    assert_eq!(crypto_kind(b.patients().get(pedro.id).await.unwrap_err()), CryptoErrorKind::MalformedEnvelope);
}

#[backends]
async fn a_damaged_row_fails_its_page_and_names_itself(tdb: TestDb) {
    let a = tdb.org("A").await;
    let carlos = a.patients().create(carlos()).await.unwrap();
    let ana = a.patients().create(patient("Ana", "+5511876543210")).await.unwrap();
    let mut damaged = tdb.raw_bytes("patients", "last_name", carlos.id).await.unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    tdb.raw_set_bytes("patients", "last_name", carlos.id, Some(damaged)).await;
    // The page fails as a whole (no silently shorter listing) and its error names the table, the
    // column and the row, never a value, so an operator can find the row.
    let err = a.patients().list(PageRequest::first(10)).await.unwrap_err();
    let message = err.to_string();
    assert_eq!(err.code(), "crypto");
    assert!(message.contains(&format!("patients.last_name of row {}", carlos.id)), "{message}");
    assert!(!message.contains("Mendes"), "{message}");
    // The other rows stay readable one by one.
    assert_eq!(a.patients().get(ana.id).await.unwrap().id, ana.id);
}

#[backends]
async fn organizations_validate_cnpj_and_keep_it_unique_platform_wide(tdb: TestDb) {
    let orgs = tdb.db.organizations();
    let mut new = NewOrganization::new("Hospital São Paulo", OrganizationType::Hospital);
    new.tax_id = Some("12.345.678/0001-90".into());
    assert_eq!(orgs.create(new.clone()).await.unwrap_err().field(), Some("tax_id"));
    new.tax_id = Some("12.345.678/0001-95".into());
    new.settings = Some(Sensitive::new(serde_json::json!({"whatsapp_phone_number_id": "wa-business-001"})));
    let org = orgs.create(new.clone()).await.unwrap();
    assert_eq!(org.tax_id.as_deref(), Some("12345678000195"));
    assert_eq!(orgs.get(org.id).await.unwrap(), org);
    assert_eq!(orgs.find_by_tax_id("12345678000195").await.unwrap().unwrap().id, org.id);
    let err = orgs.create(new).await.unwrap_err();
    assert_eq!((err.code(), err.field()), ("conflict", Some("tax_id")));
    let raw = tdb.raw_bytes("organizations", "settings", org.id).await.unwrap();
    assert!(!raw.windows(15).any(|w| w == b"wa-business-001"));
    let scope = tdb.db.scope(org.id, austa_core::Actor::platform()).await.unwrap();
    assert_eq!(scope.organization().await.unwrap().id, org.id);
    orgs.delete(org.id).await.unwrap();
    assert_eq!(orgs.get(org.id).await.unwrap_err().code(), "not_found");
    assert!(tdb.db.scope(org.id, austa_core::Actor::platform()).await.is_err());
}
