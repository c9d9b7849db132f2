//! The source rows as the mapping's row type: the live column types checked before
//! the first row is read, each row decoded with an error naming its key and column.

use tokio_postgres::types::Type;

use crate::Mapping;
use crate::error::{Error, Result, decode_error};
use crate::source::SourceRow;

/// Decodes `row` as `M`, with an error naming the row's key and the column; a NULL
/// cursor gets its own error, since the field cannot be an `Option`.
pub(crate) fn decode_row<M: Mapping>(row: &SourceRow<'_>) -> Result<M> {
    M::decode(row).map_err(|error| decode_error(M::SPEC, row, error))
}

/// Checks, before reading a row, that each source column's live type is one its
/// field can decode.
pub(crate) fn check_types<M: Mapping>(types: &[Type]) -> Result<()> {
    for (index, ty) in types.iter().enumerate() {
        check_type::<M>(index, ty)?;
    }
    Ok(())
}

/// Checks that live type `ty` is one field `field` can decode.
pub(crate) fn check_type<M: Mapping>(field: usize, ty: &Type) -> Result<()> {
    let spec = M::SPEC;
    if M::accepts(field, ty) {
        return Ok(());
    }
    let column = &spec.source.columns[field];
    Err(Error::ColumnType {
        mapping: spec.name.into(),
        table: spec.source.display_name().into(),
        column: column.name.into(),
        field: column.field.into(),
        rust_type: column.rust_type.replace(' ', "").into(),
        expected: column.pg_type.into(),
        actual: ty.name().into(),
    })
}
