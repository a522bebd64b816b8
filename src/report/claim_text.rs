//! The text of a credit claim for the provider's ticket (`improbe claim`):
//! the clauses it relies on, the Service Month's figures, each incident, the
//! exclusions applied and the evidence's digest, all from the same evidence
//! as `improbe report`.

use std::fmt::Write as _;

use serde::Serialize;

use super::evidence::{Evidence, UNCLASSIFIED_CODE_NOTE};
use super::markdown::escape;
use super::sla_table::SlaRecord;
use crate::sla::contract::{DEFAULT_CONTRACT, Words};

#[derive(Debug, Serialize)]
pub struct Claim {
    pub provider: String,
    pub timezone: String,
    /// The figures of `improbe sla`, at the top level of the JSON.
    #[serde(flatten)]
    pub figures: SlaRecord,
    pub coverage_percent: String,
    pub incidents: Vec<ClaimIncident>,
    pub exclusions: Vec<ClaimExclusion>,
    pub digest: String,
    /// Where the claim is weak: an incident resting on codes not in the
    /// classification table, low coverage, a month still running.
    pub cautions: Vec<String>,
    /// The claim as Markdown, ready for the ticket.
    pub text: String,
    /// The contract's nouns and the figures as label and value, for the text.
    #[serde(skip)]
    words: Words,
    #[serde(skip)]
    figure_rows: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct ClaimIncident {
    pub start: String,
    pub end: String,
    pub minutes: i64,
}

#[derive(Debug, Serialize)]
pub struct ClaimExclusion {
    pub start: String,
    pub end: String,
    pub minutes_in_month: i64,
    pub reason: String,
    pub prior_notice: bool,
}

impl Claim {
    pub fn from_evidence(evidence: &Evidence, provider: &str) -> Claim {
        let f = &evidence.figures;
        let mut cautions = Vec::new();
        let words = evidence.words.clone();
        if !f.complete {
            cautions.push(format!(
                "The {} has not ended: these figures are provisional until {}.",
                words.period, f.end
            ));
        }
        if evidence.coverage.is_low() {
            cautions.push(format!(
                "Low coverage: only {}% of the elapsed, not excluded minutes were measured; minutes nobody measured count as available, so the real availability may be lower.",
                evidence.coverage.coverage_percent
            ));
        }
        if evidence
            .incidents
            .iter()
            .any(|i| i.errors.iter().any(|e| e.unclassified_code))
        {
            cautions.push(format!(
                "Some {}s rest on error codes {UNCLASSIFIED_CODE_NOTE}.",
                words.down
            ));
        }
        let mut claim = Claim {
            provider: provider.to_owned(),
            timezone: evidence.timezone.clone(),
            figures: f.clone(),
            coverage_percent: evidence.coverage.coverage_percent.clone(),
            incidents: evidence
                .incidents
                .iter()
                .map(|i| ClaimIncident {
                    start: i.start.clone(),
                    end: i.end.clone(),
                    minutes: i.minutes,
                })
                .collect(),
            exclusions: evidence
                .exclusions
                .iter()
                .map(|x| ClaimExclusion {
                    start: x.start.clone(),
                    end: x.end.clone(),
                    minutes_in_month: x.minutes_in_month,
                    reason: x.reason.clone(),
                    prior_notice: x.prior_notice,
                })
                .collect(),
            digest: evidence.digest_line(),
            cautions,
            text: String::new(),
            figure_rows: evidence.figure_rows(),
            words,
        };
        claim.text = claim.markdown();
        claim
    }

