"""load_spec: defaults, overrides, --version, resolved paths, hooks as the runner gets them."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from deployer.core.errors import SpecError
from deployer.core.quantities import Count
from deployer.core.results import Step
from deployer.core.spec import Gate, GateWhen, OnHalt, Stripe
from deployer.core.targets import SshOptions
from deployer.operations.reading import check_fabric_task
from deployer.spec.load import load_spec
from tests.spec.support import BASE, FULL, MINIMAL, VALID, write_spec


def test_defaults_of_a_minimal_spec() -> None:
    spec = load_spec(MINIMAL, check_task=check_fabric_task)
    assert (spec.app, spec.version, spec.environment) == ("shop", "1.0.0", "production")
    assert spec.environments == ("production",)
    assert spec.keep_releases == 5
    assert spec.target == "/srv/shop"
    assert spec.artifact == VALID / "build" / "shop.tar.gz"
    assert spec.ssh == SshOptions()  # nothing set: the inventory's and built-in defaults apply
    strategy = spec.strategy
    assert strategy.batch == (Count(1), Count(25, percent=True))
    assert (strategy.stripe, strategy.max_failures, strategy.bake) == (Stripe.DATACENTER, Count(0), 0.0)
    assert (strategy.on_halt, strategy.max_parallel, strategy.stage_ahead) == (OnHalt.STOP, None, 1)
    assert spec.hooks == {}
    assert spec.fleet.path is None and spec.fleet.inline is not None
    assert [host.name for host in spec.fleet.inline.hosts] == ["shop-1"]


def test_path_and_hash_identify_the_file() -> None:
    spec = load_spec(str(MINIMAL), check_task=check_fabric_task)
    assert spec.path == MINIMAL.absolute()
    assert spec.sha256 == hashlib.sha256(MINIMAL.read_bytes()).hexdigest()


def test_every_field_of_the_full_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = load_spec(FULL, check_task=check_fabric_task)
    assert spec.version == "2.10"  # written unquoted; YAML alone would make it 2.1
    assert spec.environment == "prod"
    assert spec.environments == ("prod", "staging", "qa")
    assert spec.fleet.path == VALID / "fleets" / "two-dcs.yaml"
    assert spec.artifact == VALID / "release"
    assert spec.target == "~/apps/billing"  # ~ left for the remote side; trailing / dropped
    assert spec.keep_releases == 3
    assert spec.ssh == SshOptions(
        user="deploy",
        identity_file=str(VALID / "keys" / "deploy"),
        known_hosts=str(tmp_path / ".ssh" / "known_hosts_billing"),
        connect_timeout=2.5,
        keepalive=0.0,
        host_key_policy="accept-new",
        use_ssh_config=False,
    )
    strategy = spec.strategy
    assert strategy.batch == (Count(2),)
    assert (strategy.stripe, strategy.max_failures, strategy.on_halt) == (
        Stripe.NONE,
        Count(10, percent=True),
        OnHalt.ROLLBACK,
    )
    assert strategy.bake == 120.0  # the default environment's own override (the base says 1m)
    assert strategy.max_parallel == 4


@pytest.mark.parametrize(("written", "ahead"), [("0", 0), ("3", 3), ("all", None)])
def test_stage_ahead_is_a_number_of_waves_or_all(tmp_path: Path, written: str, ahead: int | None) -> None:
    (tmp_path / "build").mkdir()
    path = write_spec(tmp_path, BASE + f"strategy: {{stage_ahead: {written}}}\n")
    assert load_spec(path, check_task=check_fabric_task).strategy.stage_ahead == ahead


@pytest.mark.parametrize("written", ["-1", "everything", "true", "1.5"])
def test_a_stage_ahead_that_is_no_number_of_waves_names_its_line(tmp_path: Path, written: str) -> None:
    (tmp_path / "build").mkdir()
    path = write_spec(tmp_path, BASE + f"strategy: {{stage_ahead: {written}}}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path, check_task=check_fabric_task)
    assert f"{path}:6: strategy.stage_ahead: expected a number of waves (0 or more) or all" in str(
        caught.value
    )


# --- --version and --env ---------------------------------------------------------------------


def test_version_from_the_command_line_wins() -> None:
    assert (
        load_spec(MINIMAL, version="2.4.1+build.7~rc1", check_task=check_fabric_task).version
        == "2.4.1+build.7~rc1"
    )


def test_version_may_come_only_from_the_command_line(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BASE.replace('version: "1.0"\n', ""))
    assert load_spec(path, version="3.0", check_task=check_fabric_task).version == "3.0"
    with pytest.raises(
        SpecError, match=r"spec.yaml:1: version: required field is missing \(or give --version\)"
    ):
        load_spec(path, check_task=check_fabric_task)


@pytest.mark.parametrize(
    "version",
    [
        "1.0;touch /tmp/pwned",
        "$(reboot)",
        "`id`",
        "1.0 && rm -rf /",
        "../../etc",
        ".hidden",
        "-rf",
        "",
        "v" * 129,
        "1\n2",
    ],
)
def test_injected_versions_are_refused(version: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(MINIMAL, version=version, check_task=check_fabric_task)
    (issue,) = caught.value.issues
    assert (issue.field, issue.line) == ("version (--version)", None)
    assert "expected a version of letters, digits" in issue.message


def test_an_environment_lays_its_overrides_over_the_base() -> None:
    spec = load_spec(FULL, environment="staging", check_task=check_fabric_task)
    assert spec.environment == "staging"
    assert spec.target == "/srv/billing-staging"  # replaced
    assert spec.fleet.inline is not None and [host.name for host in spec.fleet.inline.hosts] == ["stg-1"]
    assert spec.fleet.inline.ssh.user == "staging"
    assert spec.strategy.batch == (Count(50, percent=True),)  # strategy merges key by key...
    assert spec.strategy.stripe == Stripe.NONE  # ...keeping the base's other keys
    assert spec.strategy.bake == 60.0  # the prod environment's override does not apply
    assert Step.STOP not in spec.hooks  # null removes a hook
    validate = spec.hooks[Step.VALIDATE]
    assert (validate.command, validate.retries, validate.interval) == ("true", 0, 2.0)  # replaced whole
    assert spec.hooks[Step.START].command == "systemctl start billing"
    assert spec.version == "2.10" and spec.app == "billing-api"


def test_an_environment_without_overrides_is_the_base() -> None:
    spec = load_spec(FULL, environment="qa", check_task=check_fabric_task)
    assert (spec.environment, spec.strategy.bake, spec.target) == ("qa", 60.0, "~/apps/billing")


def test_an_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(
        SpecError, match=r"full.yaml:33: environments: no environment 'dev' .*known: prod, staging, qa"
    ):
        load_spec(FULL, environment="dev", check_task=check_fabric_task)
    with pytest.raises(SpecError, match=r"no environment 'staging' in this spec \(known: production\)"):
        load_spec(MINIMAL, environment="staging", check_task=check_fabric_task)


def test_problems_found_after_merging_point_into_the_environment(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        BASE
        + textwrap.dedent(
            """\
            environments:
              staging:
                fleet: fleets/staging.ini
                hooks: {after_install: {fabric: "tasks.py:migrate"}}
            """
        ),
    )
    assert (
        load_spec(path, check_task=check_fabric_task).environment == "production"
    )  # files of other environments are not needed
    with pytest.raises(SpecError) as caught:
        load_spec(path, environment="staging", check_task=check_fabric_task)
    assert [(issue.line, issue.field) for issue in caught.value.issues] == [
        (8, "environments.staging.fleet"),
        (9, "environments.staging.hooks.after_install.fabric"),
    ]
    assert "no inventory file at" in caught.value.issues[0].message


# --- errors ------------------------------------------------------------------------------------


def test_several_errors_come_together_in_line_order(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """\
        app: shop
        version: "1.0"
        fleet: {hosts: [{name: a, datacenter: east}]}
        artifact: build/
        target: /srv/shop
        strategy: {batch: [1, 10x], bake: soon}
        keep_releases: 1
        hooks: {validate: {command: check, retries: -1}}
        """,
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path, check_task=check_fabric_task)
    assert str(caught.value).splitlines() == [
        f"{path}:6: strategy.batch[1]: '10x' is not a count;"
        " expected a whole number such as 3 or a percent such as 10%",
        f"{path}:6: strategy.bake: 'soon' is not a duration;"
        " expected a number with a unit, e.g. 250ms, 30s, 5m, 1h30m, 2 days or 1w",
        f"{path}:7: keep_releases: expected at least 2 (got 1)",
        f"{path}:8: hooks.validate.retries: expected at least 0 (got -1)",
    ]


def test_unreadable_and_empty_specs(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nowhere.yaml: cannot read the spec: No such file"):
        load_spec(tmp_path / "nowhere.yaml", check_task=check_fabric_task)
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    with pytest.raises(SpecError, match=r"empty.yaml:1: expected a mapping of spec fields .*got nothing"):
        load_spec(tmp_path / "empty.yaml", check_task=check_fabric_task)
    (tmp_path / "binary.yaml").write_bytes(b"app: \xff\xfe\n")
    with pytest.raises(SpecError, match=r"binary\.yaml: not a UTF-8 text file"):
        load_spec(tmp_path / "binary.yaml", check_task=check_fabric_task)


def test_x_keys_hold_anchors_and_are_ignored(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BASE + "x-common: &t {timeout: 7s}\nhooks: {start: {command: go, <<: *t}}\n")
    assert load_spec(path, check_task=check_fabric_task).hooks[Step.START].timeout == 7.0


@pytest.mark.parametrize(("written", "version"), [("2.10", "2.10"), ("2024-06-01", "2024-06-01"), ("7", "7")])
def test_unquoted_versions_are_read_as_written(tmp_path: Path, written: str, version: str) -> None:
    path = write_spec(tmp_path, BASE.replace('version: "1.0"', f"version: {written}"))
    assert load_spec(path, check_task=check_fabric_task).version == version


def test_gates_and_notify_sinks_with_their_defaults() -> None:
    spec = load_spec(VALID / "gates.yaml", check_task=check_fabric_task)
    error_rate, synthetic, window = spec.strategy.gates
    assert error_rate == Gate(
        name="error-rate",
        type="http",
        when=GateWhen.AFTER_WAVE,
        timeout=5.0,
        interval=30.0,
        url=(
            "http://prometheus.internal:9090/api/v1/query?query=sum(rate(http_requests_total%7Bjob%3D%22webapp"
            "%22%2Ccode%3D~%225..%22%7D%5B5m%5D))%2Fsum(rate(http_requests_total%7Bjob%3D%22webapp%22%7D%5B5m%5D))"
        ),
        headers={"Authorization": "Bearer ${PROMETHEUS_TOKEN}"},  # expanded when checked, not here
        status=200,
        field="data.result.0.value.1",
        max=0.01,
    )
    assert (synthetic.when, synthetic.interval, synthetic.command) == (
        GateWhen.BAKE,
        15.0,
        "./checks/synthetic.sh",
    )
    assert (window.when, window.timeout) == (GateWhen.BEFORE, 10.0)
    webhook, command = spec.notify
    assert (webhook.type, webhook.url, webhook.events, webhook.timeout) == (
        "webhook",
        "https://chat.example.com/hooks/deploys",
        None,
        5.0,
    )
    assert command.events == frozenset({"halted", "failed", "rollback_finished"})
    assert load_spec(VALID / "gates.yaml", environment="staging", check_task=check_fabric_task).notify == ()
