"""mcucompile: ONNX -> one self-contained int8 C file for microcontrollers.

    import mcucompile
    model = mcucompile.compile("model.onnx", name="net", calibration="calib.npy")
    model.write("build/")
    print(model.verify(samples))

This module wires the stages together; each stage is a plain function in its own module.
"""

from __future__ import annotations

__version__ = "0.1.0"

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ir import CompileError, Graph, Shape

__all__ = ["CompileError", "CompiledModel", "compile", "__version__"]


@dataclass(eq=False)
class CompiledModel:
    name: str
    source: str  # the model file name (no directories), as quoted in the generated C
    float_graph: Graph  # after the float passes (fused, canonical), before quantization
    graph: Graph  # int8
    program: "Program"  # noqa: F821 - mcucompile.lower.Program
    plan: "ArenaPlan"  # noqa: F821 - mcucompile.memory.ArenaPlan
    stats: "ModelStats"  # noqa: F821 - mcucompile.stats.ModelStats
    pruning: "PruningReport"  # noqa: F821 - mcucompile.stats.PruningReport: dead channels removed, sparsity left
    c_source: str
    h_source: str
    onnx_model: object = field(repr=False, default=None)  # the ModelProto, for onnxruntime comparisons

    def summary(self) -> str:
        s, p = self.stats, self.plan
        ins = ", ".join(f"{n} {self.graph.tensors[n].shape}" for n in self.graph.inputs)
        outs = ", ".join(f"{n} {self.graph.tensors[n].shape}" for n in self.graph.outputs)
        return "\n".join(
            [
                f"model      {self.source} -> {self.name}.c / {self.name}.h",
                f"inputs     {ins}",
                f"outputs    {outs}",
                f"ops        {s.ops} graph ops -> {s.kernels} kernel calls",
                f"params     {s.params:,}",
                f"flash      {s.weight_bytes:,} bytes of weights and constants",
                f"arena      {p.size:,} bytes (lower bound {p.lower_bound:,}, placement {p.strategy})",
                *([f"schedule   calls reordered: arena {p.given_size:,} -> {p.size:,} bytes"] if p.reordered else []),
                f"MACs       {s.macs:,}",
                *self.pruning.summary_lines(),
            ]
        )

    def write(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write NAME.c and NAME.h; each appears whole or not at all."""
        from .files import write_files

        out = check_output_dir(out_dir)
        c_path, h_path = out / f"{self.name}.c", out / f"{self.name}.h"
        texts = {c_path: self.c_source.encode(), h_path: self.h_source.encode()}
        write_files(texts, "the output", "choose a writable -o")
        return c_path, h_path

    def run_reference(self, inputs: np.ndarray) -> np.ndarray:
        """The int8 numpy reference on int8 samples (N x input shape) -> N x output shape."""
        from .simulate import run_program

        name = self.graph.inputs[0]
        return np.stack([run_program(self.program, {name: x})[self.graph.outputs[0]] for x in inputs])

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        from .quant import quantize

        return quantize(x, self.graph.tensors[self.graph.inputs[0]].quant)

    def verify(self, samples: np.ndarray, cc: str | None = None) -> "VerifyReport":
        """Build the C, run it on float samples (N x input shape); compare with onnxruntime and the int8 reference."""
        from .calibrate import as_samples
        from .verify import CModel, accuracy, onnxruntime_outputs

        samples = as_samples(np.asarray(samples), self.float_graph, self.graph.inputs[0], "verify")
        with tempfile.TemporaryDirectory(prefix="mcucompile_") as tmp:
            self.write(tmp)
            c_model = CModel(tmp, self.name, cc)
            c_float = np.stack([c_model.run_f32(s) for s in samples])
            q_in = np.stack([self.quantize_input(s) for s in samples])
            c_int8 = np.stack([c_model.run_int8(q) for q in q_in])
        ref_int8 = self.run_reference(q_in).reshape(len(samples), -1)
        ort = onnxruntime_outputs(self.onnx_model.SerializeToString(), samples)
        lsb = np.abs(c_int8.astype(np.int32) - ref_int8.astype(np.int32))
        return VerifyReport(accuracy(ort, c_float), int(lsb.max()), float(np.mean(lsb == 0)))


@dataclass(frozen=True)
class VerifyReport:
    vs_onnxruntime: "Accuracy"  # noqa: F821
    max_lsb_vs_reference: int  # C int8 output vs the numpy int8 reference
    exact_fraction_vs_reference: float

    def __str__(self) -> str:
        return (
            f"vs onnxruntime (float): {self.vs_onnxruntime}\n"
            f"vs int8 reference:      max {self.max_lsb_vs_reference} LSB, "
            f"{self.exact_fraction_vs_reference * 100:.2f} % exact"
        )


def compile(
    model: str | os.PathLike,
    *,
    name: str = "model",
    calibration: str | os.PathLike | np.ndarray | dict | None = None,
    input_shapes: dict[str, Shape] | None = None,
    percentile: float | None = None,
    bias_correction: bool = True,
    ram_limit: int | str | None = None,
) -> CompiledModel:
    """Compile an ONNX model (path or ModelProto) to C.

    Args:
        model: path of the .onnx file, or an onnx.ModelProto.
        name: C prefix of every generated symbol and the file names (a C identifier).
        calibration: .npy/.npz path, an array of samples of the single input, or {input name: samples};
            None uses random-normal data and warns.
        input_shapes: static shapes for inputs with dynamic dimensions other than the batch.
        percentile: clip activation ranges to this percentile (e.g. 99.99) instead of min/max.
        bias_correction: fold the mean error of the int8 weights on the calibration data into each bias.
        ram_limit: bytes the arena may take (65536, "64K", "64KiB"); a larger plan raises CompileError.
    """
    from . import calibrate, onnx_import, passes
    from .codegen import render
    from .cformat import c_ident
    from .lower import lower
    from .memory import check_ram_limit, parse_bytes, plan
    from .passes.fold_qdq import is_qdq
    from .passes.quantize import quantize
    from .stats import model_stats, pruning_report, size_warning
    from .support import require_supported

    limit = None if ram_limit is None else parse_bytes(ram_limit)
    if c_ident(name) != name or len(name) > 32:
        raise CompileError(f"--name {name!r} is not a C identifier of at most 32 characters (try {c_ident(name)!r})")
    if isinstance(model, (str, os.PathLike)):
        source = os.path.basename(os.fspath(model))
        proto = onnx_import.load_model(model)
    else:
        source, proto = "model.onnx", model
    g = onnx_import.import_onnx(proto, input_shapes)
    require_supported(g)  # fail fast, naming every unsupported node
    prequantized = is_qdq(g)
    received = [g]  # the graph each pass receives, for the report of what dead-channel elimination removed
    g = passes.run_passes(g, passes.FLOAT_PIPELINE, trace=lambda _, out: received.append(out))
    require_supported(g, frozenset())  # what the passes left must be lowerable too
    i = passes.FLOAT_PIPELINE.index(passes.eliminate_dead_channels)
    pruning = pruning_report(received[i], received[i + 1])
    if prequantized:
        if calibration is not None:
            print(
                "note: the model is pre-quantized (QDQ); its scales are used and the calibration data is ignored",
                file=sys.stderr,
            )
        samples = None
    elif calibration is None:
        samples = calibrate.random_calibration(g)
    elif isinstance(calibration, (str, os.PathLike)):
        samples = calibrate.load_calibration(calibration, g)
    elif isinstance(calibration, dict):
        samples = {k: calibrate.as_samples(np.asarray(v), g, k, "calibration") for k, v in calibration.items()}
    else:
        samples = {g.inputs[0]: calibrate.as_samples(np.asarray(calibration), g, g.inputs[0], "calibration")}
    ranges = {} if samples is None else calibrate.collect_ranges(g, samples, percentile)
    corrections = calibrate.bias_corrections(g, samples) if samples is not None and bias_correction else None
    qg = quantize(g, ranges, corrections)
    program = lower(qg)
    program, arena = plan(program)
    if limit is not None:
        check_ram_limit(program, arena, limit)
    stats = model_stats(program)
    warning = size_warning(stats, arena.size)
    if warning:
        print(warning, file=sys.stderr)
    c_text, h_text = render(program, arena, name, source, stats)
    return CompiledModel(name, source, g, qg, program, arena, stats, pruning, c_text, h_text, proto)


def check_output_dir(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CompileError(f"{out}: exists and is not a directory; choose another -o")
    return out

