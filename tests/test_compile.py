"""pipeline.engine.compiled: the compiled forward and loss against the eager engine, the fallback
to eager, the deterministic 'auto' rule, and compiled surfaces through resume and fingerprint.

Tests that compile are marked slow (each model's first compile takes 10-40 s on two cores);
they use few, tiny inputs: the compile cost does not depend on the number of samples.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.directions import random_directions
from pipeline.engine import EvalConfig, evaluate_points
from pipeline.engine.compiled import CompileChoice, compile_choice, compiler_missing
from pipeline.engine.points import compile_decision
from pipeline.engine.tuning import ModelProfile
from pipeline.errors import ParameterError
from pipeline.models import build_model
from pipeline.objective import LossSpec

from .user_models import Tokens

COORDS = np.array([[0.0, 0.0], [0.3, -0.2], [-0.6, 0.5]])
SHAPES = {"digits-cnn": (1, 8, 8), "lenet": (1, 28, 28), "resnet20": (3, 32, 32), "vgg9": (3, 32, 32)}


def _both(model, data, *, coords=COORDS, loss=None, **config):
    """(eager, compiled) results of the same call."""
    d = random_directions(model, seed=0)
    eager = evaluate_points(model, d, coords, data, EvalConfig(device="cpu", compile="off", **config), loss=loss,
                            progress=False)
    compiled = evaluate_points(model, d, coords, data, EvalConfig(device="cpu", compile="on", **config), loss=loss,
                               progress=False)
    return eager, compiled


def _close(eager, compiled, rel=1e-5):
    assert compiled.plan.compiled and not eager.plan.compiled, compiled.notes
    np.testing.assert_allclose(compiled.loss, eager.loss, rtol=rel, atol=0)
    if eager.accuracy is not None:
        np.testing.assert_array_equal(compiled.accuracy, eager.accuracy)
    for name, values in eager.metrics.items():
        np.testing.assert_allclose(compiled.metrics[name], values, rtol=rel, atol=0)


def _images(name, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPES[name], generator=g), torch.randint(0, 10, (n,), generator=g)


# -- compiled equals eager ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHAPES))
def test_compiled_equals_eager_on_the_zoo(name):
    """One point per forward, a batch ramp (2, 4, 8 samples) and a last shorter batch, all in one
    dynamic graph; BatchNorm (resnet20, vgg9) in eval mode."""
    torch.manual_seed(0)
    model = build_model(name)
    model.eval()
    if name in ("resnet20", "vgg9"):  # running statistics that are not the initial ones
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    eager, compiled = _both(model, _images(name), batch_size=16)
    assert compiled.plan.points_per_batch == 1 and compiled.plan.batch_size == 16
    _close(eager, compiled)
    assert model.training is False and all(not p.requires_grad or p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_several_points_per_forward_compiled_equal_eager_and_are_independent():
    """Vmapped lanes inside the graph: values equal eager's, and a point's value does not depend on
    the group it ran in (other companions, other positions, a padded last group)."""
    torch.manual_seed(0)
    model = build_model("digits-cnn").eval()
    data = _images("digits-cnn", n=48)
    coords = np.random.default_rng(0).uniform(-1, 1, (7, 2))
    eager, compiled = _both(model, data, coords=coords, points_per_batch=4)
    assert compiled.plan.points_per_batch == 4, compiled.notes
    _close(eager, compiled)
    d = random_directions(model, seed=0)
    alone = [evaluate_points(model, d, coords[i:i + 1], data, EvalConfig(device="cpu", compile="on",
                                                                         points_per_batch=4),
                             progress=False).loss[0] for i in (6, 2)]
    assert alone == [compiled.loss[6], compiled.loss[2]]
    shuffled = evaluate_points(model, d, coords[::-1], data, EvalConfig(device="cpu", compile="on", points_per_batch=4),
                               progress=False)
    assert np.array_equal(shuffled.loss[::-1], compiled.loss)


def test_points_of_a_volume_compiled_equal_eager():
    """Three directions: the compiled graph takes the weights of (alpha, beta, gamma) points, one
    and several per forward, within 1e-5 of eager."""
    torch.manual_seed(0)
    model = build_model("digits-cnn").eval()
    data = _images("digits-cnn", n=48)
    d = random_directions(model, seed=0, ndim=3)
    coords = np.random.default_rng(1).uniform(-1, 1, (5, 3))
    for lanes in (1, 4):
        eager, compiled = (evaluate_points(model, d, coords, data, EvalConfig(device="cpu", compile=c,
                                                                              points_per_batch=lanes), progress=False)
                           for c in ("off", "on"))
        assert compiled.plan.compiled and compiled.plan.points_per_batch == lanes, compiled.notes
        np.testing.assert_allclose(compiled.loss, eager.loss, rtol=1e-5)


@pytest.mark.slow
def test_user_model_with_integer_tokens():
    """A user model on integer inputs, token cross-entropy with ignored entries (the count comes
    from the targets, outside the graph)."""
    torch.manual_seed(0)
    model = Tokens(vocab=13)
    x = torch.randint(0, 13, (36, 7))
    y = torch.randint(0, 13, (36, 7))
    y[::5, 2] = -1
    spec = LossSpec("cross_entropy", {"ignore_index": -1})
    eager, compiled = _both(model, (x, y), loss=spec, batch_size=16)
    _close(eager, compiled)
    with torch.no_grad():
        want = F.cross_entropy(model(x).reshape(-1, 13), y.reshape(-1), ignore_index=-1).item()
    assert compiled.loss[0] == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
def test_user_loss_and_metric_are_compiled_with_the_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 5, generator=g)
    y = x[:, :1] - 0.5 * x[:, 1:2]
    spec = LossSpec("tests.user_losses:squared_error", metrics=("tests.user_losses:absolute_error",))
    eager, compiled = _both(model, (x, y), loss=spec, batch_size=16)
    _close(eager, compiled)
    assert set(compiled.metrics) == {"absolute_error"}


# -- fallback to eager ----------------------------------------------------------------------------

class Branches(nn.Module):
    """Python control flow on a tensor's value: fine eagerly, not one graph for dynamo."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        if float(x.abs().max()) > 100.0:
            x = x / 100.0
        return self.fc(x)


