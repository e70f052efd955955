//! Rebuild when a migration is added: `sqlx::migrate!` embeds the files of `../migrations` at compile
//! time but only tracks the files that already existed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
