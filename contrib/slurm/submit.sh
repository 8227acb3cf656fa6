#!/usr/bin/env bash
# Annotates a corpus on a Slurm cluster: an array job of N shards, then a merge job.
#
#   contrib/slurm/submit.sh [--wait] N INPUT OUT.jsonl [-- ANNOTATE_OPTIONS...]
#
#   N                 number of shards (array tasks)
#   INPUT             a directory of .txt files or a .jsonl file
#   OUT.jsonl         the merged output; shard outputs go to OUT.jsonl.shards/
#   --wait            block until the merge job has finished and return its exit status
#   ANNOTATE_OPTIONS  passed to every `postilla annotate`, e.g. -- --ner models/ner-it-de
#
# Extra sbatch options (partition, time, cpus) can be given in SBATCH_* environment
# variables, e.g. SBATCH_PARTITION=gpu, or in #SBATCH lines of copies of the two scripts.
# Run it from the repository root (or set POSTILLA to the binary).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
wait=()
if [[ "${1:-}" == "--wait" ]]; then
    wait=(--wait)
    shift
fi
if [[ $# -lt 3 ]]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
n="$1" input="$2" output="$3"
shift 3
if [[ "${1:-}" == "--" ]]; then
    shift
fi
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "submit.sh: N must be a positive integer, got '$n'" >&2
    exit 2
fi
out_dir="$output.shards"
mkdir -p "$out_dir"
export POSTILLA_INPUT="$input" POSTILLA_OUT_DIR="$out_dir" POSTILLA_ARGS="$*"
export POSTILLA_SHARDS="$n" POSTILLA_OUTPUT="$output"
array_job=$(sbatch --parsable --export=ALL --array="0-$((n - 1))" "$here/annotate.sbatch")
array_job="${array_job%%;*}"
echo "submitted array job $array_job ($n shards of $input -> $out_dir/)"
# afterany: the merge runs even if a shard failed, and refuses an incomplete set of shards
merge_job=$(sbatch --parsable --export=ALL --dependency="afterany:$array_job" "${wait[@]}" "$here/merge.sbatch")
merge_job="${merge_job%%;*}"
echo "submitted merge job $merge_job -> $output"
