"""`actfast bench`: end to end on tiny sizes, the JSON fields, --plot, --markdown, and the
correctness gate that keeps a wrong implementation out of the race; the same for
`--scenario train` (the MLP step, scikit-learn restored) and `--scenario loop`."""

import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import actfast
from actfast import _bench
from actfast._bench import loop, train
from actfast.__main__ import COMMANDS, build_parser, main, register

# Tiny and fast: two sizes, 2 samples of >= 0.2 ms, no torch (its import alone is slow).
TINY = ["--sizes", "64,3000", "--samples", "2", "--min-batch-ms", "0.2", "--no-torch", "--no-progress"]

RECORD_FIELDS = {"op", "kind", "dtype", "size", "shape", "impl", "median_s", "q1_s", "q3_s", "min_s", "n_samples",
                 "number", "preallocated", "peak_bytes", "correct", "max_abs_err", "error"}
META_FIELDS = {"version", "started", "command", "cpu", "cores", "platform", "isa", "threads", "versions",
               "blas", "openblas_env", "loadavg_start", "loadavg_end", "elapsed_s", "settings",
               "tolerances", "config"}


def _args(*extra):
    return build_parser().parse_args(["bench", *TINY, *extra])


def test_every_op_runs_end_to_end_and_is_correct(tmp_path):
    """Quick mode over every activation on tiny sizes: every actfast and NumPy result
    passes the float64 check and gets timed."""
    out = io.StringIO()
    res = _bench.run(_args("--no-dense", "--sizes", "1000"), stream=out)
    text = out.getvalue()
    labels = {(r["op"], r["kind"]) for r in res["records"]}
    assert labels == set(_bench.OPS)
    for r in res["records"]:
        if r["impl"] in ("actfast", "numpy"):
            assert r["correct"], r
            assert r["median_s"] > 0 and r["q1_s"] <= r["median_s"] <= r["q3_s"]
    assert "== float32" in text and "== float64" in text
    assert "gelu_grad" in text and "vs numpy" in text


def test_python_dash_m_entry_point(tmp_path):
    path = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "actfast", "bench", *TINY, "--ops", "relu,sigmoid", "--dtype", "float32",
         "--json", str(path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        # the directory this actfast was imported from (an in-place build or site-packages)
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [os.path.dirname(os.path.dirname(actfast.__file__)), os.environ.get("PYTHONPATH", "")])},
    )
    assert proc.returncode == 0, proc.stderr
    assert "relu_grad" in proc.stdout and "sigmoid" in proc.stdout
    assert "instruction set: " + actfast._dispatch.isa in proc.stdout
    assert path.exists()


