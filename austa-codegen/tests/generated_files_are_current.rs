//! The committed generated files match what the generator renders from the current sources, and unit
//! checks of the type mapping and of the parsing of one struct and one enum.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use austa_codegen::ir::{Model, RustType};
use austa_codegen::{parse, python};

#[test]
fn generated_files_are_current() {
    let root = austa_codegen::workspace_root();
    let files = austa_codegen::generate(&root).unwrap_or_else(|e| panic!("austa-codegen failed: {e}"));
    let mut stale = Vec::new();
    for file in &files {
        let committed = std::fs::read_to_string(root.join(file.path)).unwrap_or_default();
        if committed != file.contents {
            stale.push(file.path);
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are out of date with austa-core's sources: {}; run `cargo run -p austa-codegen`",
        stale.join(", ")
    );
}

#[test]
fn the_core_models_are_all_there() {
    let model = austa_codegen::load_model(&austa_codegen::workspace_root()).unwrap();
    let stored: Vec<_> = model.structs.iter().filter_map(|s| s.table.as_deref()).collect();
    assert_eq!(stored.len(), 15, "{stored:?}");
    for name in ["Patient", "EmergencyContact", "AuditLog", "OutboxItem", "SeedReport", "ChainReport"] {
        assert!(model.structs.iter().any(|s| s.name == name), "{name}");
    }
    assert!(model.enums.iter().any(|e| e.name == "TamperKind"));
    assert!(model.opaques.iter().any(|o| o.name == "RotationTarget"));
    let patient = model.structs.iter().find(|s| s.name == "Patient").unwrap();
    assert_eq!(patient.table.as_deref(), Some("patients"));
    let sex = model.enums.iter().find(|e| e.name == "Gender").unwrap();
    assert_eq!(sex.variants.len(), 4);
    assert_eq!(sex.variants[3].serialized, "PREFER_NOT_TO_SAY");
}

fn ty(src: &str) -> Result<RustType, austa_codegen::Error> {
    parse::parse_type(&syn::parse_str(src).unwrap())
}

fn model_of(src: &str) -> Model {
    let mut model = Model::default();
    parse::parse_source("test.rs", src, &mut model).unwrap();
    model
}

#[test]
fn type_mapping() {
    let model = model_of(
        "#[derive(Serialize)] pub enum Gender { Male }
         #[derive(serde::Serialize)] pub struct Contact { pub name: String }
         #[derive(Serialize)] pub enum Target { Org, Patient(Uuid) }",
    );
    let cases = [
        ("Uuid", "uuid.UUID", Some("_r.to_uuid")),
        ("DateTime<Utc>", "datetime.datetime", Some("_r.to_datetime")),
        ("chrono::NaiveDate", "datetime.date", Some("_r.to_date")),
        ("&'static str", "str", None),
        ("usize", "int", None),
        ("f64", "float", Some("_r.to_float")),
        ("bool", "bool", None),
        ("serde_json::Value", "Any", None),
        ("Vec<String>", "List[str]", Some("list")),
        ("Vec<Uuid>", "List[uuid.UUID]", Some("_r.list_of(_r.to_uuid)")),
        ("Option<Sensitive<NaiveDate>>", "Optional[datetime.date]", Some("_r.optional(_r.to_date)")),
        ("Sensitive<String>", "Optional[str]", None),
        ("Sensitive<Gender>", "Optional[Gender]", Some("_r.optional(_r.enum_of(Gender))")),
        ("Option<Sensitive<Contact>>", "Optional[Contact]", Some("_r.optional(Contact._from_row)")),
        ("Vec<(&'static str, usize, Uuid)>", "List[Tuple[str, int, uuid.UUID]]", None),
        ("Target", "Any", None),
        ("Option<serde_json::Value>", "Any", None),
    ];
    for (rust, annotation, converter) in cases {
        let t = ty(rust).unwrap();
        assert_eq!(python::annotation(&model, &t).unwrap(), annotation, "{rust}");
        if converter.is_some() || !rust.starts_with("Vec<(") {
            assert_eq!(python::converter(&model, &t).unwrap().as_deref(), converter, "{rust}");
        }
    }
    assert!(ty("Sensitive<String>").unwrap().contains_sensitive());
    for bad in ["HashMap<String, i64>", "DateTime<FixedOffset>", "Value", "[u8; 32]", "()"] {
        let err = ty(bad).map(|t| python::annotation(&model, &t)).and_then(|r| r);
        assert!(err.is_err(), "{bad} should be rejected");
    }
    assert!(ty("[u8; 32]").unwrap_err().to_string().contains("[u8 ; 32]"));
}

#[test]
fn parses_a_struct_with_serde_attributes() {
    let model = model_of(
        r#"
        /// A thing.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct Thing {
            /// Its id.
            pub id: Uuid,
            /// Its kind.
            #[serde(rename = "type")]
            pub thing_type: String,
            /// The owner's name (encrypted).
            pub owner_name: Option<Sensitive<String>>,
            #[serde(skip_serializing, default)]
            pub secret: Sensitive<String>,
            private: i64,
        }
        /// Not serialized.
        #[derive(Deserialize)]
        pub struct Input { pub a: i64 }
        "#,
    );
    assert_eq!(model.structs.len(), 1);
    let s = &model.structs[0];
    assert_eq!((s.name.as_str(), s.doc.as_str()), ("Thing", "A thing."));
    let names: Vec<_> = s.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "type", "ownerName"]);
    assert_eq!(s.fields[2].ty, RustType::Option(Box::new(RustType::Sensitive(Box::new(RustType::Str)))));
    assert!(s.fields[2].sensitive && !s.fields[0].sensitive);
    assert_eq!(s.fields[0].doc, "Its id.");
}

