//! Fan-out, the parts that are not a run: which file a partition value names (the
//! target template and the file-name escape), which partitions a run syncs
//! (`--partition`, `--shard`), and the SQL that picks them in the source query.
//!
//! The escape and the hash are documented in `docs/fanout.md` so that other tools
//! can compute the same file names and shards.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sync_sql::ident::quote;
use tokio_postgres::types::{Kind, Type};

use crate::error::{Error, Result};
use crate::spec::MappingSpec;

/// The longest file name [`file_name`] makes: longer escapes keep a prefix and
/// a hash of the whole value, so that a template's own text still fits in the 255
/// bytes most file systems allow for one name.
pub const MAX_NAME: usize = 200;

/// The bytes of an escape kept as they are before the hash of a long value.
const LONG_PREFIX: usize = 180;

/// The name of the file of the empty value: the escape never makes it (it writes
/// `%` only before two hexadecimal digits).
pub const EMPTY_NAME: &str = "%empty";

/// The setting the value of `--partition` is bound to.
const PARTITION_SETTING: &str = "data_sync.partition";
/// The settings `--shard I/N` is bound to.
const SHARD_INDEX_SETTING: &str = "data_sync.shard_index";
const SHARD_COUNT_SETTING: &str = "data_sync.shard_count";

/// A partition value as one safe path component: every byte outside
/// `[A-Za-z0-9_-]` becomes `%XX` (uppercase hexadecimal), except a `.` that is not
/// the first byte; the empty value is [`EMPTY_NAME`]; an escape longer than
/// [`MAX_NAME`] bytes keeps its first 180 bytes (never cutting a `%XX`), then `~`
/// and the 16 lowercase hexadecimal digits of the FNV-1a 64-bit hash of the value.
///
/// No name is `.` or `..`, starts with `.`, or holds a separator or a NUL; two
/// values never share a name, except that two values longer than the limit whose
/// escapes share the prefix could share a hash (one chance in 2^64).
///
/// # Examples
///
/// ```
/// use sync_runtime::partition_file_name;
///
/// assert_eq!(partition_file_name(b"acme-7"), "acme-7");
/// assert_eq!(partition_file_name(b"../x"), "%2E.%2Fx");
/// assert_eq!(partition_file_name(b"a b.c"), "a%20b.c");
/// assert_eq!(partition_file_name(b""), "%empty");
/// ```
pub fn file_name(value: &[u8]) -> String {
    if value.is_empty() {
        return EMPTY_NAME.to_owned();
    }
    let mut name = String::with_capacity(value.len());
    for (position, &byte) in value.iter().enumerate() {
        let safe = byte.is_ascii_alphanumeric()
            || byte == b'_'
            || byte == b'-'
            || (byte == b'.' && position > 0);
        if safe {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.len() <= MAX_NAME {
        return name;
    }
    let mut cut = LONG_PREFIX;
    // `%XX` is three bytes: a cut inside one moves before it.
    if let Some(percent) = name[cut.saturating_sub(2)..cut].find('%') {
        cut = cut - 2 + percent;
    }
    format!("{}~{:016x}", &name[..cut], sync_sql::fnv1a_64(value))
}

/// The value whose [`file_name`] is `name`, or `None` for a name no value has or
/// one that keeps only a hash of a long value.
pub(crate) fn value_of_name(name: &str) -> Option<Vec<u8>> {
    if name == EMPTY_NAME {
        return Some(Vec::new());
    }
    if name.is_empty() || name.contains('~') || name.len() > MAX_NAME {
        return None;
    }
    let bytes = name.as_bytes();
    let mut value = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' {
            let hex = name.get(position + 1..position + 3)?;
            value.push(u8::from_str_radix(hex, 16).ok()?);
            position += 3;
        } else {
            value.push(bytes[position]);
            position += 1;
        }
    }
    // Only the escape's own spelling reads back.
    (file_name(&value) == name).then_some(value)
}

/// The text form of a partition column's binary value, as PostgreSQL prints it
/// (`column::text`): decimal for integers, the label for enums, the characters
/// for text types, the hyphenated lowercase form for a uuid; `None` for a type a
/// partition column cannot have (the derive refuses those).
pub(crate) fn text_form(ty: &Type, raw: &[u8]) -> Option<Vec<u8>> {
    let width = match *ty {
        Type::INT2 => 2,
        Type::INT4 => 4,
        Type::INT8 => 8,
        Type::UUID => 16,
        _ if is_text(ty) => return Some(raw.to_vec()),
        _ => return None,
    };
    // The watermark's text of these types is PostgreSQL's.
    (raw.len() == width).then(|| crate::sync::watermark::display(ty, raw).into_bytes())
}

