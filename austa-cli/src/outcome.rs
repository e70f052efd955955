//! Exit codes, and how a command's result or failure is printed.

use std::fmt;
use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what it was asked and found nothing wrong.
    Success = 0,
    /// The command ran and found something: drift, validation findings, a broken audit chain, a
    /// restore that did not verify.
    Findings = 1,
    /// Bad usage (clap's own code).
    #[allow(dead_code)]
    Usage = 2,
    /// Refused as unsafe; nothing was changed.
    Refused = 3,
    /// Configuration is missing or wrong.
    Config = 4,
    /// Any other failure (database, crypto, input/output).
    Failed = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A failure, with the core's stable code. Messages come from the core's `Display`, which never
/// quotes a sensitive value.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub exit: Exit,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Self {
        Self { code: "refused", message: message.into(), exit: Exit::Refused }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self { code: "config", message: message.into(), exit: Exit::Config }
    }

    pub fn io(what: &str, e: std::io::Error) -> Self {
        Self { code: "io", message: format!("{what}: {e}"), exit: Exit::Failed }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<austa_core::Error> for Failure {
    fn from(e: austa_core::Error) -> Self {
        let exit = match &e {
            austa_core::Error::Refused(_) => Exit::Refused,
            austa_core::Error::Config(_) | austa_core::Error::Transport(_) => Exit::Config,
            _ => Exit::Failed,
        };
        Self { code: e.code(), message: e.to_string(), exit }
    }
}

/// What a command produced: the JSON document for `--json`, the text otherwise, and the exit code.
pub struct Report {
    pub json: serde_json::Value,
    pub text: String,
    pub exit: Exit,
    /// Print the summary on stderr: stdout carries the command's data (an export).
    pub on_stderr: bool,
}

impl Report {
    pub fn new(json: serde_json::Value, text: impl Into<String>) -> Self {
        Self { json, text: text.into(), exit: Exit::Success, on_stderr: false }
    }

    /// Sends the summary to stderr, for commands whose data went to stdout.
    pub fn quiet(mut self) -> Self {
        self.on_stderr = true;
        self
    }

    /// Exit 1 when `found`.
    pub fn findings_if(mut self, found: bool) -> Self {
        if found {
            self.exit = Exit::Findings;
        }
        self
    }
}

/// Serializes a core report (their `Serialize` impls never include a sensitive value).
pub fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| serde_json::json!({ "serialization_error": e.to_string() }))
}
