//! `austa`: the operator's command for an Austa database.
//!
//! A thin layer over `austa-core`: every operation (migrations, backup and restore, validation, key
//! operations) lives in the library, where it is tested on both backends; this crate parses the
//! command line (clap), opens the database like the library does, shows progress, asks for
//! confirmations, and maps results to text, `--json` documents and exit codes (see [`outcome::Exit`]).

mod cli;
mod commands;
mod config;
mod confirm;
mod outcome;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::outcome::{Exit, Failure};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("austa: error: cannot start the runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let result = runtime.block_on(commands::run(&cli));
    match result {
        Ok(report) => {
            let out = if cli.json { report.json.to_string() } else { report.text.clone() };
            if report.on_stderr {
                eprintln!("{out}");
            } else {
                println!("{out}");
            }
            report.exit.into()
        }
        Err(failure) => {
            print_failure(&cli, &failure);
            failure.exit.into()
        }
    }
}

fn print_failure(cli: &cli::Cli, failure: &Failure) {
    if cli.json {
        println!("{}", serde_json::json!({ "error": { "code": failure.code, "message": failure.message } }));
    }
    eprintln!("austa: error ({}): {}", failure.code, failure.message);
}
