"""Recipes, as training reads them: `stored.recipe` (below inference too), re-exported."""

from ..stored.recipe import (
    FIELDS,
    Given,
    Recipe,
    builtin_names,
    builtin_text,
    from_dict,
    load,
    merge,
    parse_setting,
)

__all__ = ["FIELDS", "Given", "Recipe", "builtin_names", "builtin_text", "from_dict", "load",
           "merge", "parse_setting"]
