"""The faceperf parser alone (nothing runs): every command has a handler, old names still
parse, shared options arrive typed, and building the parser stays light."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from faceperf.cli import build_parser
from faceperf.runtime.backends import BackendChoice


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
        return
    for name, child in subparsers[0].choices.items():
        yield from _leaves(child, (*path, name))


def test_every_command_has_a_handler():
    leaves = list(_leaves(build_parser()))
    assert len(leaves) > 20
    for path, parser in leaves:
        assert callable(parser.get_default("func")), " ".join(path)


def test_bench_mtcnn_keeps_its_old_name():
    new = build_parser().parse_args(["bench", "mtcnn", "--images", "a.png"])
    old = build_parser().parse_args(["bench-mtcnn", "--images", "a.png"])
    assert new.func is old.func
    assert vars(new).keys() - {"bench_command"} == vars(old).keys()


@pytest.mark.parametrize(
    "argv",
    [["artifacts", "list"], ["artifacts", "check"], ["coreml", "snapshot"]],
)
def test_dir_is_an_alias_of_artifacts(argv):
    assert build_parser().parse_args([*argv, "--dir", "x"]).artifacts == Path("x")
    assert build_parser().parse_args([*argv, "--artifacts", "y"]).artifacts == Path("y")
    assert build_parser().parse_args(argv).artifacts.parts[-2:] == ("weights", "build")


def test_shared_options_arrive_typed():
    args = build_parser().parse_args(["detect", "--image", "a.png", "--backend", "coreml:CPU_ONLY"])
    assert args.backend == BackendChoice("coreml", "CPU_ONLY")
    assert build_parser().parse_args(["profile"]).backend == BackendChoice("ort-cpu", None)
    args = build_parser().parse_args(["accuracy", "check", "--variants", "baseline,coreml"])
    assert args.variants == ["baseline", "coreml"]
    assert build_parser().parse_args(["accuracy", "check"]).variants == (
        "optimized",
        "optimized_fp16",
    )


def test_the_runtime_options_make_one_artifact_ref():
    from faceperf.cli.options import artifact_ref
    from faceperf.runtime.artifact_ref import ArtifactRef

    argv = ["pipeline", "--synthetic", "2", "--report", "r", "--artifacts", "a", "--threads", "2"]
    args = build_parser().parse_args([*argv, "--variant", "baseline", "--backend", "ort-cuda"])
    assert artifact_ref(args) == ArtifactRef(
        Path("a"), "baseline", BackendChoice("ort-cuda", None), 2
    )
    # A command without --threads leaves them to ONNX Runtime.
    args = build_parser().parse_args(["detect", "--image", "a.png", "--artifacts", "a"])
    assert artifact_ref(args) == ArtifactRef(Path("a"))


def test_the_preset_names_are_the_detector_presets():
    from faceperf.cli.options import MTCNN_PRESETS
    from faceperf.pipeline.mtcnn_detector import PRESETS

    assert set(MTCNN_PRESETS) == set(PRESETS)


def test_the_description_is_a_whole_sentence():
    # --help once showed a first line cut mid-sentence.
    description = build_parser().description
    assert description.endswith(".") and "\n" not in description


def test_building_the_parser_imports_no_heavy_library():
    code = (
        "import sys; from faceperf.cli import build_parser; build_parser().format_help(); "
        "heavy = [m for m in ('numpy', 'torch', 'onnx', 'onnxruntime', 'cv2', 'coremltools') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_usage_error_is_one_line(capsys):
    # Not argparse's usage block above it: the line says what is wrong, --help the rest.
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["bench", "mtcnn"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "faceperf bench mtcnn: error: the following arguments are required: --images\n"
