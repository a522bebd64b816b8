//! Secrets: named by where to find them, never printed.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A secret, named by where to find it so that it never sits in the file.
///
/// `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
    /// Written in the config file itself; works, but `check-config` warns.
    Plain(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(name) => write!(f, "Secret(env {name})"),
            Secret::File(path) => write!(f, "Secret(file {})", path.display()),
            Secret::Plain(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

impl Secret {
    /// Reads the secret's value. Errors name where it was looked for, never the value.
    pub fn reveal(&self) -> anyhow::Result<String> {
        match self {
            Secret::Env(name) => std::env::var(name).map_err(|_| {
                anyhow::anyhow!(
                    "environment variable {name} is not set; export it or use {{ file = \"...\" }}"
                )
            }),
            Secret::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| anyhow::anyhow!("cannot read secret file {}: {e}", path.display())),
            Secret::Plain(value) => Ok(value.clone()),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("{ env = \"NAME\" }, { file = \"PATH\" } or a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::Plain(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let secret = match key.as_str() {
                        "env" => Secret::Env(value),
                        "file" => Secret::File(value.into()),
                        other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                    };
                    if found.replace(secret).is_some() {
                        return Err(de::Error::custom("give either env or file, not both"));
                    }
                }
                found.ok_or_else(|| {
                    de::Error::custom("expected { env = \"NAME\" } or { file = \"PATH\" }")
                })
            }
        }

        d.deserialize_any(SecretVisitor)
    }
}
