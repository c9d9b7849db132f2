//! Row filters at run time: what `#[sync(filter = "..")]` generates
//! ([`FilterSpec`]), the parameters a run is given ([`Params`]), decoded by their
//! column's type before anything runs, and one evaluator of the predicate on a row
//! of values ([`FilterSpec::evaluate`]), with SQL's three-valued NULL logic, for the
//! modes that see changed rows rather than query them.
//!
//! The SQL the derive generates reads every bound value back as
//! `current_setting('data_sync.fN')::type`; [`FilterSpec::settings`] gives the
//! `(name, value)` pairs a run binds to `set_config` at the start of its snapshot.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A row filter, generated at compile time.
#[derive(Debug)]
pub struct FilterSpec {
    /// The filter as written in the mapping.
    pub text: &'static str,
    /// The filter as SQL: identifiers quoted, every value a bound setting.
    pub condition: &'static str,
    /// The values the condition reads, slot `i` from setting `data_sync.f{i + 1}`.
    pub slots: &'static [FilterSlot],
    /// The predicate, for [`FilterSpec::evaluate`].
    pub predicate: &'static Predicate,
}

/// One value a filter binds.
#[derive(Debug)]
pub struct FilterSlot {
    /// The setting it is bound to: `data_sync.f1`, ...
    pub setting: &'static str,
    /// A literal of the filter, or a parameter given at run time.
    pub value: SlotValue,
    /// The type it is compared as.
    pub ty: FilterType,
    /// The field (in `SourceSpec::columns`) it is first compared with.
    pub field: usize,
}

/// Where a bound value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotValue {
    /// A literal of the filter text.
    Literal(&'static str),
    /// `$name`: `--param name=value` or `SyncJob::param`.
    Parameter(&'static str),
}

/// The type a filter compares a column as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterType {
    /// `smallint`, `integer`, `bigint`, compared as `bigint`.
    Integer,
    /// `real`, `double precision`.
    Float,
    /// `numeric`.
    Numeric,
    /// `boolean`.
    Boolean,
    /// Text types, and enums as their label.
    Text,
    /// `uuid`.
    Uuid,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `timestamp without time zone`.
    Timestamp,
    /// `date`.
    Date,
    /// `time without time zone`.
    Time,
    /// `interval`.
    Interval,
    /// `inet` and `cidr`.
    Inet,
}

impl fmt::Display for FilterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterType::Integer => "bigint",
            FilterType::Float => "double precision",
            FilterType::Numeric => "numeric",
            FilterType::Boolean => "boolean",
            FilterType::Text => "text",
            FilterType::Uuid => "uuid",
            FilterType::Timestamptz => "timestamp with time zone",
            FilterType::Timestamp => "timestamp without time zone",
            FilterType::Date => "date",
            FilterType::Time => "time without time zone",
            FilterType::Interval => "interval",
            FilterType::Inet => "inet",
        })
    }
}

/// A predicate of the filter subset.
#[derive(Debug)]
pub enum Predicate {
    /// `a AND b`.
    And(&'static Predicate, &'static Predicate),
    /// `a OR b`.
    Or(&'static Predicate, &'static Predicate),
    /// `NOT a`.
    Not(&'static Predicate),
    /// `a = b`, `a < b`, ...
    Compare {
        /// The left side.
        left: Operand,
        /// The operator.
        op: CompareOp,
        /// The right side.
        right: Operand,
    },
    /// `a [NOT] IN (..)`.
    In {
        /// The value looked for.
        operand: Operand,
        /// The list.
        list: &'static [Operand],
        /// `NOT IN`.
        negated: bool,
    },
    /// `a [NOT] BETWEEN low AND high`.
    Between {
        /// The value tested.
        operand: Operand,
        /// The lower bound, inclusive.
        low: Operand,
        /// The upper bound, inclusive.
        high: Operand,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `a [NOT] LIKE pattern` (`%`, `_`, `\` escapes).
    Like {
        /// The text tested.
        operand: Operand,
        /// The pattern.
        pattern: Operand,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `a IS [NOT] NULL`.
    IsNull {
        /// The value tested.
        operand: Operand,
        /// `IS NOT NULL`.
        negated: bool,
    },
}

/// A value of a predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The field at this index of `SourceSpec::columns`.
    Field(usize),
    /// The bound value at this index of [`FilterSpec::slots`].
    Slot(usize),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`.
    Eq,
    /// `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
}

/// The parameters of a run, by name: `--param tenant=7`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Params::default()
    }

    /// Sets parameter `name` (without `$`) to `value`, as its column's type reads it.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether no parameter is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every parameter, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Why the parameters do not fit a mapping's filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// The filter uses `$name`, and no value was given.
    Missing {
        /// The parameter.
        name: String,
    },
    /// A value does not read as its column's type.
    Invalid {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// The type it is compared as.
        ty: FilterType,
        /// Why not.
        reason: String,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Missing { name } => write!(
                f,
                "the filter uses parameter `${name}`: give it with `--param {name}=VALUE`"
            ),
            ParamError::Invalid {
                name,
                value,
                ty,
                reason,
            } => write!(
                f,
                "parameter `{name}`: `{value}` is not a `{ty}` value: {reason}"
            ),
        }
    }
}

