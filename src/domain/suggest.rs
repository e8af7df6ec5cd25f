//! "Did you mean …?": the nearest known word to a mistyped one, for error messages.

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most a third of the word's length, and at least 1 edit allowed), or if one
/// candidate starts with what was typed.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let allowed = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = strsim::damerau_levenshtein(&word_lower, &candidate.to_lowercase());
        let prefix = word.len() >= 2 && candidate.starts_with(word_lower.as_str());
        if (distance <= allowed || prefix) && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn finds_typos_and_prefixes_but_not_strangers() {
        let envs = ["staging", "production"];
        assert_eq!(nearest("stagign", envs), Some("staging"));
        assert_eq!(nearest("prod", envs), Some("production"));
        assert_eq!(nearest("Staging!!", envs), Some("staging"));
        assert_eq!(nearest("nosuchenv", envs), None);
        assert_eq!(nearest("x", envs), None);
    }
}
