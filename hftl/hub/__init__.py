"""Model cards, their images, and publishing an output directory to the Hub."""

from .card import CARD_FILE, CardFacts, build_model_card, write_model_card
from .outputs import write_card_and_images
from .publish import DRY_RUN_DIR, PushError, check_can_push, push

__all__ = [
    "CARD_FILE", "CardFacts", "build_model_card", "write_model_card", "write_card_and_images",
    "DRY_RUN_DIR", "PushError", "check_can_push", "push",
]  # fmt: skip