/// Refuses the partition column `index` (of `spec.source.columns`) when its
/// source type `ty` is not one whose text form [`text_form`] computes.
pub(crate) fn check_supported(spec: &MappingSpec, index: usize, ty: &Type) -> Result<()> {
    if matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8 | Type::UUID) || is_text(ty) {
        return Ok(());
    }
    Err(Error::Partition {
        mapping: spec.name.to_owned(),
        message: format!(
            "partition column `{}` is `{ty}` in the source, whose values name no file; partition by an integer, text, enum or uuid column",
            spec.source.columns[index].name
        ),
    })
}

/// Whether a partition column of type `ty` is compared as text.
fn is_text(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME)
        || matches!(ty.kind(), Kind::Enum(_))
        || ty.name() == "citext"
}

/// The target of a partitioned mapping: a path with `{column}` placeholders, each
/// replaced by the escaped partition value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The text between placeholders; one more piece than placeholders.
    pieces: Vec<String>,
}

impl Template {
    /// The template `path` for mapping `spec`: every placeholder names the partition
    /// column, and there is at least one.
    ///
    /// # Errors
    ///
    /// [`Error::Partition`] naming the template and the column: a path that is not
    /// UTF-8, a `{` without its `}`, a placeholder naming another column, or none.
    pub fn parse(spec: &MappingSpec, path: &Path) -> Result<Template> {
        let column = partition_column(spec)?;
        let error = |message: String| Error::Partition {
            mapping: spec.name.to_owned(),
            message,
        };
        let Some(text) = path.to_str() else {
            return Err(error(format!(
                "the target `{}` is not UTF-8; a partitioned target is a template such as `out/{{{column}}}.sqlite`",
                path.display()
            )));
        };
        let mut pieces = vec![String::new()];
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            pieces
                .last_mut()
                .expect("one piece")
                .push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                return Err(error(format!(
                    "the target template `{text}` opens a `{{` it does not close; write `{{{column}}}` where the partition value goes"
                )));
            };
            let name = &rest[open + 1..open + close];
            if name != column {
                return Err(error(format!(
                    "the target template `{text}` names `{{{name}}}`, but the mapping is partitioned by `{column}`: write `{{{column}}}`"
                )));
            }
            pieces.push(String::new());
            rest = &rest[open + close + 1..];
        }
        pieces.last_mut().expect("one piece").push_str(rest);
        if pieces.len() == 1 {
            return Err(error(format!(
                "partitioned by `{column}`, so the target `{text}` must name a file per value: \
                 add the placeholder `{{{column}}}`, e.g. `--target 'out/{{{column}}}.sqlite'`"
            )));
        }
        Ok(Template { pieces })
    }

    /// The file of the partition whose text form is `value`.
    pub fn path(&self, value: &[u8]) -> PathBuf {
        self.path_of_name(&file_name(value))
    }

    /// The file whose placeholders hold `name`, an escaped value.
    pub fn path_of_name(&self, name: &str) -> PathBuf {
        PathBuf::from(self.pieces.join(name))
    }

    /// The escaped value of `path` if it is a file of this template (every
    /// placeholder holding the same name), else `None`.
    pub fn name_of(&self, path: &Path) -> Option<String> {
        let text = path.to_str()?;
        let first = self.pieces.first()?;
        let second = self.pieces.get(1)?;
        let rest = text.strip_prefix(first.as_str())?;
        // The name ends where the next piece starts; a name never holds `/`, and the
        // shortest candidate that rebuilds the whole path is the one.
        let mut search = 0;
        while let Some(found) = rest[search..].find(second.as_str()) {
            let name = &rest[..search + found];
            // No escaped value is empty or starts with `.` (the routing index's
            // `.data-sync-routes-*.sqlite` is no partition's file).
            if self.path_of_name(name).as_os_str() == path.as_os_str()
                && !name.contains('/')
                && !name.is_empty()
                && !name.starts_with('.')
            {
                return Some(name.to_owned());
            }
            search += found + 1;
            if search > rest.len() {
                break;
            }
        }
        None
    }

    /// The directory that holds every file of the template, when its placeholders
    /// are all in the last component (`out/{tenant}.sqlite`: `out`), else `None`.
    pub fn directory(&self) -> Option<PathBuf> {
        let first = &self.pieces[0];
        if self.pieces[1..].iter().any(|piece| piece.contains('/')) {
            return None;
        }
        match first.rfind('/') {
            Some(slash) => Some(PathBuf::from(&first[..slash.max(1)])),
            None => Some(PathBuf::from(".")),
        }
    }

    /// Every existing file of the template, sorted (the directory of
    /// [`Template::directory`] listed; none when it does not exist).
    ///
    /// # Errors
    ///
    /// The directory cannot be listed, or the template has placeholders before its
    /// last component.
    pub fn existing(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        let Some(directory) = self.directory() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a template whose placeholders are in its last path component can be listed",
            ));
        };
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let prefix_directory = self.pieces[0].contains('/');
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry?;
            let path = if prefix_directory {
                directory.join(entry.file_name())
            } else {
                PathBuf::from(entry.file_name())
            };
            if let Some(name) = self.name_of(&path) {
                files.push((name, path));
            }
        }
        files.sort();
        Ok(files)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pieces.join("{}"))
    }
}

