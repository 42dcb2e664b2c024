from pathlib import Path

import pytest

from recagents.config import Settings
from recagents.errors import ConfigError, UnknownEntityError
from recagents.idmap import IdMap


def test_idmap_round_trip_and_unknown_ids():
    ids = IdMap(["10", 20, "x"], kind="user")
    assert len(ids) == 3
    assert ids.index(20) == 1 and ids.index("20") == 1
    assert ids.external(2) == "x"
    assert ids.indices(["x", "10"]).tolist() == [2, 0]
    assert ids.add("x") == 2 and ids.add("new") == 3
    with pytest.raises(UnknownEntityError) as info:
        ids.index("nope")
    assert info.value.kind == "user" and info.value.entity_id == "nope"
    assert "unknown user id 'nope'" in str(info.value)
    with pytest.raises(UnknownEntityError):
        ids.external(99)


def test_settings_precedence(monkeypatch, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[recagents]\nseed = 5\ndataset = "movielens-small"\nbatch_size = 8\n')
    monkeypatch.setenv("RECAGENTS_SEED", "6")
    settings = Settings.load(config, batch_size=None)
    assert settings.dataset == "movielens-small"  # file
    assert settings.seed == 6  # env beats file
    assert settings.batch_size == 8
    assert Settings.load(config, seed=7).seed == 7  # explicit beats env
    monkeypatch.setenv("RECAGENTS_HOME", str(tmp_path / "h"))
    assert Settings.load().home == tmp_path / "h"
    assert Settings.load().chroma_path == tmp_path / "h" / "chroma"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed = 'abc'", "bad value 'abc'"),
        ("colour = 1", "unknown keys"),
        ("seed = [", "not valid TOML"),
        ("threads = 0", "must be at least 1"),
    ],
)
def test_bad_config_gets_a_clear_error(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Settings.load(config)


def test_unknown_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        Settings.load(colour="red")
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(Path(tmp_path / "missing.toml"))


def test_llm_wait_is_a_float_setting(monkeypatch, tmp_path):
    assert Settings().llm_wait_s == 1.0
    monkeypatch.setenv("RECAGENTS_LLM_WAIT_S", "0.25")
    assert Settings.load().llm_wait_s == 0.25
    for bad in ("-1", "nan", "soon", "inf"):
        monkeypatch.setenv("RECAGENTS_LLM_WAIT_S", bad)
        with pytest.raises(ConfigError, match="llm_wait_s"):
            Settings.load()
    monkeypatch.delenv("RECAGENTS_LLM_WAIT_S")
    config = tmp_path / "c.toml"
    config.write_text("llm_wait_s = true\n")
    with pytest.raises(ConfigError, match="boolean"):
        Settings.load(config)


def test_a_busy_template_reason_survives_the_checkpoint_round_trip():
    from recagents.types import Recommendation

    rec = Recommendation("1", "Fargo (1996)", 0.5, reason="r", reason_source="template-busy")
    assert Recommendation.from_dict(rec.to_dict()).reason_source == "template-busy"
    odd = {**rec.to_dict(), "reason_source": "made-up"}
    assert Recommendation.from_dict(odd).reason_source == "template"


def test_shards_are_settings_from_toml_and_environment(monkeypatch, tmp_path):
    assert (Settings().user_shards, Settings().item_shards) == (1, 1)
    config = tmp_path / "c.toml"
    config.write_text("[recagents]\nengine = 'ray'\nuser_shards = 2\nitem_shards = 3\n")
    settings = Settings.load(config)
    assert (settings.engine, settings.user_shards, settings.item_shards) == ("ray", 2, 3)
    monkeypatch.setenv("RECAGENTS_ITEM_SHARDS", "4")
    assert Settings.load(config).item_shards == 4  # the environment beats the file
    assert Settings.load(config, item_shards=5).item_shards == 5  # a flag beats both
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("RECAGENTS_ITEM_SHARDS", bad)
        with pytest.raises(ConfigError, match="item_shards"):
            Settings.load()


def test_the_run_folder_is_a_setting(monkeypatch, tmp_path):
    assert Settings(home=tmp_path).runs_dir == tmp_path / "runs"
    monkeypatch.setenv("RECAGENTS_RUN_DIR", str(tmp_path / "shared"))
    assert Settings.load(home=tmp_path).runs_dir == tmp_path / "shared"
    assert Settings.load(home=tmp_path, run_dir="~/x").runs_dir == Path.home() / "x"
