//! The keywords of `#[sync(...)]`, shared by the attribute parser and the emitter so
//! that the two front-ends spell every key one way.

/// `#[sync(...)]`, the attribute path.
pub const SYNC: &str = "sync";
/// `#[sync(name = "users")]` on the struct: the mapping name.
pub const NAME: &str = "name";
/// `#[sync(from = "public.users")]` on the struct, `#[sync(from = "User Name")]` on a field.
pub const FROM: &str = "from";
/// `#[sync(key = "id")]` or `#[sync(key("a", "b"))]` on the struct.
pub const KEY: &str = "key";
/// `#[sync(cursor = "updated_at")]` on the struct.
pub const CURSOR: &str = "cursor";
/// `#[sync(soft_delete = "deleted_at")]` on the struct.
pub const SOFT_DELETE: &str = "soft_delete";
/// `#[sync(capture = "log")]` on the struct: changes come from the source's WAL.
pub const CAPTURE: &str = "capture";
/// `#[sync(publication = "app_changes")]` on the struct: the publication change
/// capture reads, created by the operator.
pub const PUBLICATION: &str = "publication";
/// `#[sync(partition_by = "tenant_id")]` on the struct: the source column whose
/// value picks the target file (one file per value).
pub const PARTITION_BY: &str = "partition_by";
/// The one value of `capture`.
pub const CAPTURE_LOG: &str = "log";
/// `#[sync(type = "bigint")]` on a field: the PostgreSQL type of its source column.
pub const TYPE: &str = "type";
/// `#[sync(to = "user_main")]` on a field: one placement into a target table.
pub const TO: &str = "to";
/// `#[sync(to = "t", column = "c")]`: the target column name, when not the source's.
pub const COLUMN: &str = "column";
/// `#[sync(to = "t", primary_key)]`.
pub const PRIMARY_KEY: &str = "primary_key";
/// `#[sync(to = "t", references = "parent.id")]`.
pub const REFERENCES: &str = "references";
/// `#[sync(snapshot = "schema")]` on the struct: the schema snapshot directory.
pub const SNAPSHOT: &str = "snapshot";
/// `#[sync(filter = "tenant_id = $tenant")]` on the struct: the rows the targets hold.
pub const FILTER: &str = "filter";
/// `#[sync(to = "t", with = "crate::mask::email")]`: a transform of the placement.
pub const WITH: &str = "with";
/// `#[sync(computed(to = "t", column = "c", with = "crate::f", type = "text"))]` on
/// the struct, `{ computed: custom::f, type: text }` in YAML: a computed column.
pub const COMPUTED: &str = "computed";
/// `nullable` of a computed column (and of a YAML column).
pub const NULLABLE: &str = "nullable";
/// `#[sync(strict = false)]` on the struct, `strict: false` at the top of a YAML
/// mapping: plain (not STRICT) target tables.
pub const STRICT: &str = "strict";
