//! `[contracts.NAME]` and `[targets.sla] contract`: a contract is refused,
//! naming its key, unless every figure can be computed from it (docs/contracts.md
//! "Contracts").

use std::sync::Arc;

use rust_decimal::Decimal;
use toml::Spanned;

use super::raw::{ClaimOpensName, DownWhenName, PeriodName, RawContract};
use super::validate::Validator;
use crate::minute::Minute;
use crate::sla::SlaTerms;
use crate::sla::contract::{ClaimOpens, Contract, CreditTier, DEFAULT_CONTRACT, DownRule, Period};

/// The longest claim window accepted, in days.
const MAX_CLAIM_DAYS: u32 = 3_650;
/// No attempt runs this long (timeouts are far shorter), so a longer
/// `slow_after` could never apply.
const MAX_SLOW_AFTER_MS: u64 = 600_000;
/// Period boundaries checked against the interval grid, from the first.
const PERIODS_CHECKED: u32 = 240;

/// What every percentage of a contract must be.
const PERCENTAGE_RULE: &str = "must be a percentage above 0 and at most 100";

fn is_percentage(percent: Decimal) -> bool {
    percent > Decimal::ZERO && percent <= Decimal::ONE_HUNDRED
}

impl Validator<'_> {
    /// Reads every `[contracts.*]` beside the built-in ones.
    pub(super) fn contracts(
        &mut self,
        raw: std::collections::BTreeMap<String, Spanned<RawContract>>,
    ) {
        self.contracts.insert(
            DEFAULT_CONTRACT.to_owned(),
            Arc::new(Contract::tencent_im()),
        );
        for (name, contract) in raw {
            let path = format!("contracts.{name}");
            if name == DEFAULT_CONTRACT {
                self.problem(
                    path,
                    Some(contract.span()),
                    format!("`{DEFAULT_CONTRACT}` is built in; give your contract another name"),
                );
                continue;
            }
            if let Some(contract) = self.contract(&path, &name, contract) {
                self.contracts.insert(name, Arc::new(contract));
            }
        }
    }

    fn contract(&mut self, path: &str, name: &str, raw: Spanned<RawContract>) -> Option<Contract> {
        let raw = raw.into_inner();
        let key = |k: &str| format!("{path}.{k}");
        let mut ok = true;

        let interval_minutes = match &raw.interval {
            None => 1,
            Some(interval) => {
                let seconds = interval.get_ref().0.as_secs();
                let whole = interval.get_ref().0.subsec_nanos() == 0 && seconds % 60 == 0;
                let minutes = seconds / 60;
                if !whole || !(1..=60).contains(&minutes) || 60 % minutes != 0 {
                    self.problem(
                        key("interval"),
                        Some(interval.span()),
                        "must be whole minutes from 1m to 60m that divide the hour (1m, 2m, 3m, 4m, 5m, 6m, 10m, 12m, 15m, 20m, 30m, 60m)",
                    );
                    ok = false;
                }
                u32::try_from(minutes).unwrap_or(1)
            }
        };
        let down_when = match raw.down_when.as_ref().map(|d| *d.get_ref()) {
            None | Some(DownWhenName::AllFailed) => {
                if let Some(rate) = &raw.error_rate_above {
                    self.problem(
                        key("error_rate_above"),
                        Some(rate.span()),
                        "only for down_when = \"error_rate\"",
                    );
                    ok = false;
                }
                DownRule::AllFailed
            }
            Some(DownWhenName::ErrorRate) => match &raw.error_rate_above {
                None => {
                    self.problem(
                        key("error_rate_above"),
                        raw.down_when.as_ref().map(Spanned::span),
                        "down_when = \"error_rate\" needs error_rate_above (a percentage)",
                    );
                    ok = false;
                    DownRule::AllFailed
                }
                Some(rate) => {
                    ok &= self.percentage(&key("error_rate_above"), rate);
                    DownRule::ErrorRate {
                        above_percent: rate.get_ref().0,
                    }
                }
            },
        };
        let slow_after_ms = match &raw.slow_after {
            None => None,
            Some(slow) => {
                let ms = u64::try_from(slow.get_ref().0.as_millis()).unwrap_or(u64::MAX);
                if !(1..=MAX_SLOW_AFTER_MS).contains(&ms) {
                    self.problem(
                        key("slow_after"),
                        Some(slow.span()),
                        "must be from 1ms to 10m (an ok slower than this counts as failed)",
                    );
                    ok = false;
                }
                Some(ms)
            }
        };
        ok &= self.percentage(&key("commitment"), &raw.commitment);
        let mut credits = Vec::with_capacity(raw.credits.len());
        for (i, tier) in raw.credits.iter().enumerate() {
            let tier_path = format!("{path}.credits[{i}]");
            let below = tier.get_ref().below.0;
            let percent = tier.get_ref().percent;
            if !is_percentage(below) {
                self.problem(
                    format!("{tier_path}.below"),
                    Some(tier.span()),
                    PERCENTAGE_RULE,
                );
                ok = false;
            }
            if percent == 0 || percent > 100 {
                self.problem(
                    format!("{tier_path}.percent"),
                    Some(tier.span()),
                    "must be a credit from 1 to 100 percent of the fee",
                );
                ok = false;
            }
            if let Some(previous) = credits.last().copied() {
                let CreditTier {
                    below: previous_below,
                    percent: previous_percent,
                } = previous;
                if below >= previous_below || percent <= previous_percent {
                    self.problem(
                        tier_path.clone(),
                        Some(tier.span()),
                        format!(
                            "tiers must be sorted with `below` falling and `percent` rising, without duplicates; {below} % / {percent} % follows {previous_below} % / {previous_percent} %"
                        ),
                    );
                    ok = false;
                }
            }
            credits.push(CreditTier { below, percent });
        }
        let claim_days = match &raw.claim_days {
            None => 30,
            Some(days) => {
                if !(1..=MAX_CLAIM_DAYS).contains(days.get_ref()) {
                    self.problem(
                        key("claim_days"),
                        Some(days.span()),
                        format!("must be from 1 to {MAX_CLAIM_DAYS} days"),
                    );
                    ok = false;
                }
                *days.get_ref()
            }
        };
        if !ok {
            // Each problem is already named; the contract is not used.
            return None;
        }
        Some(Contract {
            name: name.to_owned(),
            period: match raw.period.get_ref() {
                PeriodName::ServiceMonth => Period::ServiceMonth,
                PeriodName::CalendarMonth => Period::CalendarMonth,
            },
            interval_minutes,
            down_when,
            slow_after_ms,
            commitment: raw.commitment.get_ref().0,
            credits,
            claim_opens: match raw.claim_opens.as_ref().map(|c| *c.get_ref()) {
                None | Some(ClaimOpensName::PeriodEnd) => ClaimOpens::PeriodEnd,
                Some(ClaimOpensName::FifthBusinessDay) => ClaimOpens::FifthBusinessDay,
            },
            claim_days,
        })
    }

    /// A percentage key, checked by [`is_percentage`]; `false` once named.
    fn percentage(&mut self, path: &str, value: &Spanned<super::raw::Percent>) -> bool {
        if is_percentage(value.get_ref().0) {
            return true;
        }
        self.problem(path, Some(value.span()), PERCENTAGE_RULE);
        false
    }

    /// The contract `[targets.sla] contract` names (the built-in default
    /// when it names none); `None` after naming the problem.
    pub(super) fn contract_named(
        &mut self,
        sla_path: &str,
        name: Option<&Spanned<String>>,
    ) -> Option<Arc<Contract>> {
        let Some(name) = name else {
            return self.contracts.get(DEFAULT_CONTRACT).cloned();
        };
        if let Some(contract) = self.contracts.get(name.get_ref()) {
            return Some(contract.clone());
        }
        let known: Vec<&str> = self.contracts.keys().map(String::as_str).collect();
        let message = format!(
            "no contract `{}`; defined: {} (add [contracts.{}], or fix the name)",
            name.get_ref(),
            known.join(", "),
            name.get_ref()
        );
        self.problem(format!("{sla_path}.contract"), Some(name.span()), message);
        None
    }

    /// Every period boundary must fall on a boundary of the contract's
    /// intervals (aligned on UTC hours), or an interval would belong to two
    /// periods: 30-minute intervals cannot measure periods that start at
    /// local midnight in a +05:45 zone.
    pub(super) fn check_period_alignment(&mut self, path: &str, terms: &SlaTerms) {
        let interval = i64::from(terms.contract.interval_minutes);
        if interval == 1 {
            return;
        }
        let misaligned = (1..=PERIODS_CHECKED)
            .filter_map(|k| terms.calendar.month(k))
            .find(|month| {
                let start = month.start.with_timezone(&chrono::Utc);
                chrono::Timelike::second(&start) != 0
                    || Minute::containing(&start).0.rem_euclid(interval) != 0
            });
        if let Some(month) = misaligned {
            self.problem(
                path,
                None,
                format!(
                    "contract `{}` measures {interval}-minute intervals aligned on UTC hours, but period {} starts at {} in {}, inside an interval; use an interval that divides the zone's offset",
                    terms.contract.name,
                    month.index,
                    month.start.to_rfc3339(),
                    terms.calendar.timezone
                ),
            );
        }
    }
}
