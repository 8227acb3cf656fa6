//! The NLI label layout: which class is entailment, which contradiction.

use std::collections::BTreeMap;

/// Entailment and contradiction indices from `id2label` (see the module docs).
/// `None` when no label names entailment (not an NLI model).
pub fn nli_indices(id2label: &BTreeMap<i64, String>) -> Option<(usize, Option<usize>)> {
    let find = |prefixes: &[&str]| {
        id2label
            .iter()
            .find(|(_, l)| prefixes.iter().any(|p| l.to_lowercase().starts_with(p)))
            .map(|(i, _)| *i as usize)
    };
    let entailment = find(&["entail"])?;
    let contradiction = find(&["contradict"])
        .or_else(|| find(&["not_entail", "not entail", "non_entail", "non-entail", "not-entail"]))
        .or_else(|| (id2label.len() == 2).then(|| 1 - entailment));
    Some((entailment, contradiction))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> BTreeMap<i64, String> {
        names.iter().enumerate().map(|(i, n)| (i as i64, n.to_string())).collect()
    }

    #[test]
    fn label_layouts() {
        assert_eq!(nli_indices(&labels(&["entailment", "neutral", "contradiction"])), Some((0, Some(2))));
        assert_eq!(nli_indices(&labels(&["CONTRADICTION", "NEUTRAL", "ENTAILMENT"])), Some((2, Some(0))));
        assert_eq!(nli_indices(&labels(&["entailment", "not_entailment"])), Some((0, Some(1))));
        assert_eq!(nli_indices(&labels(&["POSITIVE", "NEGATIVE"])), None, "no entailment class");
    }
}
