//! What a run checks about the source before it trusts what it reads: that
//! row-level security hides no row, that the mapping's key is unique, that the source
//! is the one the target was built from, and that the cursor can order every row.
//!
//! Each check is SQL text plus a plain function over its result, so that every
//! client (the full sync's reader, the incremental reader, `data-sync check`) runs
//! the same query and reaches the same verdict.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::error::Error;
use crate::spec::MappingSpec;

/// Set in every snapshot (as pg_dump does): a role that a row-level security policy
/// would filter gets an error instead of a subset of the rows.
pub(crate) const ROW_SECURITY_OFF: &str = "SET LOCAL row_security = off";

/// Whether `error` is PostgreSQL refusing a read that row-level security would
/// filter (with `row_security = off`).
pub(crate) fn is_row_security(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::INSUFFICIENT_PRIVILEGE
            && db.message().contains("row-level security")
    })
}

/// `error` as [`Error::RowSecurity`] when it is PostgreSQL refusing a filtered read,
/// otherwise unchanged.
pub(crate) fn classify(spec: &MappingSpec, error: Error) -> Error {
    match error {
        Error::Source { source, .. } if is_row_security(&source) => Error::RowSecurity {
            mapping: spec.name.to_owned(),
            table: spec.source.display_name(),
        },
        error => error,
    }
}

/// Whether the source table (`$1` schema or NULL for the search path, `$2` table)
/// has a valid unique index (a primary key, a unique constraint, or a plain unique
/// index without predicate or expression) on a subset of the key columns (`$3`):
/// only then can no two rows share a key.
pub(crate) const KEY_IS_UNIQUE: &str = "SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname::text = $2
      AND CASE WHEN $1::text IS NULL THEN pg_catalog.pg_table_is_visible(c.oid)
               ELSE n.nspname::text = $1 END
      AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (
          SELECT 1
          FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE k.position <= i.indnkeyatts AND NOT (a.attname::text = ANY ($3::text[]))))";

/// The source key columns' names, for [`KEY_IS_UNIQUE`]'s `$3`.
pub(crate) fn key_columns(spec: &MappingSpec) -> Vec<String> {
    spec.source
        .key
        .iter()
        .map(|&index| spec.source.columns[index].name.to_owned())
        .collect()
}

/// The error for a key [`KEY_IS_UNIQUE`] found no unique index for.
pub(crate) fn key_not_unique(spec: &MappingSpec) -> Error {
    Error::KeyNotUnique {
        mapping: spec.name.to_owned(),
        table: spec.source.display_name(),
        key: key_columns(spec)
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The source's identity but the server: whether this role may read the server's
/// system identifier ([`SYSTEM_IDENTIFIER`]), the database, and the table's OID (`$1`
/// schema or NULL, `$2` table; `NULL` when it does not exist).
pub(crate) const IDENTITY: &str = "SELECT
    pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE'),
    pg_catalog.current_database()::text,
    (SELECT c.oid::bigint
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname::text = $2
       AND CASE WHEN $1::text IS NULL THEN pg_catalog.pg_table_is_visible(c.oid)
                ELSE n.nspname::text = $1 END)";

/// The server's system identifier, the same on every database of the server and
/// on its physical replicas; asked only where [`IDENTITY`] says the role may.
pub(crate) const SYSTEM_IDENTIFIER: &str =
    "SELECT system_identifier::text FROM pg_catalog.pg_control_system()";

/// Which server, database and table a target was built from; stored with the
/// state, and compared by every incremental run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SourceIdentity {
    /// The server's system identifier (`pg_control_system()`), where readable.
    pub(crate) system: Option<String>,
    /// The database name.
    pub(crate) database: String,
    /// The table, as the mapping names it.
    pub(crate) table: String,
    /// The table's OID: a table dropped and created again is another source.
    pub(crate) oid: Option<i64>,
}

impl SourceIdentity {
    /// The identity from [`IDENTITY`]'s row.
    pub(crate) fn new(
        spec: &MappingSpec,
        system: Option<String>,
        database: String,
        oid: Option<i64>,
    ) -> SourceIdentity {
        SourceIdentity {
            system,
            database,
            table: spec.source.display_name(),
            oid,
        }
    }

    /// The stored form, JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an identity serializes")
    }

    /// Reads [`SourceIdentity::to_json`]'s form; `None` when it is not one.
    pub(crate) fn from_json(text: &str) -> Option<SourceIdentity> {
        serde_json::from_str(text).ok()
    }

    /// Whether `self` and `other` name different sources. A system identifier only
    /// one side could read is no difference.
    pub(crate) fn differs(&self, other: &SourceIdentity) -> bool {
        let systems = match (&self.system, &other.system) {
            (Some(left), Some(right)) => left != right,
            _ => false,
        };
        systems || self.database != other.database || self.oid != other.oid
    }

    /// The error for a run of `spec` reading `self` into a target built from `stored`.
    pub(crate) fn other_source_error(&self, spec: &MappingSpec, stored: &SourceIdentity) -> Error {
        Error::OtherSource {
            mapping: spec.name.to_owned(),
            stored: stored.to_string(),
            current: self.to_string(),
        }
    }
}

