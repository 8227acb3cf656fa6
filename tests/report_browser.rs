//! `postilla report` in a real browser: headless Chromium (Debian's `chromium`, installed by
//! scripts/setup-test-env.sh) opens the page and the test checks it through the DevTools
//! protocol: no console error, no request but the file itself, one highlighted span per entity,
//! a click shows the document's text, the evaluation table equals `postilla eval --json`, and
//! hostile texts show as text and run nothing. Screenshots are saved under
//! target/test-output/report/ for a person to look at.

mod browser;
mod common;

use std::path::{Path, PathBuf};

use browser::Browser;
use common::{postilla, read_jsonl, root, run, stderr, write_jsonl};
use serde_json::{json, Value};

fn output_dir() -> PathBuf {
    let dir = root().join("target/test-output/report");
    std::fs::create_dir_all(&dir).expect("test output dir");
    dir
}

/// Chromium, or None (with a note) where it is not installed.
fn start_browser(profile: &Path) -> Option<Browser> {
    match browser::chromium() {
        Some(bin) => Some(Browser::start(bin, profile)),
        None => {
            eprintln!("note: chromium is not installed (scripts/setup-test-env.sh installs it as root): report browser test skipped");
            None
        }
    }
}

fn report(args: &[&str]) {
    let o = run(postilla().arg("report").args(args));
    assert!(o.status.success(), "postilla report {args:?}: {}", stderr(&o));
}

fn assert_clean(b: &mut Browser, url: &str) {
    let errors = b.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let requests = b.requests();
    assert!(requests.iter().all(|r| r == url), "the page requested something besides itself: {requests:?}");
}

/// What the page shows for document `i` after it is selected: entity spans per layer and the
/// text of the first system's panel.
fn shown(b: &mut Browser) -> Value {
    b.eval(
        "(() => { const v = document.getElementById('doc-view'); const count = l => \
         v.querySelectorAll('[data-layer=\"' + l + '\"] .ent').length; \
         const p = v.querySelector('[data-layer=\"system-0\"]'); \
         return {id: v.querySelector('h2').textContent, system: count('system-0'), gold: count('gold'), \
                 text: p ? p.textContent : null, visible: p ? p.getBoundingClientRect().height > 0 : false}; })()",
    )
}