@pytest.mark.slow
def test_a_model_dynamo_cannot_capture_falls_back_to_eager_with_one_notice(caplog):
    torch.manual_seed(0)
    model = Branches()
    data = _images("digits-cnn")
    with caplog.at_level(logging.WARNING, logger="pipeline.engine.compiled"):
        eager, compiled = _both(model, data, batch_size=16)
        again = evaluate_points(model, random_directions(model, seed=0), COORDS, data,
                                EvalConfig(device="cpu", compile="on", batch_size=16), progress=False)
    assert not compiled.plan.compiled and "compiling failed" in compiled.notes[0]
    assert "failed" in compiled.plan.compile_reason
    assert np.array_equal(compiled.loss, eager.loss) and np.array_equal(again.loss, eager.loss)  # eager bits
    notices = [r for r in caplog.records if "evaluating eagerly" in r.getMessage()]
    assert len(notices) == 1, [r.getMessage() for r in caplog.records]


def test_no_cpp_compiler_falls_back_to_eager_with_one_notice(caplog):
    from torch._inductor import config as inductor_config
    from torch._inductor.cpp_builder import cpp_compiler_search

    # inductor's own patch: a monkeypatch's undo leaves the config entry unreadable to later tests
    with inductor_config.patch({"cpp.cxx": (None, "/nonexistent/bin/c++")}):
        cpp_compiler_search.cache_clear()
        try:
            assert "no C++ compiler" in compiler_missing(torch.device("cpu"))
            model = build_model("digits-cnn").eval()
            with caplog.at_level(logging.WARNING, logger="pipeline.engine.compiled"):
                eager, compiled = _both(model, _images("digits-cnn"))
            assert not compiled.plan.compiled and np.array_equal(compiled.loss, eager.loss)
            assert "no C++ compiler" in compiled.notes[0]
            assert sum("no C++ compiler" in r.getMessage() for r in caplog.records) == 1
            auto = compile_choice("auto", _profile(*LENET), 10**4, 10**4, torch.device("cpu"))
            assert not auto.compiled and "no C++ compiler" in auto.reason  # auto: eager, without a notice
        finally:
            cpp_compiler_search.cache_clear()


