//! The static description of a mapping that `#[derive(Mapping)]` generates: names,
//! types and the SQL text, all known at compile time.

/// Everything data-sync knows about one mapping, generated at compile time.
#[derive(Debug)]
pub struct MappingSpec {
    /// The mapping name, as `--mapping` takes it.
    pub name: &'static str,
    /// The Rust struct the mapping was declared on.
    pub struct_name: &'static str,
    /// The PostgreSQL side.
    pub source: SourceSpec,
    /// The SQLite tables, every parent before its children.
    pub targets: &'static [TargetSpec],
    /// A hash of everything that decides what a run writes (SQL, key, cursor). A
    /// target file built under another fingerprint needs a full sync.
    pub fingerprint: &'static str,
}

/// The PostgreSQL table a mapping reads.
#[derive(Debug)]
pub struct SourceSpec {
    /// The schema, or `None` for the connection's search path.
    pub schema: Option<&'static str>,
    /// The table name, exact.
    pub table: &'static str,
    /// The source columns read, in SELECT and field order.
    pub columns: &'static [SourceColumn],
    /// Positions in `columns` of the key.
    pub key: &'static [usize],
    /// Position in `columns` of the cursor, for incremental sync.
    pub cursor: Option<usize>,
    /// Position in `columns` of the soft-delete column.
    pub soft_delete: Option<usize>,
    /// Position in `columns` of the partition column (`partition_by`): its value
    /// picks the target file of a row, one file per value.
    pub partition_by: Option<usize>,
    /// `SELECT .. FROM ..` over every column, identifiers quoted.
    pub select: &'static str,
    /// The SQL of incremental sync, for a mapping with a cursor.
    pub incremental: Option<IncrementalSpec>,
    /// Change capture from the source's write-ahead log (`capture: log`), for a
    /// mapping without a cursor.
    pub capture: Option<CaptureSpec>,
    /// The row filter: the rows of the source the targets hold.
    pub filter: Option<crate::filter::FilterSpec>,
}

/// How a mapping with `capture: log` reads the source's changes.
#[derive(Debug)]
pub struct CaptureSpec {
    /// The publication the operator created (`publication: NAME`), or `None`: the
    /// first run creates one for the source table.
    pub publication: Option<&'static str>,
}

/// The SQL of incremental sync and `--prune`, generated for a mapping with a cursor.
///
/// The row queries select every field as [`SourceSpec::select`] does, then the
/// cursor and key columns uncast (the watermark the row reaches), ordered by them.
#[derive(Debug)]
pub struct IncrementalSpec {
    /// Every row, in watermark order.
    pub select_all: &'static str,
    /// The rows after the watermark `($1, $2..)` (cursor, key).
    pub select_after: &'static str,
    /// The rows whose cursor is at least `$1`, plus a last boolean column: whether the
    /// row lies after the watermark `($2, $3..)`. With a filter, a boolean column
    /// follows the watermark in every row query: whether the row matches the filter
    /// (rows that left it are read too, so that they leave the targets).
    pub select_from: &'static str,
    /// The greatest watermark (cursor, key) of the table, one row or none.
    pub watermark: &'static str,
    /// The key, as text, of one row whose cursor is NULL.
    pub null_cursor: &'static str,
    /// Every key of the source, as the key fields read it.
    pub select_keys: &'static str,
    /// `CREATE TEMP TABLE` for the keys `--prune` streams.
    pub prune_keys_create: &'static str,
    /// `INSERT` of one key into that table, `?n` in key order.
    pub prune_keys_insert: &'static str,
    /// `DROP TABLE` of that table.
    pub prune_keys_drop: &'static str,
    /// Per target, in [`MappingSpec::targets`] order: delete the rows whose key is not
    /// in that table.
    pub prune: &'static [&'static str],
}

impl SourceSpec {
    /// The table as a person writes it: `public.users`.
    pub fn display_name(&self) -> String {
        match self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.to_owned(),
        }
    }

    /// [`SourceSpec::select`] in parts: the expression of each field, in field
    /// order, and the rest from ` FROM` on (the table, and the filter's `WHERE`).
    /// An expression is a quoted column, cast or not (`"a"`, `"b"::text`), so a
    /// comma or ` FROM ` counts only outside double quotes.
    pub(crate) fn select_parts(&self) -> (Vec<&'static str>, &'static str) {
        split_select(self.select)
    }
}

