"""ONNX -> IR: load, fix input shapes, fold constants and shape arithmetic, and build a float Graph.

With calibrate.py, the only module that imports onnx.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from . import validate
from .cformat import printable
from .ir import CompileError, Graph, Node, Shape, Tensor
from .layout import MAX_RANK

MIN_OPSET, MAX_OPSET = 7, 23  # older models are upgraded on import
UPGRADE_OPSET = 13
# Kept as nodes even with constant inputs: quantization nodes carry the scales a QDQ model was trained with.
NEVER_FOLD = {
    "QuantizeLinear",
    "DequantizeLinear",
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}
MAX_FOLDED_ELEMENTS = 1 << 24
# onnxruntime's QOperator format: integer ops with the quantization inside them.
QOPERATOR_OPS = {
    "QLinearConv",
    "QLinearMatMul",
    "QLinearAdd",
    "QLinearMul",
    "QGemm",
    "QLinearGlobalAveragePool",
    "QLinearAveragePool",
    "QLinearConcat",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearSoftmax",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
}


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file; any failure becomes a CompileError naming the file."""
    path = os.fspath(path)
    validate.check_file(path)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf raises several types for a corrupt file
        raise CompileError(f"{path}: not a readable ONNX model ({type(exc).__name__}); re-export it") from None
    if not model.HasField("graph") or not model.opset_import:
        raise CompileError(f"{path}: holds no ONNX graph (is it an ONNX file?); export the model again")
    _load_external_data(model, path)
    return model


def _load_external_data(model: onnx.ModelProto, path: str) -> None:
    base = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = os.path.realpath(os.path.join(base, location))
        if os.path.commonpath([base, target]) != base:
            raise CompileError(
                f"{path}: tensor '{tensor.name}' points to external data outside the model's folder "
                f"({location!r}); refusing it"
            )
        if not os.path.isfile(target):
            raise CompileError(f"{path}: external data file {location!r} of tensor '{tensor.name}' is missing")
    onnx.external_data_helper.load_external_data_for_model(model, base)


def import_onnx(model: onnx.ModelProto, input_shapes: Mapping[str, Shape] | None = None) -> Graph:
    """A float IR Graph with static shapes and every constant subgraph folded."""
    opset = _default_opset(model)
    validate.check_graph(model)
    qoperator = sorted({n.op_type for n in model.graph.node if n.op_type in QOPERATOR_OPS})
    if qoperator:
        raise CompileError(
            f"the model uses onnxruntime's QOperator format ({', '.join(qoperator)}), which is not supported; "
            "quantize it with quantize_static(..., quant_format=QuantFormat.QDQ) or give the float model"
        )
    try:
        model = onnx.inliner.inline_local_functions(model)
    except Exception:
        pass  # a model without functions, or one the inliner rejects: the op check reports what is left
    _fix_input_shapes(model, dict(input_shapes or {}))
    if opset < MIN_OPSET:
        model, opset = _upgraded(model, opset), UPGRADE_OPSET
    for _ in range(16):  # folding can expose new static shapes, which allow more folding
        model = _infer_shapes(model)
        if not _fold_constants(model, opset):
            break
    model = _infer_shapes(model)
    return _to_ir(model, opset)


def _default_opset(model: onnx.ModelProto) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise CompileError("the model imports no default ONNX opset; re-export it with opset 13 to 17")
    if not 1 <= opset <= MAX_OPSET:
        raise CompileError(f"the model uses opset {opset}; supported are 1 to {MAX_OPSET} (re-export it)")
    return opset


