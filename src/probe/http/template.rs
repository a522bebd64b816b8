//! Templates of an `http` target's requests (docs/providers.md "Adding a
//! provider without code"): text with `{{placeholders}}`, and JSON bodies
//! whose strings are such text.
//!
//! A value is never pasted into JSON text: a body is a tree of values,
//! rendered into `serde_json::Value` and serialised, so every value is
//! escaped by the serialiser. In a path, each value is percent-encoded as
//! one segment's text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// One placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// The attempt's probe id (16 hex digits), which a read-back looks for.
    ProbeId,
    /// The attempt's start, Unix milliseconds.
    NowMs,
    /// The attempt's start, Unix seconds.
    NowS,
    /// A random integer from 0 to 4294967295, fresh for each attempt.
    RandomU32,
    /// A random UUID (version 4), fresh for each attempt.
    Uuid,
    /// `var.NAME`: a value of `[targets.http.variables]`.
    Var(String),
    /// `secret.NAME`: a value of `[targets.http.secrets]`.
    Secret(String),
    /// `capture.NAME`: a value the login's answer gave.
    Capture(String),
}

impl Placeholder {
    fn parse(name: &str) -> Result<Placeholder, String> {
        let named = |prefix: &str| {
            name.strip_prefix(prefix)
                .filter(|rest| is_name(rest))
                .map(str::to_owned)
        };
        Ok(match name {
            "probe_id" => Placeholder::ProbeId,
            "now_ms" => Placeholder::NowMs,
            "now_s" => Placeholder::NowS,
            "random_u32" => Placeholder::RandomU32,
            "uuid" => Placeholder::Uuid,
            _ => {
                if let Some(n) = named("var.") {
                    Placeholder::Var(n)
                } else if let Some(n) = named("secret.") {
                    Placeholder::Secret(n)
                } else if let Some(n) = named("capture.") {
                    Placeholder::Capture(n)
                } else {
                    return Err(format!(
                        "unknown placeholder {{{{{name}}}}}: use probe_id, now_ms, now_s, random_u32, \
                         uuid, var.NAME, secret.NAME or capture.NAME"
                    ));
                }
            }
        })
    }

    /// Whether it renders as a number, so that a JSON string holding it
    /// alone becomes a JSON number.
    fn is_number(&self) -> bool {
        matches!(
            self,
            Placeholder::NowMs | Placeholder::NowS | Placeholder::RandomU32
        )
    }
}

/// A name of a variable, secret or capture: letters, digits, `_` and `-`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(Placeholder),
}

/// Text with placeholders, e.g. `/users/{{var.sender}}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// What one attempt's placeholders stand for.
pub struct Values<'a> {
    pub probe_id: &'a str,
    pub started: DateTime<Utc>,
    pub random_u32: u32,
    pub uuid: &'a str,
    pub variables: &'a BTreeMap<String, String>,
    pub secrets: &'a BTreeMap<String, String>,
    pub captures: &'a BTreeMap<String, String>,
}

/// A capture a template needs that the login has not given (or that
/// expired): the attempt is inconclusive, never a provider failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingCapture(pub String);

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without `}}}}` in {text:?}"))?;
            pieces.push(Piece::Value(Placeholder::parse(after[..close].trim())?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template { pieces })
    }

    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Value(v) => Some(v),
            Piece::Text(_) => None,
        })
    }

    /// The text with every placeholder replaced by its value, each passed
    /// through `encode` (the path's percent-encoding, or nothing).
    pub fn render_with(
        &self,
        values: &Values<'_>,
        encode: fn(&str) -> String,
    ) -> Result<String, MissingCapture> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(placeholder) => out.push_str(&encode(&value(placeholder, values)?)),
            }
        }
        Ok(out)
    }

    pub fn render(&self, values: &Values<'_>) -> Result<String, MissingCapture> {
        self.render_with(values, str::to_owned)
    }

    /// The one numeric placeholder this template is, alone.
    fn alone_number(&self) -> Option<&Placeholder> {
        match self.pieces.as_slice() {
            [Piece::Value(p)] if p.is_number() => Some(p),
            _ => None,
        }
    }
}

fn value(placeholder: &Placeholder, values: &Values<'_>) -> Result<String, MissingCapture> {
    let named = |map: &BTreeMap<String, String>, name: &str| map.get(name).cloned();
    Ok(match placeholder {
        Placeholder::ProbeId => values.probe_id.to_owned(),
        Placeholder::NowMs => values.started.timestamp_millis().to_string(),
        Placeholder::NowS => values.started.timestamp().to_string(),
        Placeholder::RandomU32 => values.random_u32.to_string(),
        Placeholder::Uuid => values.uuid.to_owned(),
        // Names are checked against the config when it is read
        // (`HttpSettings::problems`), so only a capture can be missing.
        Placeholder::Var(name) => named(values.variables, name).unwrap_or_default(),
        Placeholder::Secret(name) => named(values.secrets, name).unwrap_or_default(),
        Placeholder::Capture(name) => {
            named(values.captures, name).ok_or_else(|| MissingCapture(name.clone()))?
        }
    })
}

