//! A sharded run on a real Slurm cluster: the test starts a single-node cluster (munged,
//! slurmctld, slurmd on localhost; tests/support/slurm_cluster.sh), submits
//! contrib/slurm/submit.sh (an array job of three `postilla annotate --shard K/3` tasks and a
//! dependent `postilla merge` job) and checks that the merged output equals a single-process
//! run. Skipped, with a message saying why, only where Debian's slurm-wlm and munge packages
//! are not installed (scripts/setup-test-env.sh installs them when it can).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpus, postilla, read_jsonl, root, run, same_records, stderr};

/// Stops the cluster when the test ends, whatever happens.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let o = run(Command::new("bash").arg(root().join("tests/support/slurm_cluster.sh")).arg("start").arg(dir));
        assert!(o.status.success(), "starting the Slurm cluster failed: {}", stderr(&o));
        Cluster { dir: dir.to_owned(), conf: dir.join("slurm.conf") }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ =
            Command::new("bash").arg(root().join("tests/support/slurm_cluster.sh")).arg("stop").arg(&self.dir).status();
    }
}

fn slurm_installed() -> bool {
    ["slurmctld", "slurmd", "munged", "sbatch"].iter().all(|bin| {
        ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].iter().any(|d| Path::new(d).join(bin).exists())
    })
}

#[test]
fn a_slurm_array_run_merges_into_the_single_process_run() {
    if !slurm_installed() {
        eprintln!(
            "SKIPPED a_slurm_array_run_merges_into_the_single_process_run: Debian's slurm-wlm and munge \
             packages are not installed and could not be installed here (see scripts/setup-test-env.sh)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let model = common::tiny_models().join("tiny-bert");
    let options = ["--no-topics", "--batch-size", "4", "--ner"];

    let single = dir.path().join("single.jsonl");
    let o = run(postilla().arg("annotate").arg(&input).args(options).arg(&model).arg("-o").arg(&single));
    assert!(o.status.success(), "{}", stderr(&o));

    let cluster = Cluster::start(&dir.path().join("cluster"));
    let merged = dir.path().join("merged.jsonl");
    let o = run(Command::new("bash")
        .arg(root().join("contrib/slurm/submit.sh"))
        .args(["--wait", "3"])
        .arg(&input)
        .arg(&merged)
        .arg("--")
        .args(options)
        .arg(&model)
        .current_dir(dir.path())
        .env("SLURM_CONF", &cluster.conf)
        .env("POSTILLA", env!("CARGO_BIN_EXE_postilla")));
    let logs: String = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("postilla-"))
        .map(|e| format!("{}:\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()))
        .collect();
    assert!(
        o.status.success(),
        "submit.sh failed: {}{}\njob logs:\n{logs}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );

    // three array tasks ran, each wrote its own shard, and together they cover the corpus
    let shard_dir = dir.path().join("merged.jsonl.shards");
    let sizes: Vec<usize> =
        (0..3).map(|k| read_jsonl(&shard_dir.join(format!("shard-{k}-of-3.jsonl"))).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 500, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s > 100), "shards are balanced: {sizes:?}");
    assert_eq!(logs.matches("postilla shard ").count(), 3, "one log line per array task:\n{logs}");
    same_records(&read_jsonl(&merged), &read_jsonl(&single), "merged Slurm run");
}
