//! Progress of long operations: a bar on a terminal, plain lines otherwise (logs, CI, pipes). Both go
//! to stderr, so stdout stays the command's result.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use austa_core::ops::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// Plain lines are printed at most this often.
const LINE_EVERY: Duration = Duration::from_secs(2);

pub struct Reporter {
    bar: Option<ProgressBar>,
    terminal: bool,
    phase: String,
    done: u64,
    total: Option<u64>,
    last_line: Instant,
}

impl Reporter {
    pub fn new() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            phase: String::new(),
            done: 0,
            total: None,
            last_line: Instant::now(),
        }
    }

    fn line(&self) {
        match self.total {
            Some(t) => eprintln!("{}: {}/{} rows", self.phase, self.done, t),
            None => eprintln!("{}: {} rows", self.phase, self.done),
        }
    }
}

impl Progress for Reporter {
    fn start(&mut self, phase: &str, total: Option<u64>) {
        self.phase = phase.to_string();
        self.done = 0;
        self.total = total;
        self.last_line = Instant::now();
        if self.terminal {
            let bar = match total {
                Some(t) => ProgressBar::new(t).with_style(
                    ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg}: {pos} rows ({per_sec})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_message(phase.to_string());
            self.bar = Some(bar);
        } else {
            eprintln!("{phase}: started");
        }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.last_line.elapsed() >= LINE_EVERY => {
                self.line();
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn finish(&mut self) {
        match self.bar.take() {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(),
        }
    }
}
