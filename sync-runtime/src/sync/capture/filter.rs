//! A capture mapping's row filter, judged on each changed row with the runtime's one
//! evaluator ([`FilterSpec::evaluate`], SQL's three-valued NULL logic): an insert or
//! update whose new row matches is upserted, one whose new row does not (a row
//! leaving the filter) is deleted by key. A filter column the log sends as
//! "unchanged" (a TOASTed value the update did not touch) is never guessed: the row
//! is read again from the source, through the mapping's filtered SELECT.

use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::filter::{FilterSpec, Operand, Predicate};
use crate::spec::MappingSpec;
use crate::value::{Date, Decode, Numeric, Time, Timestamp, Timestamptz, Uuid};

/// What the filter says of a changed row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The new row matches: upsert it.
    Keep,
    /// It does not (false or unknown): delete its key.
    Leave,
    /// A column the filter reads was not sent: read the row again.
    Unsent,
}

/// Judges the new row `values` (binary, field order; `None` for NULL and for a value
/// not sent, which `unsent` marks) of mapping `spec` against its `filter`, with the
/// run's `settings` ([`FilterSpec::settings`]).
///
/// # Errors
///
/// [`Error::Capture`] naming the column when a value does not read as its type.
pub(crate) fn judge(
    spec: &MappingSpec,
    filter: &FilterSpec,
    settings: &[(&'static str, String)],
    types: &[Type],
    values: &[Option<&[u8]>],
    unsent: &[bool],
) -> Result<Verdict> {
    let fields = fields_of(filter);
    if fields.iter().any(|&field| unsent[field]) {
        return Ok(Verdict::Unsent);
    }
    let mut texts: Vec<Option<String>> = vec![None; values.len()];
    for &field in &fields {
        texts[field] = match values[field] {
            Some(raw) => Some(text(&types[field], raw).map_err(|error| Error::Capture {
                mapping: spec.name.to_owned(),
                message: format!(
                    "the filter cannot read column `{}` of a change: {error}",
                    spec.source.columns[field].name
                ),
            })?),
            None => None,
        };
    }
    let verdict = filter
        .evaluate(&|field| texts[field].as_deref(), settings)
        .map_err(|error| Error::Capture {
            mapping: spec.name.to_owned(),
            message: format!("the filter `{}` fails on a change: {error}", filter.text),
        })?;
    Ok(if verdict == Some(true) {
        Verdict::Keep
    } else {
        Verdict::Leave
    })
}

/// Checks, before anything is applied, that the log's values of every column the
/// filter reads can be judged (`types` in field order).
///
/// # Errors
///
/// [`Error::Capture`] naming the column and its type.
pub(crate) fn check_types(spec: &MappingSpec, types: &[Type]) -> Result<()> {
    let Some(filter) = &spec.source.filter else {
        return Ok(());
    };
    for field in fields_of(filter) {
        let ty = &types[field];
        if !judged(ty) {
            return Err(Error::Capture {
                mapping: spec.name.to_owned(),
                message: format!(
                    "the filter reads column `{}` of type `{}`, which change capture cannot \
                     judge a change by; filter on a column of a number, text, boolean, uuid, \
                     date or time type, or remove `capture`",
                    spec.source.columns[field].name,
                    ty.name()
                ),
            });
        }
    }
    Ok(())
}

/// The fields the filter reads, in the order they first appear.
fn fields_of(filter: &FilterSpec) -> Vec<usize> {
    fn walk(predicate: &Predicate, fields: &mut Vec<usize>) {
        let mut operand = |operand: &Operand| {
            if let Operand::Field(field) = *operand
                && !fields.contains(&field)
            {
                fields.push(field);
            }
        };
        match predicate {
            Predicate::And(left, right) | Predicate::Or(left, right) => {
                walk(left, fields);
                walk(right, fields);
            }
            Predicate::Not(inner) => walk(inner, fields),
            Predicate::Compare { left, right, .. } => {
                operand(left);
                operand(right);
            }
            Predicate::In {
                operand: tested,
                list,
                ..
            } => {
                operand(tested);
                list.iter().for_each(operand);
            }
            Predicate::Between {
                operand: tested,
                low,
                high,
                ..
            } => {
                operand(tested);
                operand(low);
                operand(high);
            }
            Predicate::Like {
                operand: tested,
                pattern,
                ..
            } => {
                operand(tested);
                operand(pattern);
            }
            Predicate::IsNull {
                operand: tested, ..
            } => operand(tested),
        }
    }
    let mut fields = Vec::new();
    walk(filter.predicate, &mut fields);
    fields
}

/// Whether [`text`] reads values of `ty`.
fn judged(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::BOOL
            | Type::UUID
            | Type::TIMESTAMPTZ
            | Type::TIMESTAMP
            | Type::DATE
            | Type::TIME
    ) || String::accepts(ty)
}

/// A binary value of `ty` in the text form [`FilterSpec::evaluate`] reads.
fn text(ty: &Type, raw: &[u8]) -> std::result::Result<String, crate::value::BoxError> {
    let raw = Some(raw);
    Ok(match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => i64::decode(ty, raw)?.to_string(),
        Type::FLOAT4 | Type::FLOAT8 => {
            let value = f64::decode(ty, raw)?;
            if value.is_nan() {
                "NaN".to_owned()
            } else if value.is_infinite() {
                if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
            } else {
                value.to_string()
            }
        }
        Type::NUMERIC => Numeric::decode(ty, raw)?.into_string(),
        Type::BOOL => bool::decode(ty, raw)?.to_string(),
        Type::UUID => Uuid::decode(ty, raw)?.to_string(),
        Type::TIMESTAMPTZ => Timestamptz::decode(ty, raw)?.to_string(),
        Type::TIMESTAMP => Timestamp::decode(ty, raw)?.to_string(),
        Type::DATE => Date::decode(ty, raw)?.to_string(),
        Type::TIME => Time::decode(ty, raw)?.to_string(),
        _ if String::accepts(ty) => String::decode(ty, raw)?,
        _ => return Err(format!("values of type `{}` are not judged", ty.name()).into()),
    })
}
