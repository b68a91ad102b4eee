//! Tokenizing product text for the search index: the same function indexes and queries, so
//! both always agree on what a word is.

use std::collections::BTreeMap;

/// Longest token kept; longer words are cut (they still match by prefix).
pub const MAX_TOKEN_CHARS: usize = 32;
/// Description words indexed per product; bounds index size for very long descriptions.
pub const MAX_DESCRIPTION_TOKENS: usize = 200;

/// Case-folded words of at least two characters, split on anything not alphanumeric.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(|w| w.to_lowercase().chars().take(MAX_TOKEN_CHARS).collect())
        .collect()
}

/// A query's words, and the last one apart when it is still being typed (the text ends with it,
/// no space after): type-ahead matches that one as a prefix of any term.
pub fn words_and_prefix(text: &str) -> (Vec<String>, Option<String>) {
    let mut words = tokens(text);
    let prefix = if text.ends_with(|c: char| c.is_alphanumeric()) { words.pop() } else { None };
    (words, prefix)
}

/// Search terms of a product with their relevance weight: a word in the name counts 3, in the
/// brand 2, in the description 1; a word in several fields adds up.
pub fn weighted_terms(name: &str, brand: &str, description: &str) -> BTreeMap<String, f64> {
    let mut terms = BTreeMap::new();
    let mut add = |words: Vec<String>, weight: f64| {
        let mut seen = std::collections::BTreeSet::new();
        for w in words {
            if seen.insert(w.clone()) {
                *terms.entry(w).or_insert(0.0) += weight;
            }
        }
    };
    add(tokens(name), 3.0);
    add(tokens(brand), 2.0);
    add(tokens(description).into_iter().take(MAX_DESCRIPTION_TOKENS).collect(), 1.0);
    terms
}

/// The prefixes of a product's weighted terms that type-ahead may be given (from two characters
/// to the whole term; ADR 0029), each weighing the sum of the weights of the terms it begins:
/// what uniting those terms' sets would score the product, so a prefix's own set ranks exactly
/// as the union did.
pub fn weighted_prefixes(terms: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let mut prefixes = BTreeMap::new();
    for (term, weight) in terms {
        // Terms have at least two characters (see `tokens`): their prefixes from two on.
        for (end, c) in term.char_indices().skip(1) {
            *prefixes.entry(term[..end + c.len_utf8()].to_owned()).or_insert(0.0) += weight;
        }
    }
    prefixes
}

/// A facet value (category, brand) as used in keys: trimmed and case-folded, so "Kitchen" and
/// "kitchen " are one facet.
pub fn facet(value: &str) -> String {
    value.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_products_prefixes_weigh_what_the_union_of_their_terms_would() {
        // Given "mug" in the name (3), "mugs" in the description (1) and "tea" in both (4)
        let terms = weighted_terms("Tea mug", "", "mugs for tea");

        // When its prefixes are listed
        let prefixes = weighted_prefixes(&terms);

        // Then each weighs the sum of the terms it begins
        let want = [
            ("fo", 1.0),
            ("for", 1.0),
            ("mu", 4.0),
            ("mug", 4.0),
            ("mugs", 1.0),
            ("te", 4.0),
            ("tea", 4.0),
        ];
        let want: BTreeMap<String, f64> = want.iter().map(|(p, w)| (p.to_string(), *w)).collect();
        assert_eq!(prefixes, want);
    }

    #[test]
    fn prefixes_count_characters_not_bytes() {
        let prefixes = weighted_prefixes(&weighted_terms("Ölkanne", "", ""));
        let keys: Vec<&str> = prefixes.keys().map(String::as_str).collect();
        assert_eq!(keys, ["öl", "ölk", "ölka", "ölkan", "ölkann", "ölkanne"]);
    }
}
