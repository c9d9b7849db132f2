//! Row filters: `#[sync(filter = "..")]` / `source.filter`, a predicate in a small,
//! safe subset of SQL, parsed with `sqlparser` (PostgreSQL dialect) and checked
//! against the mapping's fields.
//!
//! Entry point: [`check_filter`], called by `check`. The subset is column names
//! (exact, as every name in a mapping), literals (numbers, strings, `true`/`false`),
//! `$name` parameters, `=`, `<>`, `!=`, `<`, `<=`, `>`, `>=`, `AND`, `OR`, `NOT`,
//! `IN (..)`, `IS [NOT] NULL`, `BETWEEN` and `LIKE`. Every comparison involves a
//! column, whose type gives the type of the literals and parameters beside it.
//! Literals and parameters become numbered values that a run binds (`sql` renders
//! them as `current_setting('data_sync.fN')::type`), so no value is ever part of the
//! SQL text.

use std::collections::BTreeMap;
use std::fmt;

use sqlparser::ast::{BinaryOperator, Expr, InTarget, Spanned, UnaryOperator, Value};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::ctxt::Ctxt;
use crate::model::{Filter, Mapping, Origin};
use crate::types::PgType;

/// A filter that passed `check`.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedFilter {
    /// The text as written.
    pub text: String,
    /// The predicate.
    pub predicate: Predicate,
    /// The values a run binds, in order of first appearance: slot `i` is
    /// `data_sync.f{i + 1}`.
    pub slots: Vec<Slot>,
}

