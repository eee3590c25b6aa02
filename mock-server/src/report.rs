//! A run's checks as a report: printed, summarised, and written as JUnit XML. `wxcc-contract
//! verify` and `report`, and `wxcc-mock test`, all report this way.

use std::time::Duration;

use serde_json::Value;

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It held.
    Passed,
    /// It did not: what broke.
    Failed(String),
    /// Not run, and why.
    Skipped(String),
}

/// One check.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What was checked, as a sentence.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// How long it took.
    pub duration: Duration,
}

impl std::fmt::Display for Outcome {
    /// `ok    name`, `FAIL  name` and what broke on the next line, or `skip  name (why)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Passed => write!(f, "ok    {}", self.name),
            Verdict::Failed(why) => write!(f, "FAIL  {}\n      {why}", self.name),
            Verdict::Skipped(why) => write!(f, "skip  {} ({why})", self.name),
        }
    }
}

/// Every check of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In the order run.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// The failed checks.
    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| matches!(o.verdict, Verdict::Failed(_))).collect()
    }

    /// `N passed, N failed, N skipped`.
    pub fn summary(&self) -> String {
        let count = |f: fn(&Verdict) -> bool| self.outcomes.iter().filter(|o| f(&o.verdict)).count();
        format!(
            "{} passed, {} failed, {} skipped",
            count(|v| *v == Verdict::Passed),
            count(|v| matches!(v, Verdict::Failed(_))),
            count(|v| matches!(v, Verdict::Skipped(_)))
        )
    }

    /// Ends a run: prints the summary, writes the JUnit XML to `junit` (if given), and gives the
    /// exit code: 0, 1 when a check failed, 2 when the JUnit file could not be written.
    pub fn finish(&self, junit: Option<&std::path::Path>, suite_name: &str) -> std::process::ExitCode {
        println!("{}", self.summary());
        if let Some(path) = junit
            && let Err(e) = std::fs::write(path, self.junit(suite_name))
        {
            eprintln!("cannot write {}: {e}", path.display());
            return std::process::ExitCode::from(2);
        }
        if self.failures().is_empty() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
    }

    /// JUnit XML, one test case per check.
    pub fn junit(&self, suite_name: &str) -> String {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new(suite_name);
        for outcome in &self.outcomes {
            let status = match &outcome.verdict {
                Verdict::Passed => TestCaseStatus::success(),
                Verdict::Failed(why) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(why.as_str());
                    s
                }
                Verdict::Skipped(why) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(why.as_str());
                    s
                }
            };
            let mut case = TestCase::new(outcome.name.as_str(), status);
            case.set_time(outcome.duration);
            case.set_classname(suite_name);
            suite.add_test_case(case);
        }
        let mut report = JReport::new("wxcc-contract");
        report.add_test_suite(suite);
        report.to_string().unwrap_or_default()
    }
}

/// The violations as a report (one failed check each, or one passed check when there are none).
pub fn violations_report(violations: &[Value]) -> Report {
    let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let mut report = Report::default();
    if violations.is_empty() {
        report.outcomes.push(Outcome {
            name: "the client sent no off-contract request".into(),
            verdict: Verdict::Passed,
            duration: Duration::ZERO,
        });
    }
    for v in violations {
        let pointer = if field(v, "pointer").is_empty() { "/".to_owned() } else { field(v, "pointer") };
        let accepted = if v["accepted"] == true { " (the mock accepted it, as the real API would)" } else { "" };
        report.outcomes.push(Outcome {
            name: format!("{} {} [{}]", field(v, "method"), field(v, "path"), field(v, "trackingId")),
            verdict: Verdict::Failed(format!(
                "{pointer}: {} (rule {}, schema {}){accepted}; body: {}",
                field(v, "message"),
                field(v, "rule"),
                field(v, "schema"),
                field(v, "body")
            )),
            duration: Duration::ZERO,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_reads_as_one_line_per_verdict_and_a_failure_says_why_below() {
        let outcome = |verdict| Outcome { name: "GET /x".into(), verdict, duration: Duration::ZERO };
        assert_eq!(outcome(Verdict::Passed).to_string(), "ok    GET /x");
        assert_eq!(outcome(Verdict::Failed("500".into())).to_string(), "FAIL  GET /x\n      500");
        assert_eq!(outcome(Verdict::Skipped("no token".into())).to_string(), "skip  GET /x (no token)");
    }
}
