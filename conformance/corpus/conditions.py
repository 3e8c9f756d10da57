"""What a case's inputs are, as a registry entry can ask of them (`when:` in docs/registry.md): the class axis's
position, the rank, the number of classes, the reduction and the options set, whether a class index lies outside [0, C), the mask's shape.
An entry written for a condition then explains a user's own case that meets it, not only the bundled cases it was
first seen on."""

from __future__ import annotations

from .cases import Case, array_shape

# condition -> the values it may take (rank takes whole numbers)
CONDITIONS: dict[str, tuple[str, ...] | None] = {
    "class_axis": ("last", "first", "middle"),  # where the classes are, for a rank of at least 2 ("last" for rank 1)
    "rank": None,
    "classes": None,  # the length of the class axis
    "reduction": ("none", "sum", "mean"),
    "options": ("label_smoothing", "ignore_index", "weight", "softcap", "z_loss"),  # each listed option is set
    "labels": ("in-range", "out-of-range"),  # a class index outside [0, C) that is not ignore_index
    "mask": ("none", "elementwise", "broadcast"),  # no mask, one of the logits' shape, one that broadcasts
}


def of(case: Case) -> dict:
    """The case's conditions."""
    shape = case.logits_shape
    rank = len(shape)
    axis = case.axis % rank if rank else 0
    position = "last" if axis == rank - 1 else "first" if axis == 0 else "middle"
    mask = "none" if case.mask is None else ("elementwise" if array_shape(case.mask) == shape else "broadcast")
    return {"class_axis": position, "rank": rank, "classes": shape[axis] if rank else 1, "reduction": case.options.reduction,
            "options": tuple(o for o in case.options.non_default() if o != "reduction"),
            "labels": "out-of-range" if case.labels_out_of_range else "in-range", "mask": mask}


def check(when: object) -> str | None:
    """Why a `when:` mapping is not one (None where it is)."""
    if not isinstance(when, dict) or not when:
        return "must be a mapping of conditions"
    for key, values in when.items():
        if key not in CONDITIONS:
            return f"unknown condition {key!r}; known: {', '.join(CONDITIONS)}"
        values = values if isinstance(values, list) else [values]
        allowed = CONDITIONS[key]
        if not values or (allowed is None and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)) \
                or (allowed is not None and not all(v in allowed for v in values)):
            return f"condition {key!r} takes {'whole numbers' if allowed is None else ', '.join(allowed)}"
    return None


def meets(conditions: dict, when: dict) -> bool:
    """Whether a case's conditions meet every condition of an entry (`options`: every option listed is set)."""
    for key, wanted in when.items():
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if key == "options":
            if not all(o in conditions["options"] for o in wanted):
                return False
        elif conditions.get(key) not in wanted:
            return False
    return True
