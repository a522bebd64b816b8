//! An `http` target's classification table (docs/providers.md "Adding a
//! provider without code"): rules on an answer's HTTP status, its JSON body
//! and its text, or on a transport error, each giving one of improbe's
//! outcomes. The first rule that matches wins; after the config's rules
//! come [`defaults`], which match every answer, so every answer gets
//! exactly one outcome.

use serde::Deserialize;
use serde_json::Value;

use crate::attempt::{InconclusiveReason, Outcome};

/// The most bytes of a body a rule's regular expression reads.
pub const REGEX_READS_AT_MOST: usize = 64 * 1024;
/// The largest compiled regular expression a rule may have.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// What failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// No connection: refused, unreachable, DNS, TLS handshake.
    Connect,
    /// No answer within the attempt's timeout.
    Timeout,
    /// The connection broke while the request or answer was under way.
    Reset,
    /// Any of them.
    Any,
}

/// What an operation got back.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    Http {
        status: u16,
        body: &'a [u8],
        json: Option<&'a Value>,
    },
    Transport(Transport),
}

/// HTTP statuses a rule matches: `404`, `"500-599"` or `[401, 403]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statuses(Vec<(u16, u16)>);

impl Statuses {
    fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

impl<'de> Deserialize<'de> for Statuses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum One {
            Code(i64),
            Range(String),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(One),
            List(Vec<One>),
        }
        let one = |o: One| -> Result<(u16, u16), String> {
            let (low, high) = match o {
                One::Code(c) => (c, c),
                One::Range(text) => {
                    let (a, b) = text
                        .split_once('-')
                        .ok_or_else(|| format!("{text:?} is not a range like \"500-599\""))?;
                    let parse = |s: &str| {
                        s.trim()
                            .parse::<i64>()
                            .map_err(|_| format!("{text:?} is not a range like \"500-599\""))
                    };
                    (parse(a)?, parse(b)?)
                }
            };
            if !(100..=599).contains(&low) || !(100..=599).contains(&high) || low > high {
                return Err(format!(
                    "HTTP statuses are 100 to 599, a range low to high: {low}-{high}"
                ));
            }
            Ok((low as u16, high as u16))
        };
        let list = match Raw::deserialize(d)? {
            Raw::One(o) => vec![o],
            Raw::List(l) if l.is_empty() => {
                return Err(serde::de::Error::custom("an empty list matches nothing"));
            }
            Raw::List(l) => l,
        };
        list.into_iter()
            .map(one)
            .collect::<Result<_, _>>()
            .map(Statuses)
            .map_err(serde::de::Error::custom)
    }
}

/// A test on the value at a JSON pointer of the body.
#[derive(Debug, Clone)]
pub enum JsonTest {
    Equals(Value),
    In(Vec<Value>),
    Present,
    Absent,
}