/// A predicate of the subset, over fields and bound values.
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// `a AND b`.
    And(Box<Predicate>, Box<Predicate>),
    /// `a OR b`.
    Or(Box<Predicate>, Box<Predicate>),
    /// `NOT a`.
    Not(Box<Predicate>),
    /// `a = b`, `a < b`, ...
    Compare {
        /// The left side.
        left: Operand,
        /// The operator.
        op: CompareOp,
        /// The right side.
        right: Operand,
    },
    /// `a [NOT] IN (b, c)`.
    In {
        /// The value looked for.
        operand: Operand,
        /// The list.
        list: Vec<Operand>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `a [NOT] BETWEEN b AND c`.
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
    /// `a [NOT] LIKE b`.
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

/// A value in a predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The field at this index (its source column).
    Field(usize),
    /// The bound value at this index of [`CheckedFilter::slots`].
    Slot(usize),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`.
    Eq,
    /// `<>` or `!=`.
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

impl CompareOp {
    /// The SQL spelling.
    pub fn as_sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::NotEq => "<>",
            CompareOp::Lt => "<",
            CompareOp::LtEq => "<=",
            CompareOp::Gt => ">",
            CompareOp::GtEq => ">=",
        }
    }

    /// The variant's name, as the runtime's `CompareOp` spells it.
    pub fn variant(self) -> &'static str {
        match self {
            CompareOp::Eq => "Eq",
            CompareOp::NotEq => "NotEq",
            CompareOp::Lt => "Lt",
            CompareOp::LtEq => "LtEq",
            CompareOp::Gt => "Gt",
            CompareOp::GtEq => "GtEq",
        }
    }
}

/// One value a run binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// A literal of the text, or a `$name` parameter given at run time.
    pub value: SlotValue,
    /// The type it is compared as.
    pub ty: FilterType,
    /// The field it is first compared with (a parameter is decoded by its type).
    pub field: usize,
}

/// Where a bound value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotValue {
    /// A literal, as PostgreSQL's input function for its type reads it.
    Literal(String),
    /// `$name`, without the `$`.
    Parameter(String),
}

/// The type a filter compares a column as: the column's type, or its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterType {
    /// `smallint`, `integer`, `bigint`.
    Integer,
    /// `real`, `double precision`.
    Float,
    /// `numeric`.
    Numeric,
    /// `boolean`.
    Boolean,
    /// Text types, and enums compared as their label.
    Text,
    /// `uuid`.
    Uuid,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `timestamp without time zone`.
    Timestamp,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `interval`.
    Interval,
    /// `inet` and `cidr`.
    Inet,
}

impl FilterType {
    /// The family of a column type; `None` for types a filter does not compare.
    pub fn of(pg_type: &PgType) -> Option<FilterType> {
        Some(match pg_type {
            PgType::SmallInt | PgType::Integer | PgType::BigInt => FilterType::Integer,
            PgType::Real | PgType::Double => FilterType::Float,
            PgType::Numeric => FilterType::Numeric,
            PgType::Boolean => FilterType::Boolean,
            PgType::Text | PgType::Enum => FilterType::Text,
            PgType::Uuid => FilterType::Uuid,
            PgType::Timestamptz => FilterType::Timestamptz,
            PgType::Timestamp => FilterType::Timestamp,
            PgType::Date => FilterType::Date,
            PgType::Time => FilterType::Time,
            PgType::Interval => FilterType::Interval,
            PgType::Inet | PgType::Cidr => FilterType::Inet,
            PgType::Bytea | PgType::Json | PgType::Jsonb | PgType::Array(_) => return None,
        })
    }

    /// The PostgreSQL type a bound value is cast to.
    pub fn cast(self) -> &'static str {
        match self {
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
        }
    }

    /// The variant's name, as the runtime's `FilterType` spells it.
    pub fn variant(self) -> &'static str {
        match self {
            FilterType::Integer => "Integer",
            FilterType::Float => "Float",
            FilterType::Numeric => "Numeric",
            FilterType::Boolean => "Boolean",
            FilterType::Text => "Text",
            FilterType::Uuid => "Uuid",
            FilterType::Timestamptz => "Timestamptz",
            FilterType::Timestamp => "Timestamp",
            FilterType::Date => "Date",
            FilterType::Time => "Time",
            FilterType::Interval => "Interval",
            FilterType::Inet => "Inet",
        }
    }

    fn is_number(self) -> bool {
        matches!(
            self,
            FilterType::Integer | FilterType::Float | FilterType::Numeric
        )
    }
}

impl fmt::Display for FilterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cast())
    }
}

/// The source columns a filter names, as written (for `check_unused_fields`);
/// `None` when it does not parse.
pub fn columns(filter: &Filter) -> Option<Vec<String>> {
    let expression = parse_text(&filter.text.value).ok()?;
    let mut names = Vec::new();
    collect_columns(&expression, &mut names);
    Some(names)
}

fn collect_columns(expression: &Expr, names: &mut Vec<String>) {
    match expression {
        Expr::Identifier(ident) => names.push(ident.value.clone()),
        Expr::BinaryOp { left, right, .. } => {
            collect_columns(left, names);
            collect_columns(right, names);
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr) => collect_columns(expr, names),
        Expr::In {
            expr,
            target: InTarget::List(list),
            ..
        } => {
            collect_columns(expr, names);
            for item in list {
                collect_columns(item, names);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            collect_columns(expr, names);
            collect_columns(low, names);
            collect_columns(high, names);
        }
        Expr::Like { expr, pattern, .. } => {
            collect_columns(expr, names);
            collect_columns(pattern, names);
        }
        _ => {}
    }
}

/// Parses `text` as one expression, nothing after it.
fn parse_text(text: &str) -> Result<Expr, (Option<(u64, u64)>, String)> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|error| (None, error.to_string()))?;
    let expression = parser
        .parse_expr()
        .map_err(|error| (None, error.to_string()))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        let start = next.span.start;
        return Err((
            Some((start.line, start.column)),
            format!("unexpected `{}` after the condition", next.token),
        ));
    }
    Ok(expression)
}

/// The column types `check_filter` compares with: per field, its PostgreSQL type
/// when it has one a filter can compare.
pub struct FieldTypes<'a> {
    /// Per field, in field order.
    pub types: &'a [Option<PgType>],
}

/// Parses and checks the filter of `mapping`, recording every mistake in `cx` at the
/// place in the text where it can be told; the checked filter when it has none.
pub fn check_filter(
    cx: &Ctxt,
    mapping: &Mapping,
    filter: &Filter,
    field_types: &FieldTypes<'_>,
) -> Option<CheckedFilter> {
    let errors_before = cx.error_count();
    let expression = match parse_text(&filter.text.value) {
        Ok(expression) => expression,
        Err((at, message)) => {
            let origin = at.map_or_else(
                || filter.text.origin.clone(),
                |(line, column)| filter.origin_at(line, column),
            );
            cx.error(&origin, format!("filter: {message}"));
            return None;
        }
    };
    let mut checker = Checker {
        cx,
        mapping,
        filter,
        field_types,
        slots: Vec::new(),
        parameters: BTreeMap::new(),
    };
    let predicate = checker.predicate(&expression);
    let slots = checker.slots;
    if cx.error_count() > errors_before {
        return None;
    }
    Some(CheckedFilter {
        text: filter.text.value.clone(),
        predicate: predicate?,
        slots,
    })
}

/// An operand before typing.
enum Term {
    Column {
        field: usize,
        ty: FilterType,
    },
    Literal {
        kind: LiteralKind,
        text: String,
        origin: Origin,
    },
    Parameter {
        name: String,
        origin: Origin,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LiteralKind {
    Number,
    String,
    Boolean,
}

impl LiteralKind {
    fn describe(self) -> &'static str {
        match self {
            LiteralKind::Number => "a number",
            LiteralKind::String => "a string",
            LiteralKind::Boolean => "a boolean",
        }
    }
}

struct Checker<'a> {
    cx: &'a Ctxt,
    mapping: &'a Mapping,
    filter: &'a Filter,
    field_types: &'a FieldTypes<'a>,
    slots: Vec<Slot>,
    /// Parameter name -> its slot and the column that gave its type.
    parameters: BTreeMap<String, (usize, String)>,
}

const SUBSET: &str = "a filter takes column names, literals, `$name` parameters, comparisons, `AND`, `OR`, `NOT`, `IN (..)`, `IS [NOT] NULL`, `BETWEEN` and `LIKE`";

impl Checker<'_> {
    fn origin(&self, expression: &Expr) -> Origin {
        let start = expression.span().start;
        self.filter.origin_at(start.line, start.column)
    }

    fn outside(&self, expression: &Expr) {
        self.cx.error(
            &self.origin(expression),
            format!("`{expression}` is outside the filter subset: {SUBSET}"),
        );
    }

    fn predicate(&mut self, expression: &Expr) -> Option<Predicate> {
        match expression {
            Expr::Nested(inner) => self.predicate(inner),
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    let left = self.predicate(left);
                    let right = self.predicate(right);
                    let (left, right) = (Box::new(left?), Box::new(right?));
                    Some(if *op == BinaryOperator::And {
                        Predicate::And(left, right)
                    } else {
                        Predicate::Or(left, right)
                    })
                }
                _ => {
                    let Some(op) = compare_op(op) else {
                        self.outside(expression);
                        return None;
                    };
                    let terms = [self.term(left), self.term(right)];
                    let operands = self.typed(expression, terms, false)?;
                    Some(Predicate::Compare {
                        left: operands[0],
                        op,
                        right: operands[1],
                    })
                }
            },
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => Some(Predicate::Not(Box::new(self.predicate(expr)?))),
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                let negated = matches!(expression, Expr::IsNotNull(_));
                let term = self.term(inner)?;
                match term {
                    Term::Column { field, .. } => Some(Predicate::IsNull {
                        operand: Operand::Field(field),
                        negated,
                    }),
                    _ => {
                        self.cx.error(
                            &self.origin(inner),
                            format!("`{inner}` is not a column: `IS NULL` tests a column"),
                        );
                        None
                    }
                }
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                negated,
                global: false,
            } => {
                let mut terms = vec![self.term(expr)];
                terms.extend(list.iter().map(|item| self.term(item)));
                let mut operands = self.typed(expression, terms, true)?.into_iter();
                let operand = operands.next()?;
                Some(Predicate::In {
                    operand,
                    list: operands.collect(),
                    negated: *negated,
                })
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let terms = [self.term(expr), self.term(low), self.term(high)];
                let operands = self.typed(expression, terms, true)?;
                Some(Predicate::Between {
                    operand: operands[0],
                    low: operands[1],
                    high: operands[2],
                    negated: *negated,
                })
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => {
                let terms = [self.term(expr), self.term(pattern)];
                if let Some(Term::Column { ty, field }) = &terms[0]
                    && *ty != FilterType::Text
                {
                    let column = &self.mapping.fields[*field].column.value;
                    self.cx.error(
                        &self.origin(expr),
                        format!("`LIKE` matches text, but column `{column}` is `{ty}`"),
                    );
                    return None;
                }
                let operands = self.typed(expression, terms, true)?;
                Some(Predicate::Like {
                    operand: operands[0],
                    pattern: operands[1],
                    negated: *negated,
                })
            }
            Expr::Identifier(ident) => {
                self.cx.error(
                    &self.origin(expression),
                    format!(
                        "`{}` is a column, not a condition: compare it, e.g. `{} = true`",
                        ident.value, ident
                    ),
                );
                None
            }
            _ => {
                self.outside(expression);
                None
            }
        }
    }

    /// An operand: a column, a literal or a parameter.
    fn term(&mut self, expression: &Expr) -> Option<Term> {
        let origin = self.origin(expression);
        match expression {
            Expr::Nested(inner) => self.term(inner),
            Expr::Identifier(ident) => {
                let name = &ident.value;
                let Some(field) = self.mapping.field_index_by_column(name) else {
                    let suggestion = self
                        .mapping
                        .fields
                        .iter()
                        .map(|field| field.column.value.as_str())
                        .find(|candidate| candidate.eq_ignore_ascii_case(name))
                        .map(|candidate| format!("; did you mean `{candidate}`?"))
                        .unwrap_or_default();
                    self.cx.error(
                        &origin,
                        format!("filter names column `{name}`, which no field reads{suggestion}"),
                    );
                    return None;
                };
                let pg_type = self.field_types.types[field].as_ref()?;
                let Some(ty) = FilterType::of(pg_type) else {
                    self.cx.error(
                        &origin,
                        format!("a filter cannot compare column `{name}`, which is `{pg_type}`"),
                    );
                    return None;
                };
                Some(Term::Column { field, ty })
            }
            Expr::Value(value) => match &value.value {
                Value::Number(text, _) => Some(Term::Literal {
                    kind: LiteralKind::Number,
                    text: text.clone(),
                    origin,
                }),
                Value::SingleQuotedString(text) => Some(Term::Literal {
                    kind: LiteralKind::String,
                    text: text.clone(),
                    origin,
                }),
                Value::Boolean(value) => Some(Term::Literal {
                    kind: LiteralKind::Boolean,
                    text: value.to_string(),
                    origin,
                }),
                Value::Null => {
                    self.cx.error(
                        &origin,
                        "nothing equals `NULL` in SQL: test a column with `IS NULL` or `IS NOT NULL`",
                    );
                    None
                }
                Value::Placeholder(placeholder) => {
                    let name = placeholder.strip_prefix('$').unwrap_or(placeholder);
                    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        self.cx.error(
                            &origin,
                            format!(
                                "parameter `{placeholder}` needs a name of ASCII letters, digits and `_`, such as `$tenant`"
                            ),
                        );
                        return None;
                    }
                    Some(Term::Parameter {
                        name: name.to_owned(),
                        origin,
                    })
                }
                _ => {
                    self.outside(expression);
                    None
                }
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => match &**expr {
                Expr::Value(value) => match &value.value {
                    Value::Number(text, _) => Some(Term::Literal {
                        kind: LiteralKind::Number,
                        text: format!("-{text}"),
                        origin,
                    }),
                    _ => {
                        self.outside(expression);
                        None
                    }
                },
                _ => {
                    self.outside(expression);
                    None
                }
            },
            _ => {
                self.outside(expression);
                None
            }
        }
    }

    /// Types the operands of one comparison by its column: the first operand must
    /// be a column when `column_first`, else one of them must be.
    fn typed(
        &mut self,
        expression: &Expr,
        terms: impl IntoIterator<Item = Option<Term>>,
        column_first: bool,
    ) -> Option<Vec<Operand>> {
        let terms: Vec<Option<Term>> = terms.into_iter().collect();
        if terms.iter().any(Option::is_none) {
            return None;
        }
        let terms: Vec<Term> = terms.into_iter().flatten().collect();
        let column = terms
            .iter()
            .enumerate()
            .find_map(|(index, term)| match term {
                Term::Column { field, ty } => Some((index, *field, *ty)),
                _ => None,
            });
        let (_, field, ty) = match column {
            Some(found) if !column_first || found.0 == 0 => found,
            _ => {
                self.cx.error(
                    &self.origin(expression),
                    format!(
                        "`{expression}` compares no column: {}",
                        if column_first {
                            "its first operand must be a column"
                        } else {
                            "one side must be a column"
                        }
                    ),
                );
                return None;
            }
        };
        let column_name = self.mapping.fields[field].column.value.clone();
        let mut operands = Vec::with_capacity(terms.len());
        for term in terms {
            let operand = match term {
                Term::Column {
                    field: other,
                    ty: other_ty,
                } => {
                    if other_ty != ty && !(other_ty.is_number() && ty.is_number()) {
                        let other_name = &self.mapping.fields[other].column.value;
                        self.cx.error(
                            &self.origin(expression),
                            format!(
                                "`{expression}` compares column `{column_name}` (`{ty}`) with column `{other_name}` (`{other_ty}`)"
                            ),
                        );
                        return None;
                    }
                    Operand::Field(other)
                }
                Term::Literal { kind, text, origin } => {
                    let fits = match kind {
                        LiteralKind::Number => ty.is_number(),
                        LiteralKind::Boolean => ty == FilterType::Boolean,
                        LiteralKind::String => !ty.is_number() && ty != FilterType::Boolean,
                    };
                    if !fits {
                        self.cx.error(
                            &origin,
                            format!(
                                "`{text}` is {} but column `{column_name}` is `{ty}`",
                                kind.describe()
                            ),
                        );
                        return None;
                    }
                    if ty == FilterType::Integer && text.parse::<i64>().is_err() {
                        self.cx.error(
                            &origin,
                            format!(
                                "`{text}` is not an integer but column `{column_name}` is `{ty}`"
                            ),
                        );
                        return None;
                    }
                    self.slots.push(Slot {
                        value: SlotValue::Literal(text),
                        ty,
                        field,
                    });
                    Operand::Slot(self.slots.len() - 1)
                }
                Term::Parameter { name, origin } => match self.parameters.get(&name) {
                    Some((slot, first_column)) => {
                        let first_ty = self.slots[*slot].ty;
                        if first_ty != ty {
                            self.cx.error(
                                &origin,
                                format!(
                                    "parameter `${name}` is compared with column `{first_column}` (`{first_ty}`) and with column `{column_name}` (`{ty}`): one parameter has one type"
                                ),
                            );
                            return None;
                        }
                        Operand::Slot(*slot)
                    }
                    None => {
                        self.slots.push(Slot {
                            value: SlotValue::Parameter(name.clone()),
                            ty,
                            field,
                        });
                        let slot = self.slots.len() - 1;
                        self.parameters.insert(name, (slot, column_name.clone()));
                        Operand::Slot(slot)
                    }
                },
            };
            operands.push(operand);
        }
        Some(operands)
    }
}

fn compare_op(op: &BinaryOperator) -> Option<CompareOp> {
    Some(match op {
        BinaryOperator::Eq => CompareOp::Eq,
        BinaryOperator::NotEq => CompareOp::NotEq,
        BinaryOperator::Lt => CompareOp::Lt,
        BinaryOperator::LtEq => CompareOp::LtEq,
        BinaryOperator::Gt => CompareOp::Gt,
        BinaryOperator::GtEq => CompareOp::GtEq,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
