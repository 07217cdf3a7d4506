"""Experiments written down: a small TOML file (``tinygpt experiment NAME --file grid.toml``), and the
ready-made lessons shipped in tinygpt_tui/lessons/*.toml, each teaching one idea with a short text
shown beside its results (``tinygpt lesson NAME``).

    title = "Position encodings"
    text = '''What the learner should see.'''
    corpus = "shakespeare"
    minutes = 2.0                    # or max_steps = 500: each member's budget
    seeds = 1
    [settings]                       # every member
    n_layer = 2
    [vary]                           # one or two settings, each a list: the grid ...
    pos_encoding = ["learned", "rope"]
    # ... or members by name:  [[members]]  name = "bigram"  block_size = 1
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from tinygpt_tui.engine.experiment import KINDS, Spec, check_budget, key_name, parse_value
from tinygpt_tui.engine.files import MiB, read_text
from tinygpt_tui.errors import SettingsError

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"


def read_spec_file(path, name: str | None = None) -> Spec:
    """An experiment (or a lesson) from a small TOML file: title, text, corpus, minutes | max_steps, seeds, seed,
    [settings] (every member), and [vary] (one or two settings, each a list) or [[members]] (each with a name)."""
    text = read_text(Path(path), "experiment file", MiB, SettingsError)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{Path(path).name} is not valid TOML: {e}") from None
    except RecursionError:  # arrays or tables nested hundreds deep
        raise SettingsError(f"{Path(path).name} is not valid TOML: nested too deeply") from None
    known = {"title", "text", "corpus", "corpus_chars", "minutes", "max_steps", "seeds", "seed", "settings", "vary", "members", "name"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SettingsError(f"{Path(path).name}: unknown entry {unknown[0]!r}; an experiment file holds {', '.join(sorted(known))}")
    for k, kind in (("settings", dict), ("vary", dict), ("members", list)):
        if not isinstance(doc.get(k, kind()), kind):
            raise SettingsError(f"{Path(path).name}: {k} must be a {'table' if kind is dict else 'list of tables'}")
    def value(key, v):  # (text is for settings that take words: n_layer = "2" is a typo TOML can tell)
        k = key_name(key)
        if isinstance(v, str) and KINDS.get(k, str) is not str:
            raise SettingsError(f"{Path(path).name}: {k} takes {KINDS[k].__name__}, got the text {v!r}; write it without quotes")
        return parse_value(k, v)

    settings = {key_name(k): value(k, v) for k, v in doc.get("settings", {}).items()}
    vary = {}
    for k, vals in doc.get("vary", {}).items():
        if not isinstance(vals, list):
            raise SettingsError(f"{Path(path).name}: vary.{k} must be a list of values")
        vary[key_name(k)] = [value(k, v) for v in vals]
    members = []
    for m in doc.get("members", []):
        if not isinstance(m, dict) or "name" not in m:
            raise SettingsError(f"{Path(path).name}: each [[members]] needs a name")
        if not isinstance(m["name"], str):
            raise SettingsError(f"{Path(path).name}: a [[members]] name is text in quotes (name = \"bigram\"), got {m['name']!r}")
        if not m["name"].strip():
            raise SettingsError(f"{Path(path).name}: a [[members]] name is empty; give each member a name (name = \"bigram\")")
        members.append({"name": m["name"], **{key_name(k): value(k, v) for k, v in m.items() if k != "name"}})
    spec = Spec(name=name or str(doc.get("name", Path(path).stem)), settings=settings, vary=vary, members=members)
    for k in ("title", "text", "corpus"):
        if k in doc:
            setattr(spec, k, str(doc[k]))
    spec.text = paragraphs(spec.text)
    for k, kind in (("minutes", (int, float)), ("max_steps", int), ("seeds", int), ("seed", int), ("corpus_chars", int)):
        if k in doc:
            if not isinstance(doc[k], kind) or isinstance(doc[k], bool):
                raise SettingsError(f"{Path(path).name}: {k} must be a number, got {doc[k]!r}")
            setattr(spec, k, doc[k])
    return spec


def paragraphs(text: str) -> str:
    """A lesson's text as its paragraphs: its lines are the file's wrapping, its paragraphs a blank line
    apart; the screen or the terminal wraps it to its own width."""
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


@dataclass
class Lesson:
    name: str  # the file's stem: `tinygpt lesson NAME`
    path: Path
    spec: Spec


def list_lessons() -> list[Lesson]:
    """The shipped lessons, by name."""
    return [Lesson(p.stem, p, read_spec_file(p, f"lesson-{p.stem}")) for p in sorted(LESSONS_DIR.glob("*.toml"))]


def find_lesson(name: str) -> Lesson:
    lessons = list_lessons()
    for lesson in lessons:
        if lesson.name == name:
            return lesson
    raise SettingsError(f"no lesson named {name!r}; the lessons: {', '.join(x.name for x in lessons)}")


def counted(n: float, unit: str) -> str:
    """1 minute, 1.5 minutes, 4,000 steps."""
    return f"{n:,g} {unit}{'' if n == 1 else 's'}"


def as_run(spec: Spec, minutes: float | None = None, max_steps: int | None = None, corpus: str | None = None) -> Spec:
    """The lesson as run here: at another budget (minutes or steps) or on another corpus, in a folder named for them
    (lesson-dropout-1.5min, lesson-dropout-400steps-mybook), so the lesson's own results stay whole and a re-run goes on
    with it; its text says what it was written for. The one name `tinygpt lesson` and the app's form both give: either
    resumes what the other started. Neither given, or the lesson's own: the lesson as it is."""
    if minutes is not None or max_steps is not None:
        check_budget(minutes, max_steps)  # (before the name is made of it)
    notes, name, own = [], spec.name, (spec.minutes, spec.max_steps)
    if (minutes, max_steps) not in ((None, None), own):
        name += f"-{minutes:g}min" if minutes is not None else f"-{max_steps}steps"
        was = counted(spec.minutes, "minute") if spec.minutes is not None else counted(spec.max_steps, "step")
        given = counted(minutes, "minute") if minutes is not None else counted(max_steps, "step")
        notes.append(f"(Run here with {given} a member instead of the lesson's {was}: what the text says of its budget may not hold.)")
    else:
        minutes, max_steps = own
    if corpus and not same_corpus(corpus, spec.corpus):
        book = book_name(corpus)
        name += f"-{book}"
        from tinygpt_tui.engine.corpora import catalog_entry

        own_book = getattr(catalog_entry(spec.corpus), "title", spec.corpus)
        notes.append(f"(Run here on {Path(corpus).name} instead of the lesson's {own_book}: what the text says of that book may not hold.)")
    else:
        corpus = spec.corpus
    if not notes:
        return spec
    return replace(spec, name=name, corpus=corpus, minutes=minutes, max_steps=max_steps,
                   text="\n\n".join([spec.text, *notes] if spec.text else notes))


def book_name(corpus: str) -> str:
    """The words a lesson's folder takes for the corpus it runs on: its file's (红楼梦.txt: 红楼梦, not "corpus" for
    every such book); a glob's folder's with them ('~/books/*.txt': books; it was "corpus" for every glob, and a
    lesson on another glob was refused as that folder's "run on *.txt, not *.txt")."""
    def words(text: str) -> str:
        return re.sub(r"[^\w-]+", "-", text).strip("-_")[:40]

    p = Path(corpus)
    if any(c in p.stem for c in "*?["):
        return "-".join(w for w in (words(p.parent.name), words(p.stem)) if w)[:40] or "corpus"
    return words(p.stem) or "corpus"


def same_corpus(a: str, b: str) -> bool:
    """Whether two corpora given (a name, a file name, a path) are the same text file."""
    from tinygpt_tui.engine.corpora import resolve_corpus
    from tinygpt_tui.errors import TinyGPTError

    try:
        return a == b or resolve_corpus(a).resolve() == resolve_corpus(b).resolve()
    except (TinyGPTError, OSError):
        return False