/// See [`SourceSpec::select_parts`].
fn split_select(select: &str) -> (Vec<&str>, &str) {
    let list_start = "SELECT ".len();
    let mut expressions = Vec::new();
    let mut start = list_start;
    let mut quoted = false;
    for (index, byte) in select.bytes().enumerate().skip(list_start) {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                expressions.push(select[start..index].trim());
                start = index + 1;
            }
            b' ' if !quoted && select[index..].starts_with(" FROM ") => {
                expressions.push(select[start..index].trim());
                return (expressions, &select[index..]);
            }
            _ => {}
        }
    }
    (expressions, "")
}

/// One source column and the field it is read into.
#[derive(Debug)]
pub struct SourceColumn {
    /// The column name, exact.
    pub name: &'static str,
    /// The Rust field it is read into.
    pub field: &'static str,
    /// The PostgreSQL type as declared or inferred.
    pub pg_type: &'static str,
    /// The Rust type of the field.
    pub rust_type: &'static str,
    /// Whether the field is an `Option`.
    pub nullable: bool,
}

/// One SQLite target table.
#[derive(Debug)]
pub struct TargetSpec {
    /// The table name, exact.
    pub name: &'static str,
    /// Its columns, in table order.
    pub columns: &'static [TargetColumn],
    /// `CREATE TABLE .. STRICT` (without `STRICT` for `strict = false`).
    pub create: &'static str,
    /// Whether the table is STRICT; `false` for a mapping with `strict = false`.
    pub strict: bool,
    /// `INSERT INTO ..`, one `?n` per column in column order.
    pub insert: &'static str,
    /// [`TargetSpec::insert`] with `ON CONFLICT (key) DO UPDATE`.
    pub upsert: &'static str,
    /// `DELETE FROM ..`, every row.
    pub delete_all: &'static str,
    /// `DELETE FROM .. WHERE key = ?1 ..`, parameters in source key order.
    pub delete_by_key: &'static str,
}

/// One column of a target table.
#[derive(Debug)]
pub struct TargetColumn {
    /// The column name, exact.
    pub name: &'static str,
    /// `INTEGER`, `REAL`, `TEXT` or `BLOB`.
    pub sqlite_type: &'static str,
    /// Whether the column is `NOT NULL`.
    pub not_null: bool,
    /// Whether the column is part of the primary key.
    pub primary_key: bool,
    /// The foreign key this column carries, if any.
    pub references: Option<ForeignKey>,
    /// Position of the field that feeds it, in [`SourceSpec::columns`]; `None` for a
    /// computed column.
    pub field: Option<usize>,
    /// For a computed column, the function that computes it from the whole row, as
    /// written (`crate::custom::email::domain`). Computed columns follow the others.
    pub computed: Option<&'static str>,
    /// The transform the value goes through (`with = "path::fn"`), as written.
    pub transform: Option<&'static str>,
}

impl TargetSpec {
    /// Whether the table has a computed column, whose value needs the whole row.
    pub fn has_computed(&self) -> bool {
        self.columns.iter().any(|column| column.computed.is_some())
    }
}

/// A foreign key to another target of the same mapping, or to another mapping's
/// target (checked by [`check_catalogue`](crate::check_catalogue)).
#[derive(Debug)]
pub struct ForeignKey {
    /// The parent table.
    pub table: &'static str,
    /// The parent column.
    pub column: &'static str,
}

#[cfg(test)]
mod tests {
    use super::split_select;

    #[test]
    fn select_splits_outside_quotes_only() {
        let select = r#"SELECT "id", "a, b", "x FROM y"::text, "say ""hi"", FROM", "d"::text[] FROM "s"."t, u" WHERE ("id" > current_setting('data_sync.f1')::int8)"#;
        assert_eq!(
            split_select(select),
            (
                vec![
                    r#""id""#,
                    r#""a, b""#,
                    r#""x FROM y"::text"#,
                    r#""say ""hi"", FROM""#,
                    r#""d"::text[]"#
                ],
                r#" FROM "s"."t, u" WHERE ("id" > current_setting('data_sync.f1')::int8)"#
            )
        );
    }
}