#[test]
fn parses_enums() {
    let model = model_of(
        r#"
        db_enum!(
            /// A patient's gender.
            Gender { Male = "MALE", PreferNotToSay = "PREFER_NOT_TO_SAY" }
        );
        /// Where a row stands.
        #[derive(Debug, Clone, Copy, serde::Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum OutboxStatus {
            /// Waiting.
            Pending,
            DeadLetter,
        }
        "#,
    );
    let gender = &model.enums[0];
    assert_eq!((gender.name.as_str(), gender.doc.as_str()), ("Gender", "A patient's gender."));
    assert_eq!(gender.variants[1].rust_name, "PreferNotToSay");
    assert_eq!(gender.variants[1].serialized, "PREFER_NOT_TO_SAY");
    let status = &model.enums[1];
    let v: Vec<_> = status.variants.iter().map(|v| (v.serialized.as_str(), v.doc.as_str())).collect();
    assert_eq!(v, [("PENDING", "Waiting."), ("DEAD_LETTER", "")]);
    let py = python::render_enums(&model).unwrap();
    assert!(py.contains("class Gender(_StrEnum):\n    \"\"\"A patient's gender.\"\"\"\n\n    MALE = \"MALE\"\n"));
    assert!(py.contains("    #: Waiting.\n    PENDING = \"PENDING\"\n"));
}

#[test]
fn unsupported_serde_attributes_fail_loudly() {
    let mut model = Model::default();
    let err =
        parse::parse_source("x.rs", "#[derive(Serialize)] pub struct A { #[serde(flatten)] pub b: B }", &mut model)
            .unwrap_err();
    assert!(err.to_string().contains("flatten"), "{err}");
    let model = model_of("#[derive(Serialize)] pub struct A { pub b: Mystery }");
    assert!(model.validate().unwrap_err().to_string().contains("Mystery"));
}

#[test]
fn doc_links_become_code() {
    assert_eq!(python::plain_doc("see [`Sensitive`](crate::crypto::Sensitive) and [`X`]."), "see `Sensitive` and `X`.");
    assert_eq!(python::plain_doc("a [0, 1] range"), "a [0, 1] range");
}