impl std::error::Error for ParamError {}

/// The parameters of `params` that `filter` uses, as the target's state records
/// them: a JSON object in name order (`{"tenant":"7"}`), or `None` without any.
pub(crate) fn identity(filter: Option<&FilterSpec>, params: &Params) -> Option<String> {
    let filter = filter?;
    let used: BTreeMap<&str, &str> = params
        .iter()
        .filter(|(name, _)| filter.parameters().any(|parameter| parameter == *name))
        .collect();
    (!used.is_empty()).then(|| serde_json::to_string(&used).unwrap_or_default())
}

/// The parameters a target's state recorded ([`identity`]); none for a state
/// without any, or one that does not read.
pub(crate) fn from_identity(identity: Option<&str>) -> Params {
    let values: BTreeMap<String, String> = identity
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    Params { values }
}

/// An [`identity`] as messages spell it: `tenant=7, region=eu`, or `no parameters`.
pub(crate) fn spell_identity(identity: Option<&str>) -> String {
    let params = from_identity(identity);
    if params.is_empty() {
        return "no parameters".to_owned();
    }
    params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl FilterSpec {
    /// Sets each setting `$1[i]` to value `$2[i]` for the transaction, both bound:
    /// the values never become SQL text.
    pub const BIND: &'static str = "SELECT set_config(setting.name, setting.value, true) FROM unnest($1::text[], $2::text[]) AS setting(name, value)";

    /// The `(setting, value)` pairs a run binds before it reads, every value
    /// decoded by its type, each parameter named in its error. Parameters the
    /// filter does not use are left alone (a run of several mappings shares them).
    ///
    /// # Errors
    ///
    /// A missing parameter, or a value its column's type does not read.
    pub fn settings(&self, params: &Params) -> Result<Vec<(&'static str, String)>, ParamError> {
        self.slots
            .iter()
            .map(|slot| {
                let (name, text) = match slot.value {
                    SlotValue::Literal(text) => (None, text),
                    SlotValue::Parameter(name) => match params.get(name) {
                        Some(value) => (Some(name), value),
                        None => {
                            return Err(ParamError::Missing {
                                name: name.to_owned(),
                            });
                        }
                    },
                };
                let value = decode(slot.ty, text).map_err(|reason| ParamError::Invalid {
                    name: name.unwrap_or("").to_owned(),
                    value: text.to_owned(),
                    ty: slot.ty,
                    reason,
                })?;
                Ok((slot.setting, value))
            })
            .collect()
    }

    /// The parameters this filter uses, in slot order.
    pub fn parameters(&self) -> impl Iterator<Item = &'static str> {
        self.slots.iter().filter_map(|slot| match slot.value {
            SlotValue::Parameter(name) => Some(name),
            SlotValue::Literal(_) => None,
        })
    }

    /// Evaluates the predicate on one row, as PostgreSQL would: `Some(true)` keeps
    /// the row, `Some(false)` and `None` (SQL's unknown, from a NULL) drop it.
    ///
    /// `field(i)` gives field `i`'s value in PostgreSQL's text output form (with
    /// `DateStyle = ISO` for dates and times), or `None` for NULL; `settings` are
    /// the values [`FilterSpec::settings`] returned. Text compares by bytes (the
    /// `C` collation); `interval` and `inet` values compare for equality only.
    ///
    /// # Errors
    ///
    /// A value that does not read as its type, or an ordering of `interval` or
    /// `inet` values.
    pub fn evaluate<'a>(
        &self,
        field: &dyn Fn(usize) -> Option<&'a str>,
        settings: &'a [(&'static str, String)],
    ) -> Result<Option<bool>, String> {
        let mut context = Evaluation {
            spec: self,
            field,
            settings,
        };
        context.predicate(self.predicate)
    }
}