@pytest.mark.slow
def test_the_cold_compile_takes_the_cpus_instruction_sets_without_probe_builds(monkeypatch):
    """Inside the check, inductor takes the instruction sets the CPU reports without building its
    probe kernel (the vectorised headers) for each, and they are the ones its probes find here,
    so the kernels are the same; TORCHINDUCTOR_VEC_ISA_OK in the environment is left to decide."""
    from torch._inductor import config as inductor_config
    from torch._inductor import cpu_vec_isa

    from pipeline.engine.compiled import isa_from_cpu_flags

    monkeypatch.delenv("TORCHINDUCTOR_VEC_ISA_OK", raising=False)
    probes = []  # the instruction sets whose vectorised probe kernel was built
    build = cpu_vec_isa.VecISA.check_build

    def check_build(isa, code):
        if code == cpu_vec_isa.VecISA._avx_code:
            probes.append(str(isa))
        return build(isa, code)

    def forget():  # inductor's per-process memos of the list and of each instruction set's probes
        cpu_vec_isa.valid_vec_isa_list.cache_clear()
        for cls in vars(cpu_vec_isa).values():
            if isinstance(cls, type) and issubclass(cls, cpu_vec_isa.VecISA):
                for memo in (vars(cls).get("__bool__"), vars(cls).get("_VecISA__bool__impl")):
                    if hasattr(memo, "cache_clear"):
                        memo.cache_clear()

    monkeypatch.setattr(cpu_vec_isa.VecISA, "check_build", check_build)
    forget()
    try:
        with isa_from_cpu_flags():
            assert inductor_config.cpp.vec_isa_ok is True
            trusted = [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]
            picked = str(cpu_vec_isa.pick_vec_isa())
        assert trusted and probes == [] and inductor_config.cpp.vec_isa_ok is None
        forget()
        assert [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()] == trusted
        assert str(cpu_vec_isa.pick_vec_isa()) == picked and sorted(probes) == sorted(trusted)
    finally:
        forget()
    monkeypatch.setenv("TORCHINDUCTOR_VEC_ISA_OK", "0")
    with isa_from_cpu_flags():
        assert inductor_config.cpp.vec_isa_ok is None


def test_the_check_drops_torchs_cuda_home_notice_and_nothing_else(monkeypatch, tmp_path, caplog):
    """The C++ builds of a compile import torch.utils.cpp_extension, which warns "No CUDA runtime is
    found, using CUDA_HOME=..." on a machine with a CUDA toolkit and no GPU: inside the check that
    warning is dropped, the module's other warnings are not, and outside it is left as it was."""
    from torch.utils import cpp_extension

    from pipeline.engine.compiled import quiet_cuda_home_notice

    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    notice = logging.getLogger("torch.utils.cpp_extension")
    caplog.clear()  # the import's own notice, on a machine with a CUDA toolkit
    with caplog.at_level(logging.WARNING, logger="torch.utils.cpp_extension"):
        with quiet_cuda_home_notice():
            assert cpp_extension._find_cuda_home() == str(tmp_path)
            notice.warning("another warning")
        assert [r.getMessage() for r in caplog.records] == ["another warning"]
        cpp_extension._find_cuda_home()
    assert [r.getMessage() for r in caplog.records] == [
        "another warning", f"No CUDA runtime is found, using CUDA_HOME='{tmp_path}'"]
    assert not notice.filters


def test_batches_through_a_forward_hook_run_eagerly():
    """Data that the engine does not hold as tensors (batches through the user's forward) is never
    compiled; 'on' says so in the notes."""
    from pipeline.engine.batches import as_eval_data

    model = build_model("digits-cnn").eval()
    x, y = _images("digits-cnn")
    batches = as_eval_data([{"image": x[i:i + 8], "label": y[i:i + 8]} for i in range(0, 40, 8)],
                           forward=lambda m, b: (m(b["image"]), b["label"]))
    d = random_directions(model, seed=0)
    eager = evaluate_points(model, d, COORDS, batches, EvalConfig(device="cpu", compile="off"), progress=False)
    r = evaluate_points(model, d, COORDS, batches, EvalConfig(device="cpu", compile="on"), progress=False)
    assert r.plan.compiled is False and "source's batches" in r.notes[0]
    assert np.array_equal(r.loss, eager.loss)


# -- the auto rule ------------------------------------------------------------------------------

def _profile(flops, operators, activation_bytes):
    return ModelProfile(flops_per_sample=flops, working_set_bytes=1 << 14, activation_bytes=activation_bytes,
                        has_conv2d=True, operators=operators, output_shape=(10,))


DIGITS, LENET, RESNET20 = (1.74e5, 9, 6312), (8.33e5, 12, 26072), (8.11e7, 75, 1507368)  # tuning.profile_model


