"""Scorers for stock ``fairseq-generate --scoring`` (see :mod:`engine_plugin.scoring.tagging`)."""