/// Reads `text` as a value of `ty`, returning the text PostgreSQL's input function
/// reads (booleans as `true`/`false`), or why it is not one.
pub fn decode(ty: FilterType, text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let fail = |what: &str| -> Result<String, String> { Err(format!("expected {what}")) };
    match ty {
        FilterType::Integer => match trimmed.parse::<i64>() {
            Ok(value) => Ok(value.to_string()),
            Err(_) => fail("an integer such as `42`"),
        },
        FilterType::Float => match trimmed.parse::<f64>() {
            Ok(_) => Ok(trimmed.to_owned()),
            Err(_) => fail("a number such as `1.5`"),
        },
        FilterType::Numeric => match Decimal::parse(trimmed) {
            Some(_) => Ok(trimmed.to_owned()),
            None => fail("a decimal number such as `12.50`"),
        },
        FilterType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => Ok("true".to_owned()),
            "f" | "false" | "no" | "n" | "off" | "0" => Ok("false".to_owned()),
            _ => fail("`true` or `false`"),
        },
        FilterType::Text => Ok(text.to_owned()),
        FilterType::Uuid => match uuid_hex(trimmed) {
            Some(hex) => Ok(format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )),
            None => fail("a UUID such as `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`"),
        },
        FilterType::Timestamptz => match timestamptz_micros(trimmed) {
            Some(_) => Ok(trimmed.to_owned()),
            None => fail("a timestamp with a zone such as `2024-05-01T12:00:00Z`"),
        },
        FilterType::Timestamp => match timestamp_micros(trimmed) {
            Some(_) => Ok(trimmed.to_owned()),
            None => fail("a timestamp such as `2024-05-01 12:00:00`"),
        },
        FilterType::Date => match date_days(trimmed) {
            Some(_) => Ok(trimmed.to_owned()),
            None => fail("a date such as `2024-05-01`"),
        },
        FilterType::Time => match time_micros(trimmed) {
            Some(_) => Ok(trimmed.to_owned()),
            None => fail("a time such as `12:30:00`"),
        },
        FilterType::Interval => {
            if trimmed.is_empty() {
                fail("an interval such as `1 day`")
            } else {
                Ok(trimmed.to_owned())
            }
        }
        FilterType::Inet => {
            let address = trimmed
                .split_once('/')
                .map_or(trimmed, |(address, _)| address);
            match address.parse::<std::net::IpAddr>() {
                Ok(_) => Ok(trimmed.to_owned()),
                Err(_) => fail("an IP address such as `10.0.0.1` or `10.0.0.0/8`"),
            }
        }
    }
}

struct Evaluation<'e, 'a> {
    spec: &'e FilterSpec,
    field: &'e dyn Fn(usize) -> Option<&'a str>,
    settings: &'a [(&'static str, String)],
}

