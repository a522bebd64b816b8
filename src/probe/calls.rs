//! Calls a probe makes besides its attempts (a history read back to confirm
//! delivery), counted per target, call and result for `/metrics`
//! (`improbe_provider_calls_total`), so their cost is visible.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::sync::Locked;

static CALLS: Mutex<BTreeMap<(String, &'static str, &'static str), u64>> =
    Mutex::new(BTreeMap::new());

/// Counts one call of `target`'s `call`, with `failure` the reason it
/// failed (a label), or `None` when it succeeded.
pub fn count(target: &str, call: &'static str, failure: Option<&'static str>) {
    *CALLS
        .locked()
        .entry((target.to_owned(), call, failure.unwrap_or("ok")))
        .or_default() += 1;
}

/// The counts so far, as (target, call, result) and count.
pub fn snapshot() -> Vec<((String, &'static str, &'static str), u64)> {
    CALLS
        .locked()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}
