//! Crash safety and sharding: a run killed with SIGKILL at random points and resumed gives
//! exactly the records of an uninterrupted run; shards merged in input order equal a single
//! run; resuming with another configuration is refused.

mod common;

use std::path::Path;

use common::{corpus, postilla, read_jsonl, run, same_records, stderr};
use postilla_annotator::eval::bootstrap::SplitMix64;

fn annotate(input: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = postilla();
    c.arg("annotate")
        .arg(input)
        .args(["--no-topics", "--batch-size", "2", "--ner"])
        .arg(common::tiny_models().join("tiny-bert"));
    c.args(extra).arg("-o").arg(out);
    c
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let reference = dir.path().join("reference.jsonl");
    let o = run(&mut annotate(&input, &reference, &["--chunk-docs", "8"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = read_jsonl(&reference);
    assert_eq!(expected.len(), 500);
    let mut rng = SplitMix64::new(20261122);
    let mut interrupted = 0;
    for trial in 0..20 {
        let out = dir.path().join(format!("trial{trial}.jsonl"));
        // kill at a random point of progress (0 = before the first record), whatever this
        // machine's speed: poll the output and SIGKILL once it has `target` lines
        let target = rng.below(480);
        let mut child = annotate(&input, &out, &["--resume", "--chunk-docs", "8"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        loop {
            let lines = std::fs::read(&out).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0);
            if lines >= target || child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if child.try_wait().expect("wait").is_none() {
            interrupted += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");
        let partial_lines = std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
        let o = run(&mut annotate(&input, &out, &["--resume", "--chunk-docs", "8"]));
        assert!(o.status.success(), "trial {trial}: {}", stderr(&o));
        same_records(&read_jsonl(&out), &expected, &format!("trial {trial} (killed after {partial_lines} lines)"));
    }
    assert!(interrupted >= 18, "only {interrupted} of 20 trials were killed mid-run");
}

#[test]
fn a_torn_last_line_is_cut_and_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let reference = dir.path().join("reference.jsonl");
    assert!(run(&mut annotate(&input, &reference, &[])).status.success());
    let text = std::fs::read_to_string(&reference).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let out = dir.path().join("torn.jsonl");
    std::fs::write(&out, format!("{}\n{}", lines[..120].join("\n"), &lines[120][..40])).expect("write");
    let o = run(&mut annotate(&input, &out, &["--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("torn last line"), "{}", stderr(&o));
    assert!(stderr(&o).contains("120 documents already"), "{}", stderr(&o));
    same_records(&read_jsonl(&out), &read_jsonl(&reference), "torn");
}

#[test]
fn resuming_with_another_configuration_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let out = dir.path().join("out.jsonl");
    assert!(run(&mut annotate(&input, &out, &[])).status.success());
    let o = run(&mut annotate(&input, &out, &["--resume", "--stride", "8"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("another configuration"), "{}", stderr(&o));
}

#[test]
fn resuming_over_changed_input_tokens_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // pre-tokenised input: KIND WN dev as imported, each record with its own tokens
    let gold = dir.path().join("wn.jsonl");
    common::import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let records: Vec<serde_json::Value> = read_jsonl(&gold).into_iter().take(40).collect();
    let write = common::write_jsonl;
    let input = dir.path().join("input.jsonl");
    write(&input, &records);
    let out = dir.path().join("out.jsonl");
    assert!(run(&mut annotate(&input, &out, &[])).status.success());
    let written = read_jsonl(&out);
    common::assert_schema_valid(&written);
    for (record, input) in written.iter().zip(&records) {
        let tokens: Vec<[usize; 2]> = serde_json::from_value(input["tokens"].clone()).expect("tokens");
        assert_eq!(
            record["tokens_sha256"].as_str(),
            Some(postilla_annotator::text::tokens_sha256(&tokens).as_str()),
            "{}",
            record["id"]
        );
    }
    // the same input resumes: everything is done already
    let o = run(&mut annotate(&input, &out, &["--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("40 documents already"), "{}", stderr(&o));
    // the same text with one token split in two is refused, and so is the text without tokens
    let mut split = records.clone();
    let first: Vec<[usize; 2]> = serde_json::from_value(split[7]["tokens"].clone()).expect("tokens");
    let wide = first.iter().position(|[a, b]| b - a >= 2).expect("a token of two code points");
    let [a, b] = first[wide];
    let mut retokenised = first.clone();
    retokenised.splice(wide..=wide, [[a, a + 1], [a + 1, b]]);
    split[7]["tokens"] = serde_json::json!(retokenised);
    let mut raw = records.clone();
    raw[3].as_object_mut().expect("object").remove("tokens");
    for (what, changed) in [("a split token", split), ("no tokens", raw)] {
        write(&input, &changed);
        let o = run(&mut annotate(&input, &out, &["--resume"]));
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("its tokens changed"), "{what}: {}", stderr(&o));
    }
    assert_eq!(read_jsonl(&out), written, "a refused resume leaves the output as it was");
}

#[test]
fn shards_merge_into_the_single_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let single = dir.path().join("single.jsonl");
    assert!(run(&mut annotate(&input, &single, &[])).status.success());
    let mut shards = Vec::new();
    let mut sizes = Vec::new();
    for k in 0..3 {
        let out = dir.path().join(format!("shard{k}.jsonl"));
        let o = run(&mut annotate(&input, &out, &["--shard", &format!("{k}/3")]));
        assert!(o.status.success(), "{}", stderr(&o));
        sizes.push(read_jsonl(&out).len());
        shards.push(out);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 500);
    assert!(sizes.iter().all(|&s| s > 100), "shards are balanced: {sizes:?}");
    let merged = dir.path().join("merged.jsonl");
    let o = run(postilla().arg("merge").args(&shards).arg("-o").arg(&merged).arg("--inputs").arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    same_records(&read_jsonl(&merged), &read_jsonl(&single), "merged");
    // a shard made with other parameters is refused
    let other = dir.path().join("other.jsonl");
    assert!(run(&mut annotate(&input, &other, &["--shard", "0/3", "--stride", "8"])).status.success());
    let o = run(postilla()
        .arg("merge")
        .arg(&other)
        .arg(&shards[1])
        .arg(&shards[2])
        .arg("-o")
        .arg(dir.path().join("bad.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different configurations"), "{}", stderr(&o));
}

/// Runs `script` (bash, arguments after it) in a private mount namespace, as root or, for other
/// users, as root of a new user namespace. `None` where namespaces are not allowed.
fn in_mount_namespace(script: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    let probe = |flags: &str| {
        std::process::Command::new("unshare").args([flags, "true"]).output().is_ok_and(|o| o.status.success())
    };
    let flags = ["-m", "-rm"].into_iter().find(|f| probe(f))?;
    Some(run(std::process::Command::new("unshare").args([flags, "bash", "-c", script, "bash"]).args(args)))
}

#[test]
fn a_full_disk_stops_the_run_clearly_and_resume_completes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let reference = dir.path().join("reference.jsonl");
    assert!(run(&mut annotate(&input, &reference, &[])).status.success());

    // a 48 KB tmpfs fills up after a few dozen records; then it grows and the run is resumed
    let script = r#"
        set -u
        mnt="$1" logs="$2"; shift 2
        mount -t tmpfs -o size=48k tmpfs "$mnt" || exit 97
        "$@" -o "$mnt/out.jsonl" 2>"$logs/full.err"; echo $? >"$logs/full.rc"
        ls "$mnt" >"$logs/full.ls"
        mount -o remount,size=16m "$mnt" || exit 98
        "$@" --resume -o "$mnt/out.jsonl" 2>"$logs/resume.err"; echo $? >"$logs/resume.rc"
        cp "$mnt/out.jsonl" "$logs/out.jsonl"
    "#;
    let mnt = dir.path().join("mnt");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let cmd = annotate(&input, Path::new("unused"), &[]);
    // the annotate command line without its trailing `-o unused`
    let mut argv: Vec<&std::ffi::OsStr> = vec![cmd.get_program()];
    argv.extend(cmd.get_args());
    argv.truncate(argv.len() - 2);
    let mut args: Vec<&std::ffi::OsStr> = vec![mnt.as_os_str(), logs.as_os_str()];
    args.extend(argv);
    let Some(o) = in_mount_namespace(script, &args) else {
        eprintln!("SKIPPED a_full_disk_stops_the_run_clearly_and_resume_completes_it: mount namespaces (unshare -m / -rm) are not allowed here");
        return;
    };
    assert!(o.status.success(), "namespace script failed ({:?}): {}", o.status.code(), stderr(&o));
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).expect("log");
    assert_eq!(read("full.rc").trim(), "2", "a full disk is an unusable output: exit 2; stderr: {}", read("full.err"));
    let message = read("full.err");
    assert!(message.contains("No space left on device"), "{message}");
    assert!(
        message.contains("out.jsonl.partial") && message.contains("--resume"),
        "says where and what to do: {message}"
    );
    assert_eq!(read("full.ls").trim(), "out.jsonl.partial", "no complete-looking output was left behind");
    assert_eq!(read("resume.rc").trim(), "0", "{}", read("resume.err"));
    assert!(read("resume.err").contains("documents already in"), "{}", read("resume.err"));
    same_records(&read_jsonl(&logs.join("out.jsonl")), &read_jsonl(&reference), "resumed after a full disk");
}