#[test]
fn the_seed_report_shows_every_entity_and_the_eval_numbers_in_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut b) = start_browser(&dir.path().join("profile")) else { return };
    let run_file = dir.path().join("seeds.jsonl");
    let o = run(postilla().args(["annotate", "seeds/", "-o"]).arg(&run_file));
    assert!(o.status.success(), "{}", stderr(&o));
    let records = read_jsonl(&run_file);
    let gold = read_jsonl(&root().join("seeds/gold.jsonl"));
    let html = dir.path().join("seeds-eval.html");
    report(&[run_file.to_str().expect("path"), "--gold", "seeds/gold.jsonl", "-o", html.to_str().expect("path")]);

    let url = b.open(&html);
    assert_eq!(b.eval("document.querySelectorAll('#doc-list .doc-item').length"), json!(records.len()));
    for (i, r) in records.iter().enumerate() {
        let selector = format!("#doc-list .doc-item[data-index=\"{i}\"]");
        b.click(&selector);
        let s = shown(&mut b);
        let id = r["id"].as_str().expect("id");
        assert_eq!(s["id"], json!(id), "the click shows the clicked document");
        assert_eq!(s["system"], json!(r["entities"].as_array().expect("entities").len()), "{id}: one span per entity");
        let g = gold.iter().find(|g| g["id"] == r["id"]).expect("gold record");
        assert_eq!(s["gold"], json!(g["entities"].as_array().expect("gold entities").len()), "{id}: gold spans");
        let text = std::fs::read_to_string(root().join("seeds").join(format!("{id}.txt"))).expect("seed text");
        assert_eq!(s["text"], json!(text), "{id}: the panel shows the document's text, unchanged");
        assert_eq!(s["visible"], json!(true));
        if i == 1 {
            b.screenshot(&output_dir().join("seeds-document.png"));
        }
    }

    // the evaluation tab: the strict micro F1 equals `postilla eval --json`'s
    let o = run(postilla()
        .args(["eval", "--json", "--bootstrap", "1000", "--gold", "seeds/gold.jsonl", "--pred"])
        .arg(&run_file));
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: Value = serde_json::from_slice(&o.stdout).expect("eval json");
    b.click("#tab-evaluation");
    let shown_f1 = b.eval(
        "(() => { const c = document.querySelector('#eval-0 td[data-metric=\"entities.strict.micro.f1\"]'); \
         return c && c.getBoundingClientRect().height > 0 ? Number(c.getAttribute('data-value')) : null; })()",
    );
    let want = eval["entities"]["strict"]["micro"]["f1"].as_f64().expect("f1");
    assert_eq!(shown_f1.as_f64(), Some(want), "the page's strict micro F1 is postilla eval's");
    let per_type_bars = b.eval("document.querySelectorAll('#eval-0 .f1-bar').length");
    assert_eq!(per_type_bars, json!(eval["entities"]["strict"]["per_type"].as_object().expect("per type").len()));
    b.screenshot(&output_dir().join("seeds-evaluation.png"));
    assert_clean(&mut b, &url);

    // without gold, the texts come from the source files the records name
    let plain = dir.path().join("seeds.html");
    report(&[run_file.to_str().expect("path"), "-o", plain.to_str().expect("path")]);
    let url = b.open(&plain);
    b.click("#doc-list .doc-item[data-index=\"2\"]");
    let s = shown(&mut b);
    let id = records[2]["id"].as_str().expect("id");
    let text = std::fs::read_to_string(root().join("seeds").join(format!("{id}.txt"))).expect("seed text");
    assert_eq!(s["text"], json!(text));
    assert_eq!(s["gold"], json!(0));
    assert_eq!(b.eval("document.getElementById('tab-evaluation')"), Value::Null, "no evaluation tab without gold");
    b.click("#tab-corpus");
    b.screenshot(&output_dir().join("seeds-corpus.png"));
    assert_clean(&mut b, &url);
}

/// A record with its text and entities over the given substrings (first occurrences).
fn record(id: &str, text: &str, entities: &[(&str, &str)], score: Option<f64>) -> Value {
    let chars: Vec<char> = text.chars().collect();
    let ents: Vec<Value> = entities
        .iter()
        .map(|(surface, label)| {
            let byte = text.find(surface).expect("surface in text");
            let start = text[..byte].chars().count();
            let end = start + surface.chars().count();
            assert_eq!(chars[start..end].iter().collect::<String>(), *surface);
            let mut e = json!({"start": start, "end": end, "label": label, "text": surface});
            if let Some(s) = score {
                e["score"] = json!(s);
            }
            e
        })
        .collect();
    let sha = postilla_annotator::text::text_sha256(text);
    json!({"schema": "postilla/1", "id": id, "text_sha256": sha, "text": text, "entities": ents, "topics": []})
}

