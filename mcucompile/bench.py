"""`mcucompile bench`: the cost of one inference on a Cortex-M core, measured in an emulator.

The generated C and a small generated harness are cross-compiled with arm-none-eabi-gcc (-O2, Thumb, the core's
float ABI, --gc-sections, newlib-nano, no startup code) and linked at a flash address and a RAM address of our own
linker script. The ELF is loaded into unicorn here (the load image at its LMA, `.data` copied to its VMA, `.bss`
left zero), the input is written into the harness's input buffer, and the entry `mcb_entry` (which calls
`NAME_run`) runs once. A block hook counts every executed instruction and adds its cost from COST_MODEL; the
model is compiled with `-DNAME_AFTER_CALL(step, arena)=mcb_after_call(step, arena)`, an empty function whose
entry the hook watches, which splits the counts per kernel call. The stack region is painted before the run,
and its high-water mark is the deepest byte that changed.

Cycles are an estimate from a per-instruction table (see COST_MODEL), the same for every core: no flash wait
states, caches, bus contention, dual issue or pipeline details beyond a fixed taken-branch penalty. It is
deterministic, so two versions of the code measured with it compare fairly.

Needs arm-none-eabi-gcc with newlib (`apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi`) and
unicorn, capstone, pyelftools (`pip install "mcucompile[bench]"`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ir import CompileError
from .cformat import printable

# -mcpu and float ABI per core (the FPU only matters for float code: the int8 kernels use none).
TARGETS: dict[str, tuple[str, ...]] = {
    "cortex-m0plus": ("-mcpu=cortex-m0plus", "-mfloat-abi=soft"),
    "cortex-m4": ("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
    "cortex-m7": ("-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
    "cortex-m33": ("-mcpu=cortex-m33", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
}
CROSS_CC = "arm-none-eabi-gcc"
OPT = "-O2"

FLASH_BASE, FLASH_SIZE = 0x08000000, 8 << 20
RAM_BASE, RAM_SIZE = 0x20000000, 4 << 20
STACK_REGION = 128 << 10  # painted below the top of RAM, where the stack starts
STACK_PAINT = 0xCD
RETURN_PAGE = 0x00010000  # the entry returns here (LR), which ends the run
MAX_INSTRUCTIONS = 3_000_000_000

COST_MODEL = (
    "m4-simple: 1 cycle per ALU, multiply, MAC, SIMD, store and FPU op; 2 per load; 3 per LDRD/STRD; "
    "1+N per PUSH/POP of N registers (+2 when POP loads pc) and per LDM/STM (N counts the base register); "
    "+2 per taken branch; "
    "7 per SDIV/UDIV; 14 per VDIV/VSQRT; the same table for every core"
)
ESTIMATE_NOTE = "an estimate: no flash wait states, caches or bus contention"

INSTALL_GCC = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
INSTALL_PY = 'pip install "mcucompile[bench]"'

LINKER_SCRIPT = f"""/* mcucompile bench: flat flash and RAM, no vectors; the emulator loads the image itself. */
MEMORY
{{
    FLASH (rx) : ORIGIN = {FLASH_BASE:#x}, LENGTH = {FLASH_SIZE:#x}
    RAM (rwx) : ORIGIN = {RAM_BASE:#x}, LENGTH = {RAM_SIZE:#x}
}}
ENTRY(mcb_entry)
SECTIONS
{{
    .text : {{ KEEP(*(.text.mcb_entry)) *(.text .text.*) . = ALIGN(4); }} > FLASH
    .rodata : {{ *(.rodata .rodata.*) . = ALIGN(4); }} > FLASH
    .ARM.exidx : {{ *(.ARM.exidx .ARM.exidx.*) }} > FLASH
    .data : {{ . = ALIGN(4); *(.data .data.*) . = ALIGN(4); }} > RAM AT > FLASH
    .bss (NOLOAD) : {{ . = ALIGN(4); __bss_start__ = .; *(.bss .bss.*) *(COMMON) . = ALIGN(4); __bss_end__ = .; }} > RAM
    end = .;
    /DISCARD/ : {{ *(.comment) *(.ARM.attributes) }}
}}
"""

HOOK_HEADER = """/* mcucompile bench: the per-call marker (forced into NAME.c with -include). */
#include <stdint.h>
void mcb_after_call(int step, uint8_t *arena);
"""

HARNESS = """/* mcucompile bench harness: the emulator writes mcb_input, runs mcb_entry once, reads mcb_output. */
#include <stdint.h>
#include "{name}.h"
#include "mcb_hook.h"

int8_t mcb_input[{P}_INPUT_SIZE];
int8_t mcb_output[{P}_OUTPUT_SIZE];

/* The emulator watches this function's first instruction; the asm keeps the call and the body. */
__attribute__((noinline)) void mcb_after_call(int step, uint8_t *arena)
{{
    __asm__ volatile("" : : "r"(step), "r"(arena) : "memory");
}}

int mcb_entry(void)
{{
    mcb_after_call(-1, (uint8_t *)0);
    return {name}_run(mcb_input, mcb_output);
}}
"""


@dataclass(frozen=True)
class LayerCost:
    step: int  # kernel call index; -1 for the harness before NAME_run, -2 for the returns after the last call
    kernel: str
    node: str
    macs: int
    instructions: int
    cycles: int


@dataclass
class BenchResult:
    name: str
    target: str
    compiler: str  # the cross compiler's version line
    flags: tuple[str, ...]
    code_bytes: int  # .text + .ARM.exidx (kernels, harness, libc/libgcc helpers)
    const_bytes: int  # .rodata + the load image of .data
    arena_bytes: int
    io_bytes: int  # the harness's input and output buffers
    other_static_bytes: int  # every other byte of .data + .bss
    stack_bytes: int  # high-water mark of one inference, the harness's entry frame included
    instructions: int
    cycles: int
    macs: int
    status: int  # NAME_run's return value
    output: np.ndarray = field(repr=False)
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def flash_bytes(self) -> int:
        return self.code_bytes + self.const_bytes

    @property
    def static_ram_bytes(self) -> int:
        return self.arena_bytes + self.io_bytes + self.other_static_bytes

    @property
    def ram_bytes(self) -> int:
        return self.static_ram_bytes + self.stack_bytes

    @property
    def cycles_per_mac(self) -> float:
        return self.cycles / self.macs if self.macs else float("nan")

    def report(self) -> str:
        def per_mac(cycles: int, macs: int) -> str:
            return f"{cycles / macs:.2f}" if macs else "-"

        lines = [
            f"bench      {self.name} on {self.target}, one inference emulated with unicorn",
            f"compiler   {self.compiler}: {' '.join(self.flags)}",
            f"flash      {self.flash_bytes:,} bytes (code {self.code_bytes:,} + constants {self.const_bytes:,})",
            f"RAM        {self.ram_bytes:,} bytes (arena {self.arena_bytes:,} + input/output buffers "
            f"{self.io_bytes:,} + other static {self.other_static_bytes:,} + stack {self.stack_bytes:,})",
            f"instructions {self.instructions:,}",
            f"cycles     {self.cycles:,} ({ESTIMATE_NOTE})",
            f"MACs       {self.macs:,} ({per_mac(self.cycles, self.macs)} cycles/MAC)",
            f"cost model {COST_MODEL}",
            "",
            f"{'step':>4}  {'kernel':<28} {'MACs':>12} {'instructions':>13} {'est. cycles':>13} {'cyc/MAC':>8}  node",
        ]
        for layer in self.layers:
            step = {-1: "pre", -2: "post"}.get(layer.step, str(layer.step))
            lines.append(
                f"{step:>4}  {layer.kernel:<28} {layer.macs:>12,} {layer.instructions:>13,} {layer.cycles:>13,} "
                f"{per_mac(layer.cycles, layer.macs):>8}  {printable(layer.node)}"
            )
        lines.append(
            f"{'':>4}  {'total':<28} {self.macs:>12,} {self.instructions:>13,} {self.cycles:>13,} "
            f"{per_mac(self.cycles, self.macs):>8}"
        )
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- tools


def require_tools() -> str:
    """The cross compiler's path; a CompileError naming what to install when it or a Python module is missing."""
    cc = shutil.which(CROSS_CC)
    if cc is None:
        raise CompileError(f"mcucompile bench needs {CROSS_CC} with newlib, not found on PATH: {INSTALL_GCC}")
    missing = []
    for module in ("unicorn", "capstone", "elftools"):
        try:
            __import__(module)
        except ImportError:
            missing.append("pyelftools" if module == "elftools" else module)
    if missing:
        raise CompileError(f"mcucompile bench needs the Python packages {', '.join(missing)}: {INSTALL_PY}")
    return cc


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise CompileError(f"--target {target!r} is not one of {', '.join(TARGETS)}")


# ----------------------------------------------------------------------------------------------- cost table


def instruction_cost(mnemonic: str, operands: str) -> int:
    """Estimated cycles of one Thumb instruction (COST_MODEL), without the taken-branch penalty.

    The rules are the reference estimator's, to the letter, so that a figure measured here compares with the
    CMSIS-NN figures measured with it (benchmarks/mlperf_tiny/cmsis_nn_kws.json): the register count of an
    LDM/STM includes its base register, and a conditional form inside an IT block (capstone prints `ldrne`,
    `popne`) costs what its mnemonic's prefix says (a load is a load; a conditional POP or STRD costs 1).
    """
    m = mnemonic.split(".")[0].lower()
    registers = operands.count(",") + 1
    if m.startswith(("ldm", "stm")) or m in ("push", "pop", "vpush", "vpop"):
        return 1 + registers + (2 if m == "pop" and "pc" in operands else 0)
    if m in ("ldrd", "strd"):
        return 3
    if m.startswith(("ldr", "vldr")):
        return 2
    if m in ("sdiv", "udiv"):
        return 7
    if m in ("vdiv", "vsqrt"):
        return 14
    return 1


# ----------------------------------------------------------------------------------------------- build


def build_elf(c_dir: Path, name: str, target: str, work: Path, cc: str | None = None) -> tuple[Path, tuple[str, ...]]:
    """Cross-compile c_dir/NAME.c with the harness into work/NAME.elf; returns the ELF and the flags used."""
    _check_target(target)
    cc = cc or require_tools()
    (work / "mcb_hook.h").write_text(HOOK_HEADER)
    (work / "mcb_harness.c").write_text(HARNESS.format(name=name, P=name.upper()))
    (work / "mcb.ld").write_text(LINKER_SCRIPT)
    flags = (OPT, "-mthumb", *TARGETS[target], "-ffunction-sections", "-fdata-sections")
    elf = work / f"{name}.elf"
    args = [
        cc,
        *flags,
        "-std=c99",
        "-Wall",
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        "-T",
        str(work / "mcb.ld"),
        "-I",
        str(c_dir),
        "-I",
        str(work),
        "-include",
        str(work / "mcb_hook.h"),
        f"-D{name.upper()}_AFTER_CALL(step,arena)=mcb_after_call(step,arena)",
        str(Path(c_dir) / f"{name}.c"),
        str(work / "mcb_harness.c"),
        "-o",
        str(elf),
    ]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"{CROSS_CC} failed on {name}.c for {target}: {proc.stderr.strip()[:2000]}")
    return elf, (*flags, "--gc-sections")


def compiler_version(cc: str) -> str:
    proc = subprocess.run([cc, "-dumpversion"], capture_output=True, text=True)
    return f"{CROSS_CC} {proc.stdout.strip()}".strip()


# ----------------------------------------------------------------------------------------------- emulate


class _Image:
    """The sections and symbols of a bench ELF."""

    def __init__(self, path: Path):
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as f:
            elf = ELFFile(f)
            self.sections = {s.name: (s["sh_addr"], s["sh_size"]) for s in elf.iter_sections() if s["sh_flags"] & 2}
            self.segments = [
                (seg["p_paddr"], seg["p_vaddr"], seg.data())
                for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]
            ]
            self.symbols = {
                s.name: (s["st_value"], s["st_size"]) for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name
            }

    def size(self, section: str) -> int:
        return self.sections.get(section, (0, 0))[1]

    def symbol(self, name: str) -> tuple[int, int]:
        if name not in self.symbols:
            raise CompileError(f"bench: symbol {name} missing from the ELF")
        return self.symbols[name]


