//! Reading a provider's answer field by field, where one field of an odd
//! type must not make the whole answer unreadable.

use serde::Deserialize;

/// A field read when it has the documented type and ignored otherwise, as
/// an absent one: an odd item must not turn a whole answer unreadable.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Lenient<T> {
    Read(T),
    Ignored(serde::de::IgnoredAny),
}

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient::Ignored(serde::de::IgnoredAny)
    }
}

impl<T> Lenient<T> {
    pub fn get(&self) -> Option<&T> {
        match self {
            Lenient::Read(value) => Some(value),
            Lenient::Ignored(_) => None,
        }
    }
}