/// The partition column of `spec`.
fn partition_column(spec: &MappingSpec) -> Result<&'static str> {
    spec.source
        .partition_by
        .map(|index| spec.source.columns[index].name)
        .ok_or_else(|| Error::Partition {
            mapping: spec.name.to_owned(),
            message: "`--partition` and `--shard` need a mapping with `partition_by`".to_owned(),
        })
}

/// `--shard I/N`: the partitions whose hash modulo `count` is `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// `I`, from 0 (Kubernetes' `$JOB_COMPLETION_INDEX`) to `count - 1`.
    pub index: u32,
    /// `N`, at least 1.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Shard, String> {
        let parse = || -> Option<Shard> {
            let (index, count) = text.split_once('/')?;
            let shard = Shard {
                index: index.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            (shard.count >= 1 && shard.index < shard.count).then_some(shard)
        };
        parse().ok_or_else(|| {
            format!("`{text}` is not a shard I/N with 0 <= I < N, e.g. 0/4 (the first of four)")
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of the partition whose text form is `value` among `count` shards,
/// as the source query computes it: the first 15 hexadecimal digits of the MD5 of
/// the text form, read as a number (60 bits), modulo `count`. Given the MD5 digest.
pub fn shard_of_digest(md5: &[u8; 16], count: u32) -> u32 {
    let high = u64::from_be_bytes(md5[..8].try_into().expect("8 bytes")) >> 4;
    u32::try_from(high % u64::from(count)).expect("below count")
}

impl Shard {
    /// Whether the partition whose text form is `value` is in this shard.
    pub(crate) fn holds(&self, value: &[u8]) -> bool {
        use md5::Digest as _;
        let digest: [u8; 16] = md5::Md5::digest(value).into();
        shard_of_digest(&digest, self.count) == self.index
    }
}

/// A condition of the source query, and the `(setting, value)` pairs it reads.
pub(crate) type Condition = (String, Vec<(&'static str, String)>);

/// Which partitions a run syncs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every partition.
    #[default]
    All,
    /// `--partition VALUE`: one partition, by its text form.
    One(String),
    /// `--shard I/N`.
    Shard(Shard),
}

impl Selection {
    /// The condition the source query adds for this selection (none for every
    /// partition), and the settings it reads; `ty` is the live type of the
    /// partition column. Values are bound to settings, never spliced.
    ///
    /// # Errors
    ///
    /// [`Error::Partition`] for a `--partition` value that does not read as an
    /// integer column's value.
    pub(crate) fn condition(&self, spec: &MappingSpec, ty: &Type) -> Result<Option<Condition>> {
        let column = partition_column(spec)?;
        let quoted = quote(column);
        match self {
            Selection::All => Ok(None),
            Selection::One(value) => {
                let integer = matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8);
                let value = if integer || *ty == Type::UUID {
                    value.trim()
                } else {
                    value.as_str()
                };
                let condition = if integer {
                    if value.parse::<i64>().is_err() {
                        return Err(Error::Partition {
                            mapping: spec.name.to_owned(),
                            message: format!(
                                "`--partition {value}` is not a value of `{column}`, an integer column"
                            ),
                        });
                    }
                    format!("{quoted} = current_setting('{PARTITION_SETTING}')::bigint")
                } else if *ty == Type::UUID {
                    format!("{quoted} = current_setting('{PARTITION_SETTING}')::uuid")
                } else {
                    format!("{quoted}::text = current_setting('{PARTITION_SETTING}')")
                };
                Ok(Some((
                    condition,
                    vec![(PARTITION_SETTING, value.to_owned())],
                )))
            }
            Selection::Shard(shard) => Ok(Some((
                format!(
                    "('x' || substr(md5({quoted}::text), 1, 15))::bit(60)::bigint \
                     % current_setting('{SHARD_COUNT_SETTING}')::bigint \
                     = current_setting('{SHARD_INDEX_SETTING}')::bigint"
                ),
                vec![
                    (SHARD_INDEX_SETTING, shard.index.to_string()),
                    (SHARD_COUNT_SETTING, shard.count.to_string()),
                ],
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
