"""The inspector: numbers checked against the model itself, the CLI, and the app screen."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tinygpt_tui.cli.main import app as cli_app
from tinygpt_tui.config import GPTConfig
from tinygpt_tui.errors import SettingsError
from tinygpt_tui.engine.inspect import analyze, context_window, display_char
from tinygpt_tui.model import GPT
from tinygpt_tui.tokenizer import CharTokenizer

from conftest import make_tiny_model

TEXT = "the honour of the house is the honour of all.\n林黛玉 宝玉 林黛玉\t"
POS = ["learned", "sinusoidal", "rope", "alibi", "none"]


def tiny(pos="learned", block=24, n_layer=2, n_head=4, seed=0):
    tok = CharTokenizer.from_text(TEXT)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=32, pos_encoding=pos))
    # spread the random init so attention is far from uniform (a fresh model attends almost evenly)
    with torch.no_grad():
        for b in model.blocks:
            b.attn.qkv.weight.mul_(25)
    return model.eval(), tok


@pytest.mark.parametrize("pos", POS)
def test_attention_rows_are_causal_distributions(pos):
    model, tok = tiny(pos)
    a = analyze(model, tok, "the honour of the house")
    T = a.length
    assert a.attention.shape == (2, 4, T, T)
    np.testing.assert_allclose(a.attention.sum(-1), 1.0, atol=1e-5)  # each row sums to 1
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    assert (a.attention[:, :, future] == 0).all()  # no weight on a future position
    assert a.attention.std() > 0.01  # not trivially uniform
    for p in (0, 5, T - 1):
        v = a.at(p)
        for layer in v.attention:
            for row in layer:
                assert math.isclose(sum(row), 1.0, abs_tol=1e-5)
                assert all(w == 0 for w in row[p + 1 :])
        np.testing.assert_allclose(v.mean_over_heads, np.mean(v.attention, axis=1), atol=1e-7)
        np.testing.assert_allclose(v.mean_all, np.mean(v.attention, axis=(0, 1)), atol=1e-7)
        assert math.isclose(sum(v.mean_all), 1.0, abs_tol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_probabilities_are_softmax_of_the_models_logits(temperature):
    model, tok = tiny("rope")
    ctx = "the honour of"
    v = analyze(model, tok, ctx).at(top_k=5, temperature=temperature, sampled="x" if "x" in tok.stoi else "h")
    with torch.no_grad():
        logits, _ = model(torch.tensor([tok.encode(ctx).ids]))
    want = torch.softmax(logits[0, -1].double() / temperature, -1).numpy()
    np.testing.assert_allclose(v.probs, want, atol=1e-6)
    assert math.isclose(sum(v.probs), 1.0, abs_tol=1e-9)
    raw = torch.softmax(logits[0, -1].double(), -1).numpy()
    order = np.argsort(-want)
    assert [c.id for c in v.candidates] == order[:5].tolist()
    assert [c.rank for c in v.candidates] == [1, 2, 3, 4, 5]
    for c in v.candidates:
        assert c.char == tok.chars[c.id]
        assert math.isclose(c.prob, want[c.id], abs_tol=1e-6) and math.isclose(c.raw_prob, raw[c.id], abs_tol=1e-6)
    s = v.sampled
    assert s is not None and s.rank == int((want > want[s.id]).sum()) + 1
    assert v.temperature == temperature


def test_temperature_zero_is_greedy_and_bad_values_are_refused():
    model, tok = tiny()
    v = analyze(model, tok, "the h").at(temperature=0)
    assert v.candidates[0].prob == 1.0 and sum(v.probs) == 1.0
    assert v.candidates[0].raw_prob < 1.0
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(SettingsError):
            analyze(model, tok, "the h").at(temperature=bad)
    with pytest.raises(SettingsError):
        analyze(model, tok, "the h").at(top_k=0)


@pytest.mark.parametrize("pos", POS)
def test_values_match_the_forward_pass_and_the_kv_cache(pos):
    model, tok = tiny(pos)
    ctx = "the house is the honour"
    ids = tok.encode(ctx).ids
    a = analyze(model, tok, ctx)
    with torch.no_grad():
        logits, _, attns = model(torch.tensor([ids]), return_attention=True)  # no KV cache
        np.testing.assert_allclose(a.logits, logits[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(a.attention, torch.stack([x[0] for x in attns]).numpy(), atol=1e-7)
        # a KV-cached pass: prefill all but the last character, then the last one alone
        cache = model.new_cache()
        model(torch.tensor([ids[:-1]]), cache=cache)
        last_logits, _, last_attn = model(torch.tensor([ids[-1:]]), cache=cache, return_attention=True)
    v = a.at(-1)
    np.testing.assert_allclose(v.logits, last_logits[0, -1].double().numpy(), atol=1e-5)
    for layer in range(2):
        np.testing.assert_allclose(v.attention[layer], last_attn[layer][0, :, -1].numpy(), atol=1e-5)


def test_context_window_keeps_the_last_known_characters_and_reports_the_rest():
    model, tok = tiny(block=24)
    long = "the honour of the house " * 10 + "the hou\u00e9se"  # é is not in the vocabulary
    a = analyze(model, tok, long)
    assert a.length == 24
    assert "".join(a.chars) == (long.replace("\u00e9", ""))[-24:]
    assert a.dropped == ["\u00e9"]
    assert long[a.truncated :].replace("\u00e9", "") == "".join(a.chars)
    ids, dropped, truncated = context_window(tok, "all" + "€" * 3 + "the", 24)
    assert tok.decode(ids) == "allthe" and dropped == ["€"] and truncated == 0
    with pytest.raises(SettingsError, match="empty"):
        analyze(model, tok, "")
    with pytest.raises(SettingsError, match="vocabulary"):
        analyze(model, tok, "€€")
    with pytest.raises(SettingsError, match="position"):
        a.at(24)
    assert a.at(-24).position == 0


def test_positions_before_the_last_rank_the_character_that_followed():
    model, tok = tiny()
    a = analyze(model, tok, "林黛玉 宝玉")
    v = a.at(1)  # after 林黛 ...
    assert v.query_char == "黛" and v.actual is not None and v.actual.char == "玉"
    assert v.actual.rank == int((np.array(v.probs) > v.probs[tok.stoi["玉"]]).sum()) + 1
    assert a.at(-1).actual is None


def test_asking_about_a_character_as_the_views_show_it_ranks_it():
    """The bars show a space as ·, a newline as ⏎; asked about "·" (--rank-of ·), the view said the model
    does not know the character it had just drawn."""
    model, tok = tiny()
    a = analyze(model, tok, "the honour of\nthe")
    for shown, char in (("·", " "), ("⏎", "\n"), (" ", " "), ("h", "h")):
        v = a.at(-1, sampled=shown)
        assert not v.sampled_unknown and v.sampled is not None and v.sampled.char == char, shown
        assert v.sampled.rank == int((np.array(v.probs) > v.probs[tok.stoi[char]]).sum()) + 1
    v = a.at(-1, sampled="€")
    assert v.sampled is None and v.sampled_unknown


def test_display_chars_are_visible_and_keep_their_width():
    from rich.cells import cell_len

    assert display_char(" ") == "·" and display_char("\n") == "⏎" and display_char("\t") == "⇥"
    assert display_char("\x1b") == "␛" and display_char("玉") == "玉"
    assert cell_len(display_char("\u0301")) == 1  # a combining mark gets a base to sit on


def test_heatmap_columns_line_up_with_wide_characters():
    from rich.cells import cell_len

    from tinygpt_tui.cli.inspect import heatmap

    chars = list("林黛玉 a\nb宝")
    rows = [("h0", [0.1] * len(chars)), ("avg", [0.2] * len(chars))]
    text = heatmap(chars, rows, 80, len(chars) - 1, color=False)
    lines = text.plain.split("\n")
    assert lines[1] == "    林黛玉·a⏎b宝"
    assert len({cell_len(line.rstrip("\n")) for line in lines[1:]}) == 1  # every row as wide as the labels
    narrow = heatmap(chars, rows, 10, len(chars) - 1, color=False).plain.split("\n")
    assert all(cell_len(line) <= 10 for line in narrow) and len(narrow) > len(lines)


# ------------------------------------------------------------------ lens.py: logit lens, embeddings, ablation, heads
from tinygpt_tui.cli.inspect import scatter  # noqa: E402
from tinygpt_tui.engine.lens import ablate, embedding_map, head_roles, logit_lens, neighbours, pca2  # noqa: E402


@pytest.mark.parametrize("pos", ["learned", "rope", "alibi"])
def test_logit_lens_last_layer_is_the_models_prediction(pos):
    model, tok = tiny(pos, n_layer=3)
    a = analyze(model, tok, "the honour of the")
    for p in (2, a.length - 1):
        rows = logit_lens(a, p, top_k=4)
        assert [r.layer for r in rows] == [0, 1, 2, 3]
        want = a.at(p, top_k=4)
        assert [c for c, _ in rows[-1].top] == [c.char for c in want.candidates]
        np.testing.assert_allclose([q for _, q in rows[-1].top], [c.prob for c in want.candidates], atol=1e-5)
        if p < a.length - 1:
            assert rows[-1].actual[0] == want.actual.rank and math.isclose(rows[-1].actual[1], want.actual.prob, abs_tol=1e-5)
        else:
            assert rows[-1].actual is None
    with pytest.raises(SettingsError, match="position"):
        logit_lens(a, a.length)
    one, tok1 = tiny(n_layer=1)
    assert len(logit_lens(analyze(one, tok1, "林黛玉 宝"))) == 2  # the embeddings, then the one block


def steep_alibi(n_layer=2):
    """ALiBi slopes so steep that every position attends only to itself: exp(-1e4 * distance) is 0."""
    model, tok = tiny("alibi", n_layer=n_layer)
    model.alibi.fill_(1e4)
    return model, tok


def test_ablating_an_ignored_character_changes_nothing():
    model, tok = steep_alibi()
    a = analyze(model, tok, "the honour of")
    assert (a.attention[:, :, -1, :-1] == 0).all()  # provably ignored: no weight on any earlier position
    r = ablate(a, -1, chunk=5)
    assert r.target == a.at(-1).candidates[0].char and len(r.deltas) == a.length
    assert max(abs(d) for d in r.deltas[:-1]) < 1e-5 and abs(r.deltas[-1]) > 1e-3
    with pytest.raises(SettingsError, match="position"):
        ablate(a, -a.length - 1)


def test_ablation_in_one_batch_equals_replacing_the_embedding():
    tok = CharTokenizer.from_text(TEXT)
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=24, n_layer=2, n_head=2, n_embd=32, tie_weights=False)).eval()
    ctx = "the honour of all"  # 'f' occurs once, at position 11
    a = analyze(model, tok, ctx)
    r = ablate(a, -1, chunk=None)  # one batched pass
    top = tok.stoi[r.target]
    assert math.isclose(r.logprob, float(torch.log_softmax(torch.tensor(a.logits[-1], dtype=torch.float64), -1)[top]), abs_tol=1e-4)
    # in chunks of 4 (the characters before a chunk cached once): the same numbers
    np.testing.assert_allclose(ablate(a, -1, chunk=4).deltas, r.deltas, atol=1e-4)
    with torch.no_grad():
        model.tok_emb.weight[tok.stoi["f"]] = model.tok_emb.weight.mean(0)
        logp = model(torch.tensor([tok.encode(ctx).ids]))[0][0, -1].log_softmax(-1)[top]
    assert math.isclose(r.deltas[ctx.index("f")], float(logp) - r.logprob, abs_tol=1e-4)
    assert r.deltas[ctx.index("f")] != 0


def test_pca_is_deterministic_and_neighbours_are_the_closest():
    w = np.random.default_rng(0).normal(size=(30, 8))
    xy, (e1, e2) = pca2(w)
    np.testing.assert_allclose(pca2(-w)[0], xy, atol=1e-9)  # the sign ambiguity of an SVD is fixed
    np.testing.assert_allclose(pca2(w)[0], xy)
    assert 1 >= e1 >= e2 > 0
    model, tok = tiny()
    with torch.no_grad():  # 'a' and 'r' point the same way, 'h' almost; the rest elsewhere
        emb = model.tok_emb.weight
        emb.normal_(0, 1)
        emb[:, 0] = 0
        base = torch.zeros(32)
        base[0] = 50
        emb[tok.stoi["a"]], emb[tok.stoi["r"]] = base, 2 * base
        emb[tok.stoi["h"]] = base + torch.randn(32)
    near = neighbours(model, tok, "a", k=2)
    assert [c for c, _ in near] == ["r", "h"] and math.isclose(near[0][1], 1.0, abs_tol=1e-6)
    m = embedding_map(model, tok, top=5, text="hhhhhh eeeee ooo tt a")
    assert m.chars == ["h", "e", " ", "o", "t"] and m.xy.shape == (5, 2) and m.method == "PCA"
    with pytest.raises(SettingsError, match="vocabulary"):
        neighbours(model, tok, "€")


def test_embedding_map_of_a_large_vocabulary_fits_a_small_grid():
    chars = [chr(0x4E00 + i) for i in range(4436)]
    tok = CharTokenizer(chars)
    model = GPT(GPTConfig(vocab_size=4436, block_size=8, n_layer=1, n_head=2, n_embd=16, tie_weights=False))
    for which in ("embedding", "output"):
        m = embedding_map(model, tok, top=300, which=which)
        assert len(m.chars) == 300
        lines, hidden = scatter([display_char(c) for c in m.chars], m.xy, 78, 18)
        from rich.cells import cell_len

        assert len(lines) == 18 and max(cell_len(x) for x in lines) <= 78
        shown = sum(sum(1 for ch in x if ch != " ") for x in lines)
        assert shown + hidden == 300 and hidden > 0


def test_embedding_map_labels_wider_than_two_cells_leave_the_others_in_their_columns():
    """A BPE token's label (·the, ‹e2›) is several cells wide: the map reserved two, and every label after
    it on its row was drawn that many columns too far right, off its coordinates."""
    from rich.cells import cell_len

    labels = ["·the", "x", "\u2039e2\u203a", "y", "林"]
    xy = np.array([[0.0, 0.0], [0.5, 0.0], [0.2, 1.0], [1.0, 1.0], [0.9, 0.0]])
    lines, hidden = scatter(labels, xy, 40, 2)
    assert hidden == 0 and max(cell_len(x) for x in lines) <= 40
    bottom, top = lines[1], lines[0]
    assert bottom.startswith("·the") and top.rstrip().endswith("y")
    for label, (x, _) in zip(labels, xy):  # each label starts at the column its x coordinate gives
        row = top if label in ("\u2039e2\u203a", "y") else bottom
        col = round(x * (40 - cell_len(label)))
        assert row[col:].startswith(label) and cell_len(row[:col]) == col, (label, row)


def test_head_roles_measure_where_each_head_looks():
    model, tok = steep_alibi(n_layer=2)
    roles = head_roles(model, tok, TEXT * 40, windows=4)
    assert [(r.layer, r.head) for r in roles] == [(l, h) for l in range(2) for h in range(4)]
    for r in roles:  # every head looks only at its own position
        assert r.distance < 1e-3 and r.previous < 1e-3 and r.induction < 1e-3 and r.role == "local head"
        assert r.line().startswith(f"L{r.layer} h{r.head}: distance")
    model, tok = tiny(n_layer=1)
    for r in head_roles(model, tok, TEXT * 40, windows=4):
        assert r.distance > 0 and 0 <= r.previous <= 1 and 0 <= r.word_start <= 1 and 0 < r.induction <= 1

    from tinygpt_tui.engine.card import render_card

    card = render_card({"name": "m", "heads": [r.line() for r in roles]})
    assert "What each head looks at" in card and roles[0].line() in card
    assert "What each head looks at" not in render_card({"name": "m"})

def test_head_hints_on_a_text_without_spaces_say_clause_start_not_word_start():
    """A "word" is a run of letters: in Chinese, with no spaces between words, that is a whole clause between
    punctuation marks, and the hints called its first character the word's start. English reads as before."""
    from tinygpt_tui.cli.inspect import heads_key

    model, tok = tiny(n_layer=1)
    chinese = head_roles(model, tok, "林黛玉宝玉黛玉林宝玉.\n" * 60, windows=4)
    english = head_roles(model, tok, TEXT * 40, windows=4)
    assert all(not r.spaced and "clause start" in r.line() and "word" not in r.line() for r in chinese)
    assert all(r.spaced and "word start" in r.line() and "clause" not in r.line() for r in english)
    assert "clause start" in heads_key("character", chinese[0].spaced) and "word" not in heads_key("character", False).replace("between words", "")
    assert heads_key("character", english[0].spaced) == heads_key("character")  # (English: unchanged)
    assert "on the word's first" in heads_key("character")


