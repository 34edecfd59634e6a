"""Run under torchrun by test_warpd_training.py: a few real stage-1 steps on each replica, then
write what each replica ended with, so the test can check that DDP kept them identical."""
import hashlib
import json
import sys
from pathlib import Path

import torch

from warpd_core.data.reader import Dataset
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.training.distributed import setup, teardown
from warpd_core.policies.warpd.training import build_model, make_optimizer, train_stage1
from warpd_core.training.loop import batch_index


def main(config_path: str, out: str) -> None:
    config = TrainConfig.from_yaml(config_path)
    ctx = setup("cpu")
    torch.manual_seed(config.seed)
    model, windows = build_model(config, [Dataset.open(config.data.path)])
    index = batch_index(config, 1, 0, ctx.rank, len(windows), config.stage1.batch_size)
    first_loss = float(model.stage1(*windows.batch(index))["total"].detach())
    torch.manual_seed(config.seed + 1000 * ctx.rank)
    train_stage1(model, windows, make_optimizer(model, config, 1), 0, ctx, config, Path(out), progress=False)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.stage1.parameters())).hexdigest()
    Path(out, f"rank{ctx.rank}.json").write_text(json.dumps({"digest": digest, "first_loss": first_loss,
                                                             "world_size": ctx.world_size}))
    teardown(ctx)


if __name__ == "__main__":
    main(*sys.argv[1:])
