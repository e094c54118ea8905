"""The rules editor's table <-> the engine's rules file form (``engine.rerank.Rules``); validation is the engine's."""

from __future__ import annotations

import math

import pandas as pd

ACTIONS = ("pin", "boost", "bury", "exclude")
TARGETS = ("item", "category", "brand")
COLUMNS = ["action", "target", "value", "weight", "row", "slot"]
_EXCLUDE_KEYS = {"item": "items", "category": "categories", "brand": "brands"}


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({"action": pd.Series(dtype="object"), "target": pd.Series(dtype="object"), "value": pd.Series(dtype="object"),
                         "weight": pd.Series(dtype="float"), "row": pd.Series(dtype="Int64"), "slot": pd.Series(dtype="Int64")})


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or str(value).strip() == ""


def table_to_rules(table: pd.DataFrame) -> dict:
    """The editor's rows as a rules object (the rules file form); incomplete rows are skipped.

    Pins always name an item; a row's ``target`` says whether ``value`` is an item id, a category or
    a brand. Rows and slots count from 1, as in the rules file.
    """
    out: dict = {}
    for rec in table.to_dict("records"):
        action, value = rec.get("action"), rec.get("value")
        if _blank(action) or _blank(value):
            continue
        action, value = str(action).strip(), str(value).strip()
        target = "item" if _blank(rec.get("target")) else str(rec["target"]).strip()
        if action == "exclude":
            out.setdefault("exclude", {}).setdefault(_EXCLUDE_KEYS.get(target, target), []).append(value)
        elif action in ("boost", "bury"):
            weight = rec.get("weight")
            out.setdefault(action, []).append({target: value, "weight": 0.5 if _blank(weight) else float(weight)})
        elif action == "pin":
            row, slot = rec.get("row"), rec.get("slot")
            out.setdefault("pin", []).append({"item": value, "row": 1 if _blank(row) else int(row), "slot": 1 if _blank(slot) else int(slot)})
        else:
            out.setdefault(action, [])  # the engine names the unknown key
    return out


def rules_to_table(rules: dict | None) -> pd.DataFrame:
    """A rules object (file form) as editor rows."""
    rows = []
    rules = rules or {}
    for key, values in (rules.get("exclude") or {}).items():
        target = {v: k for k, v in _EXCLUDE_KEYS.items()}.get(key, key)
        rows += [{"action": "exclude", "target": target, "value": str(v)} for v in values]
    for action in ("boost", "bury"):
        for entry in rules.get(action) or []:
            target = next((t for t in TARGETS if t in entry), "item")
            rows.append({"action": action, "target": target, "value": str(entry.get(target, "")), "weight": float(entry.get("weight", 0.5))})
    for entry in rules.get("pin") or []:
        rows.append({"action": "pin", "target": "item", "value": str(entry.get("item", "")), "row": int(entry.get("row", 1)), "slot": int(entry.get("slot", 1))})
    table = empty_table()
    if rows:
        table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
        table["row"] = table["row"].astype("Int64")
        table["slot"] = table["slot"].astype("Int64")
    return table[COLUMNS]
