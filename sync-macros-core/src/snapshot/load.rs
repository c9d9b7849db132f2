//! [`load`]: the one place the derive and `cargo xtask gen` read a mapping's
//! snapshot file, before `check`. Apart from the snapshot's types so that the model,
//! which holds a [`Snapshot`], does not import the loader's context and back.

use std::path::PathBuf;

use crate::ctxt::Ctxt;
use crate::model::{Origin, Source};
use crate::snapshot::{Snapshot, file_name, from_json};

/// Where to look for the snapshot of a mapping's source table.
#[derive(Clone, Debug)]
pub struct Directory<'a> {
    /// The directory on disk.
    pub path: PathBuf,
    /// The directory as messages name it, e.g. `mappings/schema`.
    pub shown: String,
    /// The attribute that named the directory (`#[sync(snapshot = "dir")]`): a
    /// missing file is then an error there; otherwise it means "no snapshot".
    pub named_by: Option<&'a Origin>,
}

/// Reads the snapshot of `source` from `directory`, the one way the derive and
/// `cargo xtask gen` find it, before `check` runs. `None` when there is none, or when
/// it cannot be read; that is then an error in `cx`, at the attribute that named the
/// directory or else at the source.
pub fn load(cx: &Ctxt, source: &Source, directory: &Directory<'_>) -> Option<Snapshot> {
    let file_name = file_name(
        source.schema.as_ref().map(|schema| schema.value.as_str()),
        &source.table.value,
    );
    let shown = format!("{}/{file_name}", directory.shown.trim_end_matches('/'));
    let path = directory.path.join(&file_name);
    let origin = directory.named_by.unwrap_or(&source.origin);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error)
            if error.kind() == std::io::ErrorKind::NotFound && directory.named_by.is_none() =>
        {
            return None;
        }
        Err(error) => {
            cx.error(
                origin,
                format!(
                    "cannot read schema snapshot `{shown}`: {error}; run `cargo xtask schema` or fix the path"
                ),
            );
            return None;
        }
    };
    match from_json(&text) {
        Ok(table) => Some(Snapshot {
            file: shown,
            tracked_path: std::fs::canonicalize(&path)
                .ok()
                .and_then(|path| path.to_str().map(str::to_owned)),
            table,
        }),
        Err(error) => {
            cx.error(
                origin,
                format!("schema snapshot `{shown}` is unreadable: {error}"),
            );
            None
        }
    }
}