/// What a path's placeholder value is encoded as: one segment's text, so
/// that a value holding `/`, `?` or `#` cannot change the request.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn path_segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A JSON body with templates in its strings (keys stay as written).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// From the TOML value of a `body` (a table, an array or a value).
    pub fn from_toml(value: &toml::Value) -> Result<JsonTemplate, String> {
        Ok(match value {
            toml::Value::String(s) => {
                let template = Template::parse(s)?;
                if template.placeholders().next().is_none() {
                    JsonTemplate::Literal(Value::String(s.clone()))
                } else {
                    JsonTemplate::Text(template)
                }
            }
            toml::Value::Integer(i) => JsonTemplate::Literal(Value::from(*i)),
            toml::Value::Float(f) => JsonTemplate::Literal(Value::from(*f)),
            toml::Value::Boolean(b) => JsonTemplate::Literal(Value::Bool(*b)),
            toml::Value::Datetime(d) => JsonTemplate::Literal(Value::String(d.to_string())),
            toml::Value::Array(items) => JsonTemplate::Array(
                items
                    .iter()
                    .map(JsonTemplate::from_toml)
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(table) => JsonTemplate::Object(
                table
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), JsonTemplate::from_toml(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    pub fn placeholders(&self) -> Vec<&Placeholder> {
        match self {
            JsonTemplate::Literal(_) => Vec::new(),
            JsonTemplate::Text(t) => t.placeholders().collect(),
            JsonTemplate::Array(items) => items.iter().flat_map(|i| i.placeholders()).collect(),
            JsonTemplate::Object(fields) => {
                fields.iter().flat_map(|(_, v)| v.placeholders()).collect()
            }
        }
    }

    pub fn render(&self, values: &Values<'_>) -> Result<Value, MissingCapture> {
        Ok(match self {
            JsonTemplate::Literal(v) => v.clone(),
            JsonTemplate::Text(t) => {
                let text = t.render(values)?;
                match t.alone_number().and(text.parse::<u64>().ok()) {
                    Some(number) => Value::from(number),
                    None => Value::String(text),
                }
            }
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(values))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(values)?)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// A random version 4 UUID, as text.
pub fn uuid_v4() -> String {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values<'a>(
        variables: &'a BTreeMap<String, String>,
        captures: &'a BTreeMap<String, String>,
    ) -> Values<'a> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        Values {
            probe_id: "00000000000000ab",
            started: DateTime::from_timestamp_millis(1_780_000_000_123).unwrap(),
            random_u32: 7,
            uuid: "u",
            variables,
            secrets: &NONE,
            captures,
        }
    }

    #[test]
    fn placeholders_render_and_unknown_ones_are_named() {
        let vars = BTreeMap::from([("user".to_owned(), "a/b?c".to_owned())]);
        let none = BTreeMap::new();
        let t = Template::parse("/users/{{var.user}}/x/{{ now_s }}").unwrap();
        assert_eq!(
            t.render_with(&values(&vars, &none), path_segment).unwrap(),
            "/users/a%2Fb%3Fc/x/1780000000"
        );
        assert!(
            Template::parse("{{nope}}")
                .unwrap_err()
                .contains("unknown placeholder {{nope}}")
        );
        assert!(
            Template::parse("a {{var.x")
                .unwrap_err()
                .contains("without")
        );
        let t = Template::parse("{{capture.token}}").unwrap();
        assert_eq!(
            t.render(&values(&vars, &none)),
            Err(MissingCapture("token".into()))
        );
    }

    #[test]
    fn a_numeric_placeholder_alone_is_a_json_number() {
        let none = BTreeMap::new();
        let body: toml::Value =
            toml::from_str("a = \"{{now_ms}}\"\nb = \"at {{now_ms}}\"\nc = [1, true]").unwrap();
        let json = JsonTemplate::from_toml(&body)
            .unwrap()
            .render(&values(&none, &none))
            .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"a": 1_780_000_000_123_u64, "b": "at 1780000000123", "c": [1, true]})
        );
    }

    proptest! {
        /// Whatever a variable holds, the body is valid JSON whose string
        /// carries the value exactly: nothing is pasted into JSON text.
        #[test]
        fn templates_never_emit_an_unescaped_value(value in any::<String>(), prefix in "[ -~]{0,8}") {
            let vars = BTreeMap::from([("v".to_owned(), value.clone())]);
            let none = BTreeMap::new();
            let mut table = toml::Table::new();
            table.insert("m".into(), toml::Value::String(format!("{}{{{{var.v}}}}", prefix.replace('{', "("))));
            let body = JsonTemplate::from_toml(&toml::Value::Table(table)).unwrap();
            let text = serde_json::to_string(&body.render(&values(&vars, &none)).unwrap()).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let expected = format!("{}{}", prefix.replace('{', "("), value);
            prop_assert_eq!(parsed["m"].as_str(), Some(expected.as_str()));
            prop_assert_eq!(parsed.as_object().map(|o| o.len()), Some(1));
        }

        /// A path value stays inside its segment, whatever it holds.
        #[test]
        fn a_path_value_stays_one_segment(value in any::<String>()) {
            let encoded = path_segment(&value);
            prop_assert!(!encoded.contains(['/', '?', '#', ' ']));
            let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().unwrap();
            prop_assert_eq!(decoded, value);
        }
    }
}
