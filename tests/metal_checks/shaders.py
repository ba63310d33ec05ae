"""Shaders under Metal's rules, on Linux.

Compiles every kernels/*.metal with Debian's clang as C++ for OpenCL against
the strict stub metal_stub/metal_stdlib (no standard library at all:
-nostdinc), for the Metal language version of the build's deployment target
(bfloat only from Metal 3.1), with MLX's Metal warning flags and warnings as
errors. In that mode clang enforces what Metal enforces and plain C++ does
not: distinct address spaces (a device pointer does not convert to a thread
one), no double (nor an unsuffixed, double, literal), no function pointers,
no variable-length arrays, and (second pass) constant-memory pointers that
stay constant, program-scope and static variables only in constant memory.

 pass 1  constant memory as read-only device memory: must compile with no
         diagnostic at all; its JSON AST gives the call graph (recursion is
         an error) and each kernel's [[buffer(N)]] arguments, which must
         match what csrc/metal/upsample_metal.cpp binds (upsample.metal)
         or the kernel function's slots in csrc/metal/grid_launch_plan.cpp,
         which grid_sample_metal.cpp binds in order (grid_sample.metal).
 pass 2  constant memory as __constant: clang cannot copy a struct out of
         __constant, which Metal does for trivially copyable types, so that
         diagnostic alone is accepted (for trivially copyable types only).
"""

import json
import re
from collections import defaultdict
from pathlib import Path

from common import ROOT, HERE, CheckFailed, deployment_target, main, run, tool

CXX = "clang++-19"
# __METAL_VERSION__ of the Metal language a deployment target defaults to.
METAL_VERSIONS = {"13": 300, "14": 310, "15": 320, "26": 400}
# The first integer argument of the stub's annotations.
ATTRIBUTE_CODES = {1: "kernel", 2: "buffer", 3: "thread_position_in_grid"}
# Metal's buffer argument table has 31 entries.
MAX_BUFFERS = 31
HOST = ROOT / "csrc" / "metal" / "upsample_metal.cpp"
# grid_sample's host binds each launch's buffers in the order of its
# kernel function's slots, listed per function in the launch plan.
GRID_HOST = ROOT / "csrc" / "metal" / "grid_sample_metal.cpp"
GRID_PLAN = ROOT / "csrc" / "metal" / "grid_launch_plan.cpp"
# The table's access names (grid_launch_plan.cpp: R = Access::Read, ...) as
# the host's calls.
SLOT_ROLES = {"R": ("Read", "input_array"), "W": ("Write", "output_array"),
              "B": ("Bytes", "bytes")}
FUNCTION_KINDS = {"FunctionDecl", "CXXMethodDecl", "CXXConstructorDecl",
                  "CXXDestructorDecl", "CXXConversionDecl"}
NO_FP64 = "-cl_khr_fp64,-__opencl_c_fp64,+cl_khr_fp16"
NO_GLOBALS = "-__opencl_c_program_scope_global_variables,-__opencl_c_device_enqueue"


def compile_command(source: Path, metal_version: int, constant_as_device: bool) -> list:
    extensions = NO_FP64 if constant_as_device else f"{NO_FP64},{NO_GLOBALS}"
    cmd = [
        CXX, "-x", "clcpp", "-cl-std=clc++2021", "-nostdinc", "-cl-no-stdinc",
        "-Xclang", f"-cl-ext={extensions}",
        f"-D__METAL_VERSION__={metal_version}", "-D__METAL_MACOS__",
        # mlx_build_metallib's warning flags (extension.cmake), as errors.
        "-Wall", "-Wextra", "-Wno-c++17-extensions", "-Wno-c++20-extensions", "-Werror",
        "-ferror-limit=0", "-fno-caret-diagnostics", "-fno-color-diagnostics",
        "-I", HERE.relative_to(ROOT) / "metal_stub", "-I", "kernels", "-fsyntax-only",
        source.relative_to(ROOT),
    ]
    if constant_as_device:
        cmd[-1:-1] = ["-DMETAL_CHECK_CONSTANT_AS_DEVICE", "-Xclang", "-ast-dump=json"]
    return cmd


def diagnostics(stderr: str) -> list:
    """clang's diagnostics as (line, [notes]) groups, one per error or warning."""
    groups = []
    for line in stderr.splitlines():
        if re.search(r": (error|warning|fatal error): ", line):
            groups.append((line, []))
        elif ": note: " in line and groups:
            groups[-1][1].append(line.split(": note: ", 1)[1])
    return groups


