//! Latency percentiles and the result table.

use std::time::Duration;

/// The middle of a set of runs (the upper one of two middles); at least one run.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn extend(&mut self, v: impl IntoIterator<Item = Duration>) {
        self.0.extend(v);
    }

    /// The `q` quantile (0..1) in milliseconds.
    pub fn ms(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i].as_secs_f64() * 1000.0
    }
}

/// One line of the report.
#[derive(serde::Serialize, Clone)]
pub struct Row {
    pub scenario: String,
    pub backend: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    pub baseline: Option<String>,
    pub baseline_value: Option<f64>,
    pub target: Option<String>,
    pub note: String,
}

impl Row {
    pub fn new(scenario: &str, backend: &str, metric: &str, value: f64, unit: &str) -> Self {
        Self {
            scenario: scenario.into(),
            backend: backend.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            baseline: None,
            baseline_value: None,
            target: None,
            note: String::new(),
        }
    }

    pub fn baseline(mut self, name: &str, value: f64) -> Self {
        self.baseline = Some(name.into());
        self.baseline_value = Some(value);
        self
    }

    pub fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Self {
        self.note = n.into();
        self
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{:.0}", v)
    } else {
        format!("{:.2}", v)
    }
}

/// A Markdown table, as BENCHMARKS.md holds it.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | backend | metric | value | baseline | ratio | target | note |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let (baseline, ratio) = match (&r.baseline, r.baseline_value) {
            (Some(b), Some(v)) => (
                format!("{b}: {} {}", fmt(v), r.unit),
                format!("{:.2}", r.value / v),
            ),
            _ => ("".into(), "".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.backend,
            r.metric,
            fmt(r.value),
            r.unit,
            baseline,
            ratio,
            r.target.clone().unwrap_or_default(),
            r.note
        ));
    }
    out
}
