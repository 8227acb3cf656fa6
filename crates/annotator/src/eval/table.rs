//! The readable table of an evaluation report (`postilla eval` without `--json`).

use std::collections::BTreeMap;

use super::entities::{Schema, SchemaReport};
use super::topics::TopicReport;
use super::EvalReport;

/// A readable table of the report.
pub fn render_table(r: &EvalReport) -> String {
    let mut s = format!("documents: {}", r.documents);
    if r.prediction_errors > 0 {
        s.push_str(&format!(" ({} prediction error records, scored as empty)", r.prediction_errors));
    }
    s.push('\n');
    let ci = |key: &str| {
        r.bootstrap
            .as_ref()
            .and_then(|b| b.ci95.get(key))
            .map(|[lo, hi]| format!("  [{lo:.4}, {hi:.4}]"))
            .unwrap_or_default()
    };
    if let Some(ents) = &r.entities {
        s.push_str(&entity_tables(r, ents, &ci));
    }
    if let Some(t) = &r.topics {
        s.push_str(&topic_table(t, &ci));
    }
    s
}

/// The entity part: one line per schema, then strict scores per type.
fn entity_tables(r: &EvalReport, ents: &BTreeMap<Schema, SchemaReport>, ci: &dyn Fn(&str) -> String) -> String {
    let mut s = String::new();
    {
        s.push_str(&format!("entity types: {}\n", r.types.join(", ")));
        if !r.ignored_predicted.is_empty() {
            s.push_str(&format!("ignored predicted types (not scored): {:?}\n", r.ignored_predicted));
        }
        s.push_str(&format!(
            "\n{:<8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7}   micro F1 95% CI\n",
            "schema", "correct", "incorrect", "partial", "missed", "spurious", "P", "R", "F1"
        ));
        for schema in Schema::ALL {
            let e = &ents[&schema];
            s.push_str(&format!(
                "{:<8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>7.4} {:>7.4} {:>7.4}{}\n",
                schema.name(),
                e.counts.correct,
                e.counts.incorrect,
                e.counts.partial,
                e.counts.missed,
                e.counts.spurious,
                e.micro.precision,
                e.micro.recall,
                e.micro.f1,
                ci(&format!("entities.{}.micro.f1", schema.name()))
            ));
        }
        let strict = &ents[&Schema::Strict];
        s.push_str(&format!("\nstrict, per type {:>18} {:>7} {:>7} {:>8}   F1 95% CI\n", "P", "R", "F1", "support"));
        for (t, tr) in &strict.per_type {
            s.push_str(&format!(
                "  {:<24} {:>9.4} {:>7.4} {:>7.4} {:>8}{}\n",
                t,
                tr.scores.precision,
                tr.scores.recall,
                tr.scores.f1,
                tr.possible,
                ci(&format!("entities.strict.per_type.{t}.f1"))
            ));
        }
        s.push_str(&format!(
            "  {:<24} {:>9.4} {:>7.4} {:>7.4} {:>8}{}\n",
            "macro avg",
            strict.macro_avg.precision,
            strict.macro_avg.recall,
            strict.macro_avg.f1,
            strict.possible,
            ci("entities.strict.macro.f1")
        ));
    }
    s
}

/// The topic part: accuracy, per-class scores and the confusion matrix.
fn topic_table(t: &TopicReport, ci: &dyn Fn(&str) -> String) -> String {
    let mut s = String::new();
    {
        s.push_str(&format!("\ntopics ({}): accuracy {:.4}{}\n", t.mode, t.accuracy, ci("topics.accuracy")));
        s.push_str(&format!("  {:<28} {:>7} {:>7} {:>7} {:>8}\n", "class", "P", "R", "F1", "support"));
        for (l, c) in &t.per_class {
            s.push_str(&format!(
                "  {:<28} {:>7.4} {:>7.4} {:>7.4} {:>8}\n",
                l, c.scores.precision, c.scores.recall, c.scores.f1, c.support
            ));
        }
        s.push_str(&format!(
            "  {:<28} {:>7.4} {:>7.4} {:>7.4}{}\n",
            "macro avg",
            t.macro_avg.precision,
            t.macro_avg.recall,
            t.macro_avg.f1,
            ci("topics.macro.f1")
        ));
        if !t.confusion.is_empty() {
            s.push_str("  confusion (rows gold, columns predicted, label order as above)\n");
            for (l, row) in t.labels.iter().zip(&t.confusion) {
                s.push_str(&format!("  {:<28} {}\n", l, row.iter().map(|x| format!("{x:>5}")).collect::<String>()));
            }
        }
    }
    s
}