def summary(groups: list, limit: int = 25) -> str:
    """Distinct diagnostics with their notes (a template repeats one per
    instantiation)."""
    seen = defaultdict(int)
    first = {}
    for line, notes in groups:
        seen[line] += 1
        first.setdefault(line, notes)
    out = []
    for line in list(seen)[:limit]:
        times = f"  [x{seen[line]}]" if seen[line] > 1 else ""
        out.append(line + times)
        out += [f"    note: {n}" for n in first[line]
                if not n.startswith(("in instantiation of", "expanded from macro"))][:3]
    if len(seen) > limit:
        out.append(f"... and {len(seen) - limit} more")
    return "\n".join(out)


# ---- the JSON AST ------------------------------------------------------------


def walk(node, parent=None):
    """(node, parent) in document order."""
    yield node, parent
    for child in node.get("inner", ()):
        yield from walk(child, node)


def resolve_locations(ast) -> None:
    """clang's JSON omits a location's file and line when they repeat the
    previous location's; writes the full (file, line) into every location."""
    state = {"file": "?", "line": 0}

    def bare(loc):
        if "file" in loc:
            state["file"] = loc["file"]
        if "line" in loc:
            state["line"] = loc["line"]
        loc["_at"] = f"{state['file']}:{state['line']}"

    def location(loc):
        if "spellingLoc" in loc:
            bare(loc["spellingLoc"])
            bare(loc["expansionLoc"])
            loc["_at"] = loc["expansionLoc"]["_at"]
        elif loc:
            bare(loc)

    for node, _ in walk(ast):
        if "loc" in node:
            location(node["loc"])
        for end in ("begin", "end"):
            if end in node.get("range", {}):
                location(node["range"][end])


def where(node) -> str:
    return node.get("loc", {}).get("_at", "?")


def annotations(node) -> list:
    """[(attribute name, [integer arguments])] of the stub's annotations."""
    found = []
    for child in node.get("inner", ()):
        if child.get("kind") == "AnnotateAttr":
            values = [int(c["value"]) for c in child.get("inner", ()) if "value" in c]
            if values and values[0] in ATTRIBUTE_CODES:
                found.append((ATTRIBUTE_CODES[values[0]], values[1:]))
    return found


def has_body(node) -> bool:
    return any(c.get("kind") == "CompoundStmt" for c in node.get("inner", ()))


def callees(function) -> set:
    """Ids of the functions that `function`'s body names (calls, or takes the
    address of); nested functions (lambdas) count as their own."""
    found = set()
    stack = [c for c in function.get("inner", ()) if c.get("kind") == "CompoundStmt"]
    while stack:
        node = stack.pop()
        if node.get("kind") in FUNCTION_KINDS:
            continue
        ref = node.get("referencedDecl") or {}
        if ref.get("kind") in FUNCTION_KINDS:
            found.add(ref["id"])
        member = node.get("referencedMemberDecl")
        if member:
            found.add(member)
        stack.extend(node.get("inner", ()))
    return found


def recursion(functions: dict) -> list:
    """The cycles (strongly connected components with an edge) of the call
    graph, as lists of function ids (Tarjan, iterative)."""
    graph = {f: [c for c in callees(node) if c in functions] for f, node in functions.items()}
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            advanced = False
            for w in edges:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1 or v in graph[v]:
                    cycles.append(component)
    return cycles


# ---- buffers -----------------------------------------------------------------


def host_bindings() -> dict:
    """{buffer index: {"input_array" | "output_array" | "bytes", ...}} bound by
    the host. One index may be bound by alternative calls (a small table as
    bytes, a large one as an array), all of them reading or all writing."""
    text = HOST.read_text()
    calls = re.findall(r"\.set_(input_array|output_array|bytes)\(", text)
    bound = re.findall(r"\.set_(input_array|output_array|bytes)\([^;]*?,\s*(\d+)\s*\)\s*;", text)
    if len(bound) != len(calls) or not calls:
        raise CheckFailed(f"{HOST.relative_to(ROOT)}: cannot read a literal buffer index "
                          "from every set_input_array/set_output_array/set_bytes call")
    bindings = {}
    for role, index in bound:
        bindings.setdefault(int(index), set()).add(role)
    for index, roles in bindings.items():
        if "output_array" in roles and len(roles) > 1:
            raise CheckFailed(f"{HOST.relative_to(ROOT)} binds buffer {index} both for "
                              f"reading and for writing ({', '.join(sorted(roles))})")
    return bindings