impl std::fmt::Display for SourceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database `{}`", self.database)?;
        if let Some(system) = &self.system {
            write!(f, " of server {system}")?;
        }
        write!(f, ", table `{}`", self.table)?;
        match self.oid {
            Some(oid) => write!(f, " (oid {oid})"),
            None => write!(f, " (missing)"),
        }
    }
}

/// Whether a raw cursor value of type `ty` is `+infinity`: a watermark there would
/// never move again. (`-infinity` sorts first and stops nothing.)
pub(crate) fn is_infinity(ty: &Type, raw: &[u8]) -> bool {
    match *ty {
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            <[u8; 8]>::try_from(raw).is_ok_and(|bytes| i64::from_be_bytes(bytes) == i64::MAX)
        }
        Type::DATE => {
            <[u8; 4]>::try_from(raw).is_ok_and(|bytes| i32::from_be_bytes(bytes) == i32::MAX)
        }
        Type::FLOAT4 => {
            <[u8; 4]>::try_from(raw).is_ok_and(|bytes| f32::from_be_bytes(bytes) == f32::INFINITY)
        }
        Type::FLOAT8 => {
            <[u8; 8]>::try_from(raw).is_ok_and(|bytes| f64::from_be_bytes(bytes) == f64::INFINITY)
        }
        // The binary numeric's sign word: 0xD000 is `Infinity` (PostgreSQL 14 on).
        Type::NUMERIC => raw.get(4..6) == Some(&[0xD0, 0x00][..]),
        _ => false,
    }
}

/// How far ahead of now a time cursor may be before a run warns about it.
const FUTURE_MARGIN_SECONDS: i64 = 86_400;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_SECONDS: i64 = 946_684_800;

/// Whether a raw time cursor value of type `ty` lies more than a day after now: the
/// watermark then moves past rows that are still to come.
pub(crate) fn is_far_future(ty: &Type, raw: &[u8]) -> bool {
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let limit =
        i64::try_from(now.as_secs()).unwrap_or(i64::MAX) - PG_EPOCH_SECONDS + FUTURE_MARGIN_SECONDS;
    let seconds = match *ty {
        Type::TIMESTAMP | Type::TIMESTAMPTZ => <[u8; 8]>::try_from(raw)
            .ok()
            .map(|bytes| i64::from_be_bytes(bytes) / 1_000_000),
        Type::DATE => <[u8; 4]>::try_from(raw)
            .ok()
            .map(|bytes| i64::from(i32::from_be_bytes(bytes)) * 86_400),
        _ => None,
    };
    seconds.is_some_and(|seconds| seconds > limit)
}