def emulate(elf: Path, target: str, input_bytes: bytes) -> dict:
    """Run mcb_entry once; instruction and cycle counters per segment between markers, stack, output bytes."""
    import capstone
    from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_MEM_INVALID, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError
    from unicorn import arm_const as A

    image = _Image(elf)
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    cpu = {
        "cortex-m0plus": A.UC_CPU_ARM_CORTEX_M0,
        "cortex-m4": A.UC_CPU_ARM_CORTEX_M4,
        "cortex-m7": A.UC_CPU_ARM_CORTEX_M7,
        "cortex-m33": A.UC_CPU_ARM_CORTEX_M33,
    }[target]
    uc.ctl_set_cpu_model(cpu)
    uc.mem_map(FLASH_BASE, FLASH_SIZE)
    uc.mem_map(RAM_BASE, RAM_SIZE)
    uc.mem_map(RETURN_PAGE, 0x1000)
    for lma, vma, data in image.segments:
        uc.mem_write(lma, data)
        if vma != lma:
            uc.mem_write(vma, data)  # what startup code would copy: .data at its run address
    in_addr, in_size = image.symbol("mcb_input")
    if in_size != len(input_bytes):
        raise CompileError(f"bench: input of {len(input_bytes)} bytes for a buffer of {in_size}")
    uc.mem_write(in_addr, input_bytes)
    stack_top = RAM_BASE + RAM_SIZE
    uc.mem_write(stack_top - STACK_REGION, bytes([STACK_PAINT]) * STACK_REGION)

    disasm = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    marker = image.symbol("mcb_after_call")[0] & ~1
    blocks: dict[tuple[int, int], tuple[int, int]] = {}
    state = {"insns": 0, "cycles": 0, "next": None}
    marks: list[tuple[int, int, int]] = []  # (step, instructions, cycles) at each marker's entry

    def on_block(uc_, address, size, _user):
        key = (address, size)
        cost = blocks.get(key)
        if cost is None:
            ins = list(disasm.disasm(bytes(uc_.mem_read(address, size)), address))
            cost = (len(ins), sum(instruction_cost(i.mnemonic, i.op_str) for i in ins))
            blocks[key] = cost
        if address == marker:
            marks.append((int(np.int32(np.uint32(uc_.reg_read(A.UC_ARM_REG_R0)))), state["insns"], state["cycles"]))
        if state["next"] is not None and state["next"] != address:
            state["cycles"] += 2  # taken branch: the pipeline refills
        state["insns"] += cost[0]
        state["cycles"] += cost[1]
        state["next"] = address + size
        if state["insns"] > MAX_INSTRUCTIONS:
            uc_.emu_stop()

    def on_invalid(uc_, access, address, size, value, _user):
        state["fault"] = address
        return False

    uc.hook_add(UC_HOOK_BLOCK, on_block)
    uc.hook_add(UC_HOOK_MEM_INVALID, on_invalid)
    if target != "cortex-m0plus":
        try:
            uc.reg_write(A.UC_ARM_REG_C1_C0_2, 0xF << 20)  # CPACR: enable the FPU for float code
        except (UcError, AttributeError):
            pass
    uc.reg_write(A.UC_ARM_REG_SP, stack_top)
    uc.reg_write(A.UC_ARM_REG_LR, RETURN_PAGE | 1)
    try:
        uc.emu_start(image.symbol("mcb_entry")[0] | 1, RETURN_PAGE)
    except UcError as exc:
        pc = uc.reg_read(A.UC_ARM_REG_PC)
        where = f" at address {state['fault']:#x}" if "fault" in state else ""
        raise CompileError(f"bench: the emulated run failed ({exc}) at pc {pc:#x}{where}") from None
    if state["insns"] > MAX_INSTRUCTIONS:
        raise CompileError(f"bench: stopped after {MAX_INSTRUCTIONS:,} instructions without returning")
    painted = bytes(uc.mem_read(stack_top - STACK_REGION, STACK_REGION))
    untouched = len(painted) - len(painted.lstrip(bytes([STACK_PAINT])))
    out_addr, out_size = image.symbol("mcb_output")
    return dict(
        image=image,
        instructions=state["insns"],
        cycles=state["cycles"],
        marks=marks,
        stack=STACK_REGION - untouched,
        status=int(np.int32(np.uint32(uc.reg_read(A.UC_ARM_REG_R0)))),
        output=np.frombuffer(bytes(uc.mem_read(out_addr, out_size)), np.int8).copy(),
    )


