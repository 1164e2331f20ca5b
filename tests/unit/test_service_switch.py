"""The switch that turns a missing service into a skip locally and a failure in CI."""

from pathlib import Path

import pytest


@pytest.fixture
def root_conftest(request):
    """tests/conftest.py as pytest loaded it (several modules are named conftest)."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    return request.config.pluginmanager.get_plugin(str(path))


def test_missing_service_skips_with_its_reason(monkeypatch, root_conftest):
    monkeypatch.setattr(root_conftest, "REQUIRE_SERVICES", False)
    with pytest.raises(pytest.skip.Exception, match="slurm unavailable: no sbatch"):
        root_conftest.require_service("slurm", lambda: "no sbatch")


def test_missing_service_fails_when_required(monkeypatch, root_conftest):
    monkeypatch.setattr(root_conftest, "REQUIRE_SERVICES", True)
    with pytest.raises(pytest.fail.Exception, match="XQUTE_REQUIRE_SERVICES is set"):
        root_conftest.require_service("slurm", lambda: "no sbatch")


def test_available_service_passes(monkeypatch, root_conftest):
    monkeypatch.setattr(root_conftest, "REQUIRE_SERVICES", True)
    root_conftest.require_service("slurm", lambda: None)


def test_a_failing_service_script_says_why(root_conftest):
    reason = root_conftest.run_service_script("no-such-service")
    assert reason is not None and "no-such-service.sh start failed" in reason