def _upgraded(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """An opset 1-6 model through onnx's version converter to UPGRADE_OPSET (said on stderr, in one line).

    The converter rewrites what changed since: broadcast/axis attributes of the arithmetic ops, consumed_inputs,
    BatchNormalization's spatial and is_test, Dropout's is_test and mask, Reshape's shape attribute, Pad and
    Slice attributes."""
    from onnx import version_converter

    try:
        # One version at a time with shape inference between: adapters need the shapes, and inference does not know
        # every opset-1 schema (BatchNormalization with consumed_inputs) until the model is past it.
        upgraded = shape_inference.infer_shapes(model)
        for target in range(opset + 1, UPGRADE_OPSET + 1):
            if target == 7:
                _align_legacy_broadcast(upgraded)
            upgraded = shape_inference.infer_shapes(version_converter.convert_version(upgraded, target))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CompileError(
            f"the model uses opset {opset}, and onnx's version converter cannot upgrade it ({printable(reason)}); "
            f"re-export it with opset {UPGRADE_OPSET}"
        ) from None
    print(f"note: the model uses opset {opset}; upgraded to opset {UPGRADE_OPSET} with onnx's version converter",
          file=sys.stderr)  # fmt: skip
    return upgraded


def _align_legacy_broadcast(model: onnx.ModelProto) -> None:
    """Before opset 7, Add/Mul/... with broadcast=1 and axis=a lay a constant B along A from axis a; as B with
    trailing 1s and no axis it means the same under the right-aligned broadcasting the converter keeps. (The
    converter itself unsqueezes B by one axis too many for axis=1 of a rank-4 A, seen with onnx 1.x.)"""
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in [*model.graph.input, *model.graph.value_info]
             if vi.type.tensor_type.HasField("shape")}  # fmt: skip
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if "axis" not in attrs or "broadcast" not in attrs or len(node.input) != 2 or node.input[1] not in inits:
            continue
        if node.input[0] not in ranks:
            continue
        b = numpy_helper.to_array(inits[node.input[1]])
        trailing = ranks[node.input[0]] - attrs["axis"].i - b.ndim
        if trailing < 0:
            continue
        aligned = numpy_helper.from_array(b.reshape(b.shape + (1,) * trailing), f"{node.input[1]}::aligned_{node.name}")
        model.graph.initializer.append(aligned)
        if any(i.name == node.input[1] for i in model.graph.input):  # IR version 3: initializers are inputs too
            model.graph.input.append(helper.make_tensor_value_info(aligned.name, inits[node.input[1]].data_type,
                                                                   list(aligned.dims)))  # fmt: skip
        node.input[1] = aligned.name
        node.attribute.remove(attrs["axis"])


# Ops whose output has their first input's shape and type, for those onnx's shape inference leaves unknown (it
# does not expand GroupNormalization-21's function body, for one).
SHAPE_PRESERVING = frozenset({"GroupNormalization", "LayerNormalization", "InstanceNormalization"})


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        model = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise CompileError(f"ONNX shape inference failed: {str(exc).splitlines()[0]}") from None
    known = {vi.name: vi for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]
             if vi.type.tensor_type.HasField("shape")}  # fmt: skip
    added = False
    for node in model.graph.node:
        if node.op_type in SHAPE_PRESERVING and node.input and node.input[0] in known and node.output[0] not in known:
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(known[node.input[0]])
            vi.name = node.output[0]
            model.graph.value_info.append(vi)
            known[vi.name] = vi
            added = True
    return _infer_shapes(model) if added else model


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _fix_input_shapes(model: onnx.ModelProto, overrides: dict[str, Shape]) -> None:
    """Make every graph input static: user overrides, a dynamic batch dimension set to 1, else an error."""
    inputs = _graph_inputs(model)
    unknown = set(overrides) - {i.name for i in inputs}
    if unknown:
        raise CompileError(
            f"--input-shape names {sorted(unknown)}, but the model's inputs are {[i.name for i in inputs]}"
        )
    for vi in inputs:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in overrides:
            shape = overrides[vi.name]
            if len(shape) != len(dims):
                raise CompileError(f"--input-shape {vi.name}: rank {len(shape)} given, the model has rank {len(dims)}")
        else:
            shape = []
            for axis, d in enumerate(dims):
                if d.HasField("dim_value"):
                    shape.append(d.dim_value)  # zero or negative sizes are refused below
                elif axis == 0:
                    shape.append(1)  # dynamic batch: one sample per call
                else:
                    raise CompileError(
                        f"input '{vi.name}' has a dynamic dimension {d.dim_param or '?'!r} at axis {axis}; "
                        f"pass --input-shape {vi.name}=1,..."
                    )
        if any(int(s) <= 0 for s in shape):
            raise CompileError(f"input '{vi.name}' has a zero or negative dimension {tuple(shape)}")
        validate.check_size(f"input '{printable(vi.name)}'", shape, 4)
        for d, s in zip(dims, shape):
            d.Clear()
            d.dim_value = int(s)
    # Intermediate value_info may carry stale symbolic dims; shape inference recomputes them.
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    return shapes


def _folded_elements(node: onnx.NodeProto, feeds: Mapping[str, np.ndarray], shapes: Mapping[str, Shape]) -> int:
    """The most elements an output of folding `node` will have, known before evaluating it (0: not known): the
    inferred static shape, or for the ops whose output size is their input's values, computed from those."""
    sizes = [int(np.prod(shapes[o], dtype=object)) for o in node.output if o in shapes]
    if sizes:
        return max(sizes)
    try:
        values = [np.asarray(feeds[i]) for i in node.input if i]
        if node.op_type == "ConstantOfShape":
            return int(np.prod(values[0].astype(object)))
        if node.op_type == "Expand":
            return int(np.prod(np.broadcast_shapes(values[0].shape, tuple(int(d) for d in values[1])), dtype=object))
        if node.op_type == "Tile":
            return int(values[0].size * np.prod(values[1].astype(object)))
        if node.op_type == "Range":
            start, limit, delta = (float(v) for v in values[:3])
            return int(max(np.ceil((limit - start) / delta), 0)) if delta else 0
    except (ValueError, TypeError, OverflowError, IndexError):
        return 0  # malformed operands: the evaluator's own error names them
    return 0