# ----------------------------------------------------------------------------------------------- API


def bench_compiled(compiled, target: str = "cortex-m4", input: np.ndarray | None = None) -> BenchResult:
    """Cross-compile a CompiledModel for `target` and emulate one inference on the int8 `input` (ONNX element
    order; default: random int8 from seed 0). The output is in BenchResult.output."""
    from .stats import call_macs

    _check_target(target)
    cc = require_tools()
    g = compiled.graph
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CompileError(f"{compiled.name}: bench supports models with one input and one output")
    size = g.tensors[g.inputs[0]].size
    if input is None:
        input = np.random.default_rng(0).integers(-128, 128, size, dtype=np.int8)
    data = np.ascontiguousarray(input, np.int8).ravel()
    if data.size != size:
        raise CompileError(f"bench: input of {data.size} elements, the model takes {size}")
    with tempfile.TemporaryDirectory(prefix="mcucompile_bench_") as tmp:
        work = Path(tmp)
        compiled.write(work)
        elf, flags = build_elf(work, compiled.name, target, work, cc)
        run = emulate(elf, target, data.tobytes())
    image: _Image = run["image"]
    calls = compiled.program.calls
    marks = run["marks"]  # the harness marks -1 just before NAME_run, then each call marks its step
    if [m[0] for m in marks] != list(range(-1, len(calls))):
        raise CompileError(f"bench: saw markers {[m[0] for m in marks][:20]} for {len(calls)} kernel calls")
    layers = [LayerCost(-1, "(harness entry)", "", 0, marks[0][1], marks[0][2])]
    for step, call in enumerate(calls):
        (_, i0, c0), (_, i1, c1) = marks[step], marks[step + 1]
        layers.append(LayerCost(step, call.kernel, call.node, call_macs(call), i1 - i0, c1 - c0))
    layers.append(
        LayerCost(-2, "(return)", "", 0, run["instructions"] - marks[-1][1], run["cycles"] - marks[-1][2])
    )
    arena = image.symbols.get(f"{compiled.name}_arena", (0, 0))[1]
    io = image.symbol("mcb_input")[1] + image.symbol("mcb_output")[1]
    static = image.size(".data") + image.size(".bss")
    return BenchResult(
        name=compiled.name,
        target=target,
        compiler=compiler_version(cc),
        flags=flags,
        code_bytes=image.size(".text") + image.size(".ARM.exidx"),
        const_bytes=image.size(".rodata") + image.size(".data"),
        arena_bytes=arena,
        io_bytes=io,
        other_static_bytes=static - arena - io,
        stack_bytes=run["stack"],
        instructions=run["instructions"],
        cycles=run["cycles"],
        macs=compiled.stats.macs,
        status=run["status"],
        output=run["output"],
        layers=layers,
    )


def bench(
    model: str | os.PathLike,
    target: str = "cortex-m4",
    *,
    name: str = "model",
    calibration=None,
    input_shapes: dict | None = None,
    input: np.ndarray | None = None,
) -> BenchResult:
    """Compile an ONNX model (as mcucompile.compile) and emulate one inference on `target`."""
    from . import compile as compile_model

    _check_target(target)
    require_tools()  # fail before the compile, not after it
    compiled = compile_model(model, name=name, calibration=calibration, input_shapes=input_shapes)
    return bench_compiled(compiled, target, input)
