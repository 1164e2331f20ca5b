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


def test_a_failing_service_script_says_why(monkeypatch, root_conftest):
    monkeypatch.setattr(root_conftest, "START_SERVICES", True)
    reason = root_conftest.run_service_script("no-such-service")
    assert reason is not None and "no-such-service.sh start failed" in reason


@pytest.fixture
def fake_service(tmp_path, monkeypatch, root_conftest):
    """scripts/services/fake.sh: logs its action; `status` says it is down."""
    (tmp_path / "fake.sh").write_text(
        f'echo "$1" >> {tmp_path}/calls\n'
        '[ "$1" = status ] && { echo "fakeservice: not running"; exit 3; }\n'
        "exit 0\n"
    )
    monkeypatch.setattr(root_conftest, "SERVICES_DIR", tmp_path)
    return tmp_path / "calls"


def test_services_are_not_started_unless_asked(
    monkeypatch, root_conftest, fake_service
):
    monkeypatch.setattr(root_conftest, "START_SERVICES", False)
    for action in ("start", "setup"):
        reason = root_conftest.run_service_script("fake", action)
        assert "fakeservice: not running" in reason
        assert f"bash scripts/services/fake.sh {action}" in reason
        assert "XQUTE_START_SERVICES=1" in reason
    assert fake_service.read_text().split() == ["status", "status"]
    # XQUTE_START_SERVICES=1 (.ci/run) starts it
    monkeypatch.setattr(root_conftest, "START_SERVICES", True)
    assert root_conftest.run_service_script("fake", "start") is None
    assert fake_service.read_text().split() == ["status", "status", "start"]
