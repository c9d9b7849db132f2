//! Masks for transforms: a YAML column names one with `with: custom::mask::email`,
//! a struct field with `#[sync(to = "t", with = "crate::custom::mask::email")]`.

/// `alice@example.org` becomes `a***@example.org`; text without `@` becomes `***`.
pub fn email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn email_keeps_the_first_character_and_the_domain() {
        assert_eq!(super::email("alice@example.org"), "a***@example.org");
        assert_eq!(super::email("émile@exemple.fr"), "é***@exemple.fr");
        assert_eq!(super::email("@example.org"), "***@example.org");
        assert_eq!(super::email("no at sign"), "***");
    }
}
