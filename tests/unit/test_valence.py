import json
from pathlib import Path

from config.valence import GROUP_OF_LABEL, VALENCE_GROUPS, valence_group

SHIPPED_CONFIG = Path(__file__).parents[2] / "models" / "emotion-minilm-goemotions" / "config.json"


def test_every_goemotions_label_is_in_exactly_one_group():
    labels = list(json.loads(SHIPPED_CONFIG.read_text())["labels"])
    grouped = [label for group in VALENCE_GROUPS.values() for label in group]
    assert sorted(grouped) == sorted(labels)
    assert len(set(grouped)) == len(grouped) == 28


def test_groups_follow_the_paper():
    assert valence_group("joy") == "positive"
    assert valence_group("grief") == "negative"
    assert valence_group("surprise") == "ambiguous"
    assert valence_group("neutral") == "neutral"
    assert valence_group("not-a-goemotions-label") == "ambiguous"
    assert set(GROUP_OF_LABEL.values()) == set(VALENCE_GROUPS)
