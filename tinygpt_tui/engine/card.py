"""The model card: a folder's README.md, what it is, how it was made, its figures (from config.json's sections)."""

from __future__ import annotations

import os
from pathlib import Path

from tinygpt_tui.tokenizer import shell_word


def _schedule_line(t: dict) -> str:
    floor = f"{t.get('min_lr_ratio')}x the peak"
    if t.get("schedule") == "wsd":
        return f"peak held, then straight down over the last {t.get('cooldown', 0.4):.0%} to {floor}"
    return f"cosine down to {floor}"


def _optimizer_line(t: dict) -> str:
    if t.get("optimizer") == "muon":
        wd = t.get("muon_weight_decay")
        decay = f", weight decay {wd}" if isinstance(wd, (int, float)) and wd > 0 else ""
        return f"Muon for the weight matrices inside the blocks (lr {t.get('muon_lr')}{decay}), AdamW for the rest (lr {t.get('lr')})"
    return f"AdamW (lr {t.get('lr')})"  # also runs saved before Muon was offered


def _corpus_arg(c: dict) -> str:
    """What the card's `tinygpt eval --corpus` takes: a file by its own name (eval finds the file the
    model was trained on by it), a folder or a glob by its path; quoted for a shell."""
    path = str(c.get("path") or "")
    if path and not os.path.isfile(path) and (os.path.isdir(path) or any(ch in path for ch in "*?[")):
        return shell_word(path)
    return shell_word(Path(path).name if path else f"{c.get('name', 'CORPUS')}.txt")


def models_dir_words(models_dir) -> str:
    """" --models-dir DIR" (quoted for a shell) for a printed command that reads or writes where this one did; "" for
    ./models. Not left to $TINYGPT_MODELS_DIR: `tinygpt --models-dir DIR ...` sets it for this process only."""
    here = Path(models_dir).resolve() == (Path.cwd() / "models").resolve()
    return "" if here else f" --models-dir {shell_word(models_dir)}"


def model_words(folder) -> str:
    """How a printed command names the model in ``folder``: by its path under ./models (an experiment's member:
    EXPERIMENT/MEMBER), else by its name and --models-dir; quoted for a shell."""
    try:
        return shell_word(str(Path(folder).resolve().relative_to((Path.cwd() / "models").resolve())))
    except ValueError:
        return shell_word(Path(folder).name) + models_dir_words(Path(folder).parent)


def lineage_lines(lin) -> list[str]:
    """Where a model continued from another one says so (`tinygpt train --from`)."""
    if not isinstance(lin, dict) or not lin.get("from"):
        return []
    return [f"Continued from **{lin.get('from')}** (its weights of step {lin.get('step', '?')}, trained on "
            f"{lin.get('corpus') or '?'}, sha256 `{str(lin.get('sha256') or '?')[:16]}…`; tokenizer {lin.get('tokenizer', '?')}).", ""]


