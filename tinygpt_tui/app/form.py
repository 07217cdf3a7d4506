"""The experiment screen's form (F4): its fields read as an experiment's Spec, and a Spec's settings as its
fields. Errors are said in the form's words (Minutes, Steps), not the command line's flags."""

from __future__ import annotations

from dataclasses import replace

from tinygpt_tui.engine.experiment import Spec, check_budget, parse_pairs
from tinygpt_tui.engine.lessons import as_run
from tinygpt_tui.errors import SettingsError


def form_budget(q, whole: bool = False) -> tuple:
    """(minutes, steps) the form gives each member, None where a field is empty; `whole`: checked as a
    budget (one of the two, within bounds), said in the form's words."""
    minutes, steps = q("#exp-minutes"), q("#exp-steps")
    try:
        budget = (float(minutes) if minutes else None), (int(steps) if steps else None)
    except ValueError:
        raise SettingsError(f"the budget must be a number of minutes or steps, got {minutes or steps!r}") from None
    if whole:
        try:
            check_budget(*budget)
        except SettingsError as e:  # (the engine's words name the command line's --minutes and --max-steps)
            if None not in budget:
                raise SettingsError("Minutes and Steps are both filled: a member's budget is one of them, clear the other") from None
            raise SettingsError(str(e).replace("--minutes or --max-steps", "Minutes or Steps").replace("--minutes", "Minutes")
                                .replace("--max-steps", "Steps")) from None
    return budget


def form_values(spec) -> dict:
    """The form's fields for an experiment (a lesson picked, or one saved before): field id -> text."""
    fmt = lambda v: str(v).lower() if isinstance(v, bool) else str(v)  # noqa: E731
    vary = [f"{k}={','.join(map(fmt, vs))}" for k, vs in spec.vary.items()] or [", ".join(m["name"] for m in spec.members)]
    return {"#exp-name": spec.name, "#exp-corpus": spec.corpus, "#exp-minutes": f"{spec.minutes:g}" if spec.minutes else "",
            "#exp-steps": str(spec.max_steps or ""), "#exp-vary1": vary[0], "#exp-vary2": vary[1] if len(vary) > 1 else "",
            "#exp-set": " ".join(f"{k}={fmt(v)}" for k, v in spec.settings.items())}


def form_spec(q, lesson):
    """The experiment the form describes (q reads a field): a lesson's with the form's name, corpus and budget, or the user's own."""
    name, corpus = q("#exp-name"), q("#exp-corpus")
    if not name:
        raise SettingsError("give the experiment a name (it becomes the folder under the models directory)")
    minutes_v, steps_v = form_budget(q, whole=True)
    if lesson is not None:  # (its text says where it is run at another budget or on another book, as `tinygpt lesson` says it)
        spec = replace(as_run(lesson.spec, minutes_v, steps_v, corpus), name=name, settings=dict(lesson.spec.settings))
    else:
        vary = [v for v in (q("#exp-vary1"), q("#exp-vary2")) if v]
        spec = Spec(name=name, vary=parse_pairs(vary, "vary"), settings=parse_pairs(q("#exp-set").split(), "set"))
    spec.corpus = corpus or spec.corpus
    if not spec.corpus:  # (the engine's own words name the command line's --corpus)
        raise SettingsError("give a corpus: shakespeare, hongloumeng, one you added, or a text file's path")
    spec.minutes, spec.max_steps = minutes_v, steps_v
    return spec