#[test]
fn hostile_texts_show_as_text_run_nothing_and_long_documents_keep_the_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut b) = start_browser(&dir.path().join("profile")) else { return };
    let hostile = "<script>window.__pwned = 1</script> Roma </textarea><img src=x onerror=\"window.__pwned = 2\"> \
                   <a href=\"javascript:window.__pwned = 3\">Milano</a> </script><script>window.__pwned = 4</script> \
                   <style>body { display: none }</style> &amp; &lt;b&gt; \u{2028} fine.";
    let long_word = "Berlino".repeat(2000); // 14,000 characters without a break
    let long = format!("Angela Merkel a {long_word}. {}", "Una frase lunga di cronaca. ".repeat(3200));
    assert!(long.chars().count() > 100_000);
    let mut gold = vec![
        record(
            "<img src=x onerror=\"window.__pwned = 5\">",
            hostile,
            &[("<script>window.__pwned = 1</script>", "MISC"), ("Roma", "LOC")],
            None,
        ),
        record("long", &long, &[("Angela Merkel", "PER")], None),
    ];
    for i in 0..8 {
        gold.push(record(
            &format!("doc-{i}"),
            "Wang Yi incontra Lavrov a Mosca.",
            &[("Wang Yi", "PER"), ("Mosca", "LOC")],
            None,
        ));
    }
    let pred: Vec<Value> = gold
        .iter()
        .map(|g| {
            let mut p = g.clone();
            for e in p["entities"].as_array_mut().expect("entities") {
                e["score"] = json!(0.9);
            }
            p
        })
        .collect();
    let (gold_file, pred_file) = (dir.path().join("gold.jsonl"), dir.path().join("pred.jsonl"));
    write_jsonl(&gold_file, &gold);
    write_jsonl(&pred_file, &pred);
    let html = dir.path().join("hostile.html");
    let title = "</title><script>window.__pwned = 6</script>";
    report(&[
        pred_file.to_str().expect("path"),
        "--gold",
        gold_file.to_str().expect("path"),
        "--title",
        title,
        "-o",
        html.to_str().expect("path"),
    ]);
    let url = b.open(&html);
    assert_eq!(b.eval("document.title"), json!(title), "the title is text");
    b.click("#doc-list .doc-item[data-index=\"0\"]");
    let s = shown(&mut b);
    assert_eq!(s["text"], json!(hostile), "the hostile text shows as text");
    assert_eq!(s["system"], json!(2));
    assert_eq!(b.eval("document.querySelector('#doc-view h2').textContent"), gold[0]["id"]);
    b.click("#doc-list .doc-item[data-index=\"1\"]");
    let s = shown(&mut b);
    assert_eq!(s["text"], json!(long));
    assert_eq!(s["system"], json!(1));
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth"),
        json!(true),
        "a 100,000-character document with a 14,000-character word does not widen the page"
    );
    b.screenshot(&output_dir().join("hostile-long.png"));
    // the same page with a search: the filter narrows the list
    b.eval("(() => { const s = document.getElementById('search'); s.value = 'doc-'; s.dispatchEvent(new Event('input')); })()");
    assert_eq!(b.eval("document.querySelectorAll('#doc-list .doc-item').length"), json!(8));
    assert_eq!(b.eval("typeof window.__pwned"), json!("undefined"), "no script from the data ran");
    assert_eq!(b.eval("document.querySelectorAll('img, a[href], iframe, object, embed, textarea').length"), json!(0));
    assert_clean(&mut b, &url);

    // a sample of a larger run says what it shows and lists only the sample
    let sampled = dir.path().join("sampled.html");
    report(&[pred_file.to_str().expect("path"), "--sample", "3", "--seed", "5", "-o", sampled.to_str().expect("path")]);
    let url = b.open(&sampled);
    assert_eq!(b.eval("document.querySelectorAll('#doc-list .doc-item').length"), json!(3));
    let note = b.eval("document.getElementById('shown').textContent");
    assert!(note.as_str().expect("note").contains("a sample of 3 of the run's 10 documents"), "{note}");
    assert_clean(&mut b, &url);
}

#[test]
fn bad_inputs_get_a_clear_error_and_no_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = record("a", "Roma e Milano.", &[("Roma", "LOC")], Some(0.9));
    let b = record("b", "Berlino.", &[("Berlino", "LOC")], Some(0.9));
    let (run_file, gold_file, other, empty, broken) = (
        dir.path().join("run.jsonl"),
        dir.path().join("gold.jsonl"),
        dir.path().join("other.jsonl"),
        dir.path().join("empty.jsonl"),
        dir.path().join("broken.jsonl"),
    );
    write_jsonl(&run_file, &[a.clone(), b]);
    write_jsonl(&gold_file, std::slice::from_ref(&a));
    write_jsonl(&other, &[a]);
    std::fs::write(&empty, "").expect("write");
    std::fs::write(&broken, "{\"schema\": \"postilla/1\", \"id\": \"x\"}\nnot json\n").expect("write");
    let html = dir.path().join("out.html");
    let cases: [(Vec<&Path>, &str); 4] = [
        (vec![&run_file, Path::new("--gold"), &gold_file], "lacks 1 document id"),
        (vec![&run_file, Path::new("--pred"), &other], "not over the same document ids"),
        (vec![&empty], "holds no records"),
        (vec![&broken], "broken.jsonl:2"),
    ];
    for (args, want) in cases {
        let o = run(postilla().arg("report").args(&args).arg("-o").arg(&html));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!html.exists(), "no page is written on an error");
    }
}

