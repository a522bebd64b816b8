//! Whose fault an unsuccessful answer is: the one classification every
//! provider's code table speaks (docs/sla.md "How improbe measures it").

use crate::attempt::InconclusiveReason;

use super::ProbeOutcome;

/// How a provider's error answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The provider's: counts towards an Apparent Failure.
    Provider,
    /// Ours, for the given reason: never counts either way, but is made loud.
    Ours(InconclusiveReason),
}

impl Fault {
    /// The attempt's outcome for an answer classified as this fault.
    pub fn outcome(
        self,
        http_status: Option<i32>,
        error_code: Option<String>,
        error: impl Into<String>,
    ) -> ProbeOutcome {
        match self {
            Fault::Provider => ProbeOutcome::fail(http_status, error_code, error),
            Fault::Ours(reason) => {
                ProbeOutcome::inconclusive(reason, http_status, error_code, error)
            }
        }
    }
}
