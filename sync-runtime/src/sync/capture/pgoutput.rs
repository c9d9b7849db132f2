//! The messages of the `pgoutput` logical decoding plugin, protocol version 1, as
//! `pg_logical_slot_peek_binary_changes` returns them: one message per row.
//!
//! The formats are PostgreSQL's "Logical Replication Message Formats". Every
//! message borrows from the bytes it was decoded from; decoding allocates only the
//! lists (columns, values, relations).

use super::lsn::Lsn;

/// One `pgoutput` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// `B`: a transaction starts.
    Begin {
        /// The LSN of the transaction's commit record.
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01 UTC.
        timestamp: i64,
        /// The transaction id.
        xid: u32,
    },
    /// `C`: the transaction commits.
    Commit {
        /// Unused flags.
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: Lsn,
        /// The LSN just past the commit record: where a consumer that applied the
        /// transaction confirms.
        end_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01 UTC.
        timestamp: i64,
    },
    /// `O`: the transaction came from another node.
    Origin {
        /// The commit LSN on the origin server.
        commit_lsn: Lsn,
        /// The origin's name.
        name: &'a str,
    },
    /// `R`: the shape of a table, sent before its first change in a session and
    /// again after it changes.
    Relation(Relation<'a>),
    /// `Y`: a non-built-in type that a relation uses.
    Type {
        /// The type's OID.
        id: u32,
        /// Its schema (empty for `pg_catalog`).
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
    /// `I`: a row inserted.
    Insert {
        /// The relation's OID.
        relation: u32,
        /// The new row.
        new: Tuple<'a>,
    },
    /// `U`: a row updated.
    Update {
        /// The relation's OID.
        relation: u32,
        /// The old key (`K`, when the update changed it) or the whole old row (`O`,
        /// `REPLICA IDENTITY FULL`).
        old: Option<OldTuple<'a>>,
        /// The new row; a TOASTed value not changed by the update arrives as
        /// [`Value::Unchanged`].
        new: Tuple<'a>,
    },
    /// `D`: a row deleted.
    Delete {
        /// The relation's OID.
        relation: u32,
        /// The old key, or the whole old row.
        old: OldTuple<'a>,
    },
    /// `T`: tables truncated.
    Truncate {
        /// Bit 1: `CASCADE`; bit 2: `RESTART IDENTITY`.
        options: u8,
        /// The relations' OIDs.
        relations: Vec<u32>,
    },
    /// `M`: a message written by `pg_logical_emit_message`.
    Emitted {
        /// Whether it was emitted inside the transaction.
        transactional: bool,
        /// Its LSN.
        lsn: Lsn,
        /// Its prefix.
        prefix: &'a str,
        /// Its content.
        content: &'a [u8],
    },
}

/// A relation message: the columns of a table in table order, generated columns
/// left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Relation<'a> {
    /// The relation's OID.
    pub(crate) id: u32,
    /// Its schema (empty for `pg_catalog`).
    pub(crate) namespace: &'a str,
    /// Its name.
    pub(crate) name: &'a str,
    /// `relreplident`: `d` (primary key), `n` (nothing), `f` (full), `i` (index).
    pub(crate) replica_identity: u8,
    /// Its columns, in table order.
    pub(crate) columns: Vec<RelationColumn<'a>>,
}

/// One column of a [`Relation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RelationColumn<'a> {
    /// Whether it is part of the replica identity (the key sent with a delete).
    pub(crate) key: bool,
    /// Its name.
    pub(crate) name: &'a str,
    /// Its type's OID.
    pub(crate) type_id: u32,
    /// Its type modifier (`atttypmod`).
    pub(crate) type_modifier: i32,
}

/// The old row of an update or delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OldTuple<'a> {
    /// `K`: the replica identity columns, the others NULL.
    Key(Tuple<'a>),
    /// `O`: the whole old row (`REPLICA IDENTITY FULL`).
    Full(Tuple<'a>),
}

impl<'a> OldTuple<'a> {
    /// The tuple, whichever kind.
    pub(crate) fn tuple(&self) -> &Tuple<'a> {
        match self {
            OldTuple::Key(tuple) | OldTuple::Full(tuple) => tuple,
        }
    }
}

/// The values of a row, one per relation column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tuple<'a>(pub(crate) Vec<Value<'a>>);

