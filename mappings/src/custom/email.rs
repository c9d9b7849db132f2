//! Computed columns from a row's email address. A computed column's function takes
//! the whole row: a mapping whose struct implements [`HasEmail`] names
//! `#[sync(computed(to = "t", column = "domain", with = "crate::custom::email::domain", type = "text", nullable))]`
//! (YAML: `domain: { computed: custom::email::domain, type: text, nullable: true }`).

/// A row with an email address.
pub trait HasEmail {
    /// The row's email address, as read.
    fn email(&self) -> &str;
}

/// The domain of the row's email, lowercased (`Alice@Example.ORG` gives
/// `example.org`); `None` (NULL) for an address without `@` or with nothing after it.
pub fn domain(row: &impl HasEmail) -> Option<String> {
    let (_, domain) = row.email().rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_lowercase())
}

#[cfg(test)]
mod tests {
    struct Row(&'static str);

    impl super::HasEmail for Row {
        fn email(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn domain_is_the_lowercased_part_after_the_last_at() {
        assert_eq!(
            super::domain(&Row("Alice@Example.ORG")).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            super::domain(&Row("\"a@b\"@Exemple.fr")).as_deref(),
            Some("exemple.fr")
        );
        assert_eq!(super::domain(&Row("no at sign")), None);
        assert_eq!(super::domain(&Row("trailing@")), None);
        assert_eq!(super::domain(&Row("")), None);
    }
}
