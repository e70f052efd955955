//! The layers of this crate, bottom first. A module may use the modules of the layers below its own
//! and nothing above or beside it, so that a change low down never needs the code above it and no
//! import cycle can form; `layers_are_respected` fails when a `use` breaks the rule. (The layers below
//! this crate are crates of their own, where Cargo refuses a cycle outright.)
//!
//! | layer | modules | what they hold |
//! |---|---|---|
//! | 0 | `page`, `model`, `db` | pages and cursors; the model types (from `austa-model`); the database handle |
//! | 1 | `scope` | who is asking: organization, actor, request, emergency grant |
//! | 2 | `access` | the access matrix and the rules derived from it (no I/O) |
//! | 3 | `kernel` | one operation's transaction: access checks and their recorded refusals, keys, audit events and their chain, the Tasy outbox, the generic row operations of every model |
//! | 4 | `repo`, `audit`, `keys` | the repositories of the aggregates; the audit trail's verification, reports and export; key rotation and crypto-shredding |
//! | 5 | `whatsapp` | the webhook ingest |
//! | 6 | `seed` | development data |
//! | 7 | `ops` | operator tooling (migrations status, backup and restore, validation, reset) |
//! | 8 | `crypto` | the public re-exports of key and encryption types |

/// The modules of each layer, bottom first.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LAYERS: &[&[&str]] = &[
    &["page", "model", "db"],
    &["scope"],
    &["access"],
    &["kernel"],
    &["repo", "audit", "keys"],
    &["whatsapp"],
    &["seed"],
    &["ops"],
    &["crypto"],
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::LAYERS;

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    /// Every `crate::<module>` a file names, comments left out.
    fn named_modules(source: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in source.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.insert(name);
                }
                rest = after;
            }
        }
        out
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn layers_are_respected() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        files(&src, &mut paths);
        let mut broken = Vec::new();
        for path in paths {
            let relative = path.strip_prefix(&src).unwrap();
            let top =
                relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            if top == "lib" || top == "layers" {
                continue;
            }
            let mine = layer_of(&top).unwrap_or_else(|| panic!("module {top} is in no layer of src/layers.rs"));
            let source = std::fs::read_to_string(&path).unwrap();
            let source = source.split("#[cfg(test)]").next().unwrap_or("");
            for used in named_modules(source) {
                if used == top {
                    continue;
                }
                match layer_of(&used) {
                    Some(theirs) if theirs < mine => {}
                    Some(_) => broken.push(format!("{} uses {used}", relative.display())),
                    None => {} // a crate-root item (Error, Result, Scope, ...) or an external crate alias
                }
            }
        }
        assert!(broken.is_empty(), "uses that break the layers of src/layers.rs:\n{}", broken.join("\n"));
    }
}
