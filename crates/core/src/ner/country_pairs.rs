//! Two country names joined by a glued hyphen are two names: raw news writes a relation
//! between two states as "scambi Cina-Russia", "legami Russia-Cina", "Gipfel USA-China",
//! and a model trained on gold sets, where a hyphenated name ("Emilia-Romagna",
//! "Baden-Württemberg", "Bosnia-Erzegovina") is one entity, reads it as one place.
//!
//! The rule is narrow on purpose: an entity is split only when its whole surface is two names
//! of sovereign states (`country_names.txt` beside this file, Italian and German) joined by
//! one hyphen, and the pair is not itself the name of a state (Austria-Ungheria). Hyphenated
//! regions, routes ("Roma-Viterbo", one LOC in KIND), double surnames and compounds that only
//! begin with a pair ("Russland-Ukraine-Krieg") are left as the model found them. A pair of
//! people ("Putin-Xi"), which no list can tell from a double surname ("Kramp-Karrenbauer"),
//! is [`super::person_pairs`]' case. Splitting every glued hyphen instead costs 9.7 F1 on
//! CoNLL-2003 German dev (README, *Word boundaries*). The split itself happens in decoding
//! ([`super::decode`], step 5); this module only finds the pair.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The list of state names, one per line (`#` starts a comment line).
const COUNTRY_NAMES: &str = include_str!("country_names.txt");

/// Pairs of state names that together name one state, lowercased: never split.
const WHOLE_NAMES: &[&str] = &["austria-ungheria", "österreich-ungarn", "serbia-montenegro", "serbien-montenegro"];

/// Whether `c` joins two words as a hyphen: hyphen-minus, hyphen, non-breaking hyphen, en dash.
pub fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}' | '\u{2011}' | '\u{2013}')
}

/// A name as compared: lowercased, typographic apostrophes as `'`, whitespace runs as one space.
fn normalise(name: &[char]) -> String {
    let text: String = name.iter().map(|&c| if c == '\u{2019}' { '\'' } else { c }).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The normalised state names of [`COUNTRY_NAMES`].
fn country_names() -> &'static HashSet<String> {
    static NAMES: OnceLock<HashSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        COUNTRY_NAMES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| normalise(&l.chars().collect::<Vec<_>>()))
            .collect()
    })
}

/// Whether `name` is a state name of the list.
pub fn is_country_name(name: &str) -> bool {
    country_names().contains(&normalise(&name.chars().collect::<Vec<_>>()))
}

/// Where a surface made of two state names joined by a glued hyphen splits: the hyphen's
/// index in `surface` (code points), or `None` when the surface is anything else. The hyphen
/// must touch both names ("Cina - Russia" is not glued), each side must start with an
/// uppercase letter, and the pair must not be one state's name (Austria-Ungheria).
pub fn country_pair_hyphen(surface: &[char]) -> Option<usize> {
    if WHOLE_NAMES.contains(&normalise(surface).as_str()) {
        return None;
    }
    let names = country_names();
    (1..surface.len().saturating_sub(1)).find(|&h| {
        let (left, right) = (&surface[..h], &surface[h + 1..]);
        is_hyphen(surface[h])
            && !surface[h - 1].is_whitespace()
            && right.first().is_some_and(|c| c.is_uppercase())
            && left.first().is_some_and(|c| c.is_uppercase())
            && names.contains(&normalise(left))
            && names.contains(&normalise(right))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_at(s: &str) -> Option<usize> {
        country_pair_hyphen(&s.chars().collect::<Vec<_>>())
    }

    #[test]
    fn two_states_joined_by_a_glued_hyphen_split_at_the_hyphen() {
        assert_eq!(split_at("Cina-Russia"), Some(4));
        assert_eq!(split_at("Russia-Cina"), Some(6));
        assert_eq!(split_at("USA-China"), Some(3));
        assert_eq!(split_at("Stati Uniti-Cina"), Some(11));
        assert_eq!(split_at("Russland–Ukraine"), Some(8));
        assert_eq!(split_at("Saudi-Arabien-Iran"), Some(13));
        assert_eq!(split_at("Costa d’Avorio-Ghana"), Some(14));
    }

    #[test]
    fn hyphenated_single_names_and_other_pairs_stay_whole() {
        for whole in [
            "Emilia-Romagna",
            "Baden-Württemberg",
            "Bosnia-Erzegovina",
            "Bosnien-Herzegowina",
            "Guinea-Bissau",
            "Austria-Ungheria",
            "Österreich-Ungarn",
            "Roma-Viterbo",
            "Putin-Xi",
            "Kramp-Karrenbauer",
            "Russland-Ukraine-Krieg",
            "Saudi-Arabien",
            "Cina - Russia",
            "Cina-russia",
            "Cina-",
            "-Cina",
            "Cina",
        ] {
            assert_eq!(split_at(whole), None, "{whole}");
        }
    }

    #[test]
    fn the_list_holds_italian_and_german_names() {
        for name in ["Cina", "Russia", "Stati Uniti", "Deutschland", "Österreich", "Vereinigte Staaten"] {
            assert!(is_country_name(name), "{name}");
        }
        assert!(!is_country_name("Lombardia"));
        assert!(!is_country_name("Bayern"));
    }
}