/// Checks the cursor of a row about to become the watermark: `+infinity` is an
/// error naming the key; a time far in the future is a warning naming it (once per
/// run: `warned`).
pub(crate) fn check_cursor(
    spec: &MappingSpec,
    ty: &Type,
    raw: &[u8],
    value: &str,
    key: &dyn Fn() -> String,
    warned: &mut bool,
) -> Result<(), Error> {
    let table = spec.source.display_name();
    let column = spec
        .source
        .cursor
        .map_or("", |index| spec.source.columns[index].name);
    if is_infinity(ty, raw) {
        return Err(Error::InfiniteCursor {
            mapping: spec.name.to_owned(),
            table,
            column: column.to_owned(),
            key: key(),
        });
    }
    if !*warned && is_far_future(ty, raw) {
        *warned = true;
        tracing::warn!(
            mapping = spec.name,
            "mapping `{}`: cursor column `{column}` of `{table}` is {value} at key {}, more than a day in the future: the watermark moves past rows still to come, which are read only once their cursor passes it (or by `--full`)",
            spec.name,
            key()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinity_is_recognised_per_type() {
        assert!(is_infinity(&Type::TIMESTAMPTZ, &i64::MAX.to_be_bytes()));
        assert!(!is_infinity(&Type::TIMESTAMPTZ, &i64::MIN.to_be_bytes()));
        assert!(!is_infinity(&Type::TIMESTAMPTZ, &0i64.to_be_bytes()));
        assert!(is_infinity(&Type::DATE, &i32::MAX.to_be_bytes()));
        assert!(is_infinity(&Type::FLOAT8, &f64::INFINITY.to_be_bytes()));
        assert!(!is_infinity(
            &Type::FLOAT8,
            &f64::NEG_INFINITY.to_be_bytes()
        ));
        assert!(is_infinity(&Type::NUMERIC, &[0, 0, 0, 0, 0xD0, 0, 0, 0]));
        assert!(!is_infinity(&Type::NUMERIC, &[0, 0, 0, 0, 0xF0, 0, 0, 0]));
        assert!(!is_infinity(&Type::INT8, &i64::MAX.to_be_bytes()));
    }

    #[test]
    fn the_far_future_is_more_than_a_day_ahead() {
        let micros_per_day = 86_400 * 1_000_000i64;
        let now = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - PG_EPOCH_SECONDS)
            * 1_000_000;
        assert!(!is_far_future(&Type::TIMESTAMPTZ, &now.to_be_bytes()));
        assert!(!is_far_future(
            &Type::TIMESTAMPTZ,
            &(now + micros_per_day / 2).to_be_bytes()
        ));
        assert!(is_far_future(
            &Type::TIMESTAMPTZ,
            &(now + 2 * micros_per_day).to_be_bytes()
        ));
        assert!(!is_far_future(&Type::INT8, &i64::MAX.to_be_bytes()));
    }

    #[test]
    fn identities_differ_by_database_table_or_system() {
        let identity = SourceIdentity {
            system: Some("7".to_owned()),
            database: "app".to_owned(),
            table: "public.users".to_owned(),
            oid: Some(16_385),
        };
        let round_trip = SourceIdentity::from_json(&identity.to_json()).unwrap();
        assert_eq!(round_trip, identity);
        assert!(!identity.differs(&SourceIdentity {
            system: None,
            ..identity.clone()
        }));
        assert!(identity.differs(&SourceIdentity {
            database: "other".to_owned(),
            ..identity.clone()
        }));
        assert!(identity.differs(&SourceIdentity {
            oid: Some(1),
            ..identity.clone()
        }));
        assert!(identity.differs(&SourceIdentity {
            system: Some("8".to_owned()),
            ..identity.clone()
        }));
        assert_eq!(
            identity.to_string(),
            "database `app` of server 7, table `public.users` (oid 16385)"
        );
    }
}