def test_auto_compiles_only_when_the_saving_exceeds_the_compile_cost():
    cpu = torch.device("cpu")
    small = compile_choice("auto", _profile(*DIGITS), 9, 64, cpu, check_available=False)
    assert not small.compiled and small.saving_s < small.cost_s and "auto: eager" in small.reason
    big = compile_choice("auto", _profile(*LENET), 31 * 31, 10000, cpu, check_available=False)
    assert big.compiled and big.saving_s > big.cost_s and "auto: compiled" in big.reason
    for n in (100, 10000):  # more points never turn a yes into a no
        flags = [compile_choice("auto", _profile(*DIGITS), p, n, cpu, check_available=False).compiled
                 for p in (1, 10, 100, 1000, 10000, 100000)]
        assert flags == sorted(flags) and flags[-1]
    assert compile_choice("off", _profile(*LENET), 10**6, 10**6, cpu).compiled is False
    # the benchmark's workloads with the measured constants (docs/compile.md): W3 (LeNet, 31 x 31,
    # 10,000 samples), W1 (the digits CNN, 41 x 41, 1797 samples) and the demo's planes (51 x 51,
    # the 1437 training digits) compile; W2 (ResNet-20, 7 x 7, 1024 samples) saves less than its compile costs
    assert big.saving_s == pytest.approx(70.1, rel=0.02) and big.cost_s == pytest.approx(6.7, rel=0.02)
    for profile, points, samples, compiled in ((DIGITS, 41 * 41, 1797, True), (DIGITS, 51 * 51, 1437, True),
                                               (RESNET20, 7 * 7, 1024, False)):
        choice = compile_choice("auto", _profile(*profile), points, samples, cpu, check_available=False)
        assert choice.compiled is compiled and (choice.saving_s > choice.cost_s) is compiled
    cuda = compile_choice("auto", _profile(*LENET), 10**6, 10**6, torch.device("cuda"), check_available=False)
    assert not cuda.compiled and "cuda" in cuda.reason  # gains not measured there: eager
    with pytest.raises(ParameterError, match="compile"):
        EvalConfig(compile="yes")


def test_auto_is_the_same_on_every_rank_and_thread_count():
    """The choice is made from shapes (FLOPs, operators, samples, points), never timed: a job's
    ranks (other thread counts) and its reruns choose alike, and it does not look at the cache."""
    torch.manual_seed(0)
    model = build_model("lenet").eval()
    data = _images("lenet", n=200)
    threads = torch.get_num_threads()
    choices = []
    try:
        for t in (1, 2, 1):
            torch.set_num_threads(t)
            choices.append(compile_decision(model, data, EvalConfig(device="cpu"), points=31 * 31))
    finally:
        torch.set_num_threads(threads)
    assert choices[0] == choices[1] == choices[2] and isinstance(choices[0], CompileChoice)


def test_a_surface_job_records_its_choice_in_the_fingerprint_and_metadata(digits_run, tmp_path):
    from pipeline.datamodel import Grid
    from pipeline.run import Run
    from pipeline.surface import SurfaceRequest
    from pipeline.surface.distribute import DistEnv
    from pipeline.surface.job import SurfaceJob

    run = Run(digits_run)
    d = random_directions(run.build_model()[0], seed=0)
    d.save(tmp_path / "d.pt")
    jobs = {}
    for mode, grid in (("auto", Grid(-1, 1, 3, -1, 1, 3)), ("auto", Grid(-1, 1, 301, -1, 1, 301)), ("on", None),
                       ("off", None)):
        grid = grid or Grid(-1, 1, 3, -1, 1, 3)
        request = SurfaceRequest(run=digits_run, directions=tmp_path / "d.pt", grid=grid, out=tmp_path / "s.vts",
                                 eval=EvalConfig(device="cpu", compile=mode))
        ranks = [SurfaceJob(request, DistEnv(rank=r, world_size=2), evaluates=False) for r in (0, 1)]
        assert ranks[0].identity == ranks[1].identity  # every rank chooses alike
        jobs[(mode, grid.nx)] = ranks[0]
    small, large = jobs[("auto", 3)], jobs[("auto", 301)]
    assert small.identity["eval"]["compile"] == "off" and large.identity["eval"]["compile"] == "on"
    assert small.meta["engine"]["compile"]["requested"] == "auto"
    assert small.meta["engine"]["compile"]["expected_saving_s"] < small.meta["engine"]["compile"]["expected_compile_s"]
    assert jobs[("on", 3)].identity != jobs[("off", 3)].identity  # compiled chunks never resume eager ones


