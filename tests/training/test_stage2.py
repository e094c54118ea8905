"""Two stages through `homepage train`'s job: kept where it wins on held-out validation users, saved
beside the fine-tuned model, and used by `homepage evaluate` and `homepage recommend`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightgbm")

from conftest import alternating_shop  # noqa: E402

from engine.cli.parser import main  # noqa: E402
from engine.data.tables import load_dataset  # noqa: E402
from engine.models.final import load_final  # noqa: E402
from engine.models.two_stage import BOOSTER_FILE, SPEC_FILE, TwoStage  # noqa: E402
from engine.models.two_tower import RankerConfig  # noqa: E402
from engine.training.job import train_and_save  # noqa: E402


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A shop where a user's next item is the one before their last (history kept): re-buy's recency
    and the re-ranker's recency features decide it, so stage 2 wins on validation."""
    root = alternating_shop(tmp_path_factory.mktemp("stage2") / "shop", n_users=300)
    data = load_dataset(root)
    config = RankerConfig(use_text=False, mode="frozen", dim=16, user_layers=1, user_heads=1, max_len=10, batch_size=32,
                          max_epochs=2, min_steps_per_epoch=5, train_on_repeats=True, seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model_dir, manifest, _ = train_and_save(data, root / "models" / "m", config, protocol="loo", mask_history=False)
    finally:
        torch.set_num_threads(threads)
    return root, model_dir, manifest


def test_stage_two_is_kept_saved_and_loaded(kept) -> None:
    root, model_dir, manifest = kept
    assert manifest["final_model"] == "two_stage" and manifest["stage2"]["used"]
    assert set(manifest["metrics_by_model"]) == {"finetuned", "two_stage"}
    assert manifest["metrics"] == manifest["metrics_by_model"]["two_stage"]  # the page's model's numbers
    assert manifest["metrics_by_model"]["two_stage"]["ndcg@10"] > manifest["metrics_by_model"]["finetuned"]["ndcg@10"]
    assert (model_dir / BOOSTER_FILE).is_file() and (model_dir / SPEC_FILE).is_file()
    spec = json.loads((model_dir / SPEC_FILE).read_text())
    assert "rebuy" in spec["sources"] and spec["sources"]["rebuy"]["params"]["order"] in ("recent", "frequent")
    final, stage1, _ = load_final(model_dir, load_dataset(root))
    assert isinstance(final, TwoStage) and final.sources["finetuned"] is stage1


def test_evaluate_reports_both_stages_and_recommend_uses_the_final_model(kept, tmp_path: Path, capsys) -> None:
    root, model_dir, manifest = kept
    out = tmp_path / "report.json"
    rc = main(["evaluate", str(root), "--model", str(model_dir), "--json", str(out), "--keep-history", "--models", "finetuned,two_stage,rebuy", "--no-ild"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert list(report["models"]) == ["finetuned", "two_stage", "rebuy"]
    assert np.isclose(report["models"]["two_stage"]["ndcg@10"], manifest["metrics_by_model"]["two_stage"]["ndcg@10"])
    capsys.readouterr()
    rc = main(["recommend", str(root), "--model", str(model_dir), "--user", "u0", "--k", "3", "--keep-history"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = load_dataset(root)
    history = data.interactions[data.interactions["user_id"] == "u0"]["item_id"].tolist()
    first = captured.out.strip().splitlines()[1].split()[1]
    assert first == history[-2]  # the one before the last: what this shop's users buy next