#[test]
fn two_runs_show_side_by_side_with_the_paired_test_and_sort_by_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut b) = start_browser(&dir.path().join("profile")) else { return };
    let text = "Wang Yi incontra Lavrov a Mosca.";
    let gold: Vec<Value> =
        (0..12).map(|i| record(&format!("doc-{i:02}"), text, &[("Wang Yi", "PER"), ("Mosca", "LOC")], None)).collect();
    let a: Vec<Value> = (0..12)
        .map(|i| record(&format!("doc-{i:02}"), text, &[("Wang Yi", "PER"), ("Mosca", "LOC")], Some(0.9)))
        .collect();
    let mut b_run = a.clone();
    // B misses Mosca in doc-03, and in doc-07 tags "Lavrov" (not in the gold) instead of Mosca: 1 and 2 errors
    b_run[3] = record("doc-03", text, &[("Wang Yi", "PER")], Some(0.8));
    b_run[7] = record("doc-07", text, &[("Wang Yi", "PER"), ("Lavrov", "PER")], Some(0.8));
    let files: Vec<PathBuf> = ["gold", "a", "b"].iter().map(|n| dir.path().join(format!("{n}.jsonl"))).collect();
    for (f, rs) in files.iter().zip([&gold, &a, &b_run]) {
        write_jsonl(f, rs);
    }
    let html = dir.path().join("paired.html");
    let p = |f: &PathBuf| f.to_str().expect("path").to_owned();
    report(&[&p(&files[1]), "--pred", &p(&files[2]), "--gold", &p(&files[0]), "-o", &p(&html)]);
    let url = b.open(&html);
    b.click("#doc-list .doc-item[data-index=\"7\"]");
    let layers = b.eval("Array.from(document.querySelectorAll('#doc-view .doc-text')).map(e => [e.getAttribute('data-layer'), e.querySelectorAll('.ent').length])");
    assert_eq!(layers, json!([["gold", 2], ["system-0", 2], ["system-1", 2]]), "gold, A and B side by side");
    assert_eq!(
        b.eval("document.querySelectorAll('#doc-view [data-layer=\"system-1\"] .ent.err-spurious').length"),
        json!(1)
    );
    // sorting by B's errors puts doc-07 (2 errors) first, then doc-03
    b.eval("(() => { const s = document.getElementById('sort'); s.value = 'errors-1'; s.dispatchEvent(new Event('input')); })()");
    let order = b.eval(
        "Array.from(document.querySelectorAll('#doc-list .doc-item')).slice(0, 3).map(e => e.getAttribute('data-id'))",
    );
    assert_eq!(order, json!(["doc-07", "doc-03", "doc-00"]));
    // the comparison tab holds the paired test; B is worse on strict micro F1
    let o = run(postilla()
        .args(["eval", "--json", "--bootstrap", "1000", "--gold"])
        .arg(&files[0])
        .arg("--pred")
        .arg(&files[1])
        .arg("--pred")
        .arg(&files[2]));
    assert!(o.status.success(), "{}", stderr(&o));
    let cmp: Value = serde_json::from_slice(&o.stdout).expect("paired json");
    b.click("#tab-comparison");
    let row = b.eval(
        "Array.from(document.querySelectorAll('#paired tbody tr')).map(r => Array.from(r.children).map(c => c.textContent))\
         .find(r => r[0] === 'entities.strict.micro.f1')",
    );
    let m = &cmp["metrics"]["entities.strict.micro.f1"];
    let four = |v: &Value| format!("{:.4}", v.as_f64().expect("number"));
    assert_eq!(row[1], json!(four(&m["a"])));
    assert_eq!(row[2], json!(four(&m["b"])));
    assert_eq!(row[4], json!(four(&m["p_value"])));
    assert!(m["delta"].as_f64().expect("delta") < 0.0);
    b.screenshot(&output_dir().join("paired-comparison.png"));
    assert_clean(&mut b, &url);
}