def grid_bindings() -> dict:
    """{kernel function: {buffer index: {role}}} from grid_kernel_buffers() in
    the grid_sample launch plan, once the host is seen to bind each launch's
    slots in order (buffer i the i-th slot, the role its access)."""
    host = GRID_HOST.read_text()
    calls = re.findall(r"\.set_(input_array|output_array|bytes)\(([^;]*?)\)\s*;", host)
    if not calls or any(not re.search(r",\s*index$", args) for _, args in calls):
        raise CheckFailed(f"{GRID_HOST.relative_to(ROOT)}: every set_input_array/"
                          "set_output_array/set_bytes call must bind its launch slot's `index`")
    text = GRID_PLAN.read_text()
    body = re.search(r"grid_kernel_buffers\(\) \{(.*?)\n\}", text, re.S)
    if body is None:
        raise CheckFailed(f"{GRID_PLAN.relative_to(ROOT)}: no grid_kernel_buffers() table")
    for short, (access, _) in SLOT_ROLES.items():
        if f"constexpr Access {short} = Access::{access};" not in text:
            raise CheckFailed(f"{GRID_PLAN.relative_to(ROOT)}: no {short} = Access::{access}")
    table = {}
    entry = r'\{"(\w+)",\s*\{((?:\s*\{A::\w+, [RWB]\},?)+)\s*\}\}'
    for name, slots in re.findall(entry, body.group(1)):
        accesses = re.findall(r"\{A::\w+, ([RWB])\}", slots)
        table[name] = {i: {SLOT_ROLES[a][1]} for i, a in enumerate(accesses)}
    if not table:
        raise CheckFailed(f"{GRID_PLAN.relative_to(ROOT)}: cannot read grid_kernel_buffers()")
    return table


def buffer_role(qual_type: str):
    """("read" | "write", address space) of a kernel's buffer argument type."""
    m = re.fullmatch(r"(const )?(__\w+) .*?(\*|&)( ?__private)?", qual_type)
    if m is None:
        return None, None
    return ("read" if m.group(1) else "write"), m.group(2)


def check_buffers(ast, source: Path) -> tuple:
    """Every kernel's [[buffer(N)]] arguments against the host's bindings
    (upsample.metal: one set for every kernel; grid_sample.metal: each kernel
    function's slots); returns (kernel count, bindings, host's name)."""
    grid = source.name == "grid_sample.metal"
    per_function = grid_bindings() if grid else None
    host_name = f"{GRID_PLAN.name}'s slots" if grid else HOST.name
    shared = None if grid else host_bindings()
    wanted = {"input_array": "read", "output_array": "write", "bytes": "read"}
    problems, kernels = [], {}
    for node, _ in walk(ast):
        if node.get("kind") not in FUNCTION_KINDS or not any(
                name == "kernel" for name, _ in annotations(node)):
            continue
        kernels.setdefault(node["name"], node)
    for name, node in kernels.items():
        if grid and name not in per_function:
            problems.append(f"{where(node)}: kernel {name} has no entry in {GRID_PLAN.name}'s "
                            "grid_kernel_buffers()")
            continue
        host = per_function[name] if grid else shared
        buffers = {}
        for param in node.get("inner", ()):
            if param.get("kind") != "ParmVarDecl":
                continue
            for attr, args in annotations(param):
                if attr != "buffer":
                    continue
                index = args[0]
                access, space = buffer_role(param["type"]["qualType"])
                label = f"{name}'s buffer({index}) {param['name']} ({param['type']['qualType']})"
                if index in buffers:
                    problems.append(f"{where(param)}: {name} has two buffer({index}) arguments")
                if not 0 <= index < MAX_BUFFERS:
                    problems.append(f"{where(param)}: {label}: Metal has buffers 0..{MAX_BUFFERS - 1}")
                if space != "__global":
                    problems.append(f"{where(param)}: {label} is not device or constant memory")
                buffers[index] = (access, label, param)
        for index, roles in sorted(host.items()):
            role = " / set_".join(sorted(roles))
            if index not in buffers:
                problems.append(f"{where(node)}: {name} has no buffer({index}), which "
                                f"{host_name} binds with set_{role}")
            elif buffers[index][0] != wanted[min(roles)]:
                access, label, param = buffers[index]
                kind = "read-only" if access == "read" else "writable"
                problems.append(f"{where(param)}: {label} is {kind}, but {host_name} "
                                f"binds it with set_{role}")
        for index in sorted(set(buffers) - set(host)):
            problems.append(f"{where(buffers[index][2])}: {buffers[index][1]} is never bound "
                            f"by {host_name}")
    if grid:
        for name in sorted(set(per_function) - set(kernels)):
            problems.append(f"{GRID_PLAN.name}: grid_kernel_buffers() lists {name}, which "
                            f"{source.name} has no kernel of")
    if not kernels:
        problems.append(f"{source.name}: no [[kernel]] function")
    if problems:
        raise CheckFailed("kernel buffers and host bindings disagree:\n" + "\n".join(problems))
    if grid:
        return len(kernels), f"the slots of {GRID_PLAN.name}'s grid_kernel_buffers() ({len(per_function)} functions)"
    binding = ", ".join(f"{' or '.join('set_' + r for r in sorted(roles))} {i}"
                        for i, roles in sorted(shared.items()))
    return len(kernels), f"{HOST.name}'s bindings ({binding})"


