"""YAML with line numbers: the lines errors point at, and YAML's own traps."""

from __future__ import annotations

import textwrap

import pytest

from deployer.core.errors import SpecError
from deployer.inventory.yamlload import data_path, format_path, load_yaml


def load(text: str):  # type: ignore[no-untyped-def]
    return load_yaml(textwrap.dedent(text), "f.yaml")


def test_lines_of_keys_items_and_flow_collections() -> None:
    document = load(
        """\
        # a comment
        app: shop
        strategy:
          batch:
            - 1
            - 10%
        ssh: {user: deploy,
              port: 22}
        """
    )
    assert document.data == {
        "app": "shop",
        "strategy": {"batch": [1, "10%"]},
        "ssh": {"user": "deploy", "port": 22},
    }
    assert document.line_of(()) == 2
    assert document.line_of(("app",)) == 2
    assert document.line_of(("strategy", "batch")) == 4
    assert document.line_of(("strategy", "batch", 1)) == 6
    assert document.line_of(("ssh", "port")) == 8
    # a path that is not in the file falls back to its nearest ancestor
    assert document.line_of(("strategy", "bake")) == 3
    assert document.line_of(("nowhere", "at", "all")) == 2


def test_merge_keys_point_at_the_anchor_and_written_keys_win() -> None:
    document = load(
        """\
        defaults: &defaults
          timeout: 5s
          retries: 3
        hook:
          <<: *defaults
          retries: 9
        """
    )
    assert document.data["hook"] == {"timeout": "5s", "retries": 9}
    assert document.line_of(("hook", "timeout")) == 2
    assert document.line_of(("hook", "retries")) == 6


def test_plain_scalars_keep_their_text() -> None:
    document = load('version: 2.10\nquoted: "2.10"\n')
    assert document.data == {"version": 2.1, "quoted": "2.10"}
    assert document.plain_scalars[("version",)] == "2.10"
    assert ("quoted",) not in document.plain_scalars


def test_every_duplicate_key_is_reported() -> None:
    with pytest.raises(SpecError) as caught:
        load("a: 1\nb: {x: 1, x: 2}\na: 3\n")
    assert [str(issue) for issue in caught.value.issues] == [
        "f.yaml:2: b.x: duplicate key (first at line 2)",
        "f.yaml:3: a: duplicate key (first at line 1)",
    ]


def test_syntax_errors_and_several_documents_name_the_line() -> None:
    with pytest.raises(SpecError, match=r"^f.yaml:3: YAML syntax error: "):
        load("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(SpecError, match=r"^f.yaml:2: YAML syntax error: .*single document"):
        load("a: 1\n---\nb: 2\n")


def test_python_tags_are_refused_and_ansible_tags_tolerated_on_request() -> None:
    with pytest.raises(SpecError, match="could not determine a constructor"):
        load("a: !!python/object/apply:os.system [id]\n")
    with pytest.raises(SpecError, match="could not determine a constructor"):
        load("a: !unsafe x\n")
    assert load_yaml("a: !unsafe '{{ x }}'\n", "f.yaml", tolerate_tags=True).data == {"a": "{{ x }}"}


def test_alias_bombs_and_cycles_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 8)]
    with pytest.raises(SpecError, match="document too large"):
        load_yaml("\n".join(lines) + "\n", "f.yaml")
    with pytest.raises(SpecError, match="an alias refers to itself"):
        load_yaml("a: &a [*a]\n", "f.yaml")


def test_complex_keys_are_refused() -> None:
    with pytest.raises(SpecError, match=r"f\.yaml:1: mapping keys must be plain strings"):
        load("? [a, b]\n: 1\n")


def test_an_empty_file_is_no_data() -> None:
    assert load("# only a comment\n").data is None


@pytest.mark.parametrize(
    ("loc", "data", "missing", "path"),
    [
        (("strategy", "batch", 1), {"strategy": {"batch": [1, "x"]}}, False, ("strategy", "batch", 1)),
        # union tags and validator names are no place in the file
        (
            ("hooks", "stop", "mapping-form", "timeout"),
            {"hooks": {"stop": {"timeout": 0}}},
            False,
            ("hooks", "stop", "timeout"),
        ),
        (("hooks", "stop", "mapping-form"), {"hooks": {"stop": {}}}, False, ("hooks", "stop")),
        (("fleet", "inline-form", "hosts"), {"fleet": {}}, True, ("fleet", "hosts")),
        # a single value standing for a list: the error is at the value
        (("strategy", "batch", 0), {"strategy": {"batch": "x"}}, False, ("strategy", "batch")),
        (
            ("environments", "bad env", "[key]"),
            {"environments": {"bad env": {}}},
            False,
            ("environments", "bad env"),
        ),
    ],
)
def test_pydantic_locations_become_paths_in_the_file(loc, data, missing, path) -> None:  # type: ignore[no-untyped-def]
    assert data_path(loc, data, missing=missing) == path


def test_format_path() -> None:
    assert format_path(("strategy", "batch", 1)) == "strategy.batch[1]"
    assert format_path(("hosts", "web.example.com", "port")) == "hosts['web.example.com'].port"
    assert format_path(()) == ""
