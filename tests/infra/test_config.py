"""The typed config loader: defaults < YAML < overrides, derived keys, and errors that name the key."""

from dataclasses import dataclass, field

import pytest

from infra.config import check_choice, check_range, flatten, load_config
from infra.errors import ConfigError


@dataclass
class Inner:
    temperature: float = 1.0
    """Sampling temperature."""
    mode: str = "a"

    def __post_init__(self):
        check_choice("inner.mode", self.mode, ("a", "b"))
        check_range("inner.temperature", self.temperature, 0, low_open=True)


@dataclass
class Follower:
    temperature: float = 1.0


@dataclass
class Outer:
    steps: int = 3
    inner: Inner = field(default_factory=Inner)
    follower: Follower = field(default_factory=Follower)
    resources: dict[str, float] = field(default_factory=dict)


DERIVED = {"follower.temperature": "inner.temperature"}


def test_yaml_then_overrides_take_precedence_over_defaults(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 7\ninner:\n  mode: b\n")
    config = load_config(Outer, path, ["inner.temperature=0.5"])
    assert (config.steps, config.inner.mode, config.inner.temperature) == (7, "b", 0.5)


def test_derived_key_follows_its_source_unless_set(tmp_path):
    assert load_config(Outer, None, ["inner.temperature=0.7"], derived=DERIVED).follower.temperature == 0.7
    path = tmp_path / "run.yaml"
    path.write_text("inner:\n  temperature: 0.3\n")
    assert load_config(Outer, path, [], derived=DERIVED).follower.temperature == 0.3
    explicit = load_config(Outer, path, ["follower.temperature=0.9"], derived=DERIVED)
    assert explicit.follower.temperature == 0.9


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="inner.temprature"):
        load_config(Outer, None, ["inner.temprature=2"])


@pytest.mark.parametrize("override, named, suggestion", [
    ("inner.temprature=2", "inner.temprature", "; did you mean 'inner.temperature'?"),  # a key in a section
    ("stpes=2", "stpes", "; did you mean 'steps'?"),  # a top-level key
    ("inenr.mode=b", "inenr", "; did you mean 'inner'?"),  # a mistyped section: OmegaConf stops at it
    ("colour=red", "colour", ""),  # nothing close: no guess
])
def test_an_unknown_key_suggests_the_closest_known_one(tmp_path, override, named, suggestion):
    with pytest.raises(ConfigError) as caught:
        load_config(Outer, None, [override])
    assert str(caught.value) == f"unknown config key {named!r}{suggestion}"
    path = tmp_path / "run.yaml"  # the same from a file
    path.write_text("steps: 1\nstpes: 2\n")
    with pytest.raises(ConfigError, match="unknown config key 'stpes'; did you mean 'steps'"):
        load_config(Outer, path, [])


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"inner.mode='c'.*a, b"):
        load_config(Outer, None, ["inner.mode=c"])


def test_out_of_range_value_says_the_bound():
    with pytest.raises(ConfigError, match=r"inner.temperature=0.0 .* > 0"):
        load_config(Outer, None, ["inner.temperature=0"])


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="steps"):
        load_config(Outer, None, ["steps=many"])


def test_override_without_equals_sign_is_rejected():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Outer, None, ["steps"])


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, bad)


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_a_dict_on_the_command_line_replaces_the_files_dict_a_dotted_key_adds_to_it(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("resources:\n  gpu_a: 1\n  gpu_b: 2\n")
    assert load_config(Outer, path).resources == {"gpu_a": 1.0, "gpu_b": 2.0}
    assert load_config(Outer, path, ["resources={}"]).resources == {}
    assert load_config(Outer, path, ["resources={cpu: 4}"]).resources == {"cpu": 4.0}
    assert load_config(Outer, path, ["resources.cpu=4"]).resources == {"gpu_a": 1.0, "gpu_b": 2.0, "cpu": 4.0}
    with pytest.raises(ConfigError, match="resources.cpu"):
        load_config(Outer, path, ["resources={cpu: many}"])
