//! The reference source table of the `users` mapping, shared by the tests, the demo,
//! the benchmark and the schema snapshot, so that they all agree on it.

/// `public.users` as the reference mapping reads it: `updated_at` is its cursor and
/// `deleted_at` its soft-delete column; the last columns are read by no mapping and
/// give the table a realistic width.
pub const USERS_DDL: &str = "CREATE TABLE public.users (
    id bigint PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    bio text,
    avatar_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    balance numeric(12, 2),
    settings jsonb,
    external_id uuid
)";

/// The index incremental sync reads `public.users` by.
pub const USERS_CURSOR_INDEX: &str =
    "CREATE INDEX users_updated_at_id ON public.users (updated_at, id)";
