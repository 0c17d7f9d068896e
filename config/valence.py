"""The valence groups of the 28 GoEmotions labels, as the GoEmotions paper groups them.

Demszky et al. (2020), "GoEmotions: A Dataset of Fine-Grained Emotions", group the 27 emotions
into positive, negative and ambiguous sentiment (their ``sentiment_mapping.json``); ``neutral``
is a group of its own. Emotion results (per entry) and analytics (per bucket) both use this one
table, so a label never counts as positive in one and ambiguous in the other.
"""
from __future__ import annotations

VALENCE_GROUPS: dict[str, tuple[str, ...]] = {
    "positive": (
        "admiration", "amusement", "approval", "caring", "desire", "excitement",
        "gratitude", "joy", "love", "optimism", "pride", "relief",
    ),
    "negative": (
        "anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment",
        "fear", "grief", "nervousness", "remorse", "sadness",
    ),
    "ambiguous": ("confusion", "curiosity", "realization", "surprise"),
    "neutral": ("neutral",),
}

GROUP_OF_LABEL: dict[str, str] = {label: group for group, labels in VALENCE_GROUPS.items() for label in labels}


def valence_group(label: str) -> str:
    """The group of one label; a label outside the GoEmotions taxonomy (a user's own model) is ``ambiguous``."""
    return GROUP_OF_LABEL.get(label, "ambiguous")

#: The 28 labels in the GoEmotions order (the 27 emotions alphabetically, then ``neutral``): the
#: labels analytics keep per time slot (``db.rollups``).
LABELS: tuple[str, ...] = (*sorted(label for group, labels in VALENCE_GROUPS.items() if group != "neutral"
                                   for label in labels), "neutral")