def render_card(doc: dict, folder=None) -> str:
    """A short README.md for the folder: what it is, how it was made, its figures; its commands name the model as
    `tinygpt` finds it from here (``folder``: where it is written)."""
    m, f, c, t = doc.get("model", {}), doc.get("figures", {}), doc.get("corpus", {}), doc.get("training", {})
    model = model_words(folder) if folder is not None else shell_word(doc.get("name", "MODEL"))

    def fmt(v, spec=".4f"):
        return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "n/a"

    minutes = f.get("train_time_s", 0) / 60 if isinstance(f.get("train_time_s"), (int, float)) else 0
    val_is = f.get("val_loss_is", "estimate")
    ws = f.get("weights_step", f.get("step"))
    kept = f"; the weights kept are step {fmt(ws, ',')}'s, the best evaluation" if ws != f.get("step") else ""
    made = doc.get("converted_from") or doc.get("imported_from")  # (trained elsewhere: `tinygpt convert` or `tinygpt import`)
    made = made if isinstance(made, dict) else None
    bpe = (t or made or {}).get("tokenizer") == "bpe"
    kind = "byte-level BPE" if bpe else "character-level"
    text = (f"**{c.get('name', '?')}** ({fmt(c.get('chars'), ',')} characters, sha256 `{str(c.get('sha256', '?'))[:16]}…`)"
            if c.get("sha256") else None)  # (None: a model made elsewhere whose text was not given)
    if made:
        what = f"{made.get('format', '?')} `{made.get('file') or made.get('folder') or '?'}`"
        intro = (f"A {kind} GPT trained elsewhere ({what}), {'converted' if doc.get('converted_from') else 'imported'} by tinygpt; "
                 + (f"trained on {text}." if text else "the text it was trained on is not recorded."))
    else:
        intro = f"A {kind} GPT trained by tinygpt on {text or '**' + str(c.get('name', '?')) + '**'}."
    tokens = f" ({fmt(f.get('tokens_seen'), ',')} tokens)" if isinstance(f.get("tokens_seen"), int) else ""
    rows = [
        f"| parameters | {fmt(f.get('params'), ',')} |",
        f"| shape | {m.get('n_layer')} layers, {m.get('n_head')} heads, {m.get('n_embd')} dims, context {m.get('block_size')} |",
        f"| architecture | {m.get('pos_encoding')} positions, {m.get('ffn')} feed-forward, {m.get('norm')}, "
        f"{'tied' if m.get('tie_weights') else 'untied'} output, dropout {m.get('dropout')} |",
        f"| vocabulary | {m.get('vocab_size')} {'BPE tokens (tokenizer.json)' if bpe else 'characters'} |",
    ]
    if not made or f.get("val_loss") is not None:  # (a model made elsewhere: what tinygpt has measured of it, only)
        rows += [f"| validation loss | **{fmt(f.get('val_loss'))}** ({val_is}; last 10% of the corpus) |",
                 f"| validation bits per character | **{fmt(f.get('val_bpc'))}** ({fmt(f.get('val_bpb'))} per byte of UTF-8; any tokenizer) |"]
    if not made or f.get("best_val_loss") is not None:
        rows.append(f"| validation loss estimate at the weights kept (during training) | {fmt(f.get('best_val_loss'))} |")
    if not made or f.get("step"):  # (step 0 of a model made elsewhere: its steps were not recorded, not none taken)
        rows.append(f"| steps | {fmt(f.get('step'), ',')}{tokens}{kept} |")
    if t:  # how tinygpt trained it (a model made elsewhere has no such record)
        rows += [
            f"| train loss (estimate) | {fmt(f.get('train_loss'))} |",
            f"| training time | {minutes:.1f} min on {doc.get('device', '?')}, {doc.get('dtype', '?')}"
            f"{', ' + str(doc.get('world_size')) + ' processes' if doc.get('world_size', 1) != 1 else ''} |",
            f"| batch | {t.get('batch_size')} x {t.get('grad_accum', 1)}, lr {t.get('lr')}, warmup {t.get('warmup_steps')}, "
            f"weight decay {t.get('weight_decay')} |",
            f"| schedule | {_schedule_line(t)} |",
            f"| optimizer | {_optimizer_line(t)} |",
        ]
    check = (f"Check the validation loss: `tinygpt eval {model} --corpus {_corpus_arg(c)}`" if text or not made else
             "Check the validation loss on the text it was trained on with `tinygpt eval`, its file after `--corpus`.")
    lines = [
        f"# {doc.get('name', 'model')}",
        "",
        intro,
        "",
        *lineage_lines(doc.get("lineage")),
        "| | |",
        "|---|---|",
        *rows,
        "",
        "Made into this folder with:" if made else "Trained with:",
        "",
        "```",
        str(doc.get("command") or "(not recorded)"),
        "```",
        "",
        check,
        "",
    ]
    if doc.get("heads"):  # engine/inspect.py head_roles(...)[i].line(), when the writer measured them
        lines += [f"What each head looks at (hints over the validation split; `tinygpt inspect {model} --heads`):", "",
                  "```", *map(str, doc["heads"]), "```", ""]
    return "\n".join(lines)