def test_chunks_evaluated_compiled_and_eagerly_are_never_assembled_together():
    from pipeline.datamodel import Grid
    from pipeline.errors import LossvistaError
    from pipeline.surface.assemble import assemble_surface
    from pipeline.surface.compute import plan_for
    from pipeline.surface.store import MemoryStore

    grid = Grid(-1, 1, 3, -1, 1, 3)
    plan = plan_for(grid, 3)
    store = MemoryStore()
    coords = grid.coords()
    for c in range(plan.n_chunks):
        s, e = plan.bounds(c)
        store.write_chunk(c, s, e, coords[s:e], {"loss": np.ones(e - s), "bounded": np.zeros(e - s, bool),
                                                 "samples": np.ones(e - s, np.int64)}, "",
                          {"plan": {"compiled": c != 1}})
    with pytest.raises(LossvistaError, match=r"chunks 0, 2 were evaluated compiled and chunks 1 eagerly"):
        assemble_surface(store, plan, grid, "", {})


# -- a compiled surface through the command line ----------------------------------------------------

@pytest.mark.slow
def test_compiled_surface_resumes_bitwise_and_agrees_with_eager(digits_run, tmp_path):
    """Half the chunks in one process (a shard), the rest after a rerun in another: bitwise the
    uninterrupted compiled surface, within 1e-5 of the eager one, and recorded as compiled."""
    from pipeline.vtkio import read_surface

    from .conftest import run_cli

    run = digits_run
    d = random_directions(torch.load(sorted((run / "checkpoints").glob("epoch_*.pt"))[-1], weights_only=True), seed=3)
    d.save(tmp_path / "d.pt")
    args = ["surface", "--run", str(run), "--directions", str(tmp_path / "d.pt"), "--x", "-1:1:7", "--y", "-1:1:5",
            "--chunk-size", "4", "--device", "cpu", "--batch-size", "128"]
    env = {"OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    whole = run_cli(*args, "--compile", "on", "--out", str(tmp_path / "whole.vts"), env=env)
    assert whole.returncode == 0, whole.stderr
    first = run_cli(*args, "--compile", "on", "--shard", "0/2", "--out", str(tmp_path / "r.vts"), env=env)
    assert first.returncode == 0, first.stderr
    refused = run_cli(*args, "--compile", "off", "--out", str(tmp_path / "r.vts"), env=env)
    assert refused.returncode != 0 and "compile" in refused.stderr and "--restart" in refused.stderr
    rest = run_cli(*args, "--compile", "on", "--out", str(tmp_path / "r.vts"), env=env)
    assert rest.returncode == 0 and "resumed: 5 of 9 chunks" in rest.stderr, rest.stderr
    eager = run_cli(*args, "--compile", "off", "--out", str(tmp_path / "eager.vts"), env=env)
    assert eager.returncode == 0, eager.stderr
    a, b, e = (read_surface(tmp_path / f) for f in ("whole.vts", "r.vts", "eager.vts"))
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.accuracy, b.accuracy)
    np.testing.assert_allclose(a.loss, e.loss, rtol=1e-5, atol=0)
    assert a.meta["engine"]["plan"]["compiled"] and not e.meta["engine"]["plan"]["compiled"]
    assert a.meta["engine"]["config"]["compile"] == "on"
    assert any((tmp_path / "inductor").iterdir())  # compiled code kept where the command was told


def test_compile_option_on_every_command_that_evaluates():
    from pipeline.cli import build_parser

    parser = build_parser()
    rest = {"surface": ["--run", "r", "--directions", "d.pt"], "trajectory": ["--run", "r", "--directions", "d.pt"],
            "volume": ["--run", "r", "--kind", "random"], "evolve": ["r"], "run": []}
    for command, more in rest.items():
        args = parser.parse_args([command, "--compile", "off", *more])
        assert args.compile == "off"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--compile", "maybe"])


def test_a_stop_while_compiling_is_the_users_stop_not_a_verdict():
    """Ctrl-C or SIGTERM while torch compiles reaches the engine wrapped (BackendCompilerFailed):
    it stops the job, and no 'could not be compiled' verdict is recorded."""
    from pipeline.engine import compiled
    from pipeline.surface import StoppedBySignal

    class Wrapped(RuntimeError):  # as torch._dynamo.exc.BackendCompilerFailed keeps what its backend raised
        def __init__(self, inner):
            super().__init__(f"backend raised {inner!r}")
            self.inner_exception = inner

    def attempt(ref):
        raise Wrapped(StoppedBySignal("stopped by SIGINT"))

    key = ("test-stop-while-compiling",)
    with pytest.raises(StoppedBySignal, match="stopped by SIGINT"):
        compiled.verified(key, lambda: None, attempt)
    assert key not in compiled._VERDICTS

    def fails(ref):
        raise Wrapped(ValueError("no C++ compiler"))

    assert compiled.verified(key, lambda: None, fails) == (False, "Wrapped: backend raised ValueError('no C++ compiler')")
