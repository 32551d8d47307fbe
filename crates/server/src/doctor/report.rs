//! The doctor's checklist: one line per check with its outcome, and a fix under every failure or warning.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but something will bite later (a certificate about to expire, a skewed clock).
    Warn,
    Fail,
    /// Not applicable to this deployment, or impossible because an earlier step failed.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, detail, None)
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Status::Warn, detail, Some(fix.into()))
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Status::Fail, detail, Some(fix.into()))
    }

    pub fn skip(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Skip, detail, None)
    }

    fn new(
        name: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix,
        }
    }
}

/// Every check that ran, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    pub fn failed(&self) -> bool {
        self.count(Status::Fail) > 0
    }

    /// The checklist as printed: `[ ok ]`, `[warn]`, `[FAIL]`, `[skip]`, each fix indented below.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let mark = match check.status {
                Status::Ok => "[ ok ]",
                Status::Warn => "[warn]",
                Status::Fail => "[FAIL]",
                Status::Skip => "[skip]",
            };
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{mark} {}: {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                for (i, line) in fix.lines().enumerate() {
                    let lead = if i == 0 { "fix:" } else { "    " };
                    let _ = writeln!(out, "       {lead} {line}");
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{} ok, {} warnings, {} failed, {} skipped",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail),
            self.count(Status::Skip)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_are_indented_under_their_check() {
        let mut report = Report::default();
        report.push(Check::ok("DNS", "example.org resolves to 192.0.2.1"));
        report.push(Check::fail(
            "media",
            "UDP port closed",
            "open it\nand retry",
        ));
        let text = report.render();
        assert!(text.contains("[ ok ] DNS: example.org resolves to 192.0.2.1\n"));
        assert!(text.contains(
            "[FAIL] media: UDP port closed\n       fix: open it\n            and retry\n"
        ));
        assert!(text.ends_with("1 ok, 0 warnings, 1 failed, 0 skipped\n"));
        assert!(report.failed());
    }
}
