"""The questions of the listening test, worded as in the papers they come from.

MOS scales (1-5): VarietySound (Appendix D, Tables 4-6: realism, temporal alignment, timbre similarity).
Real or fake: Zhou et al. 2018 (Sec. 4.3, Table 2: the fraction of video-audio pairs judged real).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """One question asked of every item of a part of the test.

    `choices` maps each answer as it is stored in the CSV ("1".."5", "real", "fake") to the label the rater sees;
    `mos` is True for 1-5 opinion scores (averaged), False for the real-or-fake choice (a rate).
    """

    key: str
    title: str
    prompt: str
    choices: tuple[tuple[str, str], ...]
    mos: bool
    source: str
    part: int  # 1: asked of every item, on its video; 2: asked of generated items against a reference sound


REALISM = Question(
    key="realism",
    title="Audio realism",
    prompt="Listen to the sound of this video and rate how realistic the audio content is. "
    "The higher the score, the more realistic the audio.",
    choices=(
        ("5", "Completely real sound."),
        ("4", "Mostly real sound."),
        ("3", "Equally real and unreal sound."),
        ("2", "Mostly unreal sound."),
        ("1", "Completely unreal sound."),
    ),
    mos=True,
    source="VarietySound, Appendix D, Table 4 (MOS of Realism)",
    part=1,
)

ALIGNMENT = Question(
    key="alignment",
    title="Temporal alignment",
    prompt="Watch the video with its sound and rate how well they are aligned in time: the shorter the interval "
    "between an event in the video and the corresponding event in the audio, the higher the score.",
    choices=(
        ("5", "Events in video and events in audio occur simultaneously."),
        ("4", "Slight misalignment between events in video and events in audio."),
        ("3", "Exist misalignment in some positions."),
        ("2", "Exist misalignment in most of the positions."),
        ("1", "Completely misalignment, no events in audio can match the video."),
    ),
    mos=True,
    source="VarietySound, Appendix D, Table 5 (MOS of Temporal Alignment)",
    part=1,
)

REAL_OR_FAKE = Question(
    key="real_or_fake",
    title="Real or fake",
    prompt="The audio of this video might be either real (originally belonging to this video) or fake "
    "(synthesized by computers). The criteria of being fake can be bad synchronization or poor quality, "
    "such as containing unpleasing noise. Is the audio real or fake?",
    choices=(("real", "Real"), ("fake", "Fake")),
    mos=False,
    source="Zhou et al. 2018 (Visual to Sound), Sec. 4.3 'Real or fake determination', Table 2",
    part=1,
)

TIMBRE = Question(
    key="timbre",
    title="Timbre similarity",
    prompt="Listen to the original audio (the target) and to the test audio, and rate how similar the test "
    "audio's timbre is to the original audio's timbre.",
    choices=(
        ("5", "Timbre is exactly the same as target."),
        ("4", "Timbre has high similarity with the target but not same."),
        ("3", "Timbre has similarity with the target, but there are obvious differences."),
        ("2", "Timbre has a large gap with the target, but share the same category of the sound."),
        ("1", "Timbre is completely different to the target."),
    ),
    mos=True,
    source="VarietySound, Appendix D, Table 6 (MOS of Timbre Similarity)",
    part=2,
)

QUESTIONS: dict[str, Question] = {q.key: q for q in (REALISM, ALIGNMENT, REAL_OR_FAKE, TIMBRE)}
"""Every question the kit knows, in the order the page asks them."""


def parse_questions(names: str | list[str] | None) -> list[Question]:
    """Questions from a comma-separated list (or a list) of keys; None gives all of them. ValueError on a typo."""
    if names is None:
        return list(QUESTIONS.values())
    keys = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [k for k in keys if k not in QUESTIONS]
    if unknown or not keys:
        raise ValueError(f"unknown question(s) {unknown or names!r}; choose from {', '.join(QUESTIONS)}")
    return [QUESTIONS[k] for k in QUESTIONS if k in keys]