impl<'a> Evaluation<'_, 'a> {
    fn predicate(&mut self, predicate: &Predicate) -> Result<Option<bool>, String> {
        Ok(match predicate {
            Predicate::And(left, right) => {
                let left = self.predicate(left)?;
                if left == Some(false) {
                    return Ok(Some(false));
                }
                match (left, self.predicate(right)?) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }
            }
            Predicate::Or(left, right) => {
                let left = self.predicate(left)?;
                if left == Some(true) {
                    return Ok(Some(true));
                }
                match (left, self.predicate(right)?) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }
            }
            Predicate::Not(inner) => self.predicate(inner)?.map(|value| !value),
            Predicate::Compare { left, op, right } => {
                let ty = self.type_of(&[*left, *right]);
                let (Some(left), Some(right)) = (self.operand(*left), self.operand(*right)) else {
                    return Ok(None);
                };
                let ordering = compare(
                    ty,
                    left,
                    right,
                    *op != CompareOp::Eq && *op != CompareOp::NotEq,
                )?;
                Some(match op {
                    CompareOp::Eq => ordering == Ordering::Equal,
                    CompareOp::NotEq => ordering != Ordering::Equal,
                    CompareOp::Lt => ordering == Ordering::Less,
                    CompareOp::LtEq => ordering != Ordering::Greater,
                    CompareOp::Gt => ordering == Ordering::Greater,
                    CompareOp::GtEq => ordering != Ordering::Less,
                })
            }
            Predicate::In {
                operand,
                list,
                negated,
            } => {
                let mut all = vec![*operand];
                all.extend_from_slice(list);
                let ty = self.type_of(&all);
                let Some(value) = self.operand(*operand) else {
                    return Ok(None);
                };
                // `x IN (a, b)` is `x = a OR x = b`: true if one is equal, else
                // unknown if one is NULL, else false.
                let mut result = Some(false);
                for item in list.iter() {
                    match self.operand(*item) {
                        None => result = None,
                        Some(item) => {
                            if compare(ty, value, item, false)? == Ordering::Equal {
                                result = Some(true);
                                break;
                            }
                        }
                    }
                }
                result.map(|found| found != *negated)
            }
            Predicate::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let ty = self.type_of(&[*operand, *low, *high]);
                let value = self.operand(*operand);
                let at_least = self.compare_bound(ty, value, self.operand(*low), Ordering::Less)?;
                let at_most =
                    self.compare_bound(ty, value, self.operand(*high), Ordering::Greater)?;
                let inside = match (at_least, at_most) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                inside.map(|inside| inside != *negated)
            }
            Predicate::Like {
                operand,
                pattern,
                negated,
            } => {
                let (Some(value), Some(pattern)) = (self.operand(*operand), self.operand(*pattern))
                else {
                    return Ok(None);
                };
                Some(like(value.as_bytes(), pattern.as_bytes()) != *negated)
            }
            Predicate::IsNull { operand, negated } => {
                Some(self.operand(*operand).is_none() != *negated)
            }
        })
    }

    /// Whether `value` is not `excluded` relative to `bound` (`None` for NULL).
    fn compare_bound(
        &self,
        ty: FilterType,
        value: Option<&str>,
        bound: Option<&str>,
        excluded: Ordering,
    ) -> Result<Option<bool>, String> {
        let (Some(value), Some(bound)) = (value, bound) else {
            return Ok(None);
        };
        Ok(Some(compare(ty, value, bound, true)? != excluded))
    }

    fn operand(&self, operand: Operand) -> Option<&'a str> {
        match operand {
            Operand::Field(index) => (self.field)(index),
            Operand::Slot(index) => self.settings.get(index).map(|(_, value)| value.as_str()),
        }
    }

    /// The type the operands compare as: that of the slot beside them, else text.
    fn type_of(&self, operands: &[Operand]) -> FilterType {
        operands
            .iter()
            .find_map(|operand| match operand {
                Operand::Slot(index) => self.spec.slots.get(*index).map(|slot| slot.ty),
                Operand::Field(_) => None,
            })
            .or_else(|| {
                operands.iter().find_map(|operand| match operand {
                    Operand::Field(field) => self
                        .spec
                        .slots
                        .iter()
                        .find(|slot| slot.field == *field)
                        .map(|slot| slot.ty),
                    Operand::Slot(_) => None,
                })
            })
            .unwrap_or(FilterType::Text)
    }
}

