//! The reference mapping: PostgreSQL `users` split into `user_main` and `user_profile`.

use sync_runtime::Mapping;

/// A row of `public.users`, written to `user_main(id, username, email)` and
/// `user_profile(id, bio, avatar_url)`.
#[derive(Debug, Clone, PartialEq, Mapping)]
#[sync(from = "public.users", key = "id")]
pub struct Users {
    /// The key, in both targets; `user_profile.id` references `user_main.id`.
    #[sync(to = "user_main", primary_key)]
    #[sync(to = "user_profile", primary_key, references = "user_main.id")]
    pub id: i64,
    /// The login name.
    #[sync(to = "user_main")]
    pub username: String,
    /// The e-mail address.
    #[sync(to = "user_main")]
    pub email: String,
    /// Free text, often absent.
    #[sync(to = "user_profile")]
    pub bio: Option<String>,
    /// An image URL, often absent.
    #[sync(to = "user_profile")]
    pub avatar_url: Option<String>,
}