def _fold_constants(model: onnx.ModelProto, opset: int) -> bool:
    """Replace Constant nodes, Shape/Size of static tensors and all-constant nodes by initializers."""
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    shapes = _static_shapes(model)
    kept, changed = [], False
    for node in g.node:
        if node.op_type == "If" and node.input[0] in consts:  # a static condition: the taken branch's nodes
            kept.extend(_inlined_branch(node, bool(np.asarray(consts[node.input[0]]).ravel()[0]), consts))
            changed = True
            continue
        values = _try_fold(node, consts, shapes, opset)
        if values is None:
            kept.append(node)
            continue
        changed = True
        for name, value in zip(node.output, values):
            if name:
                consts[name] = np.asarray(value)
    if not changed:
        return False
    used = {t for n in kept for t in n.input} | {o.name for o in g.output}
    dropped = {i.name for i in g.initializer} - used
    del g.node[:]
    g.node.extend(kept)
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items() if k in used)
    kept_inputs = [i for i in g.input if i.name not in dropped]  # IR version < 4 lists initializers as inputs too
    del g.input[:]
    g.input.extend(kept_inputs)
    return True


def _inlined_branch(node: onnx.NodeProto, condition: bool, consts: dict) -> list[onnx.NodeProto]:
    """The nodes of the branch an If with a constant condition takes, its own names prefixed with the If's, its
    outputs renamed to the If's (through an Identity where a branch output is a tensor of the outer graph)."""
    attr = "then_branch" if condition else "else_branch"
    branch = next(helper.get_attribute_value(a) for a in node.attribute if a.name == attr)
    prefix = f"{node.name or 'If'}::{attr}/"
    inner = {i.name for i in branch.initializer} | {o for n in branch.node for o in n.output if o}
    rename = {t: prefix + t for t in inner}
    for i in branch.initializer:
        consts[rename[i.name]] = numpy_helper.to_array(i)
    nodes = []
    for out, target in zip(branch.output, node.output):
        if out.name in inner:
            rename[out.name] = target
        else:
            nodes.append(helper.make_node("Identity", [out.name], [target], name=f"{prefix}{target}"))
    for n in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = prefix + (n.name or n.op_type)
        copy.input[:] = [rename.get(t, t) for t in n.input]
        copy.output[:] = [rename.get(t, t) for t in n.output]
        nodes.append(copy)
    return nodes


def _single_node_model(node: onnx.NodeProto, feeds: dict, opset: int) -> onnx.ModelProto:
    """A model of one node at the graph's opset: the reference evaluator then runs the op's version of that opset
    (given the bare node, it takes the newest, e.g. Unsqueeze-13 for an opset-9 Unsqueeze with an axes attribute)."""
    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
              for name, v in feeds.items()]  # fmt: skip
    outputs = [helper.make_value_info(name, onnx.TypeProto()) for name in node.output if name]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _try_fold(node, consts, shapes, opset) -> list[np.ndarray] | None:
    if node.domain not in ("", "ai.onnx") or node.op_type in NEVER_FOLD:
        return None
    if node.op_type in ("Shape", "Size") and node.input[0] in shapes and node.input[0] not in consts:
        shape = np.array(shapes[node.input[0]], np.int64)
        if node.op_type == "Size":
            return [np.array(np.prod(shape), np.int64)]
        attrs = {a.name: a.i for a in node.attribute}
        return [shape[attrs.get("start", 0) : attrs.get("end", len(shape))]]
    if node.op_type != "Constant" and not all(i in consts for i in node.input if i):
        return None
    feeds = {i: consts[i] for i in node.input if i}
    predicted = _folded_elements(node, feeds, shapes)
    if predicted > MAX_FOLDED_ELEMENTS:
        raise CompileError(f"node '{printable(node.name or node.op_type)}' ({node.op_type}): would fold to a constant "
                           f"of {predicted:,} elements, too large for a microcontroller; check the shape it is given")  # fmt: skip
    try:
        outputs = ReferenceEvaluator(_single_node_model(node, feeds, opset)).run(None, feeds)
    except Exception as exc:
        raise CompileError(
            f"node '{node.name}' ({node.op_type}): constant folding failed: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    if any(np.asarray(o).size > MAX_FOLDED_ELEMENTS for o in outputs):
        raise CompileError(f"node '{printable(node.name or node.op_type)}' ({node.op_type}): folds to a constant too "
                           "large for a microcontroller")  # fmt: skip
    return [np.asarray(o) for o in outputs]


_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.BOOL: "bool",  # comparisons and logic, inside functions of one tensor (ops/lut.py)
}


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list):
            v = tuple(x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v)
        out[a.name] = v
    return out


