"""The demo page of a saved model: ``hftl app`` serves it locally (:mod:`hftl.app.server`, needs the extra
``app``), and :func:`write_space_app` writes it as a Space's ``app.py`` for a Hub repo.

The server is not imported here: gradio takes seconds to import, and ``hftl.hub`` imports this package.
"""

from .space import SPACE_FILES, space_app_source, space_requirements, write_space_app

__all__ = ["SPACE_FILES", "space_app_source", "space_requirements", "write_space_app"]
