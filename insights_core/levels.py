"""The three object levels of an ad account (campaign, ad set, ad), each declared once.

Sources, the store and the pages derive what differs per level from these specs: table and id
column, the hierarchy, the words a page shows, the Graph fields to request and the entity
table's columns. Code that does the same thing per level loops over `LEVEL_SPECS`, so a column
added to a level is one line here (and a numbered migration; `tests/core/test_levels.py` holds the
specs against the migrated schema). No imports from the rest of the package: everyone may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Literal, NamedTuple, get_args

Level = Literal["campaign", "adset", "ad"]
LEVELS: tuple[Level, ...] = get_args(Level)
"""Outermost first: each level's parent comes before it."""

VARCHAR, INTEGER, TIMESTAMP, MONEY = "VARCHAR", "INTEGER", "TIMESTAMP", "DECIMAL(18,2)"


class Column(NamedTuple):
    """One column of an entity table, typed as DuckDB's information_schema spells the type."""

    name: str
    sql_type: str
    graph_field: str | None = None
    """The Graph field its value is read from, when that is not the column's own name."""


@dataclass(frozen=True)
class LevelSpec:
    """One level as sources, the store and the pages need it."""

    level: Level
    label: str
    """What a page calls one of them ("ad set")."""
    plural: str
    """The sync report's key for the level's counts (`adsets`)."""
    table: str
    id_column: str
    parent: Level | None
    children: tuple[Level, ...]
    """Every level below it, nearest first: what a sync of one of these cascades to."""
    columns: tuple[Column, ...]
    """The entity table's columns in table order, `updated_at` (the store's own) left out wherever a
    migration's ADD COLUMN put it."""

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def graph_fields(self) -> tuple[str, ...]:
        """The fields to ask Graph for, in column order: one field may fill several columns (`targeting`)."""
        return tuple(dict.fromkeys(c.graph_field or c.name for c in self.columns))

    @cached_property
    def ancestors(self) -> tuple[LevelSpec, ...]:
        """The levels above, outermost first."""
        if self.parent is None:
            return ()
        parent = LEVEL_SPECS[self.parent]
        return parent.ancestors + (parent,)

    @cached_property
    def parent_id_columns(self) -> tuple[str, ...]:
        """The ids an object of this level (and each of its insight rows) names besides its own."""
        return tuple(a.id_column for a in self.ancestors)


_STATUS = (Column("status", VARCHAR), Column("effective_status", VARCHAR))
_BUDGETS = (Column("daily_budget", MONEY), Column("lifetime_budget", MONEY))
# added by migration 6, so they follow `updated_at` in the table; what a lifetime budget is paced over
# (Graph calls an ad set's end `end_time`, a campaign's `stop_time`). A stop time may be absent (runs on).
_CAMPAIGN_FLIGHT = (Column("start_time", TIMESTAMP), Column("stop_time", TIMESTAMP))
_ADSET_FLIGHT = (Column("start_time", TIMESTAMP), Column("stop_time", TIMESTAMP, "end_time"))

LEVEL_SPECS: Mapping[Level, LevelSpec] = MappingProxyType(
    {
        "campaign": LevelSpec(
            level="campaign",
            label="campaign",
            plural="campaigns",
            table="campaigns",
            id_column="campaign_id",
            parent=None,
            children=("adset", "ad"),
            columns=(
                Column("campaign_id", VARCHAR, "id"),
                Column("account_id", VARCHAR),
                Column("name", VARCHAR),
                *_STATUS,
                Column("objective", VARCHAR),
                *_BUDGETS,
                Column("created_time", TIMESTAMP),
                *_CAMPAIGN_FLIGHT,
            ),
        ),
        "adset": LevelSpec(
            level="adset",
            label="ad set",
            plural="adsets",
            table="adsets",
            id_column="adset_id",
            parent="campaign",
            children=("ad",),
            columns=(
                Column("adset_id", VARCHAR, "id"),
                Column("account_id", VARCHAR),
                Column("campaign_id", VARCHAR),
                Column("name", VARCHAR),
                *_STATUS,
                Column("optimization_goal", VARCHAR),
                Column("billing_event", VARCHAR),
                *_BUDGETS,
                *(
                    Column(name, sql_type, "targeting")
                    for name, sql_type in (
                        ("age_min", INTEGER),
                        ("age_max", INTEGER),
                        ("genders", VARCHAR),
                        ("countries", VARCHAR),
                        ("placements", VARCHAR),
                        ("targeting_json", VARCHAR),
                    )
                ),
                Column("created_time", TIMESTAMP),
                *_ADSET_FLIGHT,
            ),
        ),
        "ad": LevelSpec(
            level="ad",
            label="ad",
            plural="ads",
            table="ads",
            id_column="ad_id",
            parent="adset",
            children=(),
            columns=(
                Column("ad_id", VARCHAR, "id"),
                Column("account_id", VARCHAR),
                Column("campaign_id", VARCHAR),
                Column("adset_id", VARCHAR),
                Column("name", VARCHAR),
                *_STATUS,
                Column("creative_id", VARCHAR, "creative"),
                Column("created_time", TIMESTAMP),
            ),
        ),
    }
)

LEVEL_PLURAL: Mapping[Level, str] = MappingProxyType({s.level: s.plural for s in LEVEL_SPECS.values()})
LEVEL_LABELS: Mapping[Level, str] = MappingProxyType({s.level: s.label for s in LEVEL_SPECS.values()})