/// Orders two non-NULL values of `ty` given as text.
fn compare(ty: FilterType, left: &str, right: &str, ordered: bool) -> Result<Ordering, String> {
    let unreadable = |value: &str| format!("`{value}` is not a `{ty}` value");
    Ok(match ty {
        FilterType::Integer => {
            let parse = |value: &str| value.trim().parse::<i64>().map_err(|_| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Float => {
            let parse = |value: &str| parse_float(value).ok_or_else(|| unreadable(value));
            // PostgreSQL orders NaN above every number and equal to itself.
            let (left, right) = (parse(left)?, parse(right)?);
            match (left.is_nan(), right.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => left.partial_cmp(&right).unwrap_or(Ordering::Equal),
            }
        }
        FilterType::Numeric => {
            let parse = |value: &str| Decimal::parse(value.trim()).ok_or_else(|| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Boolean => {
            let parse = |value: &str| match decode(FilterType::Boolean, value) {
                Ok(text) => Ok(text == "true"),
                Err(_) => Err(unreadable(value)),
            };
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Text => left.as_bytes().cmp(right.as_bytes()),
        FilterType::Uuid => {
            let parse = |value: &str| uuid_hex(value.trim()).ok_or_else(|| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Timestamptz => {
            let parse =
                |value: &str| timestamptz_micros(value.trim()).ok_or_else(|| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Timestamp => {
            let parse =
                |value: &str| timestamp_micros(value.trim()).ok_or_else(|| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Date => {
            let parse = |value: &str| date_days(value.trim()).ok_or_else(|| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Time => {
            let parse = |value: &str| time_micros(value.trim()).ok_or_else(|| unreadable(value));
            parse(left)?.cmp(&parse(right)?)
        }
        FilterType::Interval | FilterType::Inet => {
            if ordered {
                return Err(format!(
                    "`{ty}` values compare for equality only outside PostgreSQL"
                ));
            }
            left.trim().cmp(right.trim())
        }
    })
}

/// The 32 lowercase hex digits of a UUID as PostgreSQL's input reads it (hyphens
/// anywhere between groups of four, optional braces); they order as its bytes do.
fn uuid_hex(text: &str) -> Option<String> {
    let inner = text
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(text);
    let hex: String = inner.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn parse_float(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// `LIKE` with `%`, `_` and `\` escapes, on bytes of UTF-8 text (a `_` matches one
/// character).
fn like(value: &[u8], pattern: &[u8]) -> bool {
    let value: Vec<char> = String::from_utf8_lossy(value).chars().collect();
    let pattern: Vec<char> = String::from_utf8_lossy(pattern).chars().collect();
    like_chars(&value, &pattern)
}

fn like_chars(value: &[char], pattern: &[char]) -> bool {
    match pattern.split_first() {
        None => value.is_empty(),
        Some(('%', rest)) => (0..=value.len()).any(|skip| like_chars(&value[skip..], rest)),
        Some(('_', rest)) => !value.is_empty() && like_chars(&value[1..], rest),
        Some(('\\', rest)) if !rest.is_empty() => {
            value.first() == rest.first() && like_chars(&value[1..], &rest[1..])
        }
        Some((literal, rest)) => value.first() == Some(literal) && like_chars(&value[1..], rest),
    }
}

/// Microseconds since the epoch of a timestamp with a zone: RFC 3339, or
/// PostgreSQL's ISO output (`2024-05-01 12:00:00.5+02`); infinities at the ends.
fn timestamptz_micros(text: &str) -> Option<i64> {
    match text {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let normalized = text.replacen(' ', "T", 1);
    // PostgreSQL prints `+02` or `+05:30`; RFC 3339 wants `+02:00`.
    let with_minutes = match normalized.rfind(['+', '-']) {
        Some(index) if index > 10 && normalized.len() - index == 3 => format!("{normalized}:00"),
        _ => normalized,
    };
    chrono::DateTime::parse_from_rfc3339(&with_minutes)
        .ok()
        .map(|value| value.timestamp_micros())
}

fn timestamp_micros(text: &str) -> Option<i64> {
    match text {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let normalized = text.replacen(' ', "T", 1);
    chrono::NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|value| value.and_utc().timestamp_micros())
}

fn date_days(text: &str) -> Option<i64> {
    match text {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|value| i64::from(value.num_days_from_ce()))
}

fn time_micros(text: &str) -> Option<i64> {
    use chrono::Timelike;
    chrono::NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .ok()
        .map(|value| {
            i64::from(value.num_seconds_from_midnight()) * 1_000_000
                + i64::from(value.nanosecond() / 1_000)
        })
}

use chrono::Datelike as _;

/// An exact decimal number for ordering: sign, digits without leading zeros
/// before the point, digits without trailing zeros after it; NaN above all.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    nan: bool,
    negative: bool,
    whole: String,
    fraction: String,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        if text.eq_ignore_ascii_case("nan") {
            return Some(Decimal {
                nan: true,
                negative: false,
                whole: String::new(),
                fraction: String::new(),
            });
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
            None => (digits, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return None;
        }
        // Move the point by the exponent: `1.5e3` is `1500`.
        let all: String = [whole, fraction].concat();
        let point = i64::try_from(whole.len()).ok()? + i64::from(exponent);
        let padded_left = usize::try_from((-point).max(0)).ok()?;
        let padded_right = usize::try_from((point - i64::try_from(all.len()).ok()?).max(0)).ok()?;
        let all = format!(
            "{}{all}{}",
            "0".repeat(padded_left),
            "0".repeat(padded_right)
        );
        let point = usize::try_from(point.max(0)).ok()?;
        let (whole, fraction) = all.split_at(point);
        let whole = whole.trim_start_matches('0').to_owned();
        let fraction = fraction.trim_end_matches('0').to_owned();
        let zero = whole.is_empty() && fraction.is_empty();
        Some(Decimal {
            nan: false,
            negative: negative && !zero,
            whole,
            fraction,
        })
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.nan, other.nan) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        if self.negative != other.negative {
            return if self.negative {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let magnitude = self
            .whole
            .len()
            .cmp(&other.whole.len())
            .then_with(|| self.whole.cmp(&other.whole))
            .then_with(|| self.fraction.cmp(&other.fraction));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests;