# Before opset 13 these ops flatten their input to 2-D at `axis` (default 1) and work on its second axis.
COERCED_2D = frozenset({"Softmax", "LogSoftmax", "Hardmax"})


def _coerced_to_2d(node: Node, tensors: dict[str, Tensor]) -> list[Node]:
    """An opset < 13 Softmax-like node as the opset 13 one over the last axis of its 2-D coercion, between views."""
    x, y = tensors[node.inputs[0]], tensors[node.outputs[0]]
    rank = len(x.shape)
    axis = int(node.attr("axis", 1)) % max(rank, 1)
    if axis == rank - 1:
        return [node.with_attrs(axis=-1)]
    flat = (int(np.prod(x.shape[:axis], dtype=np.int64)), int(np.prod(x.shape[axis:], dtype=np.int64)))
    names = [f"{node.name}::{what}" for what in ("flat_shape", "flat", "flat_out", "shape")]
    tensors[names[0]] = Tensor(names[0], (2,), "int64", data=np.array(flat, np.int64))
    tensors[names[3]] = Tensor(names[3], (rank,), "int64", data=np.array(x.shape, np.int64))
    tensors[names[1]] = Tensor(names[1], flat, x.dtype)
    tensors[names[2]] = Tensor(names[2], flat, y.dtype)
    return [
        Node("Reshape", f"{node.name}::to_2d", (x.name, names[0]), (names[1],), {}),
        Node(node.op, node.name, (names[1],), (names[2],), {"axis": -1}),
        Node("Reshape", f"{node.name}::from_2d", (names[2], names[3]), (y.name,), {}),
    ]


def _to_ir(model: onnx.ModelProto, opset: int) -> Graph:
    g = model.graph
    shapes = _static_shapes(model)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in [*g.input, *g.value_info, *g.output]}
    tensors: dict[str, Tensor] = {}
    for init in g.initializer:
        data = numpy_helper.to_array(init)
        if data.dtype == np.float64 or data.dtype == np.float16:
            data = data.astype(np.float32)
        if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
            raise CompileError(f"initializer '{init.name}' holds NaN or infinity; fix the model's weights")
        tensors[init.name] = Tensor(init.name, tuple(data.shape), str(data.dtype), data=data)

    def activation(name: str, where: str) -> Tensor:
        if name not in shapes:
            raise CompileError(
                f"{where}: tensor '{name}' has no static shape after shape inference; "
                "pass --input-shape or re-export the model with static shapes"
            )
        dtype = _DTYPES.get(elem.get(name, onnx.TensorProto.FLOAT))
        if dtype is None:
            raise CompileError(
                f"{where}: tensor '{printable(name)}' has element type {validate.element_type_name(elem[name])}, "
                "which is not supported (float32, int8, int32, int64 and bool are); convert the model to float32"
            )
        if len(shapes[name]) > MAX_RANK:
            raise CompileError(f"{where}: tensor '{printable(name)}' has rank {len(shapes[name])}; at most "
                               f"{MAX_RANK} is supported")  # fmt: skip
        return Tensor(name, shapes[name], dtype)

    inputs = tuple(vi.name for vi in _graph_inputs(model))
    for name in inputs:
        tensors[name] = activation(name, f"input '{printable(name)}'")
        if tensors[name].dtype not in ("float32", "int8"):
            raise CompileError(
                f"graph input '{printable(name)}' is {tensors[name].dtype}; the compiled model takes float32 "
                "inputs (quantized to int8 inside it) or int8 ones: export the model with a float input"
            )
    nodes: list[Node] = []
    seen: set[str] = set()
    read = {t for n in g.node for t in n.input} | {o.name for o in g.output}
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        if n.domain not in ("", "ai.onnx"):
            raise CompileError(f"node '{name}': operator {n.domain}::{n.op_type} from a custom domain is not supported")
        # an output nothing reads (Dropout's mask) is dropped, as an omitted optional output
        outs = tuple(o if o in read else "" for o in n.output)
        if not any(outs):
            continue  # nothing reads any of its outputs (the first later pass prunes what only it read)
        for out in outs:
            if out and out not in tensors:
                tensors[out] = activation(out, f"node '{name}' ({n.op_type})")
        node = Node(n.op_type, name, tuple(n.input), outs, _attrs(n))
        if opset < 13 and n.op_type in COERCED_2D:
            nodes.extend(_coerced_to_2d(node, tensors))
        else:
            nodes.append(node)
    outputs = tuple(o.name for o in g.output)
    for name in outputs:
        if name not in tensors:
            raise CompileError(f"graph output '{name}' is not computed by any node")
    graph = Graph(tuple(nodes), tensors, inputs, outputs, name=g.name or "model")
    graph.verify()
    return graph
