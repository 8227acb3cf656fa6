"""Tests of the code-base checks (scripts/module_cycles.py, scripts/code_metrics.py): each
finds what it is for on a small synthetic crate, and the workspace passes both."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import code_metrics  # noqa: E402
import module_cycles  # noqa: E402


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_a_cycle_between_top_level_modules_is_found(tmp_path):
    src = str(tmp_path / "src")
    write(src, "lib.rs", "pub mod error;\npub mod model;\npub mod topics;\n")
    write(src, "error.rs", "// use crate::topics is only a comment\npub enum E { A(crate::topics::T) }\n")
    write(src, "model.rs", "use crate::error::E;\n")
    write(src, "topics/mod.rs", "pub mod adapter;\npub struct T;\n")
    write(src, "topics/adapter.rs", "use crate::{model::X, error};\nuse super::T;\n")
    # topics -> model (in a brace group) -> error -> topics: one cycle of three
    assert module_cycles.check_crate(src, False) == ["error <-> model <-> topics"]


def test_a_cycle_between_sibling_submodules_is_found_and_a_dag_passes(tmp_path):
    src = str(tmp_path / "src")
    write(src, "lib.rs", "pub mod topics;\n")
    write(src, "topics/mod.rs", "pub mod a;\npub mod b;\npub use a::A;\n")
    write(src, "topics/a.rs", "use super::b::B;\npub struct A;\n")
    write(src, "topics/b.rs", "pub struct B;\n")
    assert module_cycles.check_crate(src, False) == []
    write(src, "topics/b.rs", "use super::a::A;\npub struct B;\n")
    assert module_cycles.check_crate(src, False) == ["topics::a <-> topics::b"]


def test_long_functions_are_found(tmp_path):
    body = "\n".join(f"    let x{i} = {i};" for i in range(85))
    write(str(tmp_path), "lib.rs", f"pub fn short() {{\n    1;\n}}\n\nfn long() {{\n{body}\n}}\n\n#[cfg(test)]\nmod tests {{\n    fn t() {{\n{body}\n    }}\n}}\n")
    found = code_metrics.long_functions(str(tmp_path / "lib.rs"), 80)
    assert [(name, lines) for name, _, lines in found] == [("long", 87)]


def test_the_workspace_passes_both_checks():
    for script in ("module_cycles.py", "code_metrics.py"):
        done = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), script)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
