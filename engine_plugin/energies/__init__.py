"""Energies ``E(x, y)`` that accept one-hot or relaxed outputs ``y``."""

from engine_plugin.energies.translation import TranslationEnergy

__all__ = ["TranslationEnergy"]
