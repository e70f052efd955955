//! Confirmation of irreversible operations: the operator types a name or an id back.

use std::io::{BufRead, Write};

use crate::outcome::Failure;

/// Asks on stderr for `expected` to be typed on stdin (a pipe works too, for scripted runs that mean
/// it); refuses unless the line read is exactly `expected`.
pub fn typed_back(prompt: &str, expected: &str) -> Result<(), Failure> {
    eprint!("{prompt}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Failure::io("reading the confirmation", e))?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(Failure::refused("confirmation did not match: nothing was changed"))
    }
}