def test_json_has_the_documented_fields(tmp_path):
    path = tmp_path / "bench.json"
    assert main(["bench", *TINY, "--ops", "relu,gelu,softmax", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())   # strict JSON: no NaN / Infinity
    assert set(doc) == {"meta", "records"}
    assert META_FIELDS <= set(doc["meta"])
    assert doc["meta"]["isa"] == actfast._dispatch.isa
    assert doc["meta"]["threads"] == actfast.get_num_threads()
    assert {"actfast", "numpy", "scipy"} <= set(doc["meta"]["versions"])
    recs = doc["records"]
    # (3 ops x 2 kinds + relu's and softmax's gradients from the output) x 2 dtypes x 2 sizes,
    # each with at least actfast and numpy
    assert len({(r["op"], r["kind"], r["dtype"], r["size"]) for r in recs}) == 32
    for r in recs:
        assert RECORD_FIELDS <= set(r), set(RECORD_FIELDS) - set(r)
        assert r["kind"] in ("forward", "grad", "grad_from_output", "dense")
        assert r["dtype"] in ("float32", "float64")
        assert isinstance(r["shape"], list) and int(np.prod(r["shape"])) == r["size"]
        if r["correct"]:
            assert r["n_samples"] == 2 and r["number"] >= 1
            assert r["min_s"] <= r["q1_s"] <= r["median_s"] <= r["q3_s"]
            assert r["max_abs_err"] is not None
    af = [r for r in recs if r["impl"] == "actfast"]
    assert all(r["correct"] and r["preallocated"] for r in af)
    # tracemalloc sees NumPy's buffers: an allocating actfast call needs about its output
    big = [r for r in af if r["size"] == 3000 and r["op"] == "relu"]
    for r in big:
        item = np.dtype(r["dtype"]).itemsize
        assert 3000 * item <= r["peak_bytes"] <= 3000 * item + 4096


def test_load_rerenders_a_saved_run(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["bench", *TINY, "--ops", "relu", "--dtype", "float32", "--json", str(path)]) == 0
    capsys.readouterr()
    assert main(["bench", "--load", str(path), "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "| `relu_grad` | 3,000 |" in text


def test_markdown_prints_a_table(capsys):
    assert main(["bench", *TINY, "--ops", "relu,tanh", "--dtype", "float64", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "| op | size | actfast | numpy" in text
    assert "|---|---:|" in text
    assert "| `relu` | 64 |" in text and "| `tanh_grad` | 3,000 |" in text
    assert "```text" in text and "cpu:" in text


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedup.png"
    assert main(["bench", *TINY, "--ops", "relu,sigmoid", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import fails
    with pytest.raises(SystemExit, match="matplotlib"):
        _bench.plot({"meta": {}, "records": []}, str(tmp_path / "x.png"))


def _broken_relu(case):
    """relu that forgets the clamp (returns x): must be caught, never timed."""
    if case.op != "relu" or case.kind != "forward":
        return None
    x = case.x
    return _bench.Prepared(lambda: x.copy(), lambda: x.copy(), False)


def _float64_sigmoid(case):
    """A right value in the wrong dtype (float64 for float32 input) is flagged too."""
    if case.op != "sigmoid" or case.kind != "forward":
        return None
    x64 = case.x.astype(np.float64)
    f = lambda: 1 / (1 + np.exp(-x64))  # noqa: E731
    return _bench.Prepared(f, f, False)


def _raises(case):
    def f():
        raise RuntimeError("boom")
    return _bench.Prepared(f, f, False)


def test_a_wrong_implementation_is_caught_and_excluded():
    impls = _bench.default_impls(no_torch=True, no_numexpr=True) + [
        _bench.Impl("broken", _broken_relu), _bench.Impl("upcast", _float64_sigmoid),
        _bench.Impl("raises", _raises)]
    out = io.StringIO()
    res = _bench.run(_args("--ops", "relu,sigmoid", "--dtype", "float32"), impls=impls, stream=out)
    recs = res["records"]
    broken = [r for r in recs if r["impl"] == "broken"]
    assert broken and all(not r["correct"] and r["median_s"] is None and r["n_samples"] == 0 for r in broken)
    assert all("wrong result" in r["error"] and r["max_abs_err"] > 0.1 for r in broken)
    upcast = [r for r in recs if r["impl"] == "upcast"]
    assert upcast and all(not r["correct"] and "dtype" in r["error"] for r in upcast)
    raised = [r for r in recs if r["impl"] == "raises"]
    assert raised and all(not r["correct"] and "boom" in r["error"] for r in raised)
    # the others are unaffected
    assert all(r["correct"] for r in recs if r["impl"] in ("actfast", "numpy"))
    text = out.getvalue()
    assert "WRONG" in text and "EXCLUDED from the race" in text and "broken relu float32" in text


def test_check_tolerances():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1000) * 3
    tol = _bench.TOLERANCES["float32"]
    ok, err, _ = _bench.check(ref.astype(np.float32), ref, np.dtype(np.float32), tol)   # rounding only
    assert ok and 0 < err < 1e-6
    bad = (ref * (1 + 1e-3)).astype(np.float32)                                           # 0.1 % off
    assert not _bench.check(bad, ref, np.dtype(np.float32), tol)[0]
    nan = ref.astype(np.float32)
    nan[5] = np.nan
    assert not _bench.check(nan, ref, np.dtype(np.float32), tol)[0]
    # float64 demands far more: a float32-accurate result is wrong there
    assert not _bench.check(ref.astype(np.float32).astype(np.float64), ref, np.dtype(np.float64),
                            _bench.TOLERANCES["float64"])[0]


def test_dense_is_raced_when_actfast_has_it(monkeypatch):
    def dense(x, w, b, activation="relu"):
        h = x @ w + b
        if activation == "relu":
            return np.maximum(h, 0)
        if activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-h)) + 0.01    # deliberately wrong
        return actfast.gelu(h)
    monkeypatch.setattr(actfast, "dense", dense, raising=False)
    out = io.StringIO()
    res = _bench.run(_args("--ops", "relu,dense", "--kind", "forward", "--dtype", "float32",
                           "--dense-shapes", "8x32x16"), stream=out)
    assert "dense+relu 8x32x16" in out.getvalue()
    if os.environ.get("OPENBLAS_CORETYPE"):
        assert "OPENBLAS_CORETYPE" in out.getvalue()      # the header line on slowed BLAS
    dense_recs = [r for r in res["records"] if r["kind"] == "dense"]
    assert {r["op"] for r in dense_recs} == set(_bench.DENSE_ACTIVATIONS)
    assert all(r["shape"] == [8, 32, 16] and r["size"] == 8 * 16 for r in dense_recs)
    by = {(r["op"], r["impl"]): r for r in dense_recs}
    assert by[("relu", "actfast")]["correct"] and by[("gelu", "actfast")]["correct"]
    assert not by[("sigmoid", "actfast")]["correct"]
    assert all(by[(a, "numpy")]["correct"] for a in _bench.DENSE_ACTIVATIONS)


def test_no_dense_without_actfast_dense(monkeypatch):
    monkeypatch.delattr(actfast, "dense", raising=False)
    res = _bench.run(_args("--ops", "relu,dense", "--kind", "forward", "--dtype", "float32"),
                     stream=io.StringIO())
    assert not [r for r in res["records"] if r["kind"] == "dense"]


def test_progress_goes_to_stderr():
    err = io.StringIO()
    p = _bench.Progress(20, stream=err)
    for i in range(20):
        p.step(f"op {i}")
    lines = err.getvalue().splitlines()
    assert 1 <= len(lines) <= 12 and "20/20" in lines[-1] and lines[-1].startswith("[##")


def test_bad_arguments():
    with pytest.raises(SystemExit):
        main(["bench", "--ops", "relu,nosuchop", "--no-progress"])
    with pytest.raises(SystemExit):
        main(["bench", "--dtype", "float16"])
    with pytest.raises(SystemExit):
        main(["bench", "--quick", "--full"])


def test_command_registry(capsys):
    assert "bench" in COMMANDS
    assert main([]) == 2                     # no command: help
    assert "bench" in capsys.readouterr().out
    mod = types.ModuleType("_actfast_hello_cmd")
    mod.add_arguments = lambda p: p.add_argument("--name")
    mod.run = lambda args: print("hello", args.name) or 7
    sys.modules[mod.__name__] = mod
    register("hello", "say hello", "_actfast_hello_cmd:add_arguments", "_actfast_hello_cmd:run")
    try:
        assert main(["hello", "--name", "x"]) == 7
        assert capsys.readouterr().out == "hello x\n"
    finally:
        COMMANDS.pop("hello")
        del sys.modules[mod.__name__]


def test_threads_option_is_used_and_restored():
    before = actfast.get_num_threads()
    res = _bench.run(_args("--ops", "relu", "--dtype", "float32", "--threads", "1"), stream=io.StringIO())
    assert res["meta"]["threads"] == 1
    assert actfast.get_num_threads() == before


def test_torch_and_numexpr_agree_with_the_reference_in_float32():
    """The optional peers are wired right: every op they have passes the check."""
    impls = []
    try:
        import torch  # noqa: F401
        impls.append(_bench.Impl("torch", _bench._prep_torch))
    except ImportError:
        pass
    try:
        import numexpr  # noqa: F401
        impls.append(_bench.Impl("numexpr", _bench._prep_numexpr))
    except ImportError:
        pass
    if not impls:
        pytest.skip("neither torch nor numexpr is installed")
    args = build_parser().parse_args(["bench", "--sizes", "2000", "--samples", "1", "--min-batch-ms", "0.05",
                                      "--dtype", "float32", "--no-progress", "--no-dense"])
    res = _bench.run(args, impls=impls, stream=io.StringIO())
    assert res["records"]
    bad = [(r["impl"], r["op"], r["kind"], r["error"]) for r in res["records"] if not r["correct"]]
    assert not bad


# --------------------------------------------------------------------------------------
# Gradients from the saved output (kind grad_from_output)
# --------------------------------------------------------------------------------------

# PyTorch's backward ops that take the saved output, as autograd runs them on the result
# (relu; the in-place elu_ / selu_ / celu_ / leaky_relu_ for is_result=True).
TORCH_FROM_OUTPUT = {"sigmoid": "sigmoid_backward", "tanh": "tanh_backward", "softmax": "_softmax_backward_data",
                     "log_softmax": "_log_softmax_backward_data", "relu": "threshold_backward",
                     "leaky_relu": "leaky_relu_backward", "elu": "elu_backward", "selu": "elu_backward",
                     "celu": "elu_backward"}
OUTPUT_BASED = ("sigmoid", "tanh", "softmax", "log_softmax")   # torch's backward of these takes only y


def test_every_gradient_from_the_output_has_a_row():
    """A row for each NAME_grad_from_output of actfast whose op the benchmark has."""
    have = {name for name, kind in _bench.OPS if kind == "grad_from_output"}
    api = {n[:-len("_grad_from_output")] for n in dir(actfast) if n.endswith("_grad_from_output")}
    assert have == api & set(_bench.OP_NAMES)
    assert set(OUTPUT_BASED) <= have and {"relu", "elu", "selu", "celu", "leaky_relu"} <= have
    assert all(_bench.OPS[(n, "grad_from_output")].axis == (n in ("softmax", "log_softmax")) for n in have)


def test_from_output_inputs_are_the_rounded_forward():
    """The case's first input is y = f(x) (the float64 forward rounded to the dtype)."""
    for name in ("sigmoid", "log_softmax"):
        spec = _bench.OPS[(name, "grad_from_output")]
        shape, y, dy = _bench.case_inputs(spec, np.dtype(np.float32), 3000)
        _, x, dy0 = _bench.make_inputs("grad", np.dtype(np.float32), 3000, spec.axis)
        assert y.dtype == np.float32 and y.shape == shape == dy.shape and np.array_equal(dy, dy0)
        want = _bench.reference_for(_bench.OPS[(name, "forward")], x, None).astype(np.float32)
        assert np.array_equal(y, want) and not np.array_equal(y, x)


def _from_x_formula_on_y(case):
    """actfast's gradient from x given y (what the rows compared before): must be caught."""
    if case.kind != "grad_from_output":
        return None
    f = getattr(actfast, case.op + "_grad")
    y, dy = case.x, case.dy
    return _bench.Prepared(lambda: f(y, dy), lambda: f(y, dy), False)


def test_from_output_rows_are_checked_and_timed(capsys):
    impls = _bench.default_impls(no_torch=True, no_numexpr=True) + [_bench.Impl("from-x", _from_x_formula_on_y)]
    ops = "sigmoid,tanh,softmax,log_softmax,relu,elu"
    res = _bench.run(_args("--ops", ops, "--kind", "grad_from_output"), impls=impls, stream=io.StringIO())
    recs = res["records"]
    assert {(r["op"], r["kind"]) for r in recs} == {(o, "grad_from_output") for o in ops.split(",")}
    for r in recs:
        if r["impl"] in ("actfast", "numpy"):
            assert r["correct"] and r["median_s"] > 0 and r["max_abs_err"] is not None, r
    # The from-x formula evaluated on y is caught, and not timed, but where it happens to
    # agree: relu (y > 0 iff x > 0) and log_softmax (softmax(log_softmax(x)) = softmax(x)).
    wrong = {r["op"] for r in recs if r["impl"] == "from-x" and not r["correct"] and r["median_s"] is None}
    assert wrong == {"sigmoid", "tanh", "softmax", "elu"}
    assert main(["bench", *TINY, "--ops", "sigmoid", "--dtype", "float32", "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "| `sigmoid_grad_from_output` | 3,000 |" in text and "| `sigmoid_grad` | 3,000 |" in text


def test_kind_selects_the_gradient_from_the_output():
    def kinds(*extra):
        res = _bench.run(_args("--ops", "relu,gelu", "--dtype", "float32", "--sizes", "64", *extra),
                         stream=io.StringIO())
        return {(r["op"], r["kind"]) for r in res["records"]}
    assert kinds("--kind", "grad_from_output") == {("relu", "grad_from_output")}   # gelu has none
    every = {("relu", "forward"), ("relu", "grad"), ("relu", "grad_from_output"), ("gelu", "forward"),
             ("gelu", "grad")}
    assert kinds() == kinds("--kind", "both") == every


def test_torch_specs_of_the_output_based_backwards():
    """torch's backward ops that take the output are paired with the from-output rows (with
    y, never x), and the from-x rows of the output-only ones carry no torch op."""
    for name in OUTPUT_BASED:
        assert _bench.OPS[(name, "grad")].torch is None, name
    for (name, kind), spec in _bench.OPS.items():
        if kind != "grad_from_output":
            continue
        if name not in TORCH_FROM_OUTPUT:
            assert spec.torch is None, name
            continue
        op, args = spec.torch[0], spec.torch[1]
        assert op == TORCH_FROM_OUTPUT[name] and "y" in args and "x" not in args, (name, spec.torch)
        flag = {"elu_backward": 4, "leaky_relu_backward": 3}.get(op)   # is_result / self_is_result
        assert flag is None or args[flag] is True, (name, spec.torch)
    for (name, kind), spec in _bench.OPS.items():   # no from-x row hands torch the output
        if kind != "grad_from_output" and spec.torch and len(spec.torch) > 1:
            assert "y" not in spec.torch[1] and True not in [a is True for a in spec.torch[1]], (name, kind)


def test_torch_races_the_from_output_rows_only():
    pytest.importorskip("torch")
    impls = _bench.default_impls(no_numexpr=True)
    assert "torch" in [i.name for i in impls]
    args = build_parser().parse_args(["bench", "--sizes", "2000", "--samples", "1", "--min-batch-ms", "0.05",
                                      "--dtype", "float32", "--no-progress", "--no-dense",
                                      "--ops", ",".join([*OUTPUT_BASED, "relu", "elu"])])
    out = io.StringIO()
    res = _bench.run(args, impls=impls, stream=out)
    torch_recs = {(r["op"], r["kind"]): r for r in res["records"] if r["impl"] == "torch"}
    for name in (*OUTPUT_BASED, "relu", "elu"):
        r = torch_recs[(name, "grad_from_output")]
        assert r["correct"] and r["median_s"] > 0, r
        assert torch_recs[(name, "forward")]["correct"]
    assert not [k for k in torch_recs if k[1] == "grad" and k[0] in OUTPUT_BASED]
    assert torch_recs[("relu", "grad")]["correct"] and torch_recs[("elu", "grad")]["correct"]   # from x
    md = _bench.format_markdown(res)
    cols = [c.strip() for c in next(line for line in md.splitlines() if line.startswith("| op |")).split("|")]
    rows = {c[1].strip("` "): dict(zip(cols, (x.strip() for x in c)))
            for c in (line.split("|") for line in md.splitlines() if "| 2,000 |" in line)}
    for name in OUTPUT_BASED:
        assert rows[name + "_grad"]["torch"] == rows[name + "_grad"]["actfast vs torch"] == "-"
        assert rows[name + "_grad_from_output"]["torch"] != "-"
        assert rows[name + "_grad_from_output"]["actfast vs torch"].endswith("x")
    assert rows["elu_grad"]["torch"] != "-"
    note = "torch has no backward from x for sigmoid, tanh, softmax, log_softmax"
    assert note in md and note in out.getvalue()


# --------------------------------------------------------------------------------------
# --scenario train and --scenario loop
# --------------------------------------------------------------------------------------

TRAIN_TINY = ["bench", "--scenario", "train", "--batches", "2", "--activations", "relu", "--rounds", "1",
              "--min-batch-ms", "0.1", "--no-torch", "--no-sklearn", "--no-progress"]
LOOP_TINY = ["bench", "--scenario", "loop", "--ops", "relu,sigmoid", "--shape", "8,16", "--rounds", "1",
             "--min-batch-ms", "0.1", "--no-progress"]


def test_train_scenario_end_to_end(tmp_path, capsys):
    path = tmp_path / "train.json"
    assert main([*TRAIN_TINY, "--activations", "relu,gelu", "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "MLP 784-512-512-10 float32, one SGD step" in text and "numpy+actfast / numpy" in text
    assert "every way's update matched the float64 reference step" in text
    doc = json.loads(path.read_text())
    assert doc["meta"]["scenario"] == "train" and doc["meta"]["settings"]["batches"] == [2]
    recs = doc["records"]
    assert {(r["activation"], r["impl"]) for r in recs} == {
        (a, i) for a in ("relu", "gelu") for i in ("numpy", "numpy+actfast", "actfast.Dense")}
    for r in recs:
        assert r["part"] == "step" and r["batch"] == 2 and r["correct"], r
        assert r["median_s"] > 0 and r["number"] >= train.MIN_STEPS and r["n_samples"] == 1
        assert r["max_rel_err"] < 1e-4


def test_train_check_catches_a_wrong_way():
    """A backward that forgets relu's mask, and one whose gradient is 1 % off, are flagged
    and not timed; one that raises is reported; the others are unaffected."""
    def wrong(scale=1.0, mask=True):
        def build(problem, lr):
            grad = train.OPS[(problem.activation, "grad")].numpy
            return train.NumpyMLP(problem, lr, actfast.relu,
                                  (lambda z, dy: scale * grad(z, dy, None)) if mask else (lambda z, dy: dy),
                                  actfast.softmax)
        return build

    def raises(problem, lr):
        raise RuntimeError("boom")

    ways = train.default_ways(no_torch=True) + [
        train.Way("no-mask", wrong(mask=False)), train.Way("one-percent", wrong(scale=1.01)),
        train.Way("raises", raises)]
    out = io.StringIO()
    res = train.run(build_parser().parse_args(TRAIN_TINY), ways=ways, stream=out)
    by = {r["impl"]: r for r in res["records"]}
    for name in ("no-mask", "one-percent"):
        assert not by[name]["correct"] and by[name]["median_s"] is None and by[name]["n_samples"] == 0
        assert by[name]["error"].startswith("wrong result"), by[name]
    assert not by["raises"]["correct"] and "boom" in by["raises"]["error"]
    assert all(by[n]["correct"] and by[n]["median_s"] > 0 for n in ("numpy", "numpy+actfast", "actfast.Dense"))
    text = out.getvalue()
    assert "WRONG" in text and "EXCLUDED" in text and "no-mask relu batch 2" in text


def test_train_ways_agree_with_torch():
    pytest.importorskip("torch")
    for act in ("gelu", "sigmoid"):
        problem = train.make_problem(act, 3)
        ref = train.reference_updates(problem)
        for way in train.default_ways():
            ok, err, why = train.check_step(way.build(problem, train.CHECK_LR), problem, ref)
            assert ok, (way.name, act, why)


def test_sklearn_part_restores_sklearn():
    pytest.importorskip("sklearn")
    from sklearn.neural_network import _base
    before = dict(_base.ACTIVATIONS), dict(_base.DERIVATIVES)
    recs = train.measure_sklearn(
        ["relu", "tanh"], rounds=1,
        data={"n_samples": 300, "n_features": 16, "n_informative": 8, "n_classes": 3},
        model={"hidden_layer_sizes": (8,), "batch_size": 100, "max_iter": 1})
    assert _base.ACTIVATIONS == before[0] and _base.DERIVATIVES == before[1]
    assert all(_base.ACTIVATIONS[k] is v for k, v in before[0].items())
    assert all(_base.DERIVATIVES[k] is v for k, v in before[1].items())
    by = {(r["activation"], r["impl"]): r for r in recs}
    assert set(by) == {(a, i) for a in ("relu", "tanh") for i in ("sklearn", "sklearn+actfast")}
    for a in ("relu", "tanh"):
        plain, ours = by[(a, "sklearn")], by[(a, "sklearn+actfast")]
        assert plain["correct"] and ours["correct"] and ours["median_s"] > 0
        assert abs(plain["train_accuracy"] - ours["train_accuracy"]) <= 0.02
        assert f"ACTIVATIONS[{a!r}]" in ours["patched"]


def test_loop_scenario_end_to_end(tmp_path, capsys):
    path = tmp_path / "loop.json"
    assert main([*LOOP_TINY, "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "right after np.matmul((256x1024) @ (1024x1024) float32" in text and "sigmoid_grad" in text
    doc = json.loads(path.read_text())
    assert doc["meta"]["scenario"] == "loop" and doc["meta"]["settings"]["shape"] == [8, 16]
    recs = doc["records"]
    mm = [r for r in recs if r["op"] == "matmul"]
    assert len(mm) == 1 and mm[0]["median_s"] > 0
    ops = [r for r in recs if r["op"] != "matmul"]
    assert {(r["op"], r["kind"], r["impl"]) for r in ops} == {
        (o, k, i) for o in ("relu", "sigmoid") for k in ("forward", "grad", "grad_from_output")
        for i in ("actfast", "numpy")}
    assert "sigmoid_grad_from_output" in text
    for r in ops:
        assert r["correct"] and r["shape"] == [8, 16] and r["dtype"] == "float32"
        assert r["op_cost_s"] == pytest.approx(r["median_s"] - mm[0]["median_s"])


def test_loop_excludes_a_wrong_implementation():
    impls = loop.default_impls() + [_bench.Impl("broken", _broken_relu)]
    out = io.StringIO()
    res = _bench.run(build_parser().parse_args([*LOOP_TINY, "--kind", "forward"]), impls=impls, stream=out)
    broken = [r for r in res["records"] if r["impl"] == "broken"]
    assert len(broken) == 1 and not broken[0]["correct"] and broken[0]["median_s"] is None
    assert broken[0]["op_cost_s"] is None
    assert "EXCLUDED" in out.getvalue()


def test_new_scenarios_rerender_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for args in (TRAIN_TINY, LOOP_TINY):
        path = tmp_path / "r.json"
        assert main([*args, "--json", str(path)]) == 0
        capsys.readouterr()
        png = tmp_path / "r.png"
        assert main(["bench", "--load", str(path), "--markdown", "--plot", str(png)]) == 0
        text = capsys.readouterr().out
        assert "| relu |" in text or "| `relu` |" in text
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_new_scenarios_bad_arguments():
    with pytest.raises(SystemExit):
        main(["bench", "--scenario", "nosuch"])
    with pytest.raises(SystemExit):
        main([*TRAIN_TINY, "--activations", "nosuch"])
    with pytest.raises(SystemExit):
        main([*TRAIN_TINY, "--batches", "0"])
    with pytest.raises(SystemExit):
        main([*LOOP_TINY, "--shape", "8,abc"])
