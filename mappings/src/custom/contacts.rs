//! A hand-written mapping, the example `docs/mapping.md` and this directory's
//! README describe: a struct that derives `Mapping` in `mappings/src/custom/`, which
//! `cargo xtask gen` registers in the catalogue beside the YAML mappings. It keeps a
//! flat contact list of the reference `public.users` table in one target table.

use sync_runtime::Mapping;

/// A row of `public.users`, written to `contact`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.users", key = "id")]
pub struct Contacts {
    /// Source column `id`, the key, written to `contact.id`.
    #[sync(to = "contact", primary_key)]
    pub id: i64,
    /// Source column `username`, written to `contact.name`.
    #[sync(to = "contact", column = "name")]
    pub username: String,
    /// Source column `email`, written to `contact.email`.
    #[sync(to = "contact")]
    pub email: String,
}
