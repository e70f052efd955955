//! `cargo run -p austa-codegen`: rewrites the generated binding files from austa-core's sources.

use std::process::ExitCode;

fn main() -> ExitCode {
    let root = austa_codegen::workspace_root();
    let files = match austa_codegen::generate(&root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("austa-codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    for file in files {
        let path = root.join(file.path);
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == file.contents);
        if unchanged {
            println!("unchanged {}", file.path);
            continue;
        }
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("austa-codegen: creating {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        if let Err(e) = std::fs::write(&path, &file.contents) {
            eprintln!("austa-codegen: writing {}: {e}", file.path);
            return ExitCode::FAILURE;
        }
        println!("wrote {}", file.path);
    }
    ExitCode::SUCCESS
}
