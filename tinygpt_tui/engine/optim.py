"""The optimizer of a run: Muon for the hidden weight matrices and AdamW for the rest, behind one
optimizer's interface, and its state as flat tensors plus JSON for the checkpoint (no pickle).
torch is imported when an optimizer is built: the app reads the presets without it."""

from __future__ import annotations

from tinygpt_tui.errors import CheckpointError


def build_optimizer(model, cfg) -> "Optimizers":
    """The optimizer `tinygpt train` uses for cfg.optimizer, cfg.lr, cfg.muon_lr, weight decay and betas."""
    import torch

    from tinygpt_tui.engine.muon import BatchedMuon  # torch's Muon, its iterations batched over same-shape matrices

    named = list(model.named_parameters())
    parts = []
    if cfg.optimizer == "muon":
        # Muon orthogonalizes the update of each hidden weight matrix (the 2-D weights inside the
        # blocks); embeddings, the output layer, norms and biases stay with AdamW, as Muon's authors
        # prescribe. Its learning rate follows the same schedule, scaled by muon_lr / lr.
        def hidden(n, p):
            return n.startswith("blocks.") and p.dim() == 2

        muon = BatchedMuon([p for n, p in named if hidden(n, p)], lr=cfg.muon_lr, weight_decay=0.0, momentum=0.95, nesterov=True)
        muon.param_groups[0]["lr_scale"] = cfg.muon_lr / cfg.lr
        parts.append(muon)
        named = [(n, p) for n, p in named if not hidden(n, p)]
    groups = [{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}]
    kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    try:
        parts.append(torch.optim.AdamW(groups, fused=True, **kw))
    except (RuntimeError, TypeError):
        parts.append(torch.optim.AdamW(groups, **kw))
    return Optimizers(parts)


class Optimizers:
    """One or more torch optimizers (Muon and AdamW) behind a single optimizer's interface.

    state_dict() numbers the parameters across the parts in order, as one optimizer
    over all their groups would, so a checkpoint holds one flat optimizer state.
    """

    def __init__(self, parts):
        self.parts = list(parts)

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.parts for g in o.param_groups]

    def step(self) -> None:
        for o in self.parts:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for o in self.parts:
            sd = o.state_dict()
            state.update({i + offset: st for i, st in sd["state"].items()})
            groups += [{**g, "params": [i + offset for i in g["params"]]} for g in sd["param_groups"]]
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        groups, first, offset = sd["param_groups"], 0, 0
        for o in self.parts:
            mine = groups[first : first + len(o.param_groups)]
            ids = [i for g in mine for i in g["params"]]
            if len(ids) != sum(len(g["params"]) for g in o.param_groups):
                raise ValueError("the saved optimizer has different parameter groups")
            o.load_state_dict({
                "state": {i - offset: sd["state"][i] for i in ids if i in sd["state"]},
                "param_groups": [{**g, "params": [i - offset for i in g["params"]]} for g in mine],
            })
            first, offset = first + len(mine), offset + len(ids)

    def to_tensors(self) -> tuple[dict, dict]:
        """The state as flat tensors ("opt.<param>.<name>", for safetensors) and the rest as JSON."""
        sd = self.state_dict()
        tensors, scalars = {}, {}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                if hasattr(v, "detach"):  # a tensor
                    tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars[f"{idx}.{k}"] = v
        return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}

    def load_tensors(self, tensors: dict, meta: dict, device) -> None:
        """Restore what to_tensors saved (the training state has been validated by files.py)."""
        import torch

        live = self.state_dict()["param_groups"]
        try:
            state: dict[int, dict] = {}
            for key, t in tensors.items():
                if key.startswith("opt."):
                    _, idx, name = key.split(".", 2)
                    state.setdefault(int(idx), {})[name] = t if name == "step" else t.to(device)
            for key, v in meta.get("scalars", {}).items():
                idx, name = key.split(".", 1)
                state.setdefault(int(idx), {})[name] = torch.tensor(v) if name == "step" else v
            groups = meta.get("param_groups") or live
            if len(groups) != len(live):
                raise ValueError("its parameter groups are not this model's")
            self.load_state_dict({"state": state, "param_groups": [{**g, "params": gl["params"]} for g, gl in zip(groups, live)]})
        except (ValueError, KeyError, RuntimeError, TypeError, IndexError, AttributeError) as e:
            raise CheckpointError(f"cannot restore the optimizer from the training state: {str(e)[:160]}") from None
