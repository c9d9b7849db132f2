//! The PostgreSQL side: connection settings (URL or key=value, `PG*` variables,
//! `.pgpass`), one `REPEATABLE READ READ ONLY` snapshot per run, and the reader of
//! `COPY .. TO STDOUT (FORMAT binary)` that hands each row to the generated decoder.

use std::io::{self, BufRead, Read};
use std::ops::Range;

use tokio_postgres::types::Type;

use crate::spec::MappingSpec;
use crate::value::{BoxError, Decode};

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod decode;
pub(crate) mod guard;
pub(crate) mod tls;

/// `COPY (select) TO STDOUT (FORMAT binary)`: how every run streams rows (and what
/// `data-sync explain` shows).
pub fn copy_out_sql(select: &str) -> String {
    format!("COPY ({select}) TO STDOUT (FORMAT binary)")
}

/// The live PostgreSQL types of a prepared statement's columns.
pub(crate) fn column_types(columns: &[tokio_postgres::Column]) -> Vec<Type> {
    columns
        .iter()
        .map(|column| column.type_().clone())
        .collect()
}

/// One source row, borrowed: from the binary COPY stream's buffer, or from the
/// fields of a row read through a binary portal (incremental sync).
pub struct SourceRow<'a> {
    types: &'a [Type],
    fields: Fields<'a>,
}

/// Where a [`SourceRow`]'s bytes are.
#[derive(Clone, Copy)]
enum Fields<'a> {
    /// Ranges into one buffer (the COPY reader's, reused: no allocation per row).
    Ranges {
        buffer: &'a [u8],
        ranges: &'a [Option<Range<usize>>],
    },
    /// One slice per field.
    Slices(&'a [Option<&'a [u8]>]),
}

impl<'a> SourceRow<'a> {
    /// A row whose field `i` is `buffer[ranges[i]]`, `None` for NULL.
    pub(crate) fn from_ranges(
        types: &'a [Type],
        buffer: &'a [u8],
        ranges: &'a [Option<Range<usize>>],
    ) -> Self {
        SourceRow {
            types,
            fields: Fields::Ranges { buffer, ranges },
        }
    }

    /// A row whose field `i` is `slices[i]`, `None` for NULL.
    pub(crate) fn from_slices(types: &'a [Type], slices: &'a [Option<&'a [u8]>]) -> Self {
        SourceRow {
            types,
            fields: Fields::Slices(slices),
        }
    }
}

/// A field that failed to decode: its position, and why.
#[derive(Debug)]
pub struct DecodeError {
    pub(crate) field: usize,
    pub(crate) cause: BoxError,
}

impl<'a> SourceRow<'a> {
    /// Decodes field `index` as `T`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the field when the value cannot be read as `T`.
    pub fn get<T: Decode>(&self, index: usize) -> std::result::Result<T, DecodeError> {
        T::decode(&self.types[index], self.raw(index)).map_err(|cause| DecodeError {
            field: index,
            cause,
        })
    }

    /// Checks that field `index` decodes as `T`, without keeping the value.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the field when the value cannot be read as `T`.
    pub fn check<T: Decode>(&self, index: usize) -> std::result::Result<(), DecodeError> {
        T::check(&self.types[index], self.raw(index)).map_err(|cause| DecodeError {
            field: index,
            cause,
        })
    }

    /// The PostgreSQL type of field `index`.
    pub(crate) fn ty(&self, index: usize) -> &Type {
        &self.types[index]
    }

    /// The raw bytes of field `index`, `None` for NULL.
    pub(crate) fn raw(&self, index: usize) -> Option<&'a [u8]> {
        match self.fields {
            Fields::Ranges { buffer, ranges } => ranges[index].clone().map(|range| &buffer[range]),
            Fields::Slices(slices) => slices[index],
        }
    }

    /// The number of fields.
    pub(crate) fn len(&self) -> usize {
        match self.fields {
            Fields::Ranges { ranges, .. } => ranges.len(),
            Fields::Slices(slices) => slices.len(),
        }
    }

