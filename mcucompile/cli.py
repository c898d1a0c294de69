"""The `mcucompile` command line: compile, check, verify, report, bench, demo. Errors print one line and exit 2."""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

from . import CompileError, __version__
from .cformat import printable


def _shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=D0,D1,..., got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mcucompile", description="Compile ONNX models to self-contained int8 C.")
    p.add_argument("--version", action="version", version=f"mcucompile {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile MODEL.onnx to DIR/NAME.c and DIR/NAME.h")
    c.add_argument("model", help="ONNX model (float)")
    c.add_argument("-o", "--out", default="build", help="output directory (default: build)")
    c.add_argument("--name", default="model", help="C prefix and file name (default: model)")
    c.add_argument("--calibration", help=".npy samples of the input (N x shape) or .npz with one array per input")
    c.add_argument(
        "--input-shape",
        action="append",
        type=_shape_arg,
        default=[],
        metavar="NAME=D0,D1,...",
        help="static shape for an input with dynamic dimensions (repeatable)",
    )
    c.add_argument("--percentile", type=float, help="clip activation ranges to this percentile (e.g. 99.99)")
    c.add_argument(
        "--no-bias-correction",
        dest="bias_correction",
        action="store_false",
        help="do not fold the mean error of the int8 weights on the calibration data into the biases",
    )
    c.add_argument("--export-qdq", metavar="PATH", help="also write the quantized model as QDQ ONNX (for onnxruntime)")
    c.add_argument("--ram-limit", metavar="BYTES", help="fail if the arena exceeds this (65536, 64K, 64KiB)")

    r = sub.add_parser("report", help="print the memory plan (buffers, peak, bound, strategies); --png draws it")
    r.add_argument("model", help="ONNX model")
    r.add_argument("--calibration", help="as for compile")
    r.add_argument("--input-shape", action="append", type=_shape_arg, default=[], metavar="NAME=D0,D1,...")
    r.add_argument("--png", metavar="PATH", help="also draw the arena over time (needs matplotlib)")

    v = sub.add_parser("verify", help="build DIR/NAME.c with gcc, run it via cffi, compare with onnxruntime")
    v.add_argument("model", help="the ONNX model the C was compiled from")
    v.add_argument("build_dir", help="directory holding NAME.c and NAME.h")
    v.add_argument("--name", default="model")
    v.add_argument("--data", help=".npy float samples to run (default: 32 random-normal samples)")
    v.add_argument("--labels", help=".npy integer labels of --data: also report accuracy")

    k = sub.add_parser("check", help="list every node with its support status; exit 0 if all are supported, else 2")
    k.add_argument("model", help="ONNX model")
    k.add_argument("--input-shape", action="append", type=_shape_arg, default=[], metavar="NAME=D0,D1,...")

    b = sub.add_parser("bench", help="cross-compile for a Cortex-M core, emulate one inference, report its cost")
    b.add_argument("model", help="ONNX model")
    b.add_argument("--target", default="cortex-m4", choices=["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"])
    b.add_argument("--name", default="model", help="C prefix (default: model)")
    b.add_argument("--calibration", help="as for compile; its first sample is also the benchmarked input")
    b.add_argument("--input-shape", action="append", type=_shape_arg, default=[], metavar="NAME=D0,D1,...")

    d = sub.add_parser("demo", help="compile and verify the bundled digits DS-CNN example")
    d.add_argument("-o", "--out", default="build", help="output directory (default: ./build)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # numpy's overflow warnings and libraries' deprecation notices are not for the user's terminal: every
        # problem that matters is a CompileError (a NaN or infinity reached in calibration, say)
        warnings.simplefilter("ignore")
        return _run(args)


def _run(args) -> int:
    try:
        if args.command == "compile":
            return _compile(
                args.model,
                args.out,
                args.name,
                args.export_qdq,
                calibration=args.calibration,
                input_shapes=dict(args.input_shape) or None,
                percentile=args.percentile,
                bias_correction=args.bias_correction,
                ram_limit=args.ram_limit,
            )
        if args.command == "report":
            return _report(args.model, args.calibration, dict(args.input_shape), args.png)
        if args.command == "check":
            return _check(args.model, dict(args.input_shape))
        if args.command == "bench":
            return _bench(args.model, args.target, args.name, args.calibration, dict(args.input_shape))
        if args.command == "verify":
            return _verify(args.model, args.build_dir, args.name, args.data, args.labels)
        return _demo(args.out)
    except CompileError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"mcucompile: error: {printable(str(exc), limit=4000)}", file=sys.stderr)  # one line, whatever the names
        return 2
    except MemoryError:
        if args.debug:
            traceback.print_exc()
        print("mcucompile: error: out of memory while compiling; the model or its calibration data is too large "
              "for this machine (check the input shapes)", file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        return 130


def _compile(model, out, name, export_qdq=None, **options) -> int:
    """`options`: keyword arguments of mcucompile.compile (calibration, input_shapes, percentile, ...)."""
    from . import check_output_dir
    from . import compile as compile_model

    check_output_dir(out)  # fail before the work, not after it
    compiled = compile_model(model, name=name, **options)
    c_path, h_path = compiled.write(out)
    print(compiled.summary())
    print(f"wrote      {c_path} and {h_path}")
    if export_qdq:
        from .qdq_export import write_qdq

        write_qdq(compiled.graph, export_qdq)
        print(f"wrote      {export_qdq} (QDQ ONNX of the int8 model)")
    return 0


def _report(model, calibration, input_shapes, png) -> int:
    from . import compile as compile_model
    from .report import memory_report, plot_arena

    compiled = compile_model(model, calibration=calibration, input_shapes=input_shapes or None)
    print(memory_report(compiled.program, compiled.plan))
    if png:
        plot_arena(compiled.program, compiled.plan, png)
        print(f"wrote      {png}")
    return 0


def _check(model, input_shapes) -> int:
    """Per-node support from the ops' own limits; if all pass, a trial compile (random data) confirms it."""
    import contextlib
    import io

    from . import compile as compile_model
    from .onnx_import import import_onnx, load_model
    from .support import check_report

    proto = load_model(model)
    report, ok = check_report(import_onnx(proto, input_shapes or None), Path(model).name)
    print(report)
    if not ok:
        return 2
    with contextlib.redirect_stderr(io.StringIO()):  # the trial's calibration warning is not the user's concern
        try:
            compile_model(proto, input_shapes=input_shapes or None)
        except CompileError as exc:
            print(f"{Path(model).name}: every node passes its own checks, but compiling fails: {exc}")
            return 2
    print(f"{Path(model).name}: supported (a trial compile succeeded)")
    return 0


def _bench(model, target, name, calibration, input_shapes) -> int:
    from . import compile as compile_model
    from .bench import bench_compiled, require_tools

    require_tools()  # fail before the compile, not after it
    compiled = compile_model(model, name=name, calibration=calibration, input_shapes=input_shapes or None)
    sample = None
    if calibration and str(calibration).endswith(".npy"):
        data = _load_npy(calibration, "calibration")
        shape = compiled.float_graph.tensors[compiled.graph.inputs[0]].shape
        if data.size >= int(np.prod(shape)):
            sample = compiled.quantize_input(data.reshape(-1, *shape)[0])
    result = bench_compiled(compiled, target, sample)
    print(result.report())
    if result.status != 0:
        raise CompileError(f"{name}_run returned {result.status} in the emulator")
    return 0


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise CompileError(f"{path}: cannot read {what} ({type(exc).__name__})") from None


def _verify(model, build_dir, name, data, labels) -> int:
    samples = _load_npy(data, "data") if data else None
    y = _load_npy(labels, "labels").ravel() if labels else None
    return _verify_arrays(model, build_dir, name, samples, y)


def _verify_arrays(model, build_dir, name, samples: np.ndarray | None, labels: np.ndarray | None) -> int:
    from .onnx_import import import_onnx, load_model
    from .verify import CModel, accuracy, onnxruntime_outputs

    proto = load_model(model)
    g = import_onnx(proto)
    shape = g.tensors[g.inputs[0]].shape
    c_model = CModel(build_dir, name)
    if samples is None:
        samples = np.random.default_rng(0).standard_normal((32, *shape)).astype(np.float32)
    try:
        samples = np.asarray(samples, np.float32).reshape(-1, *shape)
    except ValueError:
        raise CompileError(f"--data: samples of shape {np.shape(samples)} do not fit the input shape {shape}") from None
    reference = onnxruntime_outputs(proto.SerializeToString(), samples)
    outputs = np.stack([c_model.run_f32(s) for s in samples])
    print(f"{name}: C (gcc, int8) vs onnxruntime (float): {accuracy(reference, outputs)}")
    if labels is not None:
        if len(labels) != len(samples):
            raise CompileError(f"--labels: {len(labels)} labels for {len(samples)} samples")
        ref_acc = float(np.mean(reference.reshape(len(labels), -1).argmax(1) == labels))
        c_acc = float(np.mean(outputs.reshape(len(labels), -1).argmax(1) == labels))
        print(f"{name}: accuracy onnxruntime float {ref_acc * 100:.2f} %, C int8 {c_acc * 100:.2f} %")
    return 0


def _demo(out: str) -> int:
    """The bundled example from the package's own data; the C goes to `out` (./build by default)."""
    from .resources import example_dir

    here = example_dir()
    model, calib, test = here / "digits_dscnn.onnx", here / "digits_calib.npy", here / "digits_test.npz"
    if not all(p.is_file() for p in (model, calib, test)):
        raise CompileError(f"{here}: the bundled example is incomplete; reinstall mcucompile")
    _compile(str(model), out, "digits", calibration=str(calib))
    data = np.load(test)
    return _verify_arrays(str(model), out, "digits", data["x"], data["y"])


if __name__ == "__main__":
    sys.exit(main())