    fn markdown(&self) -> String {
        let f = &self.figures;
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "# Service credit claim: {}, {} {} ({} to {})\n",
            escape(&f.target),
            Words::capitalised(self.words.period),
            f.month,
            f.first_day,
            f.last_day
        );
        let tencent = f.contract == DEFAULT_CONTRACT;
        let measured = if f.unit_minutes == 1 {
            "minutes".to_owned()
        } else {
            format!("{}-minute intervals", f.unit_minutes)
        };
        if !tencent && f.credit_percent == 0 {
            let _ = writeln!(
                w,
                "No credit is owed for this period: availability was {}%, which meets the commitment of at least {}% (contract `{}`). Nothing to claim.\n",
                f.availability_percent,
                f.commitment,
                escape(&f.contract)
            );
        } else if !tencent {
            let _ = writeln!(
                w,
                "Under our agreement (contract `{}`, whose rules `improbe contracts show {}` prints), availability must be at least {}% in each period, where availability is the share of the period's {measured} that were not down. For period {} availability was **{}%**, which entitles us to a credit of **{}% of the period's fee: {} {}**. We file this claim within the claim window: from {} to {}.\n",
                escape(&f.contract),
                escape(&f.contract),
                f.commitment,
                f.month,
                f.availability_percent,
                f.credit_percent,
                f.credit_amount,
                f.currency,
                f.claim_opens,
                f.claim_deadline
            );
        } else if f.credit_percent == 0 {
            let _ = writeln!(
                w,
                "No credit is owed for this Service Month: availability was {}%, which meets the commitment of at least 99% (clause 4). Nothing to claim.\n",
                f.availability_percent
            );
        } else {
            let _ = writeln!(
                w,
                "Under the Service Level Agreement, availability must be at least 99% in each Service Month (clause 4), where availability is 1 − Apparent Failure minutes / total minutes of the Service Month (clause 3), and a minute is an Apparent Failure when every login and message sending attempt in it failed (clause 1). For Service Month {} availability was **{}%**, which entitles us to a credit of **{}% of the month's fee: {} {}** (clause 5). We file this claim within the claim window (clause 6): from {} to {}.\n",
                f.month,
                f.availability_percent,
                f.credit_percent,
                f.credit_amount,
                f.currency,
                f.claim_opens,
                f.claim_deadline
            );
        }
        for caution in &self.cautions {
            let _ = writeln!(w, "> **Caution:** {}\n", escape(caution));
        }
        let _ = writeln!(w, "## Figures\n\n| | |\n|---|---|");
        let period_row = (
            Words::capitalised(self.words.period),
            format!(
                "{} to {} ({}): {} to {} (end exclusive)",
                f.first_day, f.last_day, self.timezone, f.start, f.end
            ),
        );
        let coverage_row = (
            "Measured coverage".to_owned(),
            format!(
                "{}% of elapsed, not excluded minutes",
                self.coverage_percent
            ),
        );
        // Another contract's figures carry no Tencent clause numbers.
        let rows: Vec<(String, String)> = if tencent {
            let f = &self.figures;
            let clause_rows = [
                ("Total minutes", f.total_minutes.to_string()),
                ("Apparent Failure minutes", f.failure_minutes.to_string()),
                (
                    "Excluded minutes (clause 7)",
                    f.excluded_minutes.to_string(),
                ),
                ("Availability", format!("{}%", f.availability_percent)),
                (
                    "Credit (clause 5)",
                    format!("{}% = {} {}", f.credit_percent, f.credit_amount, f.currency),
                ),
                (
                    "Claim window (clause 6)",
                    format!("{} to {}", f.claim_opens, f.claim_deadline),
                ),
            ];
            std::iter::once(period_row)
                .chain(
                    clause_rows
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value)),
                )
                .chain(std::iter::once(coverage_row))
                .collect()
        } else {
            std::iter::once(period_row)
                .chain(self.figure_rows.iter().cloned())
                .chain(std::iter::once(coverage_row))
                .collect()
        };
        for (name, value) in rows {
            let _ = writeln!(w, "| {name} | {} |", escape(&value));
        }
        let _ = writeln!(w, "\n## Incidents ({})\n", self.incidents.len());
        if self.incidents.is_empty() {
            let _ = writeln!(w, "No {}.\n", self.words.down_title);
        } else {
            let _ = writeln!(
                w,
                "| # | start | end (exclusive) | minutes |\n|---|---|---|---:|"
            );
            for (n, i) in self.incidents.iter().enumerate() {
                let _ = writeln!(w, "| {} | {} | {} | {} |", n + 1, i.start, i.end, i.minutes);
            }
            let _ = writeln!(w);
        }
        let _ = writeln!(w, "## Exclusions applied ({})\n", self.exclusions.len());
        if self.exclusions.is_empty() {
            let _ = writeln!(w, "None.\n");
        } else {
            let _ = writeln!(
                w,
                "| start | end | minutes in month | reason | announced in advance |\n|---|---|---:|---|---|"
            );
            for x in &self.exclusions {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} |",
                    x.start,
                    x.end,
                    x.minutes_in_month,
                    escape(&x.reason),
                    if x.prior_notice { "yes" } else { "no" }
                );
            }
            let _ = writeln!(w);
        }
        let _ = writeln!(
            w,
            "## Evidence\n\nEvery login and send attempt was recorded by improbe, an independent prober ({} provider). The full evidence report (`improbe report --target {} --month {}`) lists the attempts behind each incident verbatim; its attempts hash to:\n\n{}",
            escape(&self.provider),
            escape(&f.target),
            f.month,
            escape(&self.digest)
        );
        out
    }
}