# ------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_corpus):
    d = tmp_path_factory.mktemp("inspect")
    make_tiny_model(d / "tiny", small_corpus.read_text(encoding="utf-8"), seed=3, n_layer=2, n_head=2, block_size=16)
    return d


def run(args):
    return CliRunner().invoke(cli_app, args)


def test_cli_json_has_the_right_shapes(model_dir):
    r = run(["inspect", str(model_dir / "tiny"), "--prompt", "To be, or not to be", "--json", "--top-k", "7", "--temperature", "0.7"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["block_size"] == 16 and len(doc["chars"]) == 16 and doc["context"] == "To be, or not to be"[-16:]
    assert doc["truncated"] == 3 and doc["position"] == 15 and doc["temperature"] == 0.7
    assert len(doc["top_k"]) == 7 and [c["rank"] for c in doc["top_k"]] == list(range(1, 8))
    probs = [c["prob"] for c in doc["top_k"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    att = doc["attention"]
    assert (att["layers"], att["heads"], att["keys"]) == (2, 2, 16)
    w = np.array(att["weights"])
    assert w.shape == (2, 2, 16)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.array(att["mean_over_heads"]).shape == (2, 16) and np.array(att["mean_all"]).shape == (16,)
    r = run(["inspect", str(model_dir / "tiny"), "--prompt", "To be", "--json", "--position", "1"])
    doc = json.loads(r.stdout)
    assert doc["position"] == 1 and doc["actual_next"]["char"] == " "
    assert all(x == 0 for x in np.array(doc["attention"]["weights"])[:, :, 2:].ravel())


def test_cli_prints_bars_and_heatmaps(model_dir):
    r = run(["inspect", str(model_dir / "tiny"), "--prompt", "the honou", "--top-k", "4", "--layer", "1"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Next character after" in out and "Layer 1" in out and "Layer 0" not in out
    assert "the·honou" in out and "All layers and heads" in out
    assert sum(1 for line in out.splitlines() if line.rstrip().endswith("%")) == 4


@pytest.mark.parametrize("args, message", [
    (["nope", "--prompt", "ab"], "model not found"),
    (["{m}", "--prompt", ""], "empty"),
    (["{m}", "--prompt", "€€€"], "vocabulary"),
    (["{m}", "--prompt", "ab", "--layer", "2"], "layer 2"),
    (["{m}", "--prompt", "ab", "--position", "2"], "position 2"),
    (["{m}", "--prompt", "ab", "--position", "-3"], "position -3"),
    (["{m}", "--prompt", "ab", "--top-k", "0"], "top-k"),
    (["{m}", "--prompt", "ab", "--temperature", "-1"], "temperature"),
    # an option the view would ignore: said, not ignored (the view without it would look like its answer)
    (["{m}", "--prompt", "ab", "--near", "a"], "--near goes with --embeddings"),
    (["{m}", "--prompt", "ab", "--corpus", "x.txt"], "--corpus goes with --heads or --embeddings"),
    (["{m}", "--prompt", "ab", "--lens", "--layer", "0"], "--layer picks one layer's heatmap"),
    # (the lens and the ablation were dropped without a word for the whole-model views, the prompt and
    # the temperature ignored by them: a lens at temperature 1 shown as if at the one asked for)
    (["{m}", "--prompt", "ab", "--lens", "--heads"], "ask for one or the other"),
    (["{m}", "--ablate", "--embeddings"], "ask for one or the other"),
    (["{m}", "--prompt", "ab", "--embeddings"], "leave out --prompt"),
    (["{m}", "--prompt", "ab", "--heads"], "leave out --prompt"),
    (["{m}", "--prompt", "ab", "--lens", "--temperature", "0.5"], "--temperature and --rank-of go with the bars"),
    (["{m}", "--prompt", "ab", "--ablate", "--rank-of", "a"], "--temperature and --rank-of go with the bars"),
    (["{m}", "--embeddings", "--temperature", "2"], "--temperature and --rank-of go with the bars"),
    # (a position or a count of candidates asked for with a whole-model view, or --top without the map, was
    # dropped without a word)
    (["{m}", "--embeddings", "--position", "3"], "--position and --top-k look at a prompt"),
    (["{m}", "--heads", "--top-k", "3"], "--position and --top-k look at a prompt"),
    (["{m}", "--prompt", "ab", "--top", "20"], "--top goes with --embeddings"),
    (["{m}", "--heads", "--top", "20"], "--top goes with --embeddings"),
])
def test_cli_bad_input_is_one_line_and_exit_2(model_dir, args, message):
    args = [a.replace("{m}", str(model_dir / "tiny")) for a in args]
    r = run(["inspect", *args, "--models-dir", str(model_dir)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.output


def test_cli_lens_ablation_embeddings_and_heads(model_dir, small_corpus):
    m = str(model_dir / "tiny")
    r = run(["inspect", m, "--prompt", "To be, or", "--lens", "--ablate", "--json", "-k", "3", "--position", "4"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [row["layer"] for row in doc["lens"]] == [0, 1, 2] and all(len(row["top"]) == 3 for row in doc["lens"])
    assert [row["after"] for row in doc["lens"]] == ["embeddings", "layer 0", "layer 1"]  # (as the text and the heatmaps number them)
    assert doc["lens"][-1]["actual"][0] >= 1 and len(doc["ablation"]["deltas"]) == 5
    r = run(["inspect", m, "--prompt", "To be, or", "--lens", "--ablate"])
    assert r.exit_code == 0 and "Logit lens" in r.stdout and "layer 1" in r.stdout and "most needed" in r.stdout
    r = run(["inspect", m, "--embeddings", "--top", "20", "--near", "e", "--corpus", str(small_corpus), "--json"])
    doc = json.loads(r.stdout)
    assert len(doc["embeddings"][0]["points"]) == 20 and doc["embeddings"][0]["points"][0]["char"] == " "
    assert len(doc["near"]) == 10
    r = run(["inspect", m, "--embeddings", "--top", "20"])  # the fixture's corpus is not on disk: a note
    assert r.exit_code == 0 and "vocabulary order" in r.stdout and "embedding map" in r.stdout
    r = run(["inspect", m, "--heads", "--corpus", str(small_corpus)])
    assert r.exit_code == 0 and len([x for x in r.stdout.splitlines() if x.startswith("L")]) == 4
    for args, message in ((["--heads"], "corpus"), (["--embeddings", "--near", "€"], "vocabulary"), (["--lens"], "--prompt")):
        r = run(["inspect", m, *args])
        assert r.exit_code == 2 and r.stderr.startswith("error: ") and message in r.stderr and len(r.stderr.strip().splitlines()) == 1

# ------------------------------------------------------------------ app screen
def shown_lines(widget) -> str:
    """What a line-API widget draws, as plain text, one line a line (Widget.render_line)."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height))


def lines_on_screen(screen, widget, height: int) -> set[int]:
    """The lines of ``widget`` the screen shows (under column 3), counted from the widget's top."""
    from textual.errors import NoWidget

    lines = set()
    for y in range(height):
        try:
            at, region = screen.get_widget_at(3, y)
        except NoWidget:
            continue
        if at is widget:
            lines.add(y - region.y)
    return lines


def inspector_on(text: str, folder=None, tok=None):
    """An inspector screen, and an app that opens it: over a tiny 3-layer, 2-head model, or over the model
    folder given (loaded on its first pass, as the app's is)."""
    from textual.app import App

    from tinygpt_tui.app.inspector import InspectorScreen

    if folder is None:
        model, tok = tiny(n_layer=3, n_head=2)
        screen = InspectorScreen(None, tok, text, model=model, min_interval=0.0)
    else:
        screen = InspectorScreen(folder, tok, text, min_interval=0.0)

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)

    return screen, Host()


async def test_inspector_screen_renders_and_follows_keys():
    from tests.test_app import footer_keys, wait_for

    screen, host = inspector_on("林黛玉 the honou")
    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        assert screen.view.position == len("林黛玉 the honou") - 1
        title = lambda: " ".join(shown_lines(screen.query_one("#insp-title")).split())  # noqa: E731
        assert 'position 12: "u" (last)' in title()
        # at 80 columns the footer has every key that moves or opens a view (a, g: in the keys panel)
        wanted = {"esc", "←→", "↑↓", "[]", "l", "x", "e", "h", "PgDn"}
        assert await wait_for(pilot, lambda: {k.split()[0] for k in footer_keys(screen)} >= wanted), footer_keys(screen)
        heat = screen.query_one("#insp-map")  # (the footer and the heatmap draw after the first frame: wait for them)
        assert await wait_for(pilot, lambda: "林黛玉·the·honou" in shown_lines(heat)), shown_lines(heat)
        plain = shown_lines(heat)
        assert "h1" in plain and "avg" in plain
        await pilot.press("right_square_bracket")
        assert screen.layer_index == 1
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert screen.layer_index == 2
        await pilot.press("down")
        assert screen.head_index == 1
        await pilot.press("a")
        assert screen.head_index is None
        await pilot.press("g")
        await pilot.pause()
        assert screen.all_layers and "all" in shown_lines(heat)
        await pilot.press("left", "left")
        assert screen.view.position == len("林黛玉 the honou") - 3 and screen.view.actual.char == "o"
        await pilot.press("home", "right", "right", "right")
        assert 'position 3: " " · ' in title()  # the space quoted, not drawn as a separator
        await pilot.press("home")
        assert screen.view.position == 0
        n = screen.computations
        screen.update_context("林黛玉 the honour")
        assert await wait_for(pilot, lambda: screen.computations > n, timeout=30)
        assert screen.view.chars[-1] == "r" and screen.view.position == 0
        await pilot.press("end")
        assert screen.view.position == len("林黛玉 the honour") - 1
        await pilot.press("a")  # rows h0, h1, avg: labels 4 cells wide; 林 is at x 4-5, 黛 at 6-7
        # in a short terminal the heatmap starts below the fold: PgDn scrolls to it, and the footer says so
        await pilot.resize_terminal(80, 14)
        shown = {key for key, b in screen.active_bindings.items() if b.binding.show}
        assert "pagedown" in shown
        body = screen.query_one("#insp-body")
        assert await wait_for(pilot, lambda: body.max_scroll_y > 0, timeout=5), body.virtual_size
        await pilot.press("pagedown")
        assert await wait_for(pilot, lambda: body.scroll_y > 0, timeout=5)
        await pilot.press("pageup")
        assert await wait_for(pilot, lambda: body.scroll_y == 0, timeout=5)
        await pilot.resize_terminal(80, 24)
        heat.scroll_visible(animate=False)  # at 80x24 the heatmap starts below the fold
        await pilot.pause()
        await pilot.click("#insp-map", offset=(7, 3))
        assert screen.view.position == 1 and screen.view.actual.char == "玉"
        # a burst of updates (as while generating) is throttled: few passes, the newest text wins
        screen.min_interval = 0.15
        n = screen.computations
        text = "林黛玉 the honour"
        for ch in " of all the house":  # 17 updates in a burst
            text += ch
            screen.update_context(text)
        assert await wait_for(pilot, lambda: not screen.computing and "".join(screen.view.chars) == text[-24:], timeout=30)
        assert screen.analysis.truncated == max(0, len(text) - 24)
        assert 1 <= screen.computations - n <= 2  # the first text, then the newest
        await pilot.press("escape")
        assert pilot.app.screen is not screen


async def test_the_inspector_opens_with_the_query_position_s_block_of_the_heatmap_in_view(tmp_path):
    """At 80x24 a full context of 128 wraps the heatmap into blocks of columns: the inspector opened on the first
    (positions 0-69) while the query, the last position, is in the one below, its rows off the screen. It opens
    scrolled to the query's block, its nearest keys beside it; Home brings position 0's block back."""
    from conftest import make_model
    from tests.test_app import wait_for
    from tinygpt_tui.engine.folder import load_model

    folder = make_model(tmp_path / "models", "m", n_head=4, block_size=128)
    text = ("First Citizen: before we proceed any further, hear me speak. All: speak, speak. " * 3)[:200]
    screen, host = inspector_on(text, folder, load_model(folder).tokenizer)

    def in_view() -> list[str]:
        body, heat = screen.query_one("#insp-body"), screen.query_one("#insp-map")
        lines = shown_lines(heat).split("\n")
        return [ln for y, ln in enumerate(lines) if 0 <= heat.virtual_region.y + y - body.scroll_offset.y < body.scrollable_content_region.height]

    def block_in_view(position: int) -> bool:  # its ruler marks the position, then its characters and a line a row
        shown = in_view()
        at = [i for i, ln in enumerate(shown) if re.search(rf"(^|\s){position}(\s|$)", ln)]
        return bool(at) and [ln.split()[0] for ln in shown[at[0] + 2 : at[0] + 7]] == ["h0", "h1", "h2", "h3", "avg"]

    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        assert screen.view.position == 127 and len(screen.view.chars) == 128
        assert await wait_for(pilot, lambda: block_in_view(127), timeout=10), in_view()
        await pilot.press("home")
        assert await wait_for(pilot, lambda: block_in_view(0), timeout=10), in_view()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_inspector_opens_with_the_bars_and_the_query_s_block_both_on_screen(tmp_path, size):
    """At 80x24 the inspector opened scrolled to the query's heatmap block, the end of its body: its top showed the
    tail of the rank line ("temperature 1)") and the next-character bars, what it is for, were above (PgUp)."""
    from conftest import make_model
    from tests.test_app import wait_for
    from tinygpt_tui.engine.folder import load_model

    folder = make_model(tmp_path / "models", "m", n_head=4, block_size=128)
    text = ("First Citizen: before we proceed any further, hear me speak. All: speak, speak. " * 3)[:200]
    screen, host = inspector_on(text, folder, load_model(folder).tokenizer)

    def on_screen(wid: str) -> set[int]:  # the lines of widget #wid the screen shows (under column 3)
        return lines_on_screen(screen, screen.query_one(f"#{wid}"), size[1])

    def query_block() -> range:  # the heatmap's lines for the query's block: its ruler, its characters, h0-h3, avg
        ruler = next(i for i, ln in enumerate(shown_lines(screen.query_one("#insp-map")).split("\n")) if re.search(r"\b127\b", ln))
        return range(ruler, ruler + 7)

    async with host.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None and screen.view.position == 127, timeout=30)
        k = screen.shown_k()
        assert await wait_for(pilot, lambda: on_screen("insp-map") >= set(query_block()), timeout=10), (on_screen("insp-map"), query_block())
        assert on_screen("insp-probs-title") == {0} and on_screen("insp-probs") == set(range(k)), on_screen("insp-probs")
        assert k == (5 if size[1] < screen.ROOMY else 10)


@pytest.mark.parametrize("size", [(60, 18), (80, 24), (120, 40)])
async def test_the_inspector_s_rank_line_is_one_whole_line_on_screen_at_every_size(tmp_path, size):
    """At 60x18 the rank line wrapped to two lines, and the bars' box (at most half the screen) cut the second:
    "... the last character "u" ranks #1 at" and no figure. It is shortened to fit its width first."""
    from conftest import make_model
    from tests.test_app import wait_for
    from tinygpt_tui.engine.folder import load_model

    folder = make_model(tmp_path / "models", "m", n_head=4, block_size=128)
    text = ("First Citizen: before we proceed any further, hear me speak. All: speak, speak. " * 3)[:200]
    screen, host = inspector_on(text, folder, load_model(folder).tokenizer)
    screen.temperature = 0.8  # (the panel's default: a T=1 figure beside, the longest line)
    async with host.run_test(size=size) as pilot:
        rank = screen.query_one("#insp-rank")
        for key in ("end", "left"):  # the last position (one step earlier) and one inside the context (next in it)
            await pilot.press(key)
            assert await wait_for(pilot, lambda: screen.view is not None and "%" in shown_lines(rank), timeout=30)
            await pilot.pause()
            shown = lines_on_screen(screen, rank, size[1])
            line = shown_lines(rank).rstrip()  # one line at each size, the figures in it, on screen whole
            assert shown == {0} and re.search(r'" ranks #\d+ at \d+\.\d\d% \((T=1 |)\d+\.\d\d%( at temperature 1|)\)$', line), (shown, line)


async def test_the_inspector_s_title_wraps_between_its_parts_never_inside_one():
    """At 80x24 over the Red Chamber model the title wrapped inside "head 0/3": "... · layer 0/5 · head" then "0/3 · T=0.8"."""
    from tests.test_app import wait_for

    screen, host = inspector_on("林黛玉 the honou")
    screen.temperature = 0.8  # (the panel's default: " · T=0.8" at its end)
    async with host.run_test(size=(80, 24)) as pilot:
        title = screen.query_one("#insp-title")
        assert await wait_for(pilot, lambda: screen.view is not None and "T=0.8" in shown_lines(title), timeout=30)
        for keys in ((), ("a",), ("g",)):  # head 0/1, all heads, all layers
            await pilot.press(*keys)
            for width in range(60, 100):
                await pilot.resize_terminal(width, 24)
                await pilot.pause()
                lines = [ln.strip() for ln in shown_lines(title).splitlines()]
                assert len(lines) >= 1 and not any(ln.endswith(("layer", "head", "all")) or ln[:1].isdigit() for ln in lines), (width, lines)
            assert "all" in shown_lines(title) or not keys


async def test_the_inspector_s_keys_panel_lists_each_pair_of_keys_once():
    """The keys panel (Ctrl+P, Keys) listed "↑↓ Head" and under it "↓ Head", "←→ Pos" and "→ Position", "[] Layer"
    and "] Layer", and "pgup Scroll up" beside the footer's "PgDn More": one row a pair, named as the footer names it."""
    from tests.test_app import wait_for

    screen, host = inspector_on("林黛玉 the honou")
    async with host.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        host.action_show_help_panel()
        assert await wait_for(pilot, lambda: screen.query("BindingsTable") and "Head" in shown_lines(screen.query_one("BindingsTable")), timeout=10)
        rows = [ln.split() for ln in shown_lines(screen.query_one("BindingsTable")).splitlines() if ln.strip()]
        keys = [r[0] for r in rows]
        assert {"↑↓", "←→", "[]", "PgUp", "PgDn", "home", "end"} <= set(keys), keys
        assert not {"↑", "↓", "←", "→", "[", "]", "pgup", "pgdn"} & set(keys), keys
        assert ["↑↓", "Head"] == rows[keys.index("↑↓")][:2] and ["←→", "Pos"] == rows[keys.index("←→")][:2]


async def test_inspector_title_quotes_the_query_character_as_the_heatmap_shows_it():
    """The title JSON-escaped the query: a backslash (or a BPE byte token's \\xe2) showed doubled, "\\\\"."""
    from textual.app import App

    from tests.test_app import wait_for
    from tinygpt_tui.app.inspector import InspectorScreen

    tok = CharTokenizer.from_text("a b\\")
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()
    screen = InspectorScreen(None, tok, "a b\\", model=model, min_interval=0.0)

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)

    async with Host().run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        title = lambda: " ".join(shown_lines(screen.query_one("#insp-title")).split())  # noqa: E731
        assert 'position 3: "\\" (last)' in title(), title()
        await pilot.press("left", "left")
        assert 'position 1: " " · ' in title(), title()


async def test_inspector_deeper_views_follow_the_position():
    from tests.test_app import wait_for

    screen, host = inspector_on("林黛玉 the honou")
    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        panel = screen.query_one("#insp-deeper")
        await pilot.press("l")
        assert await wait_for(pilot, lambda: "layer 2" in shown_lines(panel), timeout=5)  # layers 0..2
        await pilot.press("left")  # the lens follows: the character that came next is ranked at each layer
        assert await wait_for(pilot, lambda: "u #" in shown_lines(panel), timeout=5)
        await pilot.press("x")
        assert await wait_for(pilot, lambda: "most needed" in shown_lines(panel), timeout=30)
        await pilot.press("e")
        assert await wait_for(pilot, lambda: "embedding map" in shown_lines(panel), timeout=30)
        await pilot.press("h")  # no model folder, so no corpus: said in one line
        assert await wait_for(pilot, lambda: "no head hints" in shown_lines(panel), timeout=30)
        await pilot.press("h")
        assert await wait_for(pilot, lambda: not shown_lines(panel).strip(), timeout=5)


async def test_a_deeper_view_opened_after_paging_down_shows_from_its_first_line():
    """After PgDn the body kept its offset when l, x, e or h opened a view: the view's top was above the screen and
    an orphaned line of the bars ("temperature 1)") was the first shown. The view is brought in from its first
    line; closed again, the body goes back to the top."""
    from textual.containers import VerticalScroll

    from tests.test_app import wait_for

    screen, host = inspector_on("林黛玉 the honou, the honour of it all")
    async with host.run_test(size=(80, 18)) as pilot:  # (a short terminal: the body scrolls)
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        body, panel = screen.query_one("#insp-body", VerticalScroll), screen.query_one("#insp-deeper")
        await pilot.press("g")  # (all layers: taller than the screen)
        assert await wait_for(pilot, lambda: body.max_scroll_y > 0, timeout=10)
        await pilot.press("pagedown", "pagedown")
        assert await wait_for(pilot, lambda: body.scroll_offset.y > 0)
        await pilot.press("l")
        assert await wait_for(pilot, lambda: "layer 2" in shown_lines(panel), timeout=5)
        assert await wait_for(pilot, lambda: 0 <= panel.virtual_region.y - body.scroll_offset.y < body.size.height), \
            (panel.virtual_region, body.scroll_offset)
        await pilot.press("l")
        assert await wait_for(pilot, lambda: body.scroll_offset.y == 0)


async def test_inspector_deeper_views_wait_for_a_context_the_model_can_read():
    """With no analysis (the first pass still running, or a context of characters the model does not know)
    x took the app down: the ablation's key asked for the position of an analysis that was not there."""
    from tests.test_app import wait_for

    screen, host = inspector_on("€€€")
    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.computations > 0, timeout=30)
        assert screen.analysis is None and "vocabulary" in screen.error
        for key in ("x", "l", "e", "h", "x", "left", "home", "g"):
            await pilot.press(key)
        await pilot.pause()
        assert pilot.app.screen is screen and screen.deeper == "ablation"
        screen.update_context("the honou")  # a readable context: the ablation it was asked for now runs
        panel = screen.query_one("#insp-deeper")
        assert await wait_for(pilot, lambda: "most needed" in shown_lines(panel), timeout=30), shown_lines(panel)


async def test_inspector_embedding_map_without_the_corpus_places_the_text_on_screen():
    """Without the model's corpus the map took the 300 'most frequent' characters of the text on screen, and
    filled the rest in vocabulary order: for the Chinese model, rare characters the text never used (ㄚ, 丙,
    亿). It places the text's own characters, and says so."""
    from tests.test_app import wait_for

    text = "the honou"
    screen, host = inspector_on(text)
    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        assert screen.tokenizer.vocab_size > len(set(text))  # (the vocabulary has characters the text lacks)
        panel = screen.query_one("#insp-deeper")
        await pilot.press("e")
        assert await wait_for(pilot, lambda: "embedding map" in shown_lines(panel), timeout=30)
        shown = shown_lines(panel)
        assert not set("林黛玉宝") & set(shown), shown  # (in the vocabulary, not in the text)
        assert "text on screen" in shown and f"the {len(set(text))} most frequent" in shown, shown


def tiny_model_on(folder, **corpus):
    """A tiny model whose config.json says it was trained on this corpus (name, path); its tokenizer."""
    import json

    from tests.conftest import make_tiny_model

    _, tok = make_tiny_model(folder, TEXT)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["corpus"].update(corpus)
    (folder / "config.json").write_text(json.dumps(cfg))
    return tok


async def head_hints(folder, tok, want: str) -> str:
    """The inspector's deeper panel after `h` (head hints), once it shows ``want`` (or gives up waiting)."""
    from tests.test_app import wait_for

    screen, host = inspector_on("the honou", folder, tok)
    async with host.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        panel = screen.query_one("#insp-deeper")
        await pilot.press("h")
        await wait_for(pilot, lambda: want in shown_lines(panel), timeout=30)
        return shown_lines(panel)


async def test_inspector_head_hints_say_how_to_get_the_missing_corpus(tmp_path, monkeypatch):
    """A shipped model's corpus is the catalog's, not fetched until asked: the hints said only "the model's
    corpus is not here". They say how to fetch it."""
    (tmp_path / "corpora").mkdir()
    monkeypatch.setenv("TINYGPT_CORPORA_DIR", str(tmp_path / "corpora"))  # (nothing fetched)
    folder = tmp_path / "models" / "bard"
    tok = tiny_model_on(folder, name="shakespeare")  # (trained on the catalog's Tiny Shakespeare, as the shipped model)
    shown = await head_hints(folder, tok, "no head hints")
    assert "no head hints" in shown and "tinygpt corpus fetch shakespeare" in " ".join(shown.split()), shown


@pytest.mark.parametrize("where", ["book.md", "books"])
async def test_inspector_head_hints_read_the_file_or_folder_it_was_trained_on(tmp_path, where):
    """A model trained on a file by its path (not a catalog or added corpus) or on a folder: the hints said
    "corpus not found: book", looking for its name among the corpora, though the file was there."""
    (tmp_path / "books").mkdir()
    for f in ("book.md", "books/a.txt", "books/b.txt"):
        (tmp_path / f).write_text(TEXT * 20, encoding="utf-8")
    folder = tmp_path / "models" / "mine"
    tok = tiny_model_on(folder, name=where.split(".")[0], path=str(tmp_path / where))
    shown = await head_hints(folder, tok, "L0 h0")
    assert "L0 h0" in shown, shown


async def test_inspector_all_layers_title_is_whole_at_80_columns():
    """The all-layers heatmap's title says what its rows are; at 80 columns it wraps, never cut."""
    from tests.test_app import wait_for

    screen, host = inspector_on("林黛玉 the honou")
    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        title = screen.query_one("#insp-map-title")
        said = lambda: " ".join(shown_lines(title).split())  # noqa: E731
        # the footer has no room for g at 80 columns: the title names it
        assert await wait_for(pilot, lambda: "(g: all layers)" in said(), timeout=5), said()
        await pilot.press("g")
        assert await wait_for(pilot, lambda: "Attention, all layers" in said(), timeout=5), said()
        assert "'all' the mean of every head (g: one layer)" in said() and "…" not in said()
        assert "√ scale" in said()  # the legend still follows


@pytest.mark.parametrize("size, note", [((80, 24), "cell: share of the row; rows sum to 1"),
                                        ((200, 40), "a cell: its row's share of attention on that character; a row sums to 1")])
async def test_inspector_heatmap_title_says_what_a_cell_is_where_it_fits(size, note):
    """The heatmap's title said what its rows are, never what a cell is: the note follows the legend where
    the line has room (shorter at 80 columns), and no line of the title is cut or wrapped for it."""
    from tests.test_app import wait_for

    screen, host = inspector_on("林黛玉 the honou")
    async with host.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        title = screen.query_one("#insp-map-title")
        assert await wait_for(pilot, lambda: "√ scale" in shown_lines(title), timeout=5), shown_lines(title)
        lines = shown_lines(title).splitlines()
        assert any(ln.rstrip().endswith(note) for ln in lines), lines
        assert not any("rows sum to 1" in ln and "√ scale" not in ln for ln in lines), lines  # (on the legend's line)
        await pilot.press("g")
        assert await wait_for(pilot, lambda: "all layers" in shown_lines(title), timeout=5)
        assert "rows sum to 1" in shown_lines(title) or "a row sums to 1" in shown_lines(title), shown_lines(title)


def test_the_cli_heading_says_what_a_cell_is_where_it_fits():
    from tinygpt_tui.cli.inspect import legend, with_cell_note

    key = legend(0.5, False)
    assert with_cell_note(key, 80).plain.endswith("   cell: share of the row; rows sum to 1")
    assert "a cell: its row's share of attention on that token; a row sums to 1" in with_cell_note(key, 200, "token").plain
    assert with_cell_note(key, key.cell_len + 10).plain == key.plain  # no room: left out, never wrapped


async def test_inspector_looks_most_at_keeps_each_item_whole_at_80_columns():
    """At 80 columns the "looks most at" line wrapped inside an item: "o@5" on one line, "0.02" on the next."""
    from tests.test_app import wait_for

    screen, host = inspector_on("the honour of the king and the queen")
    async with host.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        summary = screen.query_one("#insp-summary")
        assert await wait_for(pilot, lambda: "looks most at" in shown_lines(summary), timeout=5)
        lines = [ln for ln in shown_lines(summary).splitlines() if ln.strip()]
        assert len(lines) == 1 and re.search(r"@\d+ \d\.\d\d$", lines[0].rstrip()), lines


async def test_inspector_all_layers_line_agrees_in_number():
    """With g (all layers at once) the line under the heatmap read "all layers and heads looks most at": a
    plural subject with a singular verb, the kind of slip that makes a newcomer doubt the rest."""
    from tests.test_app import wait_for

    screen, host = inspector_on("the honour of the king and the queen")
    async with host.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        summary = screen.query_one("#insp-summary")
        assert await wait_for(pilot, lambda: "looks most at" in shown_lines(summary), timeout=5)
        await pilot.press("g")
        assert await wait_for(pilot, lambda: "all layers and heads look most at: " in shown_lines(summary), timeout=5), shown_lines(summary)


async def test_inspector_looks_most_at_fits_once_the_body_scrolls():
    """The "looks most at" line was fitted to the width its widget had before the first pass: no scrollbar yet.
    Once the heatmaps filled the body, its scrollbar took two columns and the line wrapped inside an item
    (shakespeare at 80x24 after a 500-character generation: "u@121" on one line, "0.04" on the next)."""
    from textual.app import App

    from tests.test_app import wait_for
    from tinygpt_tui.app.inspector import InspectorScreen
    from tinygpt_tui.cli.inspect import top_attended

    model, tok = tiny(block=64, n_layer=2, n_head=2)
    text = "the honour of the house is the honour of all. the king and the queen"
    v = analyze(model, tok, text).at(-1, 5)
    prefix = "layer 0 head 0 looks most at: "
    width = top_attended(v, v.attention[0][0], 3, prefix).cell_len  # three items exactly fill the line, without a scrollbar
    screen = InspectorScreen(None, tok, text, model=model, min_interval=0.0)

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)

    async with Host().run_test(size=(width + 4, 14)) as pilot:  # (the border and the padding: 4 columns)
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        body, summary = screen.query_one("#insp-body"), screen.query_one("#insp-summary")
        assert await wait_for(pilot, lambda: body.max_scroll_y > 0 and "looks most at" in shown_lines(summary), timeout=5)
        await pilot.pause()
        lines = [ln for ln in shown_lines(summary).splitlines() if ln.strip()]
        assert len(lines) == 1 and re.search(r"@\d+ \d\.\d\d$", lines[0].rstrip()), lines


def test_cli_head_hints_say_how_many_windows_they_measured(model_dir, small_corpus, tmp_path):
    """The heading said "16 windows" however short the validation split: 200 characters give a 16-character
    model only 5 windows (20 characters of validation, 5 starting places)."""
    m = str(model_dir / "tiny")
    short = tmp_path / "short.txt"
    short.write_text(small_corpus.read_text(encoding="utf-8")[:200], encoding="utf-8")
    for corpus, want in ((small_corpus, "over 16 windows of"), (short, "over 5 windows of")):
        r = run(["inspect", m, "--heads", "--corpus", str(corpus)])
        assert r.exit_code == 0 and want in r.stdout, r.output
    r = run(["inspect", m, "--heads", "--corpus", str(short), "--json"])
    assert {h["windows"] for h in json.loads(r.stdout)["heads"]} == {5}


def test_a_bpe_models_deeper_views_say_tokens_not_characters(tmp_path, small_corpus):
    """A BPE model's map places its most frequent tokens and the ablation replaces one token at a time; both
    said "characters" (the bars and heatmaps already said tokens)."""
    from tinygpt_tui.tokenizer import BpeTokenizer

    text = small_corpus.read_text(encoding="utf-8")
    make_tiny_model(tmp_path / "bee", text, tokenizer=BpeTokenizer.train(text, 300))
    m = str(tmp_path / "bee")
    r = run(["inspect", m, "--prompt", "To be, or not", "--ablate"])
    out = " ".join(r.stdout.split())  # (rich wraps at 80 columns)
    assert r.exit_code == 0, r.output
    assert "each token replaced by the average embedding" in out and "character" not in out, out
    r = run(["inspect", m, "--embeddings", "--top", "20"])  # (no corpus beside the folder: vocabulary order, said)
    out = " ".join(r.stdout.split())
    assert r.exit_code == 0, r.output
    assert "tokens in vocabulary order" in out and "the 20 most frequent tokens" in out and "character" not in out, out


def test_lens_rows_are_named_like_the_heatmaps_layers(model_dir):
    """The heatmaps number a 2-layer model's layers 0..1; the lens said "layer 1", "layer 2" for them."""
    m = str(model_dir / "tiny")
    r = run(["inspect", m, "--prompt", "To be, or", "--lens"])
    assert r.exit_code == 0, r.output
    labels = [g.group(0) for x in r.stdout.splitlines() if (g := re.match(r"embeddings|layer \d+", x))]
    assert labels == ["embeddings", "layer 0", "layer 1"], r.stdout
    r = run(["inspect", m, "--prompt", "To be, or"])  # the heatmaps of the same model
    assert "Layer 1 of 0..1" in r.stdout and "Layer 2" not in r.stdout


def test_ablation_lists_as_needed_only_what_lowers_the_answer_and_keys_its_colours():
    """"most needed" listed every character by its change in log p, lowest first, so one whose loss raised the
    answer ("O@4 +0.00") was called needed; the context's red and blue had no key, the numbers no scale."""
    from tinygpt_tui.cli.inspect import ablation_text
    from tinygpt_tui.engine.lens import Ablation

    abl = Ablation(position=3, target="e", logprob=-0.5, deltas=[0.3, -1.2, 0.0, -0.1])
    plain = ablation_text(list("abcd"), abl, True, 200).plain
    needed = plain.split("most needed")[1]
    assert "b@1 -1.20" in needed and "d@3 -0.10" in needed and "+" not in needed and "c@2" not in needed, plain
    assert "(-0.69: p halved)" in plain and "red: the answer leaned on it" in plain and "blue" in plain
    assert "red:" not in ablation_text(list("abcd"), abl, False, 200).plain  # (no colours drawn: no key to them)
    raised = Ablation(position=1, target="e", logprob=-0.5, deltas=[0.2, 0.1])
    assert ablation_text(list("ab"), raised, False, 200).plain.endswith("none")


def test_lens_says_what_its_first_column_is_and_why_the_embeddings_row_repeats_the_query(model_dir):
    """The lens's first column (the character that came next, its rank and probability) had no label, and the
    embeddings row of a tied model names the query character itself (b after b at 100%), unexplained."""
    from tinygpt_tui.cli.inspect import lens_text

    r = run(["inspect", str(model_dir / "tiny"), "--prompt", "To be, or", "--lens", "--position", "3"])
    out = " ".join(r.stdout.split())  # (rich wraps at 80 columns)
    assert r.exit_code == 0, r.output
    assert "each row: e (next in the context) #rank probability, then the top 10" in out, out
    assert "embeddings: before any layer (tied weights: it mostly names the character itself)" in out, out
    model, tok = tiny(n_layer=1)
    model.cfg.tie_weights = False  # (the text follows the flag it is given: the model's own)
    a = analyze(model, tok, "the honou")
    plain = lens_text(logit_lens(a, -1, 3), a.at(-1), 200, tied=False).plain
    assert "tied" not in plain and "next in the context" not in plain  # (the last position: nothing came next)


def test_cli_head_hints_say_how_to_read_them(model_dir, small_corpus):
    """--heads printed "distance 6.9 · previous 39% · ..." under a heading that called them all "shares of
    attention" (distance is characters back), and said nothing of what each share is of."""
    r = run(["inspect", str(model_dir / "tiny"), "--heads", "--corpus", str(small_corpus)])
    out = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "distance: how far back it looks (characters, mean)" in out, out
    assert "its share of attention on the character before" in out and "shares of attention" not in out


def test_embedding_map_says_what_close_means(model_dir, small_corpus):
    """The map placed the characters with no word on how to read it: near each other, used alike."""
    r = run(["inspect", str(model_dir / "tiny"), "--embeddings", "--top", "20", "--corpus", str(small_corpus)])
    out = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "close: characters the model uses alike" in out, out


async def test_inspector_head_hints_say_how_to_read_them(tmp_path):
    """The app's head hints showed "L0 h0: distance 6.9 · previous 39% · ..." with no word on what a number is."""
    (tmp_path / "book.md").write_text(TEXT * 20, encoding="utf-8")
    folder = tmp_path / "models" / "mine"
    tok = tiny_model_on(folder, name="book", path=str(tmp_path / "book.md"))
    shown = " ".join((await head_hints(folder, tok, "L0 h0")).split())
    assert "L0 h0" in shown and "distance: how far back it looks (characters, mean)" in shown, shown


async def test_inspector_head_hints_on_chinese_say_clause_start(tmp_path):
    """A Chinese book has no spaces between words: the hints' "word start" was a whole clause's first character."""
    (tmp_path / "book.md").write_text("林黛玉宝玉黛玉林宝玉.\n" * 300, encoding="utf-8")
    folder = tmp_path / "models" / "mine"
    tok = tiny_model_on(folder, name="book", path=str(tmp_path / "book.md"))
    shown = " ".join((await head_hints(folder, tok, "L0 h0")).split())
    assert "L0 h0" in shown and "clause start" in shown and "word start" not in shown, shown


async def test_the_first_pass_paces_the_next_by_the_pass_not_the_model_load(tmp_path, monkeypatch):
    """The first pass loads the model; a slow load (torch's import and the weights: about 5 s on a busy
    machine) was counted as the pass, and the view waited 3x that before following the streamed text."""
    from tests.conftest import make_tiny_model
    from tests.test_app import wait_for
    from tinygpt_tui.engine import folder as ckpt

    folder = tmp_path / "models" / "bard"
    _, tok = make_tiny_model(folder, TEXT)
    load = ckpt.load_model

    def slow_load(*args, **kwargs):  # a load that takes 2 s of wall clock, as a cold one does
        import time

        time.sleep(2.0)
        return load(*args, **kwargs)

    monkeypatch.setattr(ckpt, "load_model", slow_load)
    screen, host = inspector_on("the honou", folder, tok)
    async with host.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        assert screen.interval() < 2.0, screen.interval()  # 3x the pass alone (milliseconds), not 3x the load (6 s)


async def test_the_first_view_says_it_waits_for_the_model_s_load_then_for_the_pass(tmp_path, monkeypatch):
    """The first F2 on a big model (the Red Chamber's: about 5 s) said "computing…" all through its load."""
    import threading

    from tests.conftest import make_tiny_model
    from tests.test_app import wait_for
    from tinygpt_tui.engine import folder as ckpt

    folder = tmp_path / "models" / "bard"
    _, tok = make_tiny_model(folder, TEXT)
    load, loaded = ckpt.load_model, threading.Event()
    monkeypatch.setattr(ckpt, "load_model", lambda *a, **k: loaded.wait(30) and load(*a, **k))
    screen, host = inspector_on("the honou", folder, tok)
    async with host.run_test(size=(120, 40)) as pilot:
        status = screen.query_one("#insp-status")
        assert await wait_for(pilot, lambda: "loading the model…" in shown_lines(status))
        assert "computing" not in shown_lines(status)
        loaded.set()
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        await pilot.pause()
        assert "loading the model" not in shown_lines(status)


async def pinned_then_updated(tok, text: str, new_text: str, trimmed: int = 0):
    """An inspector over a 1-layer model of context 24 on ``text``, the query pinned five positions back, then
    ``update_context(new_text, trimmed)``: (the characters from the query on before, the view after)."""
    from textual.app import App

    from tests.test_app import wait_for
    from tinygpt_tui.app.inspector import InspectorScreen

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=24, n_layer=1, n_head=2, n_embd=32)).eval()
    screen = InspectorScreen(None, tok, text, model=model, min_interval=0.0)

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)

    async with Host().run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: screen.view is not None, timeout=30)
        await pilot.press("left", "left", "left", "left", "left")
        before = screen.view.chars[screen.view.position:]
        n = screen.computations
        screen.update_context(new_text, trimmed)
        assert await wait_for(pilot, lambda: screen.computations > n and not screen.computing, timeout=30)
        return before, screen.analysis, screen.view


async def test_a_query_pinned_on_a_bpe_token_stays_on_it_as_the_window_slides(small_corpus):
    """While the text streams the window slides; the view kept the query on the same character by moving it
    back as many positions as characters fell out, but a BPE position is a token of several characters: it
    jumped tokens back (from "ou" of " country" to "is" of " his", two tokens earlier)."""
    from tinygpt_tui.tokenizer import BpeTokenizer

    text = small_corpus.read_text(encoding="utf-8")
    # three more characters: the window slides by a few tokens
    before, analysis, view = await pinned_then_updated(BpeTokenizer.train(text, 300), text[1000:1200], text[1000:1203])
    assert analysis.truncated > 0 and view.chars[view.position:][: len(before)] == before


async def test_a_pinned_query_stays_on_its_character_when_the_context_is_trimmed(small_corpus):
    """Past 100,000 characters the generate screen cuts its context's start; the window's offset then fell
    by the characters cut, which read as the window sliding backwards, and the pinned query jumped to the end."""
    text = small_corpus.read_text(encoding="utf-8")[:400]
    # 300 characters cut, three more streamed
    before, _, view = await pinned_then_updated(CharTokenizer.from_text(text + "xyz"), text, text[300:] + "xyz", trimmed=300)
    assert view.position == 23 - 5 - 3  # three back, as the window slid three characters on
    assert view.chars[view.position:][: len(before)] == before


def test_an_embedding_map_of_the_whole_vocabulary_says_all_not_most_frequent(tmp_path, small_corpus):
    """The shipped Shakespeare model's map said "the 65 most frequent characters": its whole vocabulary."""
    text = small_corpus.read_text(encoding="utf-8")
    make_tiny_model(tmp_path / "m", text)
    vocab = len(set(text))
    for top, said in ((vocab + 10, f"all {vocab} characters"), (vocab, f"all {vocab} characters"), (5, "the 5 most frequent characters")):
        r = run(["inspect", str(tmp_path / "m"), "--embeddings", "--top", str(top)])
        out = " ".join(r.stdout.split())
        assert r.exit_code == 0 and said in out and ("most frequent" in out) == (top < vocab), (top, out)
