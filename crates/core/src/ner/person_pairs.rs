//! Two people joined by a glued hyphen are two people when the document names each of them on
//! their own: raw news writes a meeting as "l'appello Putin-Xi" or "das Treffen
//! Merkel-Sarkozy", and a model trained on gold sets, where a hyphenated surname
//! ("Kramp-Karrenbauer", "Leutheusser-Schnarrenberger") is one person, reads the pair as one.
//!
//! No list tells a pair of people from a double surname, but the document does: an article
//! about a Putin-Xi call names "Vladimir Putin" and "Xi Jinping" elsewhere, while an article
//! about Annegret Kramp-Karrenbauer does not name a "Kramp" and a "Karrenbauer" apart. So a
//! person entity whose whole surface is two single words joined by one glued hyphen is split
//! when each word is also a word of another person entity of the same document that has no
//! hyphen. Everything else, a double surname named only as such included, stays as the model
//! found it. The split itself happens in decoding ([`super::decode`], step 5); this module only
//! finds the pair.

use std::collections::HashSet;

use super::country_pairs::is_hyphen;

/// The entity type this rule applies to (the default model's and CoNLL's name for people; a
/// model that calls them otherwise is left alone).
pub const PERSON: &str = "PER";

/// The words of a document's person entities that contain no hyphen: what the document
/// names on its own ("Vladimir Putin" gives "Vladimir" and "Putin"; "Kramp-Karrenbauer" gives
/// nothing).
#[derive(Debug, Clone, Default)]
pub struct PersonWords(HashSet<String>);

impl PersonWords {
    /// Collects the words of `surfaces`, the document's person entities as code points.
    pub fn of<'a>(surfaces: impl IntoIterator<Item = &'a [char]>) -> Self {
        let mut words = HashSet::new();
        for surface in surfaces {
            if surface.iter().any(|&c| is_hyphen(c)) {
                continue;
            }
            let text: String = surface.iter().collect();
            words.extend(text.split_whitespace().map(str::to_owned));
        }
        PersonWords(words)
    }

    /// Whether the document names `word` on its own in a person entity.
    pub fn contains(&self, word: &[char]) -> bool {
        self.0.contains(&word.iter().collect::<String>())
    }
}

/// Whether `word` looks like one name: it starts with an uppercase letter and holds only
/// letters and apostrophes ("Xi", "O'Neill"), no space and no hyphen.
fn is_single_name(word: &[char]) -> bool {
    word.first().is_some_and(|c| c.is_uppercase())
        && word.iter().all(|&c| c.is_alphabetic() || c == '\'' || c == '\u{2019}')
}

/// Where a person surface made of two names joined by one glued hyphen splits, given the
/// words the document names on its own (`known`): the hyphen's index in `surface` (code
/// points), or `None` when the surface is anything else or either name is not in `known`.
pub fn person_pair_hyphen(surface: &[char], known: &PersonWords) -> Option<usize> {
    let hyphens: Vec<usize> = (0..surface.len()).filter(|&i| is_hyphen(surface[i])).collect();
    let &[h] = hyphens.as_slice() else {
        return None;
    };
    let (left, right) = (&surface[..h], &surface[h + 1..]);
    (is_single_name(left) && is_single_name(right) && known.contains(left) && known.contains(right)).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn known(names: &[&str]) -> PersonWords {
        let names: Vec<Vec<char>> = names.iter().map(|n| chars(n)).collect();
        PersonWords::of(names.iter().map(Vec::as_slice))
    }

    fn split_at(s: &str, people: &PersonWords) -> Option<usize> {
        person_pair_hyphen(&chars(s), people)
    }

    #[test]
    fn a_pair_of_people_named_apart_in_the_document_splits_at_the_hyphen() {
        let people = known(&["Vladimir Putin", "Xi Jinping", "Putin-Xi", "Merkel", "Nicolas Sarkozy"]);
        assert_eq!(split_at("Putin-Xi", &people), Some(5));
        assert_eq!(split_at("Xi-Putin", &people), Some(2));
        assert_eq!(split_at("Merkel–Sarkozy", &people), Some(6));
    }

    #[test]
    fn a_double_surname_named_only_as_such_stays_whole() {
        let people = known(&["Annegret Kramp-Karrenbauer", "Kramp-Karrenbauer", "Putin"]);
        assert_eq!(split_at("Kramp-Karrenbauer", &people), None);
        // one side named apart is not enough
        assert_eq!(split_at("Putin-Xi", &people), None);
    }

    #[test]
    fn only_two_single_capitalised_names_around_one_glued_hyphen_split() {
        let people = known(&["Vladimir Putin", "Xi Jinping", "Biden"]);
        for whole in ["Putin - Xi", "Putin-xi", "Putin-Xi-Biden", "Vladimir Putin-Xi", "Putin-", "-Xi", "Putin"] {
            assert_eq!(split_at(whole, &people), None, "{whole}");
        }
    }
}