    /// Field `index` as text for a message (a key value): numbers and text as they
    /// are, anything else as hex.
    pub(crate) fn display(&self, index: usize) -> String {
        let ty = &self.types[index];
        let Some(raw) = self.raw(index) else {
            return "NULL".to_owned();
        };
        let number = match *ty {
            Type::INT2 => <i16 as Decode>::decode(ty, Some(raw))
                .map(|v| v.to_string())
                .ok(),
            Type::INT4 => <i32 as Decode>::decode(ty, Some(raw))
                .map(|v| v.to_string())
                .ok(),
            Type::INT8 => <i64 as Decode>::decode(ty, Some(raw))
                .map(|v| v.to_string())
                .ok(),
            _ => None,
        };
        if let Some(number) = number {
            return number;
        }
        match std::str::from_utf8(raw) {
            Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}"),
            _ => raw.iter().map(|byte| format!("{byte:02x}")).collect(),
        }
    }
}

/// A row's key, as messages show it.
pub(crate) fn row_key(spec: &MappingSpec, row: &SourceRow<'_>) -> String {
    spec.source
        .key
        .iter()
        .map(|&index| row.display(index))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every field of `row`, a key row, as text, for messages.
pub(crate) fn key_text(row: &SourceRow<'_>) -> String {
    (0..row.len())
        .map(|index| row.display(index))
        .collect::<Vec<_>>()
        .join(", ")
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Reads `COPY .. (FORMAT binary)` tuples from a stream into a reused buffer.
pub(crate) struct CopyReader<R> {
    reader: R,
    types: Vec<Type>,
    buffer: Vec<u8>,
    fields: Vec<Option<Range<usize>>>,
}

impl<R: BufRead> CopyReader<R> {
    /// Reads and checks the stream header.
    pub(crate) fn new(mut reader: R, types: Vec<Type>) -> io::Result<Self> {
        let mut signature = [0u8; 11];
        reader.read_exact(&mut signature)?;
        if &signature != COPY_SIGNATURE {
            return Err(invalid("not a binary COPY stream"));
        }
        let _flags = read_i32(&mut reader)?;
        let extension_length = read_i32(&mut reader)?;
        let extension_length = u64::try_from(extension_length)
            .map_err(|_| invalid("negative header extension length"))?;
        io::copy(&mut (&mut reader).take(extension_length), &mut io::sink())?;
        let fields = Vec::with_capacity(types.len());
        Ok(CopyReader {
            reader,
            types,
            buffer: Vec::with_capacity(4096),
            fields,
        })
    }

    /// The next row, or `None` at the end of the stream.
    pub(crate) fn next_row(&mut self) -> io::Result<Option<SourceRow<'_>>> {
        self.buffer.clear();
        self.fields.clear();
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut fields = std::mem::take(&mut self.fields);
        let more = self.read_row_into(&mut buffer, &mut fields);
        self.buffer = buffer;
        self.fields = fields;
        if !more? {
            return Ok(None);
        }
        Ok(Some(SourceRow::from_ranges(
            &self.types,
            &self.buffer,
            &self.fields,
        )))
    }

    /// The types of the fields.
    pub(crate) fn types(&self) -> &[Type] {
        &self.types
    }

    /// Appends the next row to `buffer` (its fields' bytes) and `fields` (their
    /// ranges in `buffer`, `None` for NULL); `false` at the end of the stream.
    pub(crate) fn read_row_into(
        &mut self,
        buffer: &mut Vec<u8>,
        fields: &mut Vec<Option<Range<usize>>>,
    ) -> io::Result<bool> {
        // PostgreSQL sends a row per message, so the reader's buffer usually holds
        // the whole row: parse it there, without a read per field.
        let available = self.reader.fill_buf()?;
        if let Some(parsed) = parse_row(available, self.types.len(), buffer, fields) {
            let (consumed, more) = parsed?;
            self.reader.consume(consumed);
            return Ok(more);
        }
        let count = read_i16(&mut self.reader)?;
        if count == -1 {
            return Ok(false);
        }
        if usize::try_from(count).ok() != Some(self.types.len()) {
            return Err(invalid(&format!(
                "a row has {count} fields, the query {}",
                self.types.len()
            )));
        }
        for _ in 0..self.types.len() {
            let length = read_i32(&mut self.reader)?;
            if length < 0 {
                fields.push(None);
                continue;
            }
            let start = buffer.len();
            let length = usize::try_from(length).expect("non-negative");
            read_into(&mut self.reader, buffer, length)?;
            fields.push(Some(start..start + length));
        }
        Ok(true)
    }
}

/// Parses one whole row (or the end-of-data marker) from the start of `bytes`,
/// appending it as [`CopyReader::read_row_into`] does; returns the bytes consumed
/// and whether it was a row, or `None`, with nothing appended, when `bytes` ends
/// before the row does.
fn parse_row(
    bytes: &[u8],
    width: usize,
    buffer: &mut Vec<u8>,
    fields: &mut Vec<Option<Range<usize>>>,
) -> Option<io::Result<(usize, bool)>> {
    let count = i16::from_be_bytes(bytes.get(..2)?.try_into().ok()?);
    if count == -1 {
        return Some(Ok((2, false)));
    }
    if usize::try_from(count).ok() != Some(width) {
        return Some(Err(invalid(&format!(
            "a row has {count} fields, the query {width}"
        ))));
    }
    let buffer_start = buffer.len();
    let fields_start = fields.len();
    let mut position = 2;
    for _ in 0..width {
        let Some(length) = bytes.get(position..position + 4) else {
            buffer.truncate(buffer_start);
            fields.truncate(fields_start);
            return None;
        };
        let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
        position += 4;
        let Ok(length) = usize::try_from(length) else {
            fields.push(None);
            continue;
        };
        let Some(value) = bytes.get(position..position + length) else {
            buffer.truncate(buffer_start);
            fields.truncate(fields_start);
            return None;
        };
        let start = buffer.len();
        buffer.extend_from_slice(value);
        fields.push(Some(start..start + length));
        position += length;
    }
    Some(Ok((position, true)))
}

/// Appends exactly `length` bytes of `reader` to `buffer`, straight from the
/// reader's buffer where they are all there.
fn read_into(reader: &mut impl BufRead, buffer: &mut Vec<u8>, length: usize) -> io::Result<()> {
    let available = reader.fill_buf()?;
    if available.len() >= length {
        buffer.extend_from_slice(&available[..length]);
        reader.consume(length);
        return Ok(());
    }
    let start = buffer.len();
    buffer.resize(start + length, 0);
    reader.read_exact(&mut buffer[start..])
}

fn read_i16(reader: &mut impl Read) -> io::Result<i16> {
    let mut bytes = [0u8; 2];
    reader.read_exact(&mut bytes)?;
    Ok(i16::from_be_bytes(bytes))
}

fn read_i32(reader: &mut impl Read) -> io::Result<i32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(i32::from_be_bytes(bytes))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// The identity of mapping `spec`'s source behind `client`: [`guard::IDENTITY`], and the
/// system identifier where the role may read it.
///
/// # Errors
///
/// A failed query.
pub(crate) fn identity(
    client: &mut client::Client,
    spec: &MappingSpec,
) -> Result<guard::SourceIdentity, tokio_postgres::Error> {
    let row = client.query_one(guard::IDENTITY, &[&spec.source.schema, &spec.source.table])?;
    let system = if row.get::<_, bool>(0) {
        client.query_one(guard::SYSTEM_IDENTIFIER, &[])?.get(0)
    } else {
        None
    };
    Ok(guard::SourceIdentity::new(
        spec,
        system,
        row.get(1),
        row.get(2),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_binary_copy_stream() {
        let mut stream = COPY_SIGNATURE.to_vec();
        stream.extend(0i32.to_be_bytes());
        stream.extend(0i32.to_be_bytes());
        stream.extend(2i16.to_be_bytes());
        stream.extend(8i32.to_be_bytes());
        stream.extend(42i64.to_be_bytes());
        stream.extend((-1i32).to_be_bytes());
        stream.extend((-1i16).to_be_bytes());
        let mut reader = CopyReader::new(&stream[..], vec![Type::INT8, Type::TEXT]).unwrap();
        let row = reader.next_row().unwrap().unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 42);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert!(row.get::<String>(1).is_err());
        assert_eq!(row.display(0), "42");
        assert!(reader.next_row().unwrap().is_none());
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut stream = COPY_SIGNATURE.to_vec();
        stream.extend(0i32.to_be_bytes());
        stream.extend(0i32.to_be_bytes());
        stream.extend(1i16.to_be_bytes());
        stream.extend(8i32.to_be_bytes());
        stream.extend([0, 0]);
        let mut reader = CopyReader::new(&stream[..], vec![Type::INT8]).unwrap();
        assert!(reader.next_row().is_err());
        assert!(CopyReader::new(&b"garbage-garbage-garbage"[..], vec![]).is_err());
    }
}