# ---- the passes --------------------------------------------------------------


def trivially_copyable(ast) -> set:
    return {node["name"] for node, _ in walk(ast)
            if node.get("kind") == "CXXRecordDecl"
            and node.get("definitionData", {}).get("isTriviallyCopyable")}


COPY_FROM_CONSTANT = re.compile(
    r"candidate constructor \(the implicit (copy|move) constructor\) not viable: cannot bind "
    r"reference in address space '__constant' to object in address space '__generic' in 1st argument")
HARMLESS_NOTE = re.compile(
    r"in instantiation of .* requested here|expanded from macro .*|passing argument to "
    r"parameter .* here|candidate constructor \(the implicit default constructor\) not "
    r"viable: requires 0 arguments, but 1 was provided")


def copies_out_of_constant(group, copyable: set) -> bool:
    """Whether a diagnostic is clang refusing to copy a trivially copyable
    struct out of __constant memory (which Metal does)."""
    line, notes = group
    m = re.search(r": error: no matching constructor for initialization of "
                  r"'(?:__private )?(?:[\w:]+::)?(\w+)'$", line)
    return (m is not None and m.group(1) in copyable
            and any(COPY_FROM_CONSTANT.fullmatch(n) for n in notes)
            and all(COPY_FROM_CONSTANT.fullmatch(n) or HARMLESS_NOTE.fullmatch(n) for n in notes))


def check_source(source: Path, metal_version: int) -> list:
    rel = source.relative_to(ROOT)
    first = run(compile_command(source, metal_version, constant_as_device=True), cwd=ROOT)
    groups = diagnostics(first.stderr)
    if first.returncode != 0 or groups:
        raise CheckFailed(f"{rel} under Metal's rules (pass 1):\n"
                          + (summary(groups) or first.stderr.strip()))
    ast = json.loads(first.stdout)
    resolve_locations(ast)

    functions = {node["id"]: node for node, _ in walk(ast)
                 if node.get("kind") in FUNCTION_KINDS and has_body(node)}
    cycles = recursion(functions)
    if cycles:
        raise CheckFailed(f"{rel}: recursion (Metal has no call stack for it):\n" + "\n".join(
            "  " + " -> ".join(f"{functions[f]['name']} ({where(functions[f])})" for f in c)
            for c in cycles))
    kernels, bindings = check_buffers(ast, source)

    second = run(compile_command(source, metal_version, constant_as_device=False), cwd=ROOT)
    copyable = trivially_copyable(ast)
    groups = diagnostics(second.stderr)
    accepted = [g for g in groups if copies_out_of_constant(g, copyable)]
    rejected = [g for g in groups if g not in accepted]
    if rejected or (second.returncode != 0 and not accepted):
        raise CheckFailed(f"{rel} with constant memory as __constant (pass 2):\n"
                          + (summary(rejected) or second.stderr.strip()))
    places = len({line for line, _ in accepted})
    return [
        f"metal shader check: {rel} as Metal {metal_version // 100}.{metal_version % 100 // 10}: "
        f"distinct device/constant/threadgroup/thread address spaces, no standard library, "
        f"no double, no function pointers, no VLAs, no mutable program-scope or static "
        f"variables, -Wall -Wextra -Werror: clean",
        f"metal shader check: {len(functions)} functions without recursion; {kernels} kernel "
        f"functions "
        f"whose buffers match {bindings}; copies of trivially "
        f"copyable structs out of constant memory accepted in {places} places "
        f"({len(accepted)} instantiations; Metal allows them)",
    ]


def check():
    tool(CXX)
    target = deployment_target()
    major = target.split(".")[0]
    if major not in METAL_VERSIONS:
        raise CheckFailed(f"no known Metal language version for macOS {target}")
    sources = sorted((ROOT / "kernels").glob("*.metal"))
    if not sources:
        raise CheckFailed("no kernels/*.metal")
    lines = []
    for source in sources:
        lines += check_source(source, METAL_VERSIONS[major])
    return lines


if __name__ == "__main__":
    main(check)