/// One value of a [`Tuple`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// `n`: NULL.
    Null,
    /// `u`: a TOASTed value the change did not touch; it is not sent.
    Unchanged,
    /// `t`: the value's text form.
    Text(&'a [u8]),
    /// `b`: the value's binary (`send`) form, as a binary COPY field carries it.
    Binary(&'a [u8]),
}

/// Bytes that are not a `pgoutput` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed pgoutput message: {0}")]
pub(crate) struct ProtocolError(String);

/// Decodes one message.
///
/// # Errors
///
/// A [`ProtocolError`] when the bytes end early, carry an unknown tag, or have
/// bytes left over.
pub(crate) fn decode(bytes: &[u8]) -> Result<Message<'_>, ProtocolError> {
    let mut reader = Reader { bytes, position: 0 };
    let tag = reader.u8()?;
    let message = match tag {
        b'B' => Message::Begin {
            final_lsn: reader.lsn()?,
            timestamp: reader.i64()?,
            xid: reader.u32()?,
        },
        b'C' => Message::Commit {
            flags: reader.u8()?,
            commit_lsn: reader.lsn()?,
            end_lsn: reader.lsn()?,
            timestamp: reader.i64()?,
        },
        b'O' => Message::Origin {
            commit_lsn: reader.lsn()?,
            name: reader.string()?,
        },
        b'R' => {
            let id = reader.u32()?;
            let namespace = reader.string()?;
            let name = reader.string()?;
            let replica_identity = reader.u8()?;
            let count = reader.count()?;
            let mut columns = Vec::with_capacity(count);
            for _ in 0..count {
                columns.push(RelationColumn {
                    key: reader.u8()? & 1 == 1,
                    name: reader.string()?,
                    type_id: reader.u32()?,
                    type_modifier: reader.i32()?,
                });
            }
            Message::Relation(Relation {
                id,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => Message::Type {
            id: reader.u32()?,
            namespace: reader.string()?,
            name: reader.string()?,
        },
        b'I' => {
            let relation = reader.u32()?;
            reader.expect(b'N')?;
            Message::Insert {
                relation,
                new: reader.tuple()?,
            }
        }
        b'U' => {
            let relation = reader.u32()?;
            let old = match reader.u8()? {
                b'K' => {
                    let old = OldTuple::Key(reader.tuple()?);
                    reader.expect(b'N')?;
                    Some(old)
                }
                b'O' => {
                    let old = OldTuple::Full(reader.tuple()?);
                    reader.expect(b'N')?;
                    Some(old)
                }
                b'N' => None,
                other => return Err(reader.error(&format!("update part `{}`", other as char))),
            };
            Message::Update {
                relation,
                old,
                new: reader.tuple()?,
            }
        }
        b'D' => {
            let relation = reader.u32()?;
            let old = match reader.u8()? {
                b'K' => OldTuple::Key(reader.tuple()?),
                b'O' => OldTuple::Full(reader.tuple()?),
                other => return Err(reader.error(&format!("delete part `{}`", other as char))),
            };
            Message::Delete { relation, old }
        }
        b'T' => {
            let count = reader.u32()?;
            let options = reader.u8()?;
            let relations = (0..count)
                .map(|_| reader.u32())
                .collect::<Result<Vec<_>, _>>()?;
            Message::Truncate { options, relations }
        }
        b'M' => {
            let transactional = reader.u8()? & 1 == 1;
            let lsn = reader.lsn()?;
            let prefix = reader.string()?;
            let length = reader.length()?;
            Message::Emitted {
                transactional,
                lsn,
                prefix,
                content: reader.take(length)?,
            }
        }
        other => return Err(reader.error(&format!("unknown message type `{}`", other as char))),
    };
    if reader.position != bytes.len() {
        return Err(reader.error(&format!(
            "{} bytes left over",
            bytes.len() - reader.position
        )));
    }
    Ok(message)
}

/// A cursor over a message's bytes; every read checks the length.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> ProtocolError {
        let tag = self.bytes.first().map_or('?', |&tag| tag as char);
        ProtocolError(format!(
            "`{tag}` message, at byte {}: {what}",
            self.position
        ))
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .position
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("ends early"))?;
        let taken = &self.bytes[self.position..end];
        self.position = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    fn expect(&mut self, tag: u8) -> Result<(), ProtocolError> {
        let found = self.u8()?;
        if found != tag {
            self.position -= 1;
            return Err(self.error(&format!(
                "expected `{}`, found `{}`",
                tag as char, found as char
            )));
        }
        Ok(())
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn lsn(&mut self) -> Result<Lsn, ProtocolError> {
        Ok(Lsn(u64::from_be_bytes(self.array()?)))
    }

    /// An `Int16` count of columns or values.
    fn count(&mut self) -> Result<usize, ProtocolError> {
        let count = i16::from_be_bytes(self.array()?);
        usize::try_from(count).map_err(|_| self.error(&format!("negative count {count}")))
    }

    /// An `Int32` length of a value.
    fn length(&mut self) -> Result<usize, ProtocolError> {
        let length = self.i32()?;
        usize::try_from(length).map_err(|_| self.error(&format!("negative length {length}")))
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<&'a str, ProtocolError> {
        let rest = &self.bytes[self.position..];
        let end = rest
            .iter()
            .position(|&byte| byte == 0)
            .ok_or_else(|| self.error("unterminated string"))?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| self.error("string not UTF-8"))?;
        self.position += end + 1;
        Ok(text)
    }

    /// `TupleData`: a count, then per column a kind and, for `t` and `b`, a length
    /// and the bytes.
    fn tuple(&mut self) -> Result<Tuple<'a>, ProtocolError> {
        let count = self.count()?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let value = match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let length = self.length()?;
                    Value::Text(self.take(length)?)
                }
                b'b' => {
                    let length = self.length()?;
                    Value::Binary(self.take(length)?)
                }
                other => {
                    self.position -= 1;
                    return Err(self.error(&format!("unknown value kind `{}`", other as char)));
                }
            };
            values.push(value);
        }
        Ok(Tuple(values))
    }
}
