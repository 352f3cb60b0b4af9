import json
import pickle

import pytest
import torch

from engine import load_pretrained, save_pretrained
from engine.checkpoint import list_pretrained
from engine.models.wavenet import WaveNet, WaveNetConfig


def tiny(cond=3):
    torch.manual_seed(0)
    return WaveNet(WaveNetConfig(quantization_levels=5, residual_channels=4, skip_channels=6, head_channels=6,
                                 dilations=[1, 2], kernel_size=2, input_kernel_size=2, cond_channels=cond))


def test_round_trip(tmp_path):
    model = tiny()
    data = {"task": "fourier", "conditions": ["a", "b", "c"]}
    save_pretrained(model, tmp_path / "m", data=data, metrics={"acc": 0.5})
    loaded = load_pretrained(tmp_path / "m")
    assert not loaded.training and loaded.data_config == data and loaded.metrics == {"acc": 0.5}
    assert loaded.config == model.config
    x = torch.nn.functional.one_hot(torch.randint(0, 5, (2, 9)), 5).float().transpose(1, 2)
    c = torch.eye(3)[:2]
    torch.testing.assert_close(loaded(x, c), model.eval()(x, c))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["model_type"] == "wavenet" and cfg["model"]["dilations"] == [1, 2]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "nan"])
def test_damaged_weights_are_clear_errors(tmp_path, damage):
    save_pretrained(tiny(), tmp_path)
    path = tmp_path / "model.safetensors"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01not a safetensors file" * 10)
    else:
        from safetensors.torch import load_file, save_file
        state = load_file(str(path))
        state["head_out.bias"][0] = float("nan")
        save_file(state, str(path))
    with pytest.raises(ValueError, match="model.safetensors"):
        load_pretrained(tmp_path)


def test_config_problems_are_clear_errors(tmp_path):
    save_pretrained(tiny(), tmp_path)
    cfg_path = tmp_path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for change, message in [
        ({"format_version": 99}, "format_version"),
        ({"model_type": "transformer9000"}, "Unknown model type"),
        ({"model": {**cfg["model"], "colour": "red"}}, "Unknown WaveNetConfig keys"),
        ({"model": {**cfg["model"], "residual_channels": 8}}, "does not match"),
    ]:
        cfg_path.write_text(json.dumps({**cfg, **change}))
        with pytest.raises(ValueError, match=message):
            load_pretrained(tmp_path)
    cfg_path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no config.json"):
        load_pretrained(tmp_path / "missing")


class Boom:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED",))


def test_a_pickle_named_like_weights_is_refused_and_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_pretrained(tiny(), tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(ValueError, match="corrupt"):
        load_pretrained(tmp_path / "m")
    assert not (tmp_path / "PWNED").exists()


def test_list_pretrained_reports_broken_folders(tmp_path):
    save_pretrained(tiny(), tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"format_version": 7}))
    save_pretrained(tiny(), tmp_path / "truncated")
    weights = tmp_path / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    found = list_pretrained(tmp_path)
    assert found["good"] is None and "format_version" in found["bad"] and "corrupt" in found["truncated"]
