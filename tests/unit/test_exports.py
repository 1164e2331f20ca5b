"""The public API is a contract: these names are what users' code imports."""

import importlib

import pytest

import xqute
from xqute import JobErrorStrategy, JobStatus


def test_all_names_are_importable():
    for name in xqute.__all__:
        assert hasattr(xqute, name), name


def test_contract_names_exported():
    for name in (
        "Xqute",
        "Job",
        "Scheduler",
        "JobStatus",
        "JobErrorStrategy",
        "simplug",
        "plugin",
        "XquteError",
        "ConfigError",
        "SubmitError",
        "BackendError",
        "CommandFailed",
        "StoreError",
        "WorkflowError",
    ):
        assert name in xqute.__all__, name


def test_errors_share_one_root():
    for name in (
        "ConfigError",
        "SubmitError",
        "BackendError",
        "CommandFailed",
        "StoreError",
        "WorkflowError",
        "PluginError",
        "Interrupted",
    ):
        assert issubclass(getattr(xqute, name), xqute.XquteError)
    assert issubclass(xqute.ConfigError, ValueError)


def test_command_failed_keeps_everything():
    exc = xqute.CommandFailed(["sbatch", "x.sh"], 1, "out", "sbatch: error: down")
    assert exc.argv == ["sbatch", "x.sh"] and exc.rc == 1
    assert exc.stdout == "out" and "sbatch: error: down" in str(exc)


def test_job_status_values_and_names():
    assert [s.value for s in JobStatus] == [0, 1, 2, 3, 4, 5, 6]
    assert [s.name for s in JobStatus] == [
        "INIT",
        "QUEUED",
        "SUBMITTED",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "KILLING",
    ]
    assert JobStatus.get_name(4) == "FINISHED"
    assert JobStatus.get_name(JobStatus.KILLING) == "KILLING"


def test_job_status_bad_value_names_allowed_ones():
    import pytest

    with pytest.raises(xqute.ConfigError, match="99"):
        JobStatus.get_name(99)


def test_error_strategy_values():
    assert JobErrorStrategy.RETRY == "retry"
    assert JobErrorStrategy("halt") is JobErrorStrategy.HALT
    assert set(JobErrorStrategy) == {"ignore", "retry", "halt"}
    # plain strings, as in 2.x: clients write them into TOML configs (pipen)
    assert all(type(s) is str for s in JobErrorStrategy)


def test_plugin_manager_is_simplug_named_xqute():
    assert xqute.simplug is xqute.plugin
    assert xqute.simplug.project == "xqute"


def test_the_hooks_module_and_the_plugin_manager_do_not_shadow_each_other():
    # xqute.plugin is the plugin manager (its older name), xqute.hooks the
    # module of the hook specs: importing one never rebinds the other
    hooks = importlib.import_module("xqute.hooks")
    assert hooks.HookCaller.__module__ == "xqute.hooks"
    assert xqute.plugin is xqute.simplug is hooks.simplug
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("xqute.plugin")
    assert xqute.plugin is hooks.simplug
