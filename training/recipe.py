#!/usr/bin/env python3
"""The default NER model's recipe (`just train-ner`): two five-epoch runs of train_ner.py from
scratch that share the classifier head's initialisation (seed 13) and differ in their data
order and windows (data seeds 13 and 29), then the greedy weight soup of their selected
weights (training/soup.py), chosen on dev. The options are data (RUN_ARGS, EXPECTED) here.

    python3 training/recipe.py train [ARGS...]  the recipe (`just train-ner`); ARGS go to both
                                                runs (e.g. --max-stages 2)
    python3 training/recipe.py check RUN SEED   whether RUN's finished training-log.json was
                                                trained with the recipe's options and data seed
                                                SEED (exit status 1 with the differences if not)
    python3 training/recipe.py minutes RUN...   the recipe's time: the sum of the runs' and the
                                                soup's `minutes` (every segment of a resumed run)
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# The options of both runs; each run adds `--out` and `--data-seed`.
RUN_ARGS = ["--epochs", "5", "--lr", "3e-4", "--layer-decay", "0.8", "--seed", "13",
            "--precision", "auto", "--compact", "--threads", "2"]

# The runs: (directory, data seed).
RUNS = [(".local/ner-train-a", 13), (".local/ner-train-b", 29)]

# The soup's directory (`just ner-package`'s default).
SOUP = ".local/ner-train-soup"

# What a finished run's logged `args` must hold to be one of the recipe's runs. `precision` may
# be `auto` or what `auto` resolved to; `threads` and `out` do not change the weights' recipe.
EXPECTED = {"epochs": 5, "lr": 3e-4, "layer_decay": 0.8, "seed": 13, "init": "", "compact": True,
            "silver": 0, "extra_gold": "", "dev_in_training": "none", "hyphen_joins": 0.0,
            "limit": 0, "languages": "it,de", "keep": "select", "ema": "", "batch_tokens": 1024,
            "max_length": 256, "single_share": 0.3, "news_share": 0.5}


def differences(args, data_seed):
    """The options of a finished run's logged `args` that differ from the recipe's with data
    seed `data_seed`, as {option: logged value}; empty when the run is the recipe's."""
    wrong = {k: args.get(k) for k, v in EXPECTED.items() if args.get(k) != v}
    logged_seed = args.get("seed") if args.get("data_seed") is None else args.get("data_seed")
    if logged_seed != data_seed:
        wrong["data_seed"] = logged_seed
    if args.get("precision") not in ("auto", "bf16", "fp32"):
        wrong["precision"] = args.get("precision")
    return wrong


def read_log(run):
    """RUN's training-log.json as a dict."""
    with open(os.path.join(run, "training-log.json"), encoding="utf-8") as f:
        return json.load(f)


def total_minutes(dirs):
    """The sum of the `minutes` in the training logs of `dirs` (runs and soup), and each part."""
    parts = {d: read_log(d)["minutes"] for d in dirs}
    return round(sum(parts.values()), 1), parts


def tee(command, log_path):
    """Runs `command`, its output lines going to stdout and appended to `log_path`; its exit status."""
    with open(log_path, "a", encoding="utf-8") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            log.flush()
        return proc.wait()


def check_kept(run, data_seed):
    """Exits with the reason when the finished run in `run` was trained with other options than
    the recipe's (for `data_seed`); says it is kept otherwise."""
    wrong = differences(read_log(run)["args"], data_seed)
    if wrong:
        sys.exit(f"{run}: a finished run with other options than the recipe's {wrong}; delete it to retrain")
    print(f"{run}: finished with the recipe's options, kept", flush=True)


def minutes_line(dirs):
    """The recipe's time as one JSON line: the total `minutes` of `dirs` and each part."""
    total, parts = total_minutes(dirs)
    return json.dumps({"recipe_minutes": total, "parts": parts})


def finished(run):
    """Whether RUN holds a finished run: its training log written and nothing left to resume."""
    return os.path.exists(os.path.join(run, "training-log.json")) and not os.path.exists(os.path.join(run, "resume.pt"))


def train_run(run, data_seed, extra):
    """Trains one run into `run`: kept if finished with the recipe's options (refused if with
    others), resumed if it holds resume.pt, from scratch otherwise. Whether it is finished."""
    os.makedirs(run, exist_ok=True)
    if finished(run):
        check_kept(run, data_seed)
        return True
    resume = ["--resume"] if os.path.exists(os.path.join(run, "resume.pt")) else []
    command = [sys.executable, os.path.join(HERE, "train_ner.py"), "--out", run, *RUN_ARGS,
               "--data-seed", str(data_seed), *resume, *extra]
    if tee(command, os.path.join(run, "log")) != 0:
        sys.exit(f"{run}: train_ner.py failed (its log: {run}/log)")
    return finished(run)


def train(extra):
    """The whole recipe: both runs (kept, resumed or trained), then their greedy soup and the
    recipe's total time. A run stopped on purpose (--max-stages) stops the recipe before the soup.
    Directories are the repository's (.local/...), wherever it is called from."""
    os.chdir(os.path.join(HERE, ".."))
    for run, data_seed in RUNS:
        if not train_run(run, data_seed, extra):
            print(f"{run} stopped before its end: run the recipe again to continue", flush=True)
            return
    os.makedirs(SOUP, exist_ok=True)
    runs = [run for run, _ in RUNS]
    command = [sys.executable, os.path.join(HERE, "soup.py"), "--out", SOUP, "--threads", "2", *runs]
    if tee(command, os.path.join(SOUP, "log")) != 0:
        sys.exit(f"{SOUP}: soup.py failed (its log: {SOUP}/log)")
    line = minutes_line(runs + [SOUP])
    print(line, flush=True)
    with open(os.path.join(SOUP, "log"), "a", encoding="utf-8") as log:
        log.write(line + "\n")


def main(argv):
    if argv[:1] == ["train"]:
        train(argv[1:])
    elif argv[:1] == ["check"] and len(argv) == 3:
        check_kept(argv[1], int(argv[2]))
    elif argv[:1] == ["minutes"] and len(argv) > 1:
        print(minutes_line(argv[1:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