/// One rule: every condition it has must hold.
#[derive(Debug, Clone)]
pub struct Rule {
    pub transport: Option<Transport>,
    pub status: Option<Statuses>,
    pub json: Option<(String, JsonTest)>,
    pub body_matches: Option<regex_lite::Regex>,
    pub outcome: Outcome,
    pub reason: Option<InconclusiveReason>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    transport: Option<Transport>,
    status: Option<Statuses>,
    /// A JSON pointer into the body, e.g. `/code`.
    json: Option<String>,
    equals: Option<Value>,
    #[serde(rename = "in")]
    in_list: Option<Vec<Value>>,
    present: Option<bool>,
    body_matches: Option<String>,
    outcome: RawOutcome,
    reason: Option<RawReason>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawOutcome {
    Ok,
    Fail,
    Inconclusive,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawReason {
    Credentials,
    RequestRejected,
    Throttled,
    LocalNetwork,
    Prober,
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRule::deserialize(d)?;
        Rule::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl Rule {
    fn from_raw(raw: RawRule) -> Result<Rule, String> {
        let outcome = match raw.outcome {
            RawOutcome::Ok => Outcome::Ok,
            RawOutcome::Fail => Outcome::Fail,
            RawOutcome::Inconclusive => Outcome::Inconclusive,
        };
        let reason = raw.reason.map(|r| match r {
            RawReason::Credentials => InconclusiveReason::Credentials,
            RawReason::RequestRejected => InconclusiveReason::RequestRejected,
            RawReason::Throttled => InconclusiveReason::Throttled,
            RawReason::LocalNetwork => InconclusiveReason::LocalNetwork,
            RawReason::Prober => InconclusiveReason::Prober,
        });
        match (outcome, reason) {
            (Outcome::Inconclusive, None) => {
                return Err("outcome = \"inconclusive\" needs a reason: credentials, \
                            request_rejected, throttled, local_network or prober"
                    .into());
            }
            (Outcome::Ok | Outcome::Fail, Some(_)) => {
                return Err("a reason is only for outcome = \"inconclusive\"".into());
            }
            _ => {}
        }
        let tests = [
            raw.equals.map(JsonTest::Equals),
            raw.in_list.map(JsonTest::In),
            raw.present.map(|p| {
                if p {
                    JsonTest::Present
                } else {
                    JsonTest::Absent
                }
            }),
        ];
        let mut tests = tests.into_iter().flatten();
        let test = tests.next();
        if tests.next().is_some() {
            return Err("a rule tests its `json` value one way: equals, in or present".into());
        }
        let json = match (raw.json, test) {
            (Some(pointer), Some(test)) => Some((json_pointer("json", &pointer)?, test)),
            (Some(_), None) => {
                return Err("json needs equals, in or present to say what it tests".into());
            }
            (None, Some(_)) => {
                return Err(
                    "equals, in and present test the `json` pointer: add json = \"/...\"".into(),
                );
            }
            (None, None) => None,
        };
        let body_matches = raw
            .body_matches
            .map(|pattern| {
                regex_lite::RegexBuilder::new(&pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .nest_limit(50)
                    .build()
                    .map_err(|e| format!("body_matches: {e}"))
            })
            .transpose()?;
        if raw.transport.is_some()
            && (raw.status.is_some() || json.is_some() || body_matches.is_some())
        {
            return Err(
                "a transport rule matches errors without an answer: no status, json or body_matches"
                    .into(),
            );
        }
        Ok(Rule {
            transport: raw.transport,
            status: raw.status,
            json,
            body_matches,
            outcome,
            reason,
        })
    }

    fn matches(&self, answer: &Answer<'_>) -> bool {
        match answer {
            Answer::Transport(kind) => self
                .transport
                .is_some_and(|t| t == Transport::Any || t == *kind),
            Answer::Http { status, body, json } => {
                if self.transport.is_some() {
                    return false;
                }
                if self.status.as_ref().is_some_and(|s| !s.contains(*status)) {
                    return false;
                }
                if let Some((pointer, test)) = &self.json {
                    let found = json.and_then(|j| j.pointer(pointer));
                    let holds = match test {
                        JsonTest::Equals(v) => found.is_some_and(|f| same_value(f, v)),
                        JsonTest::In(list) => {
                            found.is_some_and(|f| list.iter().any(|v| same_value(f, v)))
                        }
                        JsonTest::Present => found.is_some_and(|f| !f.is_null()),
                        JsonTest::Absent => found.is_none_or(Value::is_null),
                    };
                    if !holds {
                        return false;
                    }
                }
                if let Some(regex) = &self.body_matches {
                    let read = &body[..body.len().min(REGEX_READS_AT_MOST)];
                    if !regex.is_match(&String::from_utf8_lossy(read)) {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// The codes this rule names at `pointer`, as an error code is recorded.
    pub fn names_code(&self, pointer: &str, code: &str) -> bool {
        match &self.json {
            Some((p, JsonTest::Equals(v))) if p == pointer => code_text(v) == code,
            Some((p, JsonTest::In(list))) if p == pointer => {
                list.iter().any(|v| code_text(v) == code)
            }
            _ => false,
        }
    }
}

/// Numbers compare by value (`400108` equals `400108.0`), everything else
/// exactly; a code given as text matches the same number in the body.
fn same_value(found: &Value, wanted: &Value) -> bool {
    match (found, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
            a == &b.to_string()
        }
        _ => found == wanted,
    }
}

/// `pointer` if it is a JSON pointer (RFC 6901: empty, or starting with
/// `/`), or what is wrong with `field = pointer`.
pub fn json_pointer(field: &str, pointer: &str) -> Result<String, String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(pointer.to_owned())
    } else {
        Err(format!(
            "{field} = {pointer:?} is not a JSON pointer (\"/code\", \"/data/token\")"
        ))
    }
}

/// How an error code is recorded: a string as it is, anything else as JSON.
pub fn code_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rules after the config's (docs/providers.md): a transport error
/// fails; 2xx is ok; 401 and 403 are our credentials; 429 is throttling;
/// any other 4xx is a request the provider rejected; everything else
/// (5xx, and a 1xx or 3xx the client did not follow) fails.
pub fn defaults() -> Vec<Rule> {
    let rule = |transport, status: Option<Vec<(u16, u16)>>, outcome, reason| Rule {
        transport,
        status: status.map(Statuses),
        json: None,
        body_matches: None,
        outcome,
        reason,
    };
    vec![
        rule(Some(Transport::Any), None, Outcome::Fail, None),
        rule(None, Some(vec![(200, 299)]), Outcome::Ok, None),
        rule(
            None,
            Some(vec![(401, 401), (403, 403)]),
            Outcome::Inconclusive,
            Some(InconclusiveReason::Credentials),
        ),
        rule(
            None,
            Some(vec![(429, 429)]),
            Outcome::Inconclusive,
            Some(InconclusiveReason::Throttled),
        ),
        rule(
            None,
            Some(vec![(400, 499)]),
            Outcome::Inconclusive,
            Some(InconclusiveReason::RequestRejected),
        ),
        rule(None, None, Outcome::Fail, None),
    ]
}

/// The first of `rules`, then of [`defaults`], that matches: every answer
/// gets one.
pub fn classify<'r>(rules: &'r [Rule], fallback: &'r [Rule], answer: &Answer<'_>) -> &'r Rule {
    rules
        .iter()
        .chain(fallback)
        .find(|rule| rule.matches(answer))
        .expect(
            "the defaults end with a rule that matches any answer, and one for any transport error",
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(toml_text: &str) -> Result<Vec<Rule>, String> {
        #[derive(Deserialize)]
        struct Table {
            classify: Vec<Rule>,
        }
        toml::from_str::<Table>(toml_text)
            .map(|t| t.classify)
            .map_err(|e| e.to_string())
    }

    fn http<'a>(status: u16, body: &'a [u8], json: Option<&'a Value>) -> Answer<'a> {
        Answer::Http { status, body, json }
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let d = defaults();
        let of = |a: Answer<'_>| {
            let r = classify(&[], &d, &a);
            (r.outcome, r.reason)
        };
        use InconclusiveReason::*;
        assert_eq!(of(http(200, b"", None)), (Outcome::Ok, None));
        assert_eq!(of(http(503, b"", None)), (Outcome::Fail, None));
        assert_eq!(
            of(http(401, b"", None)),
            (Outcome::Inconclusive, Some(Credentials))
        );
        assert_eq!(
            of(http(403, b"", None)),
            (Outcome::Inconclusive, Some(Credentials))
        );
        assert_eq!(
            of(http(429, b"", None)),
            (Outcome::Inconclusive, Some(Throttled))
        );
        assert_eq!(
            of(http(404, b"", None)),
            (Outcome::Inconclusive, Some(RequestRejected))
        );
        assert_eq!(of(http(302, b"", None)), (Outcome::Fail, None));
        assert_eq!(
            of(Answer::Transport(Transport::Timeout)),
            (Outcome::Fail, None)
        );
        assert_eq!(
            of(Answer::Transport(Transport::Reset)),
            (Outcome::Fail, None)
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let table = rules(
            r#"
            [[classify]]
            status = 200
            json = "/errCode"
            equals = 0
            outcome = "ok"
            [[classify]]
            json = "/errCode"
            in = [1001, "1002"]
            outcome = "inconclusive"
            reason = "credentials"
            [[classify]]
            status = "200-299"
            json = "/errCode"
            present = true
            outcome = "fail"
            [[classify]]
            body_matches = "(?i)maintenance"
            outcome = "fail"
            "#,
        )
        .unwrap();
        let d = defaults();
        let of = |status, body: &str| {
            let json: Option<Value> = serde_json::from_str(body).ok();
            let r = classify(&table, &d, &http(status, body.as_bytes(), json.as_ref()));
            (r.outcome, r.reason)
        };
        assert_eq!(of(200, r#"{"errCode":0}"#), (Outcome::Ok, None));
        assert_eq!(
            of(200, r#"{"errCode":1002}"#),
            (Outcome::Inconclusive, Some(InconclusiveReason::Credentials))
        );
        assert_eq!(of(200, r#"{"errCode":500}"#), (Outcome::Fail, None));
        assert_eq!(of(200, r#"{"data":1}"#), (Outcome::Ok, None));
        assert_eq!(of(403, "under Maintenance"), (Outcome::Fail, None));
        assert!(table[1].names_code("/errCode", "1001"));
        assert!(table[1].names_code("/errCode", "1002"));
        assert!(!table[1].names_code("/errCode", "1003"));
    }

    #[test]
    fn a_bad_rule_is_named() {
        for (text, says) in [
            ("status = 700\noutcome = \"fail\"", "100 to 599"),
            ("status = \"5xx\"\noutcome = \"fail\"", "not a range"),
            ("outcome = \"inconclusive\"", "needs a reason"),
            ("outcome = \"fail\"\nreason = \"throttled\"", "only for"),
            (
                "json = \"code\"\nequals = 1\noutcome = \"fail\"",
                "not a JSON pointer",
            ),
            ("json = \"/code\"\noutcome = \"fail\"", "needs equals"),
            ("equals = 1\noutcome = \"fail\"", "add json"),
            ("body_matches = \"(\"\noutcome = \"fail\"", "body_matches"),
            (
                "transport = \"timeout\"\nstatus = 500\noutcome = \"fail\"",
                "transport rule",
            ),
            ("outcome = \"maybe\"", "unknown variant"),
            ("outcome = \"fail\"\ncolour = 1", "unknown field"),
        ] {
            let err = rules(&format!("[[classify]]\n{text}")).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    fn any_rule() -> impl Strategy<Value = Rule> {
        let outcome = prop_oneof![
            Just((Outcome::Ok, None)),
            Just((Outcome::Fail, None)),
            Just((Outcome::Inconclusive, Some(InconclusiveReason::Throttled))),
        ];
        (
            proptest::option::of(100_u16..600),
            proptest::option::of(0_i64..5),
            any::<bool>(),
            outcome,
        )
            .prop_map(|(status, code, transport, (outcome, reason))| Rule {
                transport: transport.then_some(Transport::Timeout),
                status: if transport {
                    None
                } else {
                    status.map(|s| Statuses(vec![(s, s)]))
                },
                json: if transport {
                    None
                } else {
                    code.map(|c| ("/code".to_owned(), JsonTest::Equals(Value::from(c))))
                },
                body_matches: None,
                outcome,
                reason,
            })
    }

    proptest! {
        /// Whatever the table and the answer, exactly one rule decides, and
        /// it is the first that matches.
        #[test]
        fn classification_is_total(
            table in proptest::collection::vec(any_rule(), 0..6),
            status in 100_u16..600,
            code in proptest::option::of(0_i64..5),
            transport in proptest::option::of(prop_oneof![
                Just(Transport::Connect), Just(Transport::Timeout), Just(Transport::Reset)
            ]),
        ) {
            let d = defaults();
            let json = code.map(|c| serde_json::json!({"code": c}));
            let body = json.as_ref().map(|j| j.to_string()).unwrap_or_default();
            let answer = match transport {
                Some(t) => Answer::Transport(t),
                None => http(status, body.as_bytes(), json.as_ref()),
            };
            let chosen = classify(&table, &d, &answer);
            let first = table.iter().chain(&d).position(|r| r.matches(&answer)).unwrap();
            let all: Vec<&Rule> = table.iter().chain(&d).collect();
            prop_assert!(std::ptr::eq(chosen, all[first]));
            prop_assert_eq!(chosen.outcome == Outcome::Inconclusive, chosen.reason.is_some());
        }
    }
}
