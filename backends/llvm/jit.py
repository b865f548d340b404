"""Target machine, optimisation pipeline and MCJIT engines, with the on-disk object cache."""

from __future__ import annotations

import threading

from llvmlite import binding as llvm

from backends.llvm import cache, parallel

_init_lock = threading.Lock()
_initialised = False


def target_machine() -> llvm.TargetMachine:
    global _initialised
    with _init_lock:
        if not _initialised:
            llvm.initialize_native_target()  # llvm.initialize() raises in llvmlite 0.50
            llvm.initialize_native_asmprinter()
            parallel.link_symbols()
            _initialised = True
    target = llvm.Target.from_default_triple()
    features = llvm.get_host_cpu_features().flatten()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features, opt=3, codemodel="jitdefault"
    )


def optimise(module: llvm.ModuleRef, tm: llvm.TargetMachine, level: int = 3) -> None:
    """-O3 with loop and SLP vectorisation (the new pass manager), without loop unrolling:
    on the MLP training step unrolling took 0.8 of 1.0 s of optimisation and code generation
    and changed no kernel's speed measurably (benchmarks/compile_time.py)."""
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = False
    pass_builder = llvm.create_pass_builder(tm, pto)
    pass_builder.getModulePassManager().run(module, pass_builder)


def engine(text: str, tm: llvm.TargetMachine) -> tuple:
    """(MCJIT engine with the module of IR `text` compiled, parsed module, cache hit?): object
    code from the disk cache when a verified entry exists, else optimised and compiled."""
    parsed = llvm.parse_assembly(text)
    parsed.verify()
    name = cache.key(text, tm)
    cached = cache.load(name)
    if cached is None:  # a hit skips the optimiser and code generation
        optimise(parsed, tm)
    jit = llvm.create_mcjit_compiler(parsed, tm)
    jit.set_object_cache(
        notify_func=lambda module, code: cache.store(name, code),
        getbuffer_func=lambda module: cached,
    )
    jit.finalize_object()
    return jit, parsed, cached is not None


def library_engine(  # noqa: ANN201
    identity: str,
    source,  # noqa: ANN001
    tm: llvm.TargetMachine,
    level: int = 3,
):
    """An MCJIT engine for a library module known by `identity` (a string naming what the
    code is, e.g. a generator's version and parameters): on a disk-cache hit the object code
    is loaded into an empty module, and source() (the IR text) is never built. `level`: the
    optimisation level (1 suits code already written as vectors)."""
    name = cache.key(f"library: {identity} O{level}", tm)
    cached = cache.load(name)
    text = source() if cached is None else f'target triple = "{tm.triple}"\n'
    parsed = llvm.parse_assembly(text)
    if cached is None:
        parsed.verify()
        optimise(parsed, tm, level)
    jit = llvm.create_mcjit_compiler(parsed, tm)
    jit.set_object_cache(
        notify_func=lambda module, code: cache.store(name, code),
        getbuffer_func=lambda module: cached,
    )
    jit.finalize_object()
    return jit
