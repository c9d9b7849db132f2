//! The positioned tree of a YAML file: [`parse`] reads one document with
//! `saphyr-parser`, whose events carry positions, into [`Node`]s that keep every key
//! of a mapping (duplicates included) in order, each with its `file:line:column`,
//! so that the reader can report unknown and duplicate keys where they are written.

use std::collections::BTreeMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::model::{Origin, YamlPosition};

/// YAML 1.2 core schema nulls, unquoted.
pub(super) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// A YAML node with its position. Mappings keep every pair in order, duplicates
/// included, so that this module can report them.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) value: Value,
    pub(super) position: YamlPosition,
    /// For a scalar whose characters stand in the file as read, on one line, how
    /// many columns right of `position` its first character is (1 past an opening
    /// quote), so that positions inside it can be computed; `None` otherwise.
    exact: Option<usize>,
}

#[derive(Clone, Debug)]
pub(super) enum Value {
    /// A scalar; `plain` when unquoted and untagged (so `true` may be a boolean).
    Scalar {
        text: String,
        plain: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

impl Value {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Value::Scalar { text, plain: true } if is_null(text) => "null",
            Value::Scalar { .. } => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

impl Node {
    pub(super) fn origin(&self) -> Origin {
        Origin::Yaml(self.position.clone())
    }

    pub(super) fn line_column(&self) -> String {
        format!("{}:{}", self.position.line, self.position.column)
    }

    /// The position `offset` bytes into this scalar, e.g. of `id` in `user_main.id`;
    /// the scalar's own position when the file does not hold it as read (escaped,
    /// folded or tagged).
    pub(super) fn origin_at(&self, offset: usize) -> Origin {
        let mut position = self.position.clone();
        if let (Some(shift), Value::Scalar { text, .. }) = (self.exact, &self.value) {
            position.column += shift
                + text
                    .get(..offset)
                    .map_or(0, |prefix| prefix.chars().count());
        }
        Origin::Yaml(position)
    }

    /// The position of the first character of this scalar, when its characters
    /// stand in the file as read on one line.
    pub(super) fn text_start(&self) -> Option<YamlPosition> {
        let shift = self.exact?;
        let mut position = self.position.clone();
        position.column += shift;
        Some(position)
    }
}

/// A YAML syntax error.
pub(super) struct SyntaxError {
    pub(super) origin: Origin,
    pub(super) message: String,
}

/// Parses one YAML document into a tree; `None` for a file with no document.
pub(super) fn parse(file: &Arc<str>, text: &str) -> Result<Option<Node>, SyntaxError> {
    let position = |line: usize, column: usize| YamlPosition {
        file: file.clone(),
        line,
        column,
    };
    let events: Vec<(Event<'_>, Span)> = Parser::new_from_str(text)
        .collect::<Result<_, _>>()
        .map_err(|error| SyntaxError {
            origin: Origin::Yaml(position(error.marker().line(), error.marker().col() + 1)),
            message: format!("invalid YAML: {}", error.info()),
        })?;
    let characters: Vec<char> = text.chars().collect();
    let mut builder = Builder {
        events: events.into_iter(),
        characters: &characters,
        position: &position,
        anchors: BTreeMap::new(),
    };
    let mut root = None;
    while let Some((event, span)) = builder.events.next() {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) if root.is_some() => {
                return Err(SyntaxError {
                    origin: Origin::Yaml((builder.position)(
                        span.start.line(),
                        span.start.col() + 1,
                    )),
                    message: "a mapping file holds one YAML document, not several".to_owned(),
                });
            }
            Event::DocumentStart(_) => {
                let Some((event, span)) = builder.events.next() else {
                    break;
                };
                root = Some(builder.node(event, span)?);
            }
            _ => {
                return Err(SyntaxError {
                    origin: Origin::Yaml((builder.position)(
                        span.start.line(),
                        span.start.col() + 1,
                    )),
                    message: "invalid YAML: unexpected event".to_owned(),
                });
            }
        }
    }
    // A document of nothing but comments is one empty scalar.
    Ok(root.filter(
        |root| !matches!(&root.value, Value::Scalar { text, plain: true } if is_null(text)),
    ))
}

struct Builder<'p, I> {
    events: I,
    /// The file, by character (saphyr's markers count characters).
    characters: &'p [char],
    position: &'p dyn Fn(usize, usize) -> YamlPosition,
    anchors: BTreeMap<usize, Node>,
}

impl<'input, I: Iterator<Item = (Event<'input>, Span)>> Builder<'_, I> {
    fn node(&mut self, event: Event<'input>, span: Span) -> Result<Node, SyntaxError> {
        let position = (self.position)(span.start.line(), span.start.col() + 1);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && tag.is_none();
                let one_line = tag.is_none() && span.start.line() == span.end.line();
                let written = self
                    .characters
                    .get(span.start.index()..span.end.index())
                    .unwrap_or_default();
                let exact = match style {
                    ScalarStyle::Plain if one_line => Some(0),
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                        if one_line
                            && written.len() == text.chars().count() + 2
                            && written[1..written.len() - 1]
                                .iter()
                                .copied()
                                .eq(text.chars()) =>
                    {
                        Some(1)
                    }
                    _ => None,
                };
                (
                    Node {
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                        position,
                        exact,
                    },
                    anchor,
                )
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.next(&position)? {
                        (Event::SequenceEnd, _) => break,
                        (event, span) => items.push(self.node(event, span)?),
                    }
                }
                let node = Node {
                    value: Value::Sequence(items),
                    position,
                    exact: None,
                };
                (node, anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut pairs = Vec::new();
                loop {
                    match self.next(&position)? {
                        (Event::MappingEnd, _) => break,
                        (event, span) => {
                            let key = self.node(event, span)?;
                            let (event, span) = self.next(&position)?;
                            let value = self.node(event, span)?;
                            pairs.push((key, value));
                        }
                    }
                }
                let node = Node {
                    value: Value::Mapping(pairs),
                    position,
                    exact: None,
                };
                (node, anchor)
            }
            Event::Alias(anchor) => {
                let node = self
                    .anchors
                    .get(&anchor)
                    .cloned()
                    .ok_or_else(|| SyntaxError {
                        origin: Origin::Yaml(position.clone()),
                        message: "invalid YAML: an alias to an unknown anchor".to_owned(),
                    })?;
                return Ok(node);
            }
            _ => {
                return Err(SyntaxError {
                    origin: Origin::Yaml(position),
                    message: "invalid YAML: unexpected event".to_owned(),
                });
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn next(&mut self, position: &YamlPosition) -> Result<(Event<'input>, Span), SyntaxError> {
        self.events.next().ok_or_else(|| SyntaxError {
            origin: Origin::Yaml(position.clone()),
            message: "invalid YAML: unexpected end of file".to_owned(),
        })
    }
}
