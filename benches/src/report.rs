//! The results table and its JSON.
//!
//! Every row holds the library's figure and, where a baseline exists, both baselines' figures from the
//! same run. Ratios are *relative speeds*: for rates `library / baseline`, for latencies
//! `baseline / library`, so that 1.0 means "as fast" and more is faster, whatever the metric.

use std::fmt::Write as _;

use serde::Serialize;

/// Whether more or less of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// A higher figure is better (throughput).
    Higher,
    /// A lower figure is better (latency, memory).
    Lower,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub workload: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The unit (`msgs/s`, `p99 ms`, ...).
    pub metric: String,
    /// Which way is better.
    pub better: Better,
    /// The library's figure.
    pub library: f64,
    /// The plaintext baseline's figure, when it has one.
    pub plaintext: Option<f64>,
    /// The hand-secured baseline's figure, when it has one.
    pub hand_secured: Option<f64>,
}

impl Row {
    /// A figure of the library alone.
    pub fn new(workload: &str, backend: &str, metric: &str, better: Better, library: f64) -> Self {
        Self {
            workload: workload.into(),
            backend: backend.into(),
            metric: metric.into(),
            better,
            library,
            plaintext: None,
            hand_secured: None,
        }
    }

    /// Adds the baselines' figures.
    pub fn baselines(mut self, plaintext: Option<f64>, hand_secured: Option<f64>) -> Self {
        self.plaintext = plaintext;
        self.hand_secured = hand_secured;
        self
    }

    /// The library's relative speed against `baseline` (see the module docs).
    pub fn relative(&self, baseline: Option<f64>) -> Option<f64> {
        let b = baseline?;
        match self.better {
            Better::Higher => Some(self.library / b),
            Better::Lower => Some(b / self.library),
        }
    }
}

fn figure(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 100.0 {
        format!("{:.0}", v)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(figure).unwrap_or_else(|| "-".into())
}

fn ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

/// The rows as a Markdown table (what benches/README.md shows).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | backend | metric | library | plaintext | hand-secured | vs plaintext | vs hand-secured |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.backend,
            r.metric,
            figure(r.library),
            opt(r.plaintext),
            opt(r.hand_secured),
            ratio(r.relative(r.plaintext)),
            ratio(r.relative(r.hand_secured)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_speed_is_above_one_when_the_library_is_faster() {
        let rate = Row::new("ingest", "sqlite", "msgs/s", Better::Higher, 200.0).baselines(Some(100.0), None);
        assert_eq!(rate.relative(rate.plaintext), Some(2.0));
        let latency = Row::new("lookup", "sqlite", "p99 ms", Better::Lower, 0.5).baselines(Some(1.0), None);
        assert_eq!(latency.relative(latency.plaintext), Some(2.0));
        assert!(markdown(&[rate, latency]).contains("| 2.00x |"));
    }
}
